//! A conversation through the real binary: each step drops mail into the
//! Maildir and runs `recoverydesk once` with the clock pinned by
//! `RECOVERYDESK_NOW`; the file transport's outbox is read as the
//! recipients would read it.

use std::path::PathBuf;
use std::process::Command;

use recoverydesk::domain::{CaseId, EmailAddress};
use recoverydesk::thread::{reply_address, Role};

use super::{config_text, sent_in, Sent, ACCOUNTS, FILE_DIRECTORY};

const BIN: &str = env!("CARGO_BIN_EXE_recoverydesk");
const KEY: &str = "test-secret-key-0123456789abcdef";

/// A folder with a config, an inbox and an outbox, driven by the binary.
pub struct Conversation {
    /// The folder (kept alive).
    pub dir: tempfile::TempDir,
    counter: usize,
    /// The outbox files earlier steps produced.
    seen: std::collections::HashSet<String>,
}

impl Conversation {
    /// A conversation with extra `[policy]` lines on the test config.
    pub fn start(policy_extra: &str) -> Conversation {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret.key"), KEY).unwrap();
        std::fs::write(dir.path().join("accounts.toml"), ACCOUNTS).unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            config_text(policy_extra, FILE_DIRECTORY),
        )
        .unwrap();
        Conversation {
            dir,
            counter: 0,
            seen: Default::default(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Someone writes: the raw message lands in the inbox.
    pub fn write(&mut self, raw: &str) {
        self.counter += 1;
        let name = format!("{:06}.conv", self.counter);
        recoverydesk::source::maildir::deliver(
            &self.dir.path().join("inbox"),
            raw.as_bytes(),
            &name,
        )
        .unwrap();
    }

    /// Runs the binary with these arguments at `now`; returns stdout.
    pub fn run(&self, now: i64, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("RECOVERYDESK_NOW", now.to_string())
            .output()
            .expect("the binary runs");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// One `once` pass at `now`; returns the mail it sent, in the order
    /// it was queued.
    pub fn step(&mut self, now: i64) -> Vec<Sent> {
        self.run(now, &["once"]);
        let mut new: Vec<Sent> = sent_in(&self.dir.path().join("outbox"))
            .into_iter()
            .filter(|m| self.seen.insert(m.file.clone()))
            .collect();
        new.sort_by_key(queued_order);
        new
    }

    /// Every mail sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        sent_in(&self.dir.path().join("outbox"))
    }

    /// The cases as `cases export --json` prints them, one value per case.
    pub fn cases(&self, now: i64) -> Vec<serde_json::Value> {
        self.run(now, &["cases", "export", "--json"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }

    /// The only case (panics when there is not exactly one).
    pub fn case(&self, now: i64) -> serde_json::Value {
        let mut cases = self.cases(now);
        assert_eq!(cases.len(), 1, "expected one case: {cases:?}");
        cases.remove(0)
    }

    /// The case thread's reply address.
    pub fn reply_address(&self, case: &str) -> String {
        address(case, Role::Case)
    }

    /// The challenge thread's reply address.
    pub fn challenge_address(&self, case: &str) -> String {
        address(case, Role::Challenge)
    }
}

fn address(case: &str, role: Role) -> String {
    let id = CaseId::parse(case).expect("case id");
    reply_address(
        &EmailAddress::parse("support@pypi.example").unwrap(),
        KEY.as_bytes(),
        &id,
        role,
    )
}

/// "Hello,", "Hola Jo,": a short line ending in a comma.
fn is_greeting(line: &str) -> bool {
    line.ends_with(',') && line.split_whitespace().count() <= 3
}

/// The store's sequence number in our Message-IDs
/// (`<case>.<seq>.<random>@…`, or `<seq>.<random>@…` without a case).
fn queued_order(mail: &Sent) -> u64 {
    let parts: Vec<&str> = mail.message_id.split('.').collect();
    parts
        .iter()
        .find_map(|p| p.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Only the mail to `address`.
pub fn to<'a>(mails: &'a [Sent], address: &str) -> Vec<&'a Sent> {
    mails
        .iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .collect()
}

/// The first line of a body after the greeting: what the mail says changed.
pub fn first_line(mail: &Sent) -> String {
    mail.text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_greeting(l))
        .unwrap_or("")
        .to_owned()
}

/// The code on its own line in a challenge mail.
pub fn code_in(mail: &Sent) -> String {
    mail.text
        .lines()
        .map(str::trim)
        .find(|l| {
            let chars: Vec<char> = l.chars().filter(|c| *c != '-').collect();
            chars.len() == 8
                && chars
                    .iter()
                    .all(|c| recoverydesk::verify::CODE_ALPHABET.contains(&(*c as u8)))
        })
        .unwrap_or_else(|| panic!("no code in:\n{}", mail.text))
        .to_owned()
}
