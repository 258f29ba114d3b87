//! The built `recoverydesk` binary against the real mail stack (Postfix and
//! Dovecot on loopback, started by `scripts/mailstack.sh up $MAILSTACK_DIR`).
//!
//! Every test writes a config into a temp folder (IMAP source, SMTP
//! transport to Postfix, a file account directory) and runs `recoverydesk
//! run` or `once` as a child process. Requesters send over SMTP and read
//! their acknowledgements over IMAP, as people do.
//!
//! Isolation: each test has mailbox users of its own (a support user and
//! requesters), named uniquely per run and appended to the stack's
//! passwd-file. `mailstack.sh` rewrites that file on `up`, `start-*` and
//! `restart-*`, so a guard thread puts the lines back within milliseconds
//! (Dovecot re-reads the file on its own). The two tests that stop a daemon
//! take the write side of `GATE`; all others take the read side.
//!
//! `RD_SKIP_MAILSTACK=1` skips these tests (they say so); otherwise a stack
//! that fails to start fails them.

use crate::stack;
use stack::Stack;
use stack::{script, unique};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::net::TcpStream;

use crate::stack::GATE;

/// How long any single expected event may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);
/// After a Dovecot restart the worker first waits out its backoff.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(45);
use stack::PASSWORD;

/// Starts the stack once per test binary; `None` means skip.
fn stack() -> Option<&'static Stack> {
    if stack::skipped() {
        return None;
    }
    static STACK: OnceLock<Stack> = OnceLock::new();
    Some(STACK.get_or_init(start_stack))
}

fn start_stack() -> Stack {
    let stack = stack::up().stack();
    start_user_guard(stack.users_file.clone());
    stack
}

// ------------------------------------------------------------------ users

fn registered() -> &'static Mutex<Vec<String>> {
    static USERS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    USERS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Appends the passwd-file lines of registered users that are missing.
fn restore_users(file: &Path) {
    let users = registered().lock().expect("users lock").clone();
    if users.is_empty() {
        return;
    }
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let present: Vec<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
    let missing: String = users
        .iter()
        .filter(|u| !present.contains(&u.as_str()))
        .map(|u| format!("{u}:{{PLAIN}}{PASSWORD}::::::\n"))
        .collect();
    if missing.is_empty() {
        return;
    }
    // A file that does not end in a newline would glue our line to its last.
    let lead = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(file) {
        let _ = f.write_all(format!("{lead}{missing}").as_bytes());
    }
}

/// `mailstack.sh` rewrites the passwd-file to its default users whenever it
/// configures; this thread puts ours back at once.
fn start_user_guard(file: PathBuf) {
    std::thread::spawn(move || loop {
        restore_users(&file);
        std::thread::sleep(Duration::from_millis(20));
    });
}

/// Waits until `user` can log in. Dovecot re-reads the passwd-file at most
/// once a second, so a line appended (or put back) in the second of its
/// last read is not seen until the next one.
async fn wait_login(stack: &Stack, user: &str) {
    let until = Instant::now() + DEADLINE;
    loop {
        match stack::imap_login(stack.imap_port, user).await {
            Ok(mut s) => {
                let _ = s.logout().await;
                return;
            }
            Err(e) if Instant::now() > until => panic!("{user} cannot log in: {e}"),
            Err(_) => {
                restore_users(&stack.users_file);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A mailbox user of this run: unique, registered and able to log in.
async fn new_user(stack: &Stack, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!(
        "rs-{tag}-{}-{}-{}",
        std::process::id(),
        secs % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    );
    registered().lock().expect("users lock").push(name.clone());
    restore_users(&stack.users_file);
    wait_login(stack, &name).await;
    name
}

/// Runs a mailstack.sh command (stop/start a daemon); the guard restores
/// the users the script's `configure` drops.
fn mailstack(stack: &Stack, command: &str) {
    let out = Command::new("bash")
        .arg(script())
        .arg(command)
        .arg(&stack.dir)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/mailstack.sh");
    restore_users(&stack.users_file);
    assert!(
        out.status.success(),
        "mailstack.sh {command} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts Postfix again when dropped, so a failing test leaves it running.
struct PostfixBack<'a>(&'a Stack);

impl Drop for PostfixBack<'_> {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("start-postfix")
            .arg(&self.0.dir)
            .stdin(Stdio::null())
            .output();
        restore_users(&self.0.users_file);
    }
}

/// Starts Dovecot again when dropped, so a failing test leaves it running.
struct DovecotBack<'a>(&'a Stack);

impl Drop for DovecotBack<'_> {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("start-dovecot")
            .arg(&self.0.dir)
            .stdin(Stdio::null())
            .output();
        restore_users(&self.0.users_file);
    }
}

/// The two counts of `once`'s summary line: cases with due timers, sent.
fn timers_and_sent(out: &Output) -> (usize, usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let number_before = |word: &str| -> usize {
        let at = stdout
            .find(word)
            .unwrap_or_else(|| panic!("no {word:?} in {stdout}"));
        stdout[..at]
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count before {word:?} in {stdout}"))
    };
    let sent = stdout
        .split("sent ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sent count in {stdout}"));
    (number_before("case(s) with due timers"), sent)
}

// ------------------------------------------------------------------- mail

/// A realistic complete request from `from_user@example.test`.
fn request(from_user: &str, to: &str, message_id: &str, username: &str) -> Vec<u8> {
    let date = chrono::Utc::now().to_rfc2822();
    format!(
        "From: Requester {from_user} <{from_user}@example.test>\r\n\
         To: {to}\r\n\
         Subject: Lost my 2FA device for {username}\r\n\
         Message-ID: <{message_id}>\r\n\
         Date: {date}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\n\
         Username: {username}\r\n\
         I lost my phone with the authenticator app and my recovery codes\r\n\
         were on it too.\r\n\
         I still have access to the email address on the account.\r\n\
         I agree to the Code of Conduct and understand this may take a while.\r\n\r\n\
         Thanks\r\n"
    )
    .into_bytes()
}

/// Sends raw mail over SMTP, retrying while Postfix is briefly away (another
/// test binary may restart it).
async fn smtp_send(stack: &Stack, from: &str, to: &str, raw: &[u8]) {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(stack.smtp_port)
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let envelope = Envelope::new(
        Some(from.parse::<Address>().expect("from address")),
        vec![to.parse::<Address>().expect("to address")],
    )
    .expect("envelope");
    let deadline = Instant::now() + DEADLINE;
    loop {
        match transport.send_raw(&envelope, raw).await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("smtp send to {to} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("smtp send to {to}: {e}"),
        }
    }
}

/// One message of a mailbox, as another client sees it.
#[derive(Debug, Clone)]
struct Seen {
    message_id: String,
    in_reply_to: String,
    subject: String,
    from: String,
    flags: Vec<String>,
    /// The first line of the text body: what the mail is about, since
    /// every reply of a case shares one subject.
    first_line: String,
}

type Session = async_imap::Session<TcpStream>;

/// A session as `user`, retried while the server or the user's passwd line
/// is briefly missing.
async fn session(stack: &Stack, user: &str) -> Session {
    let deadline = Instant::now() + RECONNECT_DEADLINE;
    loop {
        match stack::imap_login(stack.imap_port, user).await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("imap login {user} failed, retrying: {e}");
                restore_users(&stack.users_file);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("imap login {user}: {e}"),
        }
    }
}

async fn list_once(
    stack: &Stack,
    user: &str,
    mailbox: &str,
) -> async_imap::error::Result<Vec<Seen>> {
    let mut s = stack::imap_login(stack.imap_port, user).await?;
    s.select(mailbox).await?;
    let fetches: Vec<_> = s
        .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[])")
        .await?
        .try_collect()
        .await?;
    let _ = s.logout().await;
    let mut out = Vec::new();
    for f in &fetches {
        let Some(raw) = f.body() else { continue };
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let first_line = parsed
            .as_ref()
            .and_then(|p| p.body_text(0))
            .and_then(|t| {
                t.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let flags = f
            .flags()
            .map(|flag| match flag {
                async_imap::types::Flag::Seen => "\\Seen".to_string(),
                async_imap::types::Flag::Custom(c) => c.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        let (message_id, in_reply_to, subject, from) = match &parsed {
            Some(p) => (
                p.message_id().unwrap_or("").to_string(),
                p.in_reply_to().as_text().unwrap_or("").to_string(),
                p.subject().unwrap_or("").to_string(),
                p.from()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or("")
                    .to_string(),
            ),
            None => Default::default(),
        };
        out.push(Seen {
            message_id,
            in_reply_to,
            subject,
            from,
            flags,
            first_line,
        });
    }
    Ok(out)
}

/// The mailbox's messages, once it satisfies `pred`; panics with what it
/// saw after `deadline`.
async fn wait_mailbox(
    stack: &Stack,
    user: &str,
    mailbox: &str,
    deadline: Duration,
    what: &str,
    pred: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    let until = Instant::now() + deadline;
    loop {
        let last: Result<Vec<Seen>, String> = match list_once(stack, user, mailbox).await {
            Ok(seen) if pred(&seen) => return seen,
            Ok(seen) => Ok(seen),
            Err(e) => {
                restore_users(&stack.users_file);
                Err(e.to_string())
            }
        };
        if Instant::now() > until {
            panic!(
                "{user}/{mailbox}: {what} not seen within {deadline:?}; last listing: {last:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Replies in `seen` threaded under `request_id`.
fn replies_to<'a>(seen: &'a [Seen], request_id: &str) -> Vec<&'a Seen> {
    seen.iter()
        .filter(|m| m.in_reply_to == request_id)
        .collect()
}

/// Waits until exactly the acknowledgement for `request_id` is in the
/// requester's INBOX, threaded under the request.
async fn wait_ack(stack: &Stack, requester: &str, request_id: &str, support: &str) -> Seen {
    let seen = wait_mailbox(
        stack,
        requester,
        "INBOX",
        DEADLINE,
        &format!("the reply to <{request_id}>"),
        |seen| !replies_to(seen, request_id).is_empty(),
    )
    .await;
    let acks = replies_to(&seen, request_id);
    assert_eq!(acks.len(), 1, "one reply to <{request_id}>: {acks:#?}");
    let ack = acks[0].clone();
    assert!(
        ack.from.starts_with(support),
        "the reply comes from the support address {support}: {ack:?}"
    );
    assert!(
        ack.subject.contains("[Case RD-"),
        "the reply names the case: {ack:?}"
    );
    ack
}

/// Sends a marker to `requester` and waits for it: Postfix has then
/// delivered what was queued before it, so counts taken afterwards are
/// final.
async fn barrier(stack: &Stack, requester: &str) -> Vec<Seen> {
    let id = format!("{}@example.test", unique("barrier"));
    let raw = format!(
        "From: barrier@example.test\r\nTo: {requester}@example.test\r\nSubject: barrier\r\n\
         Message-ID: <{id}>\r\n\r\nbarrier\r\n"
    );
    smtp_send(
        stack,
        "barrier@example.test",
        &format!("{requester}@example.test"),
        raw.as_bytes(),
    )
    .await;
    wait_mailbox(stack, requester, "INBOX", DEADLINE, "the barrier", |seen| {
        seen.iter().any(|m| m.message_id == id)
    })
    .await
}

// ------------------------------------------------------------------- desk

/// How the worker under test is configured.
struct Opts<'a> {
    support: &'a str,
    password: &'a str,
    mailbox: &'a str,
    starttls: bool,
    idle: bool,
    poll: &'a str,
}

impl<'a> Opts<'a> {
    fn new(support: &'a str) -> Self {
        Opts {
            support,
            password: PASSWORD,
            mailbox: "INBOX",
            starttls: false,
            idle: true,
            // Long, so that a quick acknowledgement proves IDLE woke us.
            poll: "60s",
        }
    }
}

/// A recoverydesk installation in a temp folder.
struct Desk {
    dir: tempfile::TempDir,
    support: String,
}

impl Desk {
    fn new(stack: &Stack, opts: Opts<'_>) -> Desk {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        std::fs::write(
            path.join("secret.key"),
            format!("{}\n", unique("key-0123456789abcdef-0123456789")),
        )
        .expect("secret");
        std::fs::write(path.join("imap.pass"), format!("{}\n", opts.password)).expect("pass");
        std::fs::write(
            path.join("accounts.toml"),
            "# no accounts: replies look the same\n",
        )
        .expect("accounts");
        let (imap_tls, smtp_tls) = if opts.starttls {
            (
                format!(
                    "tls = \"starttls\"\nca_file = \"{}\"\ntls_server_name = \"localhost\"",
                    stack.ca_file.display()
                ),
                format!(
                    "tls = \"starttls\"\nca_file = \"{}\"\ntls_server_name = \"localhost\"",
                    stack.ca_file.display()
                ),
            )
        } else {
            (
                "tls = \"plain\"\nallow_plaintext = true".to_string(),
                "tls = \"plain\"\nallow_plaintext = true".to_string(),
            )
        };
        let config = format!(
            r#"
[instance]
id = "rd-real-{support}"
support_address = "{support}@support.test"
support_name = "Real Stack Support"
secret_key = {{ file = "secret.key" }}

[store]
path = "store"

[source]
kind = "imap"
batch_size = 100
poll_interval = "{poll}"

[source.imap]
host = "127.0.0.1"
port = {imap_port}
{imap_tls}
username = "{support}"
password = {{ file = "imap.pass" }}
mailbox = "{mailbox}"
processed_keyword = "$RecoverydeskDone"
idle = {idle}

[transport]
kind = "smtp"

[transport.smtp]
host = "127.0.0.1"
port = {smtp_port}
{smtp_tls}
timeout = "10s"

[directory]
kind = "file"
path = "accounts.toml"

[staff]
addresses = ["admin@staff.test"]
notify = []
trusted_authserv_ids = ["mx.staff.test"]

[policy]
waiting_period = "0s"
"#,
            support = opts.support,
            poll = opts.poll,
            imap_port = stack.imap_port,
            mailbox = opts.mailbox,
            idle = opts.idle,
            smtp_port = stack.smtp_port,
        );
        std::fs::write(path.join("config.toml"), config).expect("config");
        Desk {
            dir,
            support: format!("{}@support.test", opts.support),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recoverydesk"));
        cmd.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env_remove("RECOVERYDESK_NOW")
            .env_remove("RECOVERYDESK_CRASH_AFTER_COMMIT")
            .env_remove("RECOVERYDESK_CONFIG")
            .env_remove("RECOVERYDESK_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// `recoverydesk once`, optionally at a pinned time.
    fn once(&self, now: Option<i64>) -> Output {
        let mut cmd = self.command();
        cmd.arg("once");
        if let Some(now) = now {
            cmd.env("RECOVERYDESK_NOW", now.to_string());
        }
        cmd.output().expect("run recoverydesk once")
    }

    /// `recoverydesk run` in the background; its log goes to a file.
    fn spawn_run(&self) -> Running {
        let log = self.dir.path().join(format!("{}.log", unique("run")));
        let file = std::fs::File::create(&log).expect("log file");
        let child = self
            .command()
            .arg("run")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn recoverydesk run");
        Running {
            child: Some(child),
            log,
        }
    }

    /// `cases export --json`, one value per case.
    fn cases(&self) -> Vec<serde_json::Value> {
        let out = self
            .command()
            .args(["cases", "export", "--json"])
            .output()
            .expect("cases export");
        assert!(
            out.status.success(),
            "cases export: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON case"))
            .collect()
    }
}

/// A `recoverydesk run` child; killed if the test fails before `stop`.
struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("recoverydesk run exited early ({status}):\n{}", self.log());
            }
        }
    }

    /// SIGTERM, then the exit status (within the deadline).
    async fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {}", child.id());
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "recoverydesk run did not exit within {DEADLINE:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("recoverydesk run log:\n{}", self.log());
        }
    }
}

/// The acknowledgements recorded in the store for `request_id`'s case.
fn outgoing_to<'a>(cases: &'a [serde_json::Value], address: &str) -> Vec<&'a serde_json::Value> {
    cases
        .iter()
        .flat_map(|c| c["outgoing"].as_array().into_iter().flatten())
        .filter(|o| {
            o["to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t.as_str() == Some(address)))
        })
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends a request from `requester` to the desk; returns its Message-ID.
async fn send_request(stack: &Stack, desk: &Desk, requester: &str, username: &str) -> String {
    let id = format!("{}@example.test", unique("req"));
    let raw = request(requester, &desk.support, &id, username);
    smtp_send(
        stack,
        &format!("{requester}@example.test"),
        &desk.support,
        &raw,
    )
    .await;
    id
}

/// Appends a request straight into a mailbox (as a mail client would).
async fn append_request(session: &mut Session, mailbox: &str, flags: Option<&str>, raw: &[u8]) {
    session
        .append(mailbox, flags, None, raw)
        .await
        .expect("append");
}

fn flags_of<'a>(seen: &'a [Seen], message_id: &str) -> &'a [String] {
    seen.iter()
        .find(|m| m.message_id == message_id)
        .map(|m| m.flags.as_slice())
        .unwrap_or(&[])
}

fn is_done(seen: &[Seen], message_id: &str) -> bool {
    flags_of(seen, message_id)
        .iter()
        .any(|f| f == "$RecoverydeskDone")
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn run_with_idle_acknowledges_over_smtp_threaded_under_the_request() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let support = new_user(stack, "t1s").await;
    let requester_a = new_user(stack, "t1a").await;
    let requester_b = new_user(stack, "t1b").await;
    let desk = Desk::new(stack, Opts::new(&support));
    let mut run = desk.spawn_run();

    let first = send_request(stack, &desk, &requester_a, "quietfox41").await;
    wait_ack(stack, &requester_a, &first, &desk.support).await;
    run.assert_alive();
    // The worker now sits in IDLE with a 60 s poll interval: a quick
    // answer to the second request shows that IDLE woke it.
    let sent_at = Instant::now();
    let second = send_request(stack, &desk, &requester_b, "quietfox42").await;
    wait_ack(stack, &requester_b, &second, &desk.support).await;
    assert!(
        sent_at.elapsed() < Duration::from_secs(50),
        "answered after {:?}: IDLE did not wake the worker",
        sent_at.elapsed()
    );
    // Both requests are marked processed on the server.
    let inbox = wait_mailbox(stack, &support, "INBOX", DEADLINE, "both marked", |s| {
        is_done(s, &first) && is_done(s, &second)
    })
    .await;
    assert!(flags_of(&inbox, &first).iter().any(|f| f == "\\Seen"));

    let status = run.stop().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        run.log()
    );
    let cases = desk.cases();
    assert_eq!(cases.len(), 2, "two cases: {cases:#?}");
}

#[tokio::test]
async fn run_with_polling_over_starttls_acknowledges_threaded_under_the_request() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let support = new_user(stack, "t2s").await;
    let requester_a = new_user(stack, "t2a").await;
    let requester_b = new_user(stack, "t2b").await;
    let desk = Desk::new(
        stack,
        Opts {
            starttls: true,
            idle: false,
            poll: "1s",
            ..Opts::new(&support)
        },
    );
    let mut run = desk.spawn_run();
    let first = send_request(stack, &desk, &requester_a, "slowfox51").await;
    wait_ack(stack, &requester_a, &first, &desk.support).await;
    run.assert_alive();
    // Mail arriving after a pass is found by the next poll.
    let second = send_request(stack, &desk, &requester_b, "slowfox52").await;
    wait_ack(stack, &requester_b, &second, &desk.support).await;
    wait_mailbox(stack, &support, "INBOX", DEADLINE, "both marked", |s| {
        is_done(s, &first) && is_done(s, &second)
    })
    .await;
    let status = run.stop().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        run.log()
    );
    assert_eq!(desk.cases().len(), 2);
}

#[tokio::test]
async fn dovecot_restarted_mid_run_loses_nothing_and_doubles_nothing() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.write().await;
    let support = new_user(stack, "t3s").await;
    let requester_a = new_user(stack, "t3a").await;
    let requester_b = new_user(stack, "t3b").await;
    let desk = Desk::new(stack, Opts::new(&support));
    let mut run = desk.spawn_run();
    let before = send_request(stack, &desk, &requester_a, "restartfox1").await;
    wait_ack(stack, &requester_a, &before, &desk.support).await;

    let pid_file = stack.dir.join("run/dovecot/master.pid");
    let old_pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    mailstack(stack, "restart-dovecot");
    let new_pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    assert_ne!(old_pid.trim(), new_pid.trim(), "dovecot really restarted");

    let after = send_request(stack, &desk, &requester_b, "restartfox2").await;
    let seen = wait_mailbox(
        stack,
        &requester_b,
        "INBOX",
        RECONNECT_DEADLINE,
        "the reply after the restart",
        |s| !replies_to(s, &after).is_empty(),
    )
    .await;
    assert_eq!(replies_to(&seen, &after).len(), 1);
    // The old imap process may serve the old session for a while after its
    // master stopped; by now, or soon, the worker is on a new session.
    let until = Instant::now() + RECONNECT_DEADLINE;
    while run.log().matches("imap connected").count() < 2 {
        run.assert_alive();
        assert!(
            Instant::now() < until,
            "no reconnect after the restart:\n{}",
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let requester_c = new_user(stack, "t3c").await;
    let last = send_request(stack, &desk, &requester_c, "restartfox3").await;
    wait_ack(stack, &requester_c, &last, &desk.support).await;
    run.assert_alive();
    let status = run.stop().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        run.log()
    );

    let cases = desk.cases();
    assert_eq!(cases.len(), 3, "three cases, no repeats: {cases:#?}");
    for (requester, id) in [
        (&requester_a, &before),
        (&requester_b, &after),
        (&requester_c, &last),
    ] {
        let address = format!("{requester}@example.test");
        let queued = outgoing_to(&cases, &address);
        assert_eq!(
            queued.len(),
            1,
            "one reply queued to {address}: {queued:#?}"
        );
        assert_eq!(queued[0]["sent"], true);
        let seen = barrier(stack, requester).await;
        assert_eq!(
            replies_to(&seen, id).len(),
            1,
            "exactly one acknowledgement in {requester}'s mailbox: {seen:#?}"
        );
    }
}

#[tokio::test]
async fn postfix_stopped_keeps_the_reply_queued_and_delivers_it_once_after() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.write().await;
    let support = new_user(stack, "t4s").await;
    let requester = new_user(stack, "t4a").await;
    let desk = Desk::new(stack, Opts::new(&support));
    let id = send_request(stack, &desk, &requester, "queuedfox").await;
    wait_mailbox(stack, &support, "INBOX", DEADLINE, "the request", |s| {
        s.iter().any(|m| m.message_id == id)
    })
    .await;

    mailstack(stack, "stop-postfix");
    let back = PostfixBack(stack);
    let started = Instant::now();
    let first = desk.once(None);
    assert!(!first.status.success(), "{}", text(&first));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("stay queued"),
        "says the reply stays queued: {}",
        text(&first)
    );
    assert!(
        started.elapsed() < DEADLINE,
        "once took {:?}",
        started.elapsed()
    );
    // The request itself is stored and marked; only the reply waits.
    let inbox = list_once(stack, &support, "INBOX").await.expect("list");
    assert!(is_done(&inbox, &id), "request marked: {inbox:#?}");
    let cases = desk.cases();
    assert_eq!(cases.len(), 1);
    let address = format!("{requester}@example.test");
    let queued = outgoing_to(&cases, &address);
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0]["sent"], false, "not sent while postfix is down");

    mailstack(stack, "start-postfix");
    drop(back);
    // start-postfix rewrote the passwd-file; ours are back once they log in.
    wait_login(stack, &support).await;
    wait_login(stack, &requester).await;
    // Two minutes later (the outbox's backoff has passed), the next pass
    // delivers it.
    let later = now_secs() + 120;
    let second = desk.once(Some(later));
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("sent 1"),
        "{}",
        text(&second)
    );
    wait_ack(stack, &requester, &id, &desk.support).await;
    // And a further pass sends nothing again.
    let third = desk.once(Some(later + 600));
    assert!(third.status.success(), "{}", text(&third));
    assert!(
        String::from_utf8_lossy(&third.stdout).contains("sent 0"),
        "{}",
        text(&third)
    );
    let seen = barrier(stack, &requester).await;
    assert_eq!(replies_to(&seen, &id).len(), 1, "{seen:#?}");
    let cases = desk.cases();
    let queued = outgoing_to(&cases, &address);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["sent"], true);
}

#[tokio::test]
async fn dovecot_down_once_still_sends_replies_and_reminders() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.write().await;
    let support = new_user(stack, "t9s").await;
    let requester = new_user(stack, "t9a").await;
    let desk = Desk::new(stack, Opts::new(&support));
    let id = send_request(stack, &desk, &requester, "outagefox").await;
    wait_mailbox(stack, &support, "INBOX", DEADLINE, "the request", |s| {
        s.iter().any(|m| m.message_id == id)
    })
    .await;
    // Handled with Postfix down: the acknowledgement waits in the outbox.
    mailstack(stack, "stop-postfix");
    let postfix_back = PostfixBack(stack);
    let first = desk.once(None);
    assert!(!first.status.success(), "{}", text(&first));
    mailstack(stack, "start-postfix");
    drop(postfix_back);

    // Now the mailbox is down: the queued reply still goes out.
    mailstack(stack, "stop-dovecot");
    let dovecot_back = DovecotBack(stack);
    let second = desk.once(None);
    assert!(
        !second.status.success(),
        "reports the mailbox: {}",
        text(&second)
    );
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("could not be fetched"),
        "{}",
        text(&second)
    );
    let (_, sent) = timers_and_sent(&second);
    assert_eq!(sent, 1, "the acknowledgement went out: {}", text(&second));
    // A month later, still without the mailbox: the reminders are due and
    // go out too.
    let later = desk.once(Some(now_secs() + 30 * 86_400));
    let (timers, sent) = timers_and_sent(&later);
    assert!(timers >= 1, "timers ran: {}", text(&later));
    assert!(sent >= 1, "a reminder went out: {}", text(&later));

    mailstack(stack, "start-dovecot");
    drop(dovecot_back);
    wait_login(stack, &support).await;
    wait_login(stack, &requester).await;
    // Postfix held them while Dovecot was down and delivers them now: the
    // acknowledgement once, and what the timers sent.
    let seen = wait_mailbox(
        stack,
        &requester,
        "INBOX",
        RECONNECT_DEADLINE,
        "the acknowledgement and the reminder",
        |s| replies_to(s, &id).len() > sent,
    )
    .await;
    let acks = replies_to(&seen, &id)
        .into_iter()
        .filter(|m| {
            m.first_line
                .contains("We received your account recovery request")
        })
        .count();
    assert_eq!(acks, 1, "one acknowledgement: {seen:#?}");
    let seen = barrier(stack, &requester).await;
    assert_eq!(replies_to(&seen, &id).len(), 1 + sent, "{seen:#?}");
}

#[tokio::test]
async fn a_recreated_mailbox_with_the_same_messages_makes_no_new_cases_or_replies() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let support = new_user(stack, "t5s").await;
    let mut requesters = Vec::new();
    for i in 0..3 {
        requesters.push(new_user(stack, &format!("t5r{i}")).await);
    }
    let mailbox = "Requests";
    let desk = Desk::new(
        stack,
        Opts {
            mailbox,
            ..Opts::new(&support)
        },
    );
    let mut admin = session(stack, &support).await;
    admin.create(mailbox).await.expect("create");
    let mut raws = Vec::new();
    let mut ids = Vec::new();
    for (i, r) in requesters.iter().enumerate() {
        let id = format!("{}@example.test", unique("req"));
        let raw = request(r, &desk.support, &id, &format!("recreatefox{i}"));
        append_request(&mut admin, mailbox, None, &raw).await;
        raws.push(raw);
        ids.push(id);
    }
    let validity_before = admin.select(mailbox).await.expect("select").uid_validity;

    let out = desk.once(None);
    assert!(out.status.success(), "{}", text(&out));
    for (r, id) in requesters.iter().zip(&ids) {
        wait_ack(stack, r, id, &desk.support).await;
    }
    assert_eq!(desk.cases().len(), 3);

    // Another client deletes the folder and files the same mail again.
    admin.close().await.expect("close");
    admin.delete(mailbox).await.expect("delete");
    admin.create(mailbox).await.expect("recreate");
    for raw in &raws {
        append_request(&mut admin, mailbox, None, raw).await;
    }
    let validity_after = admin.select(mailbox).await.expect("select").uid_validity;
    assert_ne!(validity_before, validity_after, "a new UIDVALIDITY");
    let _ = admin.logout().await;

    let mut run = desk.spawn_run();
    // The rescan sees the repeats and marks them, without answering.
    wait_mailbox(
        stack,
        &support,
        mailbox,
        DEADLINE,
        "the repeats marked",
        |s| ids.iter().all(|id| is_done(s, id)),
    )
    .await;
    // New mail after the rescan is handled as usual.
    let newcomer = new_user(stack, "t5n").await;
    let (fresh, fresh_raw) =
        file_request(stack, &desk, &support, mailbox, &newcomer, "recreatefoxnew").await;
    wait_ack(stack, &newcomer, &fresh, &desk.support).await;
    raws.push(fresh_raw);
    ids.push(fresh.clone());

    // Recreated again, this time under the running worker: everything so
    // far plus one new request.
    let mut admin = session(stack, &support).await;
    admin.delete(mailbox).await.expect("delete");
    admin.create(mailbox).await.expect("recreate");
    for raw in &raws {
        append_request(&mut admin, mailbox, None, raw).await;
    }
    let _ = admin.logout().await;
    let latecomer = new_user(stack, "t5l").await;
    let (late, _) = file_request(
        stack,
        &desk,
        &support,
        mailbox,
        &latecomer,
        "recreatefoxlate",
    )
    .await;
    wait_ack(stack, &latecomer, &late, &desk.support).await;
    wait_mailbox(
        stack,
        &support,
        mailbox,
        DEADLINE,
        "everything marked",
        |s| ids.iter().chain([&late]).all(|id| is_done(s, id)),
    )
    .await;
    run.assert_alive();
    let status = run.stop().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        run.log()
    );

    let cases = desk.cases();
    assert_eq!(
        cases.len(),
        5,
        "three old cases and two new ones: {cases:#?}"
    );
    let everyone = requesters.iter().chain([&newcomer, &latecomer]);
    for (r, id) in everyone.zip(ids.iter().chain([&late])) {
        let address = format!("{r}@example.test");
        assert_eq!(
            outgoing_to(&cases, &address).len(),
            1,
            "one reply to {address}"
        );
        let seen = barrier(stack, r).await;
        assert_eq!(replies_to(&seen, id).len(), 1, "{seen:#?}");
    }
}

/// Files a new request straight into `mailbox` of `support`; returns its
/// Message-ID and bytes.
async fn file_request(
    stack: &Stack,
    desk: &Desk,
    support: &str,
    mailbox: &str,
    requester: &str,
    username: &str,
) -> (String, Vec<u8>) {
    let id = format!("{}@example.test", unique("req"));
    let raw = request(requester, &desk.support, &id, username);
    let mut s = session(stack, support).await;
    append_request(&mut s, mailbox, None, &raw).await;
    let _ = s.logout().await;
    (id, raw)
}

#[tokio::test]
async fn a_request_already_read_by_another_client_is_still_processed() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let support = new_user(stack, "t6s").await;
    let requester = new_user(stack, "t6a").await;
    let desk = Desk::new(stack, Opts::new(&support));
    let id = send_request(stack, &desk, &requester, "seenfox").await;
    wait_mailbox(stack, &support, "INBOX", DEADLINE, "the request", |s| {
        s.iter().any(|m| m.message_id == id)
    })
    .await;
    // A colleague opens it in their mail client first.
    let mut other = session(stack, &support).await;
    other.select("INBOX").await.expect("select");
    let _: Vec<_> = other
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await
        .expect("store")
        .try_collect()
        .await
        .expect("store");
    let _ = other.logout().await;
    let inbox = list_once(stack, &support, "INBOX").await.expect("list");
    assert!(flags_of(&inbox, &id).iter().any(|f| f == "\\Seen"));
    assert!(!is_done(&inbox, &id));

    let out = desk.once(None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("handled 1 message"),
        "{}",
        text(&out)
    );
    wait_ack(stack, &requester, &id, &desk.support).await;
    let inbox = list_once(stack, &support, "INBOX").await.expect("list");
    assert!(is_done(&inbox, &id), "marked processed: {inbox:#?}");
    assert_eq!(desk.cases().len(), 1);
}

#[tokio::test]
async fn a_wrong_password_fails_once_fast_naming_the_server_and_marks_nothing() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let support = new_user(stack, "t7s").await;
    let requester = new_user(stack, "t7a").await;
    let desk = Desk::new(
        stack,
        Opts {
            password: "not-the-password",
            ..Opts::new(&support)
        },
    );
    let id = send_request(stack, &desk, &requester, "lockedfox").await;
    wait_mailbox(stack, &support, "INBOX", DEADLINE, "the request", |s| {
        s.iter().any(|m| m.message_id == id)
    })
    .await;

    let started = Instant::now();
    let out = desk.once(None);
    let took = started.elapsed();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(took < Duration::from_secs(15), "failed after {took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let place = format!("127.0.0.1:{}", stack.imap_port);
    assert!(stderr.contains(&place), "names {place}: {}", text(&out));
    assert!(
        stderr.to_lowercase().contains("login") || stderr.to_lowercase().contains("password"),
        "says it is the login: {}",
        text(&out)
    );
    let inbox = list_once(stack, &support, "INBOX").await.expect("list");
    let flags = flags_of(&inbox, &id);
    assert!(flags.is_empty(), "nothing marked: {flags:?}");
    let seen = list_once(stack, &requester, "INBOX")
        .await
        .unwrap_or_default();
    assert!(replies_to(&seen, &id).is_empty(), "nothing sent");
}
