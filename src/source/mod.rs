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
    /// The raw bytes (headers only when `oversize` is set), shared with
    /// the commit that keeps them rather than copied into it.
    pub raw: std::sync::Arc<Vec<u8>>,
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

/// How many of the waiting messages, of these sizes in order, make the
/// next batch: at most `max`, and no more bytes than `budget` unless the
/// first message alone is larger (it is then a batch of its own).
pub fn batch_len(sizes: impl IntoIterator<Item = u64>, max: usize, budget: u64) -> usize {
    let mut total = 0u64;
    let mut take = 0;
    for size in sizes.into_iter().take(max) {
        if take > 0 && total.saturating_add(size) > budget {
            break;
        }
        total = total.saturating_add(size);
        take += 1;
    }
    take
}

/// Reads the last committed cursor value for a key from the store.
pub type CursorReader = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_ends_at_its_byte_budget_and_a_large_message_goes_alone() {
        const MB: u64 = 1024 * 1024;
        // Small mail: the count decides.
        assert_eq!(batch_len([3_000; 500], 100, 8 * MB), 100);
        // Three 3 MB messages fit 8 MB twice over only once.
        assert_eq!(batch_len([3 * MB, 3 * MB, 3 * MB], 100, 8 * MB), 2);
        // A 10 MB message is a batch of its own, first or not.
        assert_eq!(batch_len([10 * MB, 1_000, 1_000], 100, 8 * MB), 1);
        assert_eq!(batch_len([1_000, 10 * MB], 100, 8 * MB), 1);
        assert_eq!(batch_len(std::iter::empty(), 100, 8 * MB), 0);
    }

    #[tokio::test]
    async fn a_maildir_batch_keeps_to_the_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; 600_000];
        for i in 0..4 {
            maildir::deliver(dir.path(), &big, &format!("100{i}.big")).unwrap();
        }
        let cursor: CursorReader = std::sync::Arc::new(|_: &str| None);
        let mut source = maildir::MaildirSource::open(dir.path(), 10_000_000, cursor)
            .unwrap()
            .with_batch_bytes(1_000_000);
        let batch = source.fetch_batch(100).await.unwrap();
        assert_eq!(batch.len(), 1, "one 600 kB file per 1 MB batch");
    }
}
