//! Where mail comes from: a Maildir folder or an IMAP mailbox.
//!
//! A source hands out batches of raw messages with an opaque id each, and a
//! cursor update that the store commits in the same transaction as the
//! message. Only after that commit is flushed does the worker call
//! [`Source::mark_done`]. Sources never delete or expunge.

pub mod imap;
pub mod maildir;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::Result;

/// A cursor entry to commit with a message, e.g. an IMAP mailbox's
/// UIDVALIDITY and last UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorUpdate {
    /// Cursor key, e.g. `imap:support@host/INBOX`.
    pub key: String,
    /// Cursor value, e.g. `1795444258:42`.
    pub value: String,
}

/// One message taken from a source.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The source's own id for `mark_done` (file name, or UIDVALIDITY:UID).
    pub source_id: String,
    /// The raw bytes (headers only when `oversize` is set).
    pub raw: Vec<u8>,
    /// The full size in bytes when the body was too large and not fetched.
    pub oversize: Option<u64>,
    /// The cursor to commit with this message, if the source keeps one.
    pub cursor: Option<CursorUpdate>,
}

/// A mailbox that recoverydesk reads.
pub trait Source: Send {
    /// Up to `max` messages not yet done, oldest first.
    fn fetch_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Fetched>>>;
    /// Marks messages as processed (flag / move). Called only after the
    /// store has flushed everything they caused.
    fn mark_done<'a>(&'a mut self, source_ids: &'a [String]) -> BoxFuture<'a, Result<()>>;
    /// Marks messages that held a secret (same rules as [`Source::mark_done`]);
    /// a source with a folder for them moves them there.
    fn mark_secret<'a>(&'a mut self, source_ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        self.mark_done(source_ids)
    }
    /// Waits until new mail may be there (IDLE, or a plain sleep), at most
    /// `timeout`.
    fn wait_for_new(&mut self, timeout: Duration) -> BoxFuture<'_, Result<()>>;
    /// A short description for logs, e.g. `maildir:/srv/mail/support`.
    fn describe(&self) -> String;
    /// Shadow mode: never change the mailbox, not even to finish marking
    /// what an earlier crash left unmarked.
    fn set_read_only(&mut self) {}
}

/// Reads the last committed cursor value for a key from the store.
pub type CursorReader = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
