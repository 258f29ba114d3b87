//! Recovery fields from what the sender newly wrote: username, reasons,
//! claims, proofs.
//!
//! Input is the new text only (quotes and signatures already stripped by
//! [`crate::quote`]) with secrets already redacted by [`crate::secrets`].
//! Pure; never fails: an empty [`RequestFields`] is a valid answer.

use serde::{Deserialize, Serialize};

/// Why the requester lost access; several may apply, primary first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The phone or key holding the second factor is gone.
    #[serde(rename = "lost_2fa_device")]
    Lost2faDevice,
    /// Recovery codes are lost or rejected.
    RecoveryCodesLostOrNotWorking,
    /// The password is forgotten.
    ForgotPassword,
    /// The requester no longer reads the linked address.
    LostEmailAccess,
    /// Signs someone else changed the account.
    SuspectedCompromise,
    /// Anything else.
    Other,
}

impl Reason {
    /// Stable snake_case code used in JSON, config and templates.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Lost2faDevice => "lost_2fa_device",
            Reason::RecoveryCodesLostOrNotWorking => "recovery_codes_lost_or_not_working",
            Reason::ForgotPassword => "forgot_password",
            Reason::LostEmailAccess => "lost_email_access",
            Reason::SuspectedCompromise => "suspected_compromise",
            Reason::Other => "other",
        }
    }
}

/// A yes/no statement the requester may or may not have made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Not said.
    #[default]
    Unknown,
    /// Said yes.
    Yes,
    /// Said no.
    No,
}

/// Agreement to something (Code of Conduct, review delay) and how it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tick {
    /// Not mentioned.
    #[default]
    Unknown,
    /// Only a form checkbox (`- [x]`): weak evidence, still counts as given.
    Weak,
    /// Said in the requester's own words.
    Stated,
    /// Explicitly refused, or an unticked box.
    Refused,
}

impl Tick {
    /// True when the agreement counts as given.
    pub fn is_given(self) -> bool {
        matches!(self, Tick::Weak | Tick::Stated)
    }
}

/// Evidence of ownership the requester offered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proofs {
    /// Package names they say they own.
    pub packages: Vec<String>,
    /// Repository URLs they name.
    pub repository_urls: Vec<String>,
    /// Addresses they say were linked before.
    pub previous_addresses: Vec<String>,
    /// When they say the account was created, as written.
    pub account_created: Option<String>,
}

impl Proofs {
    /// True when nothing was offered.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
            && self.repository_urls.is_empty()
            && self.previous_addresses.is_empty()
            && self.account_created.is_none()
    }
}

/// A field a recovery request may need; the required set is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The account username.
    Username,
    /// Why access was lost.
    Reason,
    /// Whether they still read the linked address.
    EmailAccess,
    /// Agreement to the Code of Conduct.
    CodeOfConduct,
    /// Acknowledgement that review takes time.
    DelayAcknowledged,
    /// Ownership proofs (packages, previous addresses, creation date).
    Proofs,
}

impl Field {
    /// Every field, in the order requests ask for them.
    pub const ALL: [Field; 6] = [
        Field::Username,
        Field::Reason,
        Field::EmailAccess,
        Field::CodeOfConduct,
        Field::DelayAcknowledged,
        Field::Proofs,
    ];

    /// Stable snake_case code used in JSON, config, commands and templates.
    pub fn code(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::Reason => "reason",
            Field::EmailAccess => "email_access",
            Field::CodeOfConduct => "code_of_conduct",
            Field::DelayAcknowledged => "delay_acknowledged",
            Field::Proofs => "proofs",
        }
    }

    /// Parses a code as written in config or a staff `/ask` command.
    pub fn parse(code: &str) -> Option<Field> {
        let code = code.trim().to_ascii_lowercase().replace('-', "_");
        Field::ALL.into_iter().find(|f| f.code() == code)
    }
}

/// Everything understood from one message's new text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFields {
    /// The account username, cleaned of quotes, backticks and spaces.
    pub username: Option<String>,
    /// An address given where the username belongs (used to look up only).
    pub lookup_address: Option<String>,
    /// Reasons, primary first, no repeats.
    pub reasons: Vec<Reason>,
    /// Whether they still control the linked address.
    pub claims_email_access: Claim,
    /// Code of Conduct agreement.
    pub agreed_code_of_conduct: Tick,
    /// Acknowledgement that review takes time.
    pub acknowledged_delay: Tick,
    /// Ownership proofs offered.
    pub proofs: Proofs,
    /// The message is (mostly) a status chase: "any update?".
    pub status_chase: bool,
    /// The body says the problem is solved.
    pub solved: bool,
    /// They say they do not know the username: the account is looked up
    /// by the address they write from instead. Absent in older stored
    /// cases, and left out of the JSON when false so pinned readings stay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgot_username: bool,
}

impl RequestFields {
    /// Folds a newer message's fields into these: what the newer message
    /// states wins, what it leaves out is kept.
    pub fn merge(&mut self, newer: &RequestFields) {
        if newer.username.is_some() {
            self.username = newer.username.clone();
        }
        if newer.lookup_address.is_some() {
            self.lookup_address = newer.lookup_address.clone();
        }
        self.forgot_username |= newer.forgot_username;
        for reason in &newer.reasons {
            if !self.reasons.contains(reason) {
                self.reasons.push(*reason);
            }
        }
        if self.reasons.len() > 1 {
            self.reasons.retain(|r| *r != Reason::Other);
        }
        if newer.claims_email_access != Claim::Unknown {
            self.claims_email_access = newer.claims_email_access;
        }
        if newer.agreed_code_of_conduct != Tick::Unknown {
            self.agreed_code_of_conduct = newer.agreed_code_of_conduct;
        }
        if newer.acknowledged_delay != Tick::Unknown {
            self.acknowledged_delay = newer.acknowledged_delay;
        }
        let proofs = &mut self.proofs;
        extend_unique(&mut proofs.packages, &newer.proofs.packages);
        extend_unique(&mut proofs.repository_urls, &newer.proofs.repository_urls);
        extend_unique(
            &mut proofs.previous_addresses,
            &newer.proofs.previous_addresses,
        );
        if newer.proofs.account_created.is_some() {
            proofs.account_created = newer.proofs.account_created.clone();
        }
        self.status_chase = newer.status_chase;
        self.solved = newer.solved;
    }

    /// Whether a field counts as present.
    pub fn has(&self, field: Field) -> bool {
        match field {
            // Not knowing it is an answer too: asking again would not help,
            // and the sender's own address stands in for the lookup.
            Field::Username => {
                self.username.is_some() || self.lookup_address.is_some() || self.forgot_username
            }
            Field::Reason => !self.reasons.is_empty(),
            Field::EmailAccess => self.claims_email_access != Claim::Unknown,
            Field::CodeOfConduct => self.agreed_code_of_conduct.is_given(),
            Field::DelayAcknowledged => self.acknowledged_delay.is_given(),
            Field::Proofs => !self.proofs.is_empty(),
        }
    }
}

fn extend_unique(into: &mut Vec<String>, from: &[String]) {
    for item in from {
        if !into.iter().any(|i| i.eq_ignore_ascii_case(item)) {
            into.push(item.clone());
        }
    }
}

/// Reads recovery fields from a message's new text and subject.
/// `ignore_addresses` (the support addresses) never become a lookup address.
pub fn extract(new_text: &str, subject: &str, ignore_addresses: &[String]) -> RequestFields {
    crate::request_rules::extract(new_text, subject, ignore_addresses)
}
