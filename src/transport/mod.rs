//! Where outgoing mail goes: SMTP via lettre, or `.eml` files.
//!
//! The outbox hands a transport finished RFC 5322 bytes with a fixed
//! Message-ID; a transport only delivers them.

pub mod file;
pub mod smtp;
mod smtp_pool;

use futures::future::BoxFuture;

use crate::error::Result;

/// A finished outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Message-ID without angle brackets.
    pub message_id: String,
    /// Envelope sender (MAIL FROM).
    pub envelope_from: String,
    /// Envelope recipients (RCPT TO).
    pub envelope_to: Vec<String>,
    /// The formatted message.
    pub bytes: Vec<u8>,
}

/// Something that delivers finished messages.
pub trait Transport: Send + Sync {
    /// Delivers one message. `Error::Transient` means retry this one
    /// later, `Error::Unavailable` that nothing can be sent right now (the
    /// server is unreachable or refuses every message), `Error::Permanent`
    /// that the recipient refused it for good.
    fn send<'a>(&'a self, message: &'a OutgoingMessage) -> BoxFuture<'a, Result<()>>;
    /// How many messages may be in flight at once.
    fn connections(&self) -> usize {
        1
    }
    /// A short description for logs.
    fn describe(&self) -> String;
}
