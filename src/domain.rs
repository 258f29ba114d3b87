//! Small value types shared by every module: case ids, addresses, priorities.
//!
//! Each type has a `parse` constructor so that a value of the type is always
//! well formed; nothing here does I/O.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Letters and digits that cannot be confused when read aloud or typed
/// (no 0/O, 1/I/L, U/V pairs), used for case ids.
/// Lower-case RFC 4648 base32: for tokens that appear in addresses and
/// Message-IDs, where case may be folded.
pub(crate) const BASE32_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

const CASE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";
/// Number of random characters after the `RD-` prefix.
const CASE_ID_LEN: usize = 6;

/// A case identifier such as `RD-7K3M9Q`: short, random, never sequential.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(String);

impl CaseId {
    /// Draws a fresh id from the given random source.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let body: String = (0..CASE_ID_LEN)
            .map(|_| CASE_ALPHABET[rng.gen_range(0..CASE_ALPHABET.len())] as char)
            .collect();
        CaseId(format!("RD-{body}"))
    }

    /// Accepts `RD-XXXXXX` in any letter case; returns the canonical form.
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        let body = upper.strip_prefix("RD-")?;
        let valid = body.len() == CASE_ID_LEN && body.bytes().all(|b| CASE_ALPHABET.contains(&b));
        valid.then_some(CaseId(upper))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically plausible mail address, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Accepts `local@domain` with no spaces, control characters or angle
    /// brackets; anything else is not an address we will ever write to.
    pub fn parse(text: &str) -> Option<Self> {
        let trimmed = text.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = trimmed.rsplit_once('@')?;
        let bad = |c: char| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c);
        if local.is_empty() || domain.is_empty() || trimmed.chars().any(bad) {
            return None;
        }
        if !domain.contains('.') && domain != "localhost" || domain.starts_with('.') {
            return None;
        }
        if trimmed.len() > 254 {
            return None;
        }
        Some(EmailAddress(trimmed.to_lowercase()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How urgently staff should look at a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// The usual queue order.
    #[default]
    Normal,
    /// Suspected compromise or a takeover attempt: staff look first.
    High,
}

impl Priority {
    /// The lower-case name used in config, commands and templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

/// Strips CR, LF and other control characters from text that ends up in a
/// header, so user input can never inject header lines.
pub fn header_safe(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_case_ids_parse_back_and_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = CaseId::generate(&mut rng);
        let b = CaseId::generate(&mut rng);
        assert_ne!(a, b);
        assert_eq!(CaseId::parse(&a.as_str().to_lowercase()), Some(a.clone()));
        assert!(a.as_str().starts_with("RD-") && a.as_str().len() == 9);
    }

    #[test]
    fn case_id_rejects_ambiguous_letters() {
        assert_eq!(CaseId::parse("RD-0O1I00"), None);
        assert_eq!(CaseId::parse("RD-7K3M9"), None);
    }

    #[test]
    fn addresses_are_lowercased_and_checked() {
        assert_eq!(
            EmailAddress::parse("<Jo@Example.ORG>").unwrap().as_str(),
            "jo@example.org"
        );
        assert!(EmailAddress::parse("no at sign").is_none());
        assert!(EmailAddress::parse("a b@example.org").is_none());
        assert!(EmailAddress::parse("x@nodot").is_none());
        assert!(EmailAddress::parse("evil@example.org\r\nBcc: x@y.z").is_none());
    }

    #[test]
    fn header_safe_removes_line_breaks() {
        assert_eq!(header_safe("Hello\r\nBcc: x@y.z"), "Hello Bcc: x@y.z");
    }
}

/// What one handled piece of work was: how an inbound message was read, or
/// which internal step ran. Stored and reported by these snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandledKind {
    /// A person's mail.
    Human,
    /// An auto-reply or another automatic notice.
    AutoReply,
    /// A delivery failure report.
    Bounce,
    /// Mailing-list or bulk mail.
    List,
    /// Mail recoverydesk itself sent, come back.
    OwnLoop,
    /// A message already handled (same content seen before).
    Repeat,
    /// A timer pass on a case.
    Timer,
    /// A send that failed for good, reported by the outbox.
    DeliveryFailure,
    /// A message that could not be handled and was set aside.
    Quarantined,
}

impl HandledKind {
    /// The stored name, e.g. `auto_reply`.
    pub fn name(self) -> &'static str {
        match self {
            HandledKind::Human => "human",
            HandledKind::AutoReply => "auto_reply",
            HandledKind::Bounce => "bounce",
            HandledKind::List => "list",
            HandledKind::OwnLoop => "own_loop",
            HandledKind::Repeat => "repeat",
            HandledKind::Timer => "timer",
            HandledKind::DeliveryFailure => "delivery_failure",
            HandledKind::Quarantined => "quarantined",
        }
    }
}

impl fmt::Display for HandledKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
