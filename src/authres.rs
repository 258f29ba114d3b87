//! Who is staff: a staff From address counts only with a passing
//! `Authentication-Results` from a trusted authserv-id (RFC 8601).
//!
//! Pure. Placeholder rules; the staff issue replaces them.

use serde::{Deserialize, Serialize};

use crate::parse::Inbound;

/// The staff part of the config that decides trust.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffPolicy {
    /// Staff addresses, lower-cased.
    pub addresses: Vec<String>,
    /// Staff domains: every address there is staff.
    pub domains: Vec<String>,
    /// authserv-ids of the MTAs whose Authentication-Results we trust.
    pub trusted_authserv_ids: Vec<String>,
}

impl StaffPolicy {
    /// True when the address is configured as staff (before authentication).
    pub fn is_staff_address(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        self.addresses.iter().any(|a| a.eq_ignore_ascii_case(&address))
            || address
                .rsplit_once('@')
                .is_some_and(|(_, d)| self.domains.iter().any(|sd| sd.eq_ignore_ascii_case(d)))
    }
}

/// Whether a message comes from staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StaffTrust {
    /// Not a staff address.
    NotStaff,
    /// A staff address with a passing, trusted authentication result.
    Staff {
        /// The staff member's address.
        address: String,
    },
    /// A staff address without trusted proof: treat as an outsider, alert.
    Forged {
        /// The claimed staff address.
        address: String,
        /// Why it was not trusted.
        why: String,
    },
}

/// Authentication results for display to staff (trust signals).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSummary {
    /// DMARC result from a trusted authserv-id, e.g. `pass`.
    pub dmarc: Option<String>,
    /// DKIM result and its domain, e.g. `pass (example.org)`.
    pub dkim: Option<String>,
    /// SPF result and its domain.
    pub spf: Option<String>,
}

/// Decides whether the message comes from staff.
pub fn staff_trust(inbound: &Inbound, policy: &StaffPolicy) -> StaffTrust {
    let Some(from) = inbound.from_address() else {
        return StaffTrust::NotStaff;
    };
    if !policy.is_staff_address(from.as_str()) {
        return StaffTrust::NotStaff;
    }
    StaffTrust::Forged { address: from.to_string(), why: "authentication not checked yet".into() }
}

/// Summarises trusted authentication results for staff notifications.
pub fn summarize(_inbound: &Inbound, _trusted_authserv_ids: &[String]) -> AuthSummary {
    AuthSummary::default()
}
