//! Shared harness for the end-to-end tests: a real worker over a Maildir
//! in a temp folder, with the file transport and a file account directory.
//! Each test drives the clock explicitly through `pass(now)`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod conversation;

use recoverydesk::case::Case;
use recoverydesk::config::Settings;
use recoverydesk::domain::CaseId;
use recoverydesk::store::Store;
use recoverydesk::thread::{reply_address, Role};
use recoverydesk::worker::{self, PassReport, Worker};

/// A fixed start time: Sunday 2025-11-23 09:00 UTC.
pub const T0: i64 = 1_763_888_400;
/// One day in seconds.
pub const DAY: i64 = 86_400;

/// The test accounts.
pub const ACCOUNTS: &str = r#"
[[account]]
username = "alice"
addresses = [{ address = "alice@linked.example", verified = true, primary = true }]

[[account]]
username = "noaddr"
addresses = []
"#;

/// A running app over a temp folder.
pub struct TestApp {
    /// The folder (kept alive).
    pub dir: tempfile::TempDir,
    /// The worker.
    pub worker: Worker,
    /// Settings.
    pub settings: Arc<Settings>,
    counter: usize,
}

/// Config text with optional extra TOML appended to `[policy]`.
pub fn config_text(policy_extra: &str, directory: &str) -> String {
    // No waiting period unless the test asks for one (TOML refuses a key twice).
    let waiting = if policy_extra.contains("waiting_period") {
        ""
    } else {
        "waiting_period = \"0s\""
    };
    format!(
        r#"
[instance]
id = "rd-test"
support_address = "support@pypi.example"
support_name = "PyPI Support"
secret_key = {{ file = "secret.key" }}

[store]
path = "store"

[source]
kind = "maildir"
[source.maildir]
path = "inbox"

[transport]
kind = "file"
[transport.file]
dir = "outbox"

{directory}

[staff]
addresses = ["admin@pypi.example"]
notify = ["admins@pypi.example"]
trusted_authserv_ids = ["mx.pypi.example"]

[policy]
{waiting}
{policy_extra}
"#
    )
}

/// The file directory section.
pub const FILE_DIRECTORY: &str = "[directory]\nkind = \"file\"\npath = \"accounts.toml\"";

impl TestApp {
    /// An app with the default test config.
    pub async fn spawn() -> TestApp {
        Self::spawn_with("", FILE_DIRECTORY).await
    }

    /// An app with extra `[policy]` lines and a directory section.
    pub async fn spawn_with(policy_extra: &str, directory: &str) -> TestApp {
        Self::spawn_with_config(config_text(policy_extra, directory)).await
    }

    /// An app with a whole config text (see [`config_text`]).
    pub async fn spawn_with_config(config: String) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("secret.key"),
            "test-secret-key-0123456789abcdef",
        )
        .unwrap();
        std::fs::write(dir.path().join("accounts.toml"), ACCOUNTS).unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let settings =
            Arc::new(Settings::load(&dir.path().join("config.toml")).expect("config loads"));
        let worker = open(settings.clone()).await;
        TestApp {
            dir,
            worker,
            settings,
            counter: 0,
        }
    }

    /// Drops the worker and opens a fresh one on the same folder (a restart).
    pub async fn restart(&mut self) {
        let settings = self.settings.clone();
        // sled holds a file lock: the old handle must be gone first.
        let placeholder = open_placeholder();
        let old = std::mem::replace(&mut self.worker, placeholder);
        drop(old);
        self.worker = open(settings).await;
    }

    /// Delivers a raw message into the inbox.
    pub fn deliver(&mut self, raw: &str) {
        self.counter += 1;
        let name = format!("{}.{:04}.test", T0, self.counter);
        recoverydesk::source::maildir::deliver(
            &self.dir.path().join("inbox"),
            raw.as_bytes(),
            &name,
        )
        .unwrap();
    }

    /// Runs one worker pass at `now`.
    pub async fn pass(&mut self, now: i64) -> PassReport {
        self.worker.pass(now).await.expect("pass succeeds")
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.worker.pipeline.store
    }

    /// Every case.
    pub fn cases(&self) -> Vec<Case> {
        self.store().cases().unwrap()
    }

    /// The only case with this requester.
    pub fn case_of(&self, requester: &str) -> Case {
        let found: Vec<Case> = self
            .cases()
            .into_iter()
            .filter(|c| c.requester == requester)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one case for {requester}, found {}",
            found.len()
        );
        found.into_iter().next().unwrap()
    }

    /// The case thread's reply address.
    pub fn reply_address(&self, case: &CaseId) -> String {
        reply_address(
            &self.settings.support_address,
            self.settings.secret_key.expose().as_bytes(),
            case,
            Role::Case,
        )
    }

    /// The challenge thread's reply address.
    pub fn challenge_address(&self, case: &CaseId) -> String {
        reply_address(
            &self.settings.support_address,
            self.settings.secret_key.expose().as_bytes(),
            case,
            Role::Challenge,
        )
    }

    /// The outbox folder.
    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Every sent mail as (file name, raw text), sorted by name.
    pub fn sent(&self) -> Vec<Sent> {
        sent_in(&self.outbox_dir())
    }

    /// Sent mail to one address.
    pub fn sent_to(&self, address: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.to.iter().any(|t| t == address))
            .collect()
    }
}

/// One sent message, parsed.
#[derive(Debug, Clone)]
pub struct Sent {
    /// File name.
    pub file: String,
    /// Raw text.
    pub raw: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Message-ID without brackets.
    pub message_id: String,
    /// The text/plain body.
    pub text: String,
    /// Reply-To address.
    pub reply_to: String,
    /// In-Reply-To without brackets.
    pub in_reply_to: String,
}

/// Reads a file-transport outbox.
pub fn sent_in(dir: &Path) -> Vec<Sent> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".eml") {
            continue;
        }
        let raw = std::fs::read_to_string(entry.path()).unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let to = raw
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("X-Envelope-To: "))
            .map(|l| l.split(", ").map(str::to_owned).collect())
            .unwrap_or_default();
        out.push(Sent {
            file,
            to,
            subject: parsed.subject().unwrap_or("").to_owned(),
            message_id: parsed.message_id().unwrap_or("").to_owned(),
            text: parsed
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            reply_to: parsed
                .reply_to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or("")
                .to_owned(),
            in_reply_to: parsed.in_reply_to().as_text().unwrap_or("").to_owned(),
            raw,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// A worker on these settings, its source connected.
pub async fn open(settings: Arc<Settings>) -> Worker {
    Worker::open(settings, true, false)
        .await
        .expect("worker opens")
}

/// A worker over a throwaway store, to stand in while the real store is
/// closed (sled locks its folder).
pub fn open_placeholder() -> Worker {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret.key"),
        "placeholder-key-0123456789abcdef",
    )
    .unwrap();
    std::fs::write(dir.path().join("accounts.toml"), ACCOUNTS).unwrap();
    let settings = Arc::new(
        Settings::from_toml(&config_text("", FILE_DIRECTORY), dir.path(), "placeholder").unwrap(),
    );
    let pipeline =
        worker::open_pipeline_with_store(settings.clone(), Store::temporary().unwrap()).unwrap();
    let source = Box::new(
        recoverydesk::source::maildir::MaildirSource::open(
            &dir.keep().join("inbox"),
            1 << 20,
            Arc::new(|_: &str| None),
        )
        .unwrap(),
    );
    let transport = worker::open_transport(&settings).unwrap();
    Worker {
        pipeline,
        source,
        transport,
        dry_run: false,
    }
}

/// A plain request mail.
pub fn mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra_headers: &str,
    body: &str,
) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n{extra_headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
}

/// A complete request for `alice` from `from`.
pub fn complete_request(from: &str, message_id: &str) -> String {
    mail(
        from,
        "support@pypi.example",
        "Lost my 2FA device",
        message_id,
        "",
        "Username: alice\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n",
    )
}
