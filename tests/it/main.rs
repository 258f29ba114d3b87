//! The integration tests that need no mail stack, in one test binary: one
//! link of the crate instead of one per file. Run one file's tests with
//! `cargo test --test it flow::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../daemon/mod.rs"]
mod daemon;

mod admin;
mod codemap;
mod conversation;
mod crash;
mod demo;
mod digest;
mod directory_http;
mod flow;
mod followups;
mod forged_requester;
mod golden;
mod language;
mod large_mail;
mod machine_mail;
mod no_hang;
mod operator;
mod ratelimit_flow;
mod reading;
mod replay_corpus;
mod retention;
mod rotation;
mod secrets_at_rest;
mod shadow;
mod staff_flow;
mod staff_signature;
mod staff_trust;
mod templates;
mod verify_flow;
