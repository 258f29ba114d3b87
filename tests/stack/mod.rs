//! Shared by the tests that run against the project's loopback mail stack
//! (`scripts/mailstack.sh`): the skip switch, starting the stack, and the
//! ports and paths it wrote to `DIR/mailstack.env`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running stack: its folder and the values of its `mailstack.env`.
#[derive(Clone)]
pub struct MailStack {
    /// The stack's folder (`MAILSTACK_DIR`, default `/tmp/rd-mailstack`).
    pub dir: PathBuf,
    vars: HashMap<String, String>,
}

impl MailStack {
    /// A port from `mailstack.env`, e.g. `MAILSTACK_SMTP_PORT`.
    pub fn port(&self, key: &str) -> u16 {
        self.vars
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in mailstack.env"))
    }

    /// Any value from `mailstack.env`.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }
}

/// True (and says why) when this run has no mail stack.
pub fn skipped() -> bool {
    let skip = std::env::var("RD_SKIP_MAILSTACK").as_deref() == Ok("1");
    if skip {
        eprintln!("skipped: RD_SKIP_MAILSTACK=1 (no mail stack for this run)");
    }
    skip
}

/// The project's stack script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack.sh")
}

/// Starts the stack once per test process (the script is idempotent, but
/// two runs at once would race to start the same servers); a stack that
/// cannot start fails the test.
pub fn up() -> MailStack {
    static UP: std::sync::OnceLock<MailStack> = std::sync::OnceLock::new();
    UP.get_or_init(start).clone()
}

fn start() -> MailStack {
    let dir = PathBuf::from(
        std::env::var("MAILSTACK_DIR").unwrap_or_else(|_| "/tmp/rd-mailstack".to_string()),
    );
    let out = Command::new("bash")
        .arg(script())
        .arg("up")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/mailstack.sh");
    assert!(
        out.status.success(),
        "mailstack.sh up {} failed: {}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("mailstack.env")).expect("mailstack.env");
    let vars = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    MailStack { dir, vars }
}

/// A name no other test (or earlier run) has used: users, mailboxes, ids.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every test user's password in the stack's passwd-file.
pub const PASSWORD: &str = "password";

/// A plain IMAP session on loopback as `user` (for arranging or reading
/// mailboxes behind the worker's back); the error says what failed.
pub async fn imap_login(
    port: u16,
    user: &str,
) -> async_imap::error::Result<async_imap::Session<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut client = async_imap::Client::new(tcp);
    match client.read_response().await {
        Some(Ok(_)) => {}
        Some(Err(e)) => return Err(e.into()),
        None => {
            return Err(async_imap::error::Error::Io(std::io::Error::other(
                "no greeting",
            )))
        }
    }
    client.login(user, PASSWORD).await.map_err(|(e, _)| e)
}

/// What the tests use of a running stack: ports, files, and a folder of
/// password files (`good` holds the stack's password, `bad` does not) for
/// settings that read their password from a file.
pub struct Stack {
    /// The stack's folder.
    pub dir: PathBuf,
    /// SMTP with STARTTLS.
    pub smtp_port: u16,
    /// SMTP with implicit TLS.
    pub smtps_port: u16,
    /// IMAP (plain or STARTTLS).
    pub imap_port: u16,
    /// IMAP with implicit TLS.
    pub imaps_port: u16,
    /// The test CA that signed the servers' certificate.
    pub ca_file: PathBuf,
    /// Dovecot's passwd-file.
    pub users_file: PathBuf,
    /// The password files.
    pub secrets: tempfile::TempDir,
}

impl MailStack {
    /// The ports and files of this stack, with fresh password files.
    pub fn stack(&self) -> Stack {
        let secrets = tempfile::tempdir().expect("tempdir");
        std::fs::write(secrets.path().join("good"), format!("{PASSWORD}\n")).expect("write secret");
        std::fs::write(secrets.path().join("bad"), "not-the-password\n").expect("write secret");
        Stack {
            smtp_port: self.port("MAILSTACK_SMTP_PORT"),
            smtps_port: self.port("MAILSTACK_SMTPS_PORT"),
            imap_port: self.port("MAILSTACK_IMAP_PORT"),
            imaps_port: self.port("MAILSTACK_IMAPS_PORT"),
            ca_file: PathBuf::from(self.var("MAILSTACK_CA_FILE").unwrap_or_default()),
            users_file: self
                .var("MAILSTACK_USERS_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| self.dir.join("users.passwd")),
            dir: self.dir.clone(),
            secrets,
        }
    }
}

/// Starts the stack once per test binary and keeps its [`Stack`]; `None`
/// means this run has no stack (the test returns at once).
pub fn shared() -> Option<&'static Stack> {
    if skipped() {
        return None;
    }
    static STACK: std::sync::OnceLock<Stack> = std::sync::OnceLock::new();
    Some(STACK.get_or_init(|| up().stack()))
}

/// The one gate of the live test binary: tests that stop or restart Postfix
/// or Dovecot take the write side, every other test that uses the stack
/// holds the read side, so no restart lands in the middle of another test.
pub static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
