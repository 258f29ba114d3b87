//! The integration tests against the project's loopback Postfix + Dovecot
//! (`scripts/mailstack.sh`), in one test binary. Tests that stop or restart
//! a server take the write side of [`stack::GATE`]; all others hold the read
//! side while they use the stack, so a restart never lands mid-test.

#[path = "../daemon/mod.rs"]
mod daemon;
#[path = "../stack/mod.rs"]
mod stack;

mod conversation_replay;
mod imap_source;
mod mail_client;
mod real_stack;
mod smtp_transport;
mod staff_probe;
