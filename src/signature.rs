//! `staff.verify = "dkim"`: recoverydesk checks the DKIM signatures of a
//! mail from a staff address itself instead of trusting any
//! Authentication-Results header, so a deployment need not trust header
//! layout at all.
//!
//! This is the I/O half (DNS lookups of the signing keys and the DMARC
//! record). The pipeline runs it before routing and hands the typed
//! [`SignatureVerdict`] to [`crate::authres::staff_trust_by_signature`],
//! which decides; the reading stage stays pure.

use std::net::SocketAddr;
use std::time::Duration;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfOutput};
use serde::{Deserialize, Serialize};

use crate::authres;

/// Which evidence makes a mail from a staff address count as staff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffVerify {
    /// The trusted MTA's Authentication-Results header (the layout rules
    /// in [`crate::authres`]).
    #[default]
    AuthenticationResults,
    /// recoverydesk verifies DKIM and DMARC itself; headers are ignored.
    Dkim,
}

/// What the signature check found for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignatureVerdict {
    /// A signature verified with a signing domain aligned with the From
    /// domain, or DMARC passed.
    Aligned {
        /// What proved it, e.g. `dkim=pass d=pypi.example`.
        proof: String,
    },
    /// The lookups worked but nothing proves the From domain.
    Unproven {
        /// What was found instead.
        why: String,
    },
    /// A lookup failed (timeout, server failure): no answer for now.
    DnsFailure {
        /// The failure, for the log and the staff alert.
        why: String,
    },
}

/// Errors setting up the checker.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The resolver could not be built (e.g. no usable system config).
    #[error("DNS resolver for staff.verify = \"dkim\": {0}")]
    Resolver(String),
}

/// Verifies DKIM signatures and DMARC through one resolver.
pub struct SignatureChecker {
    authenticator: MessageAuthenticator,
}

impl std::fmt::Debug for SignatureChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignatureChecker")
    }
}

impl SignatureChecker {
    /// A checker asking `dns_server` (UDP and TCP), or the system resolver
    /// when `None`, each lookup waiting at most `timeout`.
    pub fn new(dns_server: Option<SocketAddr>, timeout: Duration) -> Result<Self, SignatureError> {
        let (config, mut options) = match dns_server {
            Some(addr) => (
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
                ),
                ResolverOpts::default(),
            ),
            None => mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| SignatureError::Resolver(e.to_string()))?,
        };
        options.timeout = timeout;
        // One try per server: a dead resolver must not hold the worker
        // for attempts x timeout on every staff mail.
        options.attempts = 1;
        let authenticator = MessageAuthenticator::new(config, options)
            .map_err(|e| SignatureError::Resolver(e.to_string()))?;
        Ok(SignatureChecker { authenticator })
    }

    /// Checks the raw message's signatures against `from_domain`.
    pub async fn check(&self, raw: &[u8], from_domain: &str) -> SignatureVerdict {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return SignatureVerdict::Unproven {
                why: "the message could not be read for DKIM".into(),
            };
        };
        let outputs = self.authenticator.verify_dkim(&message).await;
        let mut seen = Vec::new();
        let mut dns_failure = None;
        for output in &outputs {
            let domain = output
                .signature()
                .map(|s| s.d.to_ascii_lowercase())
                .unwrap_or_default();
            match output.result() {
                DkimResult::Pass if authres::aligned(&domain, from_domain) => {
                    return SignatureVerdict::Aligned {
                        proof: format!("dkim=pass d={domain}"),
                    };
                }
                DkimResult::Pass => seen.push(format!("dkim=pass d={domain} (not aligned)")),
                DkimResult::TempError(e) => {
                    dns_failure.get_or_insert_with(|| format!("d={domain}: {e}"));
                }
                other => seen.push(format!("dkim={} d={domain}", describe(other))),
            }
        }
        if let Some(why) = dns_failure {
            return SignatureVerdict::DnsFailure { why };
        }
        // DMARC on DKIM alone (no SMTP client address here, so no SPF):
        // it can pass only on a verified signature, so without one there is
        // nothing to look up.
        if !outputs.iter().any(|o| o.result() == &DkimResult::Pass) {
            return unproven(from_domain, &seen);
        }
        let spf = SpfOutput::default();
        let dmarc = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(&message, &outputs, "", &spf))
            .await;
        match dmarc.dkim_result() {
            DmarcResult::Pass => {
                return SignatureVerdict::Aligned {
                    proof: format!("dmarc=pass for {}", dmarc.domain()),
                }
            }
            DmarcResult::TempError(e) => {
                return SignatureVerdict::DnsFailure {
                    why: format!("DMARC record of {from_domain}: {e}"),
                }
            }
            _ => {}
        }
        unproven(from_domain, &seen)
    }
}

fn unproven(from_domain: &str, seen: &[String]) -> SignatureVerdict {
    let found = if seen.is_empty() {
        "no DKIM signature".to_string()
    } else {
        seen.join(", ")
    };
    SignatureVerdict::Unproven {
        why: format!("no verified DKIM signature aligned with {from_domain}: {found}"),
    }
}

fn describe(result: &DkimResult) -> String {
    match result {
        DkimResult::Pass => "pass".into(),
        DkimResult::Neutral(e) => format!("neutral ({e})"),
        DkimResult::Fail(e) => format!("fail ({e})"),
        DkimResult::PermError(e) => format!("permerror ({e})"),
        DkimResult::TempError(e) => format!("temperror ({e})"),
        DkimResult::None => "none".into(),
    }
}
