//! recoverydesk: an email-driven account-recovery support inbox processor.
//!
//! # Layout
//! Read in this order. The pure reading stages turn one raw message into
//! facts: [`parse`] (bytes → [`parse::Inbound`]), [`classify`] (machine mail),
//! [`authres`] (is it staff?), [`quote`] (what is new), [`secrets`]
//! (redaction), [`lang`], [`request`] (recovery fields), `staff_cmd`
//! (staff commands), [`thread`] (which case?). The [`case`] core applies an
//! event to a case and returns effects; it does no I/O. [`verify`] and
//! [`directory`] own the challenge and the account lookup. [`templates`]
//! renders replies. At the edges: [`store`] (sled), [`source`] (Maildir,
//! IMAP), [`transport`] (file, SMTP), `outbox`, and [`worker`] which ties
//! them together; [`cli`] is the operator's entry point.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod domain;
pub mod error;
pub mod secret;

pub(crate) mod at_rest;
pub(crate) mod attachments;
pub mod authres;
pub mod classify;
pub mod lang;
pub mod parse;
pub mod quote;
pub(crate) mod ratelimit;
pub mod request;
pub mod request_rules;
pub mod secrets;
pub mod signature;
pub(crate) mod staff_cmd;
pub mod thread;

pub mod directory;
pub mod verify;

pub mod case;

pub(crate) mod compose;
pub(crate) mod labels;
pub(crate) mod metrics;
pub mod templates;

pub(crate) mod clock;
pub(crate) mod outbox;
pub(crate) mod pipeline;
pub(crate) mod reading;
pub mod store;
pub(crate) mod wiring;
pub mod worker;

pub(crate) mod admin;
pub mod cli;
pub mod demo;
pub(crate) mod digest;
pub(crate) mod ops;
pub(crate) mod replay;
pub mod report;
pub(crate) mod retention;
pub mod staff_probe;

pub mod source;
pub mod transport;
