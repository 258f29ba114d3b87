//! The IMAP source (async-imap over tokio and native-tls).
//!
//! Placeholder; the real-mailboxes issue implements it.
