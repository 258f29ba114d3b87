//! The SMTP transport (lettre, tokio, native-tls).
//!
//! Placeholder; the real-mailboxes issue implements it.
