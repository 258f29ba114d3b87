//! Staff commands written on their own lines in a reply (`/note`, `/close`,
//! ...), and the text to relay to the requester.
//!
//! Pure. Placeholder rules; the staff issue replaces them.

use serde::{Deserialize, Serialize};

use crate::domain::Priority;
use crate::request::Field;

/// One staff command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// An internal note: the text after `/note` (and following lines).
    Note {
        /// The note text.
        text: String,
    },
    /// Close the case, optionally with a reason.
    Close {
        /// Why, as written.
        reason: Option<String>,
    },
    /// Send the resolution template, then close.
    Resolve,
    /// Issue or resend the verification challenge.
    Verify,
    /// Ask the requester for exactly these fields.
    Ask {
        /// The fields to ask for.
        fields: Vec<Field>,
    },
    /// Reopen a closed case.
    Reopen,
    /// Set the priority.
    Priority {
        /// The new priority.
        priority: Priority,
    },
    /// Assign the case to the sender.
    AssignMe,
}

/// A staff message split into commands, text to relay, and errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMessage {
    /// Commands in the order written.
    pub commands: Vec<Command>,
    /// Text for the requester (empty when there is nothing to relay).
    pub relay_text: String,
    /// Unknown or malformed commands, explained; when any, nothing is relayed.
    pub errors: Vec<String>,
}

/// Parses a staff message's new text.
pub fn parse(new_text: &str) -> StaffMessage {
    let mut message = StaffMessage::default();
    let mut relay = Vec::new();
    for line in new_text.lines() {
        match line.trim() {
            "/close" => message.commands.push(Command::Close { reason: None }),
            "/resolve" => message.commands.push(Command::Resolve),
            other if other.starts_with('/') => message.errors.push(format!("unknown command {other}")),
            _ => relay.push(line),
        }
    }
    message.relay_text = relay.join("\n").trim().to_string();
    message
}
