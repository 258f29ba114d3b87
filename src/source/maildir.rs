//! The Maildir source.
