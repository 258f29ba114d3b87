//! The file transport.
