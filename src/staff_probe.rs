//! `doctor --staff-probe`: measures where the trusted MTA's
//! `Authentication-Results` stamp sits on mail that reaches the support
//! mailbox, and says which `trusted_received_hops` to configure.
//!
//! Guessing the value is how real staff replies end up "forged" (too low)
//! or how a sender-written header gets to count (too high), so the probe
//! goes the way mail goes: out through the configured SMTP to the support
//! address, back in over the configured IMAP mailbox. It carries our loop
//! header, so the worker records it as our own mail and never answers it;
//! it is read with PEEK and left in place (nothing is ever expunged).
//!
//! [`locate_stamp`] is the pure part: where the stamp is in one header block.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::authres::{parse_authentication_results, StaffPolicy};
use crate::config::{Mailbox, Settings, TransportSettings};
use crate::error::{Error, Result};
use crate::transport::OutgoingMessage;

/// Where the trusted stamp sits in one message's header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The topmost `Authentication-Results` with a trusted authserv-id.
    Stamped {
        /// Its authserv-id.
        authserv_id: String,
        /// `Received` headers above it: the value `trusted_received_hops`
        /// needs.
        received_above: usize,
        /// Further headers naming the same authserv-id below it (staff
        /// mail like this would be treated as an attempted forgery).
        same_id_below: usize,
    },
    /// No header with a trusted authserv-id.
    Unstamped {
        /// The authserv-ids that were there, top first, each with the
        /// `Received` headers above it.
        seen: Vec<(String, usize)>,
        /// `Received` headers in the whole block.
        received: usize,
    },
}

/// Finds the stamp the staff check would read in a raw header block.
pub fn locate_stamp(header: &[u8], policy: &StaffPolicy) -> Placement {
    let mut block = header.to_vec();
    block.extend_from_slice(b"\r\n");
    let inbound = crate::parse::parse(&block);
    let trusted = |id: &str| {
        policy
            .trusted_authserv_ids
            .iter()
            .any(|t| t.trim().eq_ignore_ascii_case(id))
    };
    let mut received = 0usize;
    let mut seen = Vec::new();
    let mut stamp: Option<(String, usize, usize)> = None;
    for (name, value) in &inbound.headers {
        if name == "received" {
            received += 1;
            continue;
        }
        if name != "authentication-results" {
            continue;
        }
        let Some(parsed) = parse_authentication_results(value) else {
            continue;
        };
        match &mut stamp {
            Some((id, _, below)) if *id == parsed.authserv_id => *below += 1,
            Some(_) => {}
            None if trusted(&parsed.authserv_id) => {
                stamp = Some((parsed.authserv_id, received, 0));
            }
            None => seen.push((parsed.authserv_id, received)),
        }
    }
    match stamp {
        Some((authserv_id, received_above, same_id_below)) => Placement::Stamped {
            authserv_id,
            received_above,
            same_id_below,
        },
        None => Placement::Unstamped { seen, received },
    }
}

/// What the probe found, with the advice to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The probe's Message-ID.
    pub message_id: String,
    /// How long it took to arrive in the mailbox.
    pub waited: Duration,
    /// Where the stamp sat.
    pub placement: Placement,
    /// The value configured now.
    pub configured_hops: usize,
}

impl ProbeReport {
    /// True when the configuration already reads the stamp as it arrives.
    pub fn is_ok(&self) -> bool {
        matches!(
            self.placement,
            Placement::Stamped { received_above, same_id_below: 0, .. }
                if received_above == self.configured_hops
        )
    }

    /// The lines `doctor --staff-probe` prints.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "probe <{}> arrived after {:.1} s",
            self.message_id,
            self.waited.as_secs_f64()
        )];
        match &self.placement {
            Placement::Stamped {
                authserv_id,
                received_above,
                same_id_below,
            } => {
                lines.push(format!(
                    "trusted stamp: Authentication-Results from {authserv_id}, below {received_above} Received header(s)"
                ));
                lines.push(format!(
                    "set [staff] trusted_received_hops = {received_above} (configured now: {})",
                    self.configured_hops
                ));
                if *same_id_below > 0 {
                    lines.push(format!(
                        "{same_id_below} more header(s) name {authserv_id} below the stamp: staff mail like this is \
                         treated as an attempted forgery; give each stamping milter its own authserv-id"
                    ));
                }
            }
            Placement::Unstamped { seen, received } => {
                lines.push(format!(
                    "no Authentication-Results from a trusted authserv-id ({received} Received header(s))"
                ));
                for (id, above) in seen {
                    lines.push(format!(
                        "seen: {id}, below {above} Received header(s); if that is your MTA, add it to \
                         [staff] trusted_authserv_ids and set trusted_received_hops = {above}"
                    ));
                }
                if seen.is_empty() {
                    lines.push(
                        "nothing stamped the probe: the MTA in front of the mailbox must add \
                         Authentication-Results, or use staff addresses only with that in place"
                            .into(),
                    );
                }
            }
        }
        lines
    }
}

/// How long the probe may take to arrive.
pub const PROBE_WAIT: Duration = Duration::from_secs(60);

/// Sends the probe through the configured SMTP and reads it back from the
/// configured IMAP mailbox.
pub async fn run(settings: &Settings, wait: Duration) -> Result<ProbeReport> {
    let Mailbox::Imap(imap) = &settings.source.mailbox else {
        return Err(Error::Config(
            "the staff probe reads the mailbox over IMAP: set [source] kind = \"imap\"".into(),
        ));
    };
    if !matches!(settings.transport, TransportSettings::Smtp(_)) {
        return Err(Error::Config(
            "the staff probe sends through SMTP: set [transport] kind = \"smtp\"".into(),
        ));
    }
    let transport = crate::worker::open_transport(settings)?;
    let message = probe_message(settings);
    transport.send(&message).await?;
    let started = Instant::now();
    let header = loop {
        if let Some(header) = find(imap, &settings.base_dir, &message.message_id).await? {
            break header;
        }
        if started.elapsed() >= wait {
            return Err(Error::Transient(format!(
                "the probe <{}> did not arrive in {} within {} s (was it delivered to {}?)",
                message.message_id,
                imap.mailbox,
                wait.as_secs(),
                settings.support_address
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(ProbeReport {
        message_id: message.message_id,
        waited: started.elapsed(),
        placement: locate_stamp(&header, &settings.staff),
        configured_hops: settings.staff.trusted_received_hops,
    })
}

async fn find(
    imap: &crate::source::imap::ImapSettings,
    base_dir: &Path,
    message_id: &str,
) -> Result<Option<Vec<u8>>> {
    crate::source::imap::header_of(imap, base_dir, message_id).await
}

/// The probe: from and to the support address, marked as our own mail.
fn probe_message(settings: &Settings) -> OutgoingMessage {
    use rand::Rng;
    let token: String = {
        let mut rng = rand::thread_rng();
        (0..12)
            .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.gen_range(0..32)]))
            .collect()
    };
    let support = settings.support_address.to_string();
    let message_id = format!("staff-probe.{token}@{}", settings.support_address.domain());
    let date = chrono::Utc::now().to_rfc2822();
    let bytes = format!(
        "From: <{support}>\r\nTo: <{support}>\r\nSubject: recoverydesk staff probe {token}\r\n\
         Message-ID: <{message_id}>\r\nDate: {date}\r\n{}: {}\r\nAuto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         recoverydesk doctor --staff-probe: this message measures where the trusted\r\n\
         Authentication-Results header sits. It is never answered.\r\n",
        crate::classify::LOOP_HEADER,
        settings.instance.id.trim()
    );
    OutgoingMessage {
        message_id,
        envelope_from: support.clone(),
        envelope_to: vec![support],
        bytes: bytes.into_bytes(),
    }
}

/// `doctor --staff-probe`: runs the probe and prints what to configure.
/// Fails when the configuration would not read the stamp as it arrives.
pub async fn doctor(config: Option<&Path>) -> anyhow::Result<()> {
    let path = config.unwrap_or_else(|| Path::new("config.toml"));
    let settings = Settings::load(path)?;
    let report = run(&settings, PROBE_WAIT).await?;
    let mark = if report.is_ok() { '✓' } else { '✗' };
    for (i, line) in report.lines().iter().enumerate() {
        let name = if i == 0 { "staff-probe" } else { "" };
        let mark = if i == 0 { mark } else { ' ' };
        println!("{mark} {name:<11} {line}");
    }
    if !report.is_ok() {
        anyhow::bail!("the staff check would not read the trusted stamp as configured");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> StaffPolicy {
        StaffPolicy {
            trusted_authserv_ids: vec!["mx.pypi.test".into()],
            ..StaffPolicy::default()
        }
    }

    const RECEIVED: &str = "Received: from a by b; Mon, 2 Nov 2026 10:00:00 +0000\r\n";

    #[test]
    fn the_stamp_is_counted_below_the_received_headers_above_it() {
        let header = format!(
            "{RECEIVED}{RECEIVED}Authentication-Results: mx.pypi.test; dmarc=pass header.from=pypi.test\r\n{RECEIVED}From: a@pypi.test\r\n"
        );
        assert_eq!(
            locate_stamp(header.as_bytes(), &policy()),
            Placement::Stamped {
                authserv_id: "mx.pypi.test".into(),
                received_above: 2,
                same_id_below: 0
            }
        );
    }

    #[test]
    fn untrusted_ids_and_a_second_header_are_reported() {
        let header = format!(
            "{RECEIVED}Authentication-Results: mx.other.test; spf=pass\r\n{RECEIVED}From: a@pypi.test\r\n"
        );
        assert_eq!(
            locate_stamp(header.as_bytes(), &policy()),
            Placement::Unstamped {
                seen: vec![("mx.other.test".into(), 1)],
                received: 2
            }
        );
        let twice = format!(
            "Authentication-Results: mx.pypi.test; dkim=pass\r\nAuthentication-Results: mx.pypi.test; dmarc=pass\r\n{RECEIVED}"
        );
        let placement = locate_stamp(twice.as_bytes(), &policy());
        assert!(
            matches!(
                placement,
                Placement::Stamped {
                    same_id_below: 1,
                    received_above: 0,
                    ..
                }
            ),
            "{placement:?}"
        );
        let report = ProbeReport {
            message_id: "p@x".into(),
            waited: Duration::from_millis(1200),
            placement,
            configured_hops: 0,
        };
        assert!(!report.is_ok());
        assert!(report
            .lines()
            .iter()
            .any(|l| l.contains("attempted forgery")));
    }
}
