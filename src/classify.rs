//! Machine mail: auto-replies, bounces, list mail and our own mail coming
//! back. Such mail is never answered and never reopens a case.
//!
//! Pure. Placeholder rules; the reading issue replaces them.

use serde::{Deserialize, Serialize};

use crate::parse::Inbound;

/// The header recoverydesk stamps on everything it sends, carrying the
/// instance id, so its own mail is recognised when it comes back.
pub const LOOP_HEADER: &str = "X-Recoverydesk-Loop";

/// A delivery failure reported by a bounce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    /// Recipients that failed, lower-cased.
    pub failed_recipients: Vec<String>,
    /// Message-ID of the mail that bounced, when the bounce names it.
    pub original_message_id: Option<String>,
    /// Status code such as `5.1.1`, when given.
    pub status: Option<String>,
    /// The remote server's diagnostic, when given.
    pub diagnostic: Option<String>,
}

/// What kind of sender wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    /// A person: may be answered.
    Human,
    /// An auto-reply or out-of-office.
    AutoReply,
    /// A delivery failure report.
    Bounce(Bounce),
    /// Mailing-list or bulk mail.
    List,
    /// Mail recoverydesk itself sent.
    OwnLoop,
}

impl MessageKind {
    /// Stable snake_case name used in logs, JSON and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            MessageKind::Human => "human",
            MessageKind::AutoReply => "auto_reply",
            MessageKind::Bounce(_) => "bounce",
            MessageKind::List => "list",
            MessageKind::OwnLoop => "own_loop",
        }
    }

    /// True for everything that is not a person.
    pub fn is_machine(&self) -> bool {
        !matches!(self, MessageKind::Human)
    }
}

/// The verdict and the rule that decided it (for the case log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// What kind of sender this is.
    pub kind: MessageKind,
    /// Which rule decided, e.g. `Auto-Submitted: auto-replied`.
    pub reason: String,
}

/// Classifies a message. `instance_id` is the value of our loop header.
pub fn classify(inbound: &Inbound, instance_id: &str) -> Classification {
    if inbound
        .header(LOOP_HEADER)
        .is_some_and(|v| v.trim() == instance_id)
    {
        return Classification { kind: MessageKind::OwnLoop, reason: format!("{LOOP_HEADER}: {instance_id}") };
    }
    if let Some(value) = inbound.header("auto-submitted") {
        if !value.trim().eq_ignore_ascii_case("no") {
            return Classification { kind: MessageKind::AutoReply, reason: format!("Auto-Submitted: {value}") };
        }
    }
    if inbound.report.as_ref().is_some_and(|r| r.report_type == "delivery-status") {
        return Classification {
            kind: MessageKind::Bounce(Bounce::default()),
            reason: "multipart/report; report-type=delivery-status".into(),
        };
    }
    Classification { kind: MessageKind::Human, reason: "no machine signal".into() }
}
