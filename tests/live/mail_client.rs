//! The staff loop with a real mail client on the real stack: the built
//! `recoverydesk run` reads its own support mailbox over IMAPS from the
//! loopback Dovecot and sends over SMTP (STARTTLS) through the loopback
//! Postfix; a requester writes over SMTP; the test fetches the staff
//! notification over IMAP and has **mutt** (Debian's package, installed by
//! `scripts/install-test-deps.sh`) reply to it as a member of staff would:
//! `<reply>` quotes the notification ("On …, … wrote:" and `> ` lines),
//! an editor script puts the staff text on top, and mutt hands the mail to
//! its `$sendmail`.
//!
//! That `$sendmail` is a small script standing in for the inbound MTA's
//! authentication stamp: it prepends
//! `Authentication-Results: mx.support.test; dmarc=pass header.from=support.test`
//! and pipes the mail into Postfix's own `sendmail -C <stack>/postfix/etc`,
//! so Postfix queues it, adds its `Received` header above the stamp and
//! delivers it over LMTP to Dovecot, which adds another. The number of
//! `Received` headers above the stamp is measured with a probe first and is
//! what the config's `trusted_received_hops` is set to.
//!
//! Needs root (the stack does); `RD_SKIP_MAILSTACK=1` skips with a reason.

use crate::daemon;
use crate::stack;
use daemon::{Daemon, BIN};
use stack::Stack;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use mail_parser::MessageParser;
use recoverydesk::secret::SecretSource;
use recoverydesk::transport::smtp::{self, SmtpSettings, SmtpTls};
use recoverydesk::transport::{OutgoingMessage, Transport};
use tokio::net::TcpStream;

/// The test's own support mailbox (a passwd-file line appended at start).
const SUPPORT_USER: &str = "suppm";
pub(crate) const SUPPORT: &str = "suppm@support.test";
pub(crate) const STAFF: &str = "staff@support.test";
/// The requester's mail lands in this existing stack user's INBOX
/// (`carol+tag@…`); every test message carries a unique tag.
pub(crate) const REQUESTER_USER: &str = "carol";
pub(crate) const STAMP: &str =
    "Authentication-Results: mx.support.test; dmarc=pass header.from=support.test";
const DEADLINE: Duration = Duration::from_secs(30);

/// The support mailbox is shared by the tests that run a daemon on it
/// (this module's and `conversation_replay`): one at a time, or one
/// empties the other's mail.
pub(crate) static SUPPORT_MAILBOX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) fn stack() -> Option<Stack> {
    if stack::skipped() {
        return None;
    }
    Some(stack::up().stack())
}

/// Appends the support user's passwd-file line when it is missing (Dovecot
/// re-reads the file; `mailstack.sh up` rewrites it to its own list, so
/// this runs again before every login of that user).
fn ensure_support_user(stack: &Stack) {
    let path = stack.dir.join("users.passwd");
    let text = std::fs::read_to_string(&path).expect("read users.passwd");
    let prefix = format!("{SUPPORT_USER}:");
    if text.lines().any(|l| l.starts_with(&prefix)) {
        return;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open users.passwd");
    let sep = if text.ends_with('\n') || text.is_empty() {
        ""
    } else {
        "\n"
    };
    writeln!(file, "{sep}{SUPPORT_USER}:{{PLAIN}}password::::::").expect("append users.passwd");
}

pub(crate) fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{}", std::process::id(), nanos % 1_000_000_000)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

async fn login(stack: &Stack, user: &str) -> async_imap::Session<TcpStream> {
    // Dovecot re-reads the passwd-file at most once a second, so a line
    // appended just now may not count yet: retry for the support user.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if user == SUPPORT_USER {
            ensure_support_user(stack);
        }
        match stack::imap_login(stack.imap_port, user).await {
            Ok(session) => return session,
            Err(e) if user == SUPPORT_USER && Instant::now() < deadline => {
                eprintln!("imap login {user}: {e}; retrying (passwd-file re-read)");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("imap login {user}: {e}"),
        }
    }
}

/// The messages in `user`'s INBOX that match an IMAP SEARCH, raw
/// (BODY.PEEK: flags untouched). Searching on the server keeps the polls
/// cheap however much earlier runs left in the shared test mailboxes.
pub(crate) async fn inbox(stack: &Stack, user: &str, search: &str) -> Vec<Vec<u8>> {
    let mut session = login(stack, user).await;
    session.select("INBOX").await.expect("select INBOX");
    let mut uids: Vec<u32> = session
        .uid_search(search)
        .await
        .unwrap_or_else(|e| panic!("UID SEARCH {search}: {e}"))
        .into_iter()
        .collect();
    uids.sort_unstable();
    let mut out = Vec::new();
    if !uids.is_empty() {
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let fetches: Vec<_> = session
            .uid_fetch(set.join(","), "(UID BODY.PEEK[])")
            .await
            .expect("uid fetch")
            .try_collect()
            .await
            .expect("uid fetch");
        let mut fetches: Vec<_> = fetches.iter().collect();
        fetches.sort_by_key(|f| f.uid);
        out = fetches
            .iter()
            .filter_map(|f| f.body().map(<[u8]>::to_vec))
            .collect();
    }
    let _ = session.logout().await;
    out
}

/// Polls `user`'s INBOX until `pred` picks messages among those matching
/// `search`, or the deadline.
pub(crate) async fn wait_for_mail(
    stack: &Stack,
    user: &str,
    search: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found: Vec<String> = inbox(stack, user, search)
            .await
            .into_iter()
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .filter(|raw| pred(raw))
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in {user}'s INBOX after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Empties the support mailbox: mail left by an earlier run would become
/// cases of this run (the store is new each time).
pub(crate) async fn empty_support_inbox(stack: &Stack) {
    let mut session = login(stack, SUPPORT_USER).await;
    let mailbox = session.select("INBOX").await.expect("select INBOX");
    if mailbox.exists > 0 {
        let _: Vec<_> = session
            .uid_store("1:*", "+FLAGS (\\Deleted)")
            .await
            .expect("store \\Deleted")
            .try_collect()
            .await
            .expect("store \\Deleted");
        let _: Vec<_> = session
            .expunge()
            .await
            .expect("expunge")
            .try_collect()
            .await
            .expect("expunge");
    }
    let _ = session.logout().await;
}

/// The header block of a raw message as (lower-cased name, value), in order.
pub(crate) fn headers(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

pub(crate) fn header(raw: &str, name: &str) -> Option<String> {
    headers(raw)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

pub(crate) fn text_of(raw: &str) -> String {
    let parsed = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("mail parses");
    parsed
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default()
}

fn from_address(raw: &str) -> String {
    let parsed = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("mail parses");
    parsed
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Message-IDs named in a header, without brackets.
pub(crate) fn ids(value: &str) -> Vec<String> {
    value
        .split('<')
        .skip(1)
        .filter_map(|p| p.split_once('>').map(|(id, _)| id.trim().to_string()))
        .collect()
}

/// Starts the daemon and waits until it is logged in to IMAP (it logs
/// "imap connected") and its metrics endpoint answers. Another test binary's
/// `mailstack.sh up` may have rewritten the passwd-file just then, without
/// the support user's line: then the line goes back and the daemon is
/// started again, a few times at most.
pub(crate) fn start_logged_in(stack: &Stack, config: &Path, dir: &Path, port: u16) -> Daemon {
    for attempt in 1..=3 {
        ensure_support_user(stack);
        let mut daemon = Daemon::start(config, &[], dir.join(format!("daemon-{attempt}.stderr")));
        let deadline = Instant::now() + DEADLINE;
        loop {
            if daemon.log().contains("imap connected")
                && StdTcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let log = daemon.log();
                assert!(
                    attempt < 3 && log.to_ascii_lowercase().contains("auth"),
                    "recoverydesk run exited ({status}) before it was ready:\n{log}"
                );
                eprintln!("the daemon could not log in (attempt {attempt}); again:\n{log}");
                std::thread::sleep(Duration::from_millis(1100));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "recoverydesk run not ready within {DEADLINE:?}:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    unreachable!("the loop returns or panics")
}

fn scrape(port: u16) -> String {
    let mut stream = StdTcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until the daemon has ingested `n` human messages.
pub(crate) async fn wait_ingested(daemon: &mut Daemon, port: u16, n: f64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        daemon.assert_running();
        let text = scrape(port);
        let got = metric(
            &text,
            "recoverydesk_messages_ingested_total{kind=\"human\"}",
        );
        if got.is_some_and(|g| g >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not ingest {n} human message(s) in {DEADLINE:?}: {got:?}\n{text}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// mutt, set up as a member of staff would have it, in a folder of its own.
pub(crate) struct Mutt {
    dir: PathBuf,
    /// What the `$sendmail` hook handed to Postfix, one file per mail.
    spool: PathBuf,
}

impl Mutt {
    pub(crate) fn new(dir: &Path, stack: &Stack) -> Mutt {
        let dir = dir.join("mutt");
        let spool = dir.join("handed-to-postfix");
        std::fs::create_dir_all(&spool).unwrap();
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join("notification").join(sub)).unwrap();
        }
        // The editor: the staff text goes on top of what mutt prepared (the
        // attribution line and the quoted notification).
        write_script(
            &dir.join("editor.sh"),
            &format!(
                "#!/bin/sh\nset -e\ncat '{reply}' \"$1\" > \"$1.new\"\nmv \"$1.new\" \"$1\"\n",
                reply = dir.join("reply.txt").display()
            ),
        );
        // $sendmail: stands in for the trusted inbound MTA's stamp, then
        // hands the mail to Postfix's own sendmail (queue → cleanup →
        // LMTP to Dovecot). A copy of what was handed over is kept.
        write_script(
            &dir.join("sendmail.sh"),
            &format!(
                "#!/bin/sh\nset -e\nout=\"{spool}/$(date +%s%N).eml\"\n\
                 {{ printf '%s\\n' '{STAMP}'; cat; }} > \"$out.part\"\n\
                 /usr/sbin/sendmail -C '{etc}' -i \"$@\" < \"$out.part\"\n\
                 mv \"$out.part\" \"$out\"\n",
                spool = spool.display(),
                etc = stack.dir.join("postfix/etc").display()
            ),
        );
        let muttrc = format!(
            r#"set from="Sam Staff <{STAFF}>"
set use_from=yes
set envelope_from=yes
set hostname=support.test
set sendmail="{dir}/sendmail.sh"
set sendmail_wait=0
set editor="{dir}/editor.sh"
set include=yes
set reply_to=yes
set fast_reply=yes
set abort_unmodified=yes
set askcc=no
set askbcc=no
set record=""
set copy=no
set move=no
set postpone=no
set folder="{dir}"
set spoolfile="{dir}/notification"
set mbox="{dir}/mbox"
set postponed="{dir}/postponed"
set charset=utf-8
set send_charset="us-ascii:utf-8"
set sleep_time=0
set wait_key=no
set beep=no
set quit=yes
set mail_check=0
push <reply><send-message><quit>
"#,
            dir = dir.display()
        );
        std::fs::write(dir.join("muttrc"), muttrc).unwrap();
        Mutt { dir, spool }
    }

    /// The notification becomes the one message in mutt's folder.
    pub(crate) fn load(&self, raw: &str) {
        let cur = self.dir.join("notification/cur");
        for entry in std::fs::read_dir(&cur).unwrap().flatten() {
            std::fs::remove_file(entry.path()).unwrap();
        }
        std::fs::write(cur.join("1.notification:2,S"), raw.replace("\r\n", "\n")).unwrap();
    }

    /// Replies to the loaded notification with `text` on top; returns what
    /// the `$sendmail` hook handed to Postfix.
    pub(crate) fn reply(&self, text: &str) -> String {
        std::fs::write(self.dir.join("reply.txt"), text).unwrap();
        let before = self.handed_over();
        // mutt's index needs a terminal: script(1) gives it a pty; every
        // key comes from the `push` line in the muttrc.
        let command = format!(
            "mutt -n -R -F '{dir}/muttrc' -f '{dir}/notification'",
            dir = self.dir.display()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("TERM", "xterm")
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("LINES", "50")
            .env("COLUMNS", "132")
            .env("HOME", &self.dir)
            .env_remove("MAIL")
            .env_remove("MUTT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script(1) with mutt");
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for mutt") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mutt did not finish within {DEADLINE:?} (a prompt it was not told about?)");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        assert!(status.success(), "mutt failed ({status}): {stderr}");
        let after = self.handed_over();
        let new: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
        assert_eq!(
            new.len(),
            1,
            "mutt handed exactly one mail to its $sendmail: {new:?}"
        );
        std::fs::read_to_string(new[0]).unwrap()
    }

    fn handed_over(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.spool)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
    }
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Sends a probe through the same `$sendmail` hook and counts the
/// `Received` headers that Postfix and Dovecot put above the stamp.
pub(crate) async fn measure_received_hops(stack: &Stack, mutt: &Mutt) -> usize {
    let tag = unique("hops");
    let probe = format!(
        "From: Sam Staff <{STAFF}>\nTo: staff+{tag}@support.test\nSubject: probe {tag}\n\
         Message-ID: <{tag}@support.test>\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n\n\
         Counting Received headers.\n"
    );
    let mut child = Command::new(mutt.dir.join("sendmail.sh"))
        .args(["-f", STAFF, "--", &format!("staff+{tag}@support.test")])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run the sendmail hook");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(probe.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "the sendmail hook failed");
    let raw = wait_for_mail(
        stack,
        "staff",
        &format!("SUBJECT \"probe {tag}\""),
        "hops probe",
        |raw| raw.contains(&tag),
    )
    .await
    .remove(0);
    let hops = headers(&raw)
        .iter()
        .take_while(|(name, _)| name != "authentication-results")
        .filter(|(name, _)| name == "received")
        .count();
    assert!(
        headers(&raw)
            .iter()
            .any(|(n, v)| n == "authentication-results" && v.starts_with("mx.support.test;")),
        "the stamp arrives: {raw}"
    );
    hops
}

pub(crate) fn config(
    stack: &Stack,
    dir: &Path,
    hops: usize,
    metrics_port: u16,
    username: &str,
) -> PathBuf {
    std::fs::write(
        dir.join("secret.key"),
        unique("mail-client-test-key-0123456789-"),
    )
    .unwrap();
    std::fs::write(dir.join("imap.pass"), "password\n").unwrap();
    std::fs::write(
        dir.join("accounts.toml"),
        format!(
            "[[account]]\nusername = \"{username}\"\n\
             addresses = [{{ address = \"{username}-linked@linked.example\", verified = true, primary = true }}]\n"
        ),
    )
    .unwrap();
    let text = format!(
        r#"
[instance]
id = "rd-mail-client-test"
support_address = "{SUPPORT}"
support_name = "Support Desk"
secret_key = {{ file = "secret.key" }}

[store]
path = "store"

[source]
kind = "imap"
poll_interval = "1s"

[source.imap]
host = "127.0.0.1"
port = {imaps}
tls = "implicit"
ca_file = "{ca}"
username = "{SUPPORT_USER}"
password = {{ file = "imap.pass" }}
mailbox = "INBOX"
idle = true

[transport]
kind = "smtp"

[transport.smtp]
host = "127.0.0.1"
port = {smtp}
tls = "starttls"
ca_file = "{ca}"
timeout = "20s"

[directory]
kind = "file"
path = "accounts.toml"

[staff]
addresses = ["{STAFF}"]
notify = ["{STAFF}"]
trusted_authserv_ids = ["mx.support.test"]
trusted_received_hops = {hops}

[policy]
waiting_period = "0s"

[metrics]
listen = "127.0.0.1:{metrics_port}"
"#,
        imaps = stack.imaps_port,
        smtp = stack.smtp_port,
        ca = stack.ca_file.display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) async fn send_request(
    stack: &Stack,
    from: &str,
    subject: &str,
    message_id: &str,
    body: &str,
) {
    let raw = format!(
        "From: Pat Requester <{from}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    );
    send_raw(stack, from, message_id, raw).await;
}

/// Hands a whole message from `from` to Postfix for the support address.
pub(crate) async fn send_raw(stack: &Stack, from: &str, message_id: &str, raw: String) {
    let transport = smtp::build(
        &SmtpSettings {
            host: "127.0.0.1".into(),
            port: stack.smtp_port,
            tls: SmtpTls::Plain,
            allow_plaintext: true,
            ca_file: None,
            tls_server_name: None,
            username: None,
            password: None::<SecretSource>,
            timeout: Duration::from_secs(10),
            connections: 1,
        },
        Path::new("."),
    )
    .expect("build smtp");
    transport
        .send(&OutgoingMessage {
            message_id: message_id.into(),
            envelope_from: from.into(),
            envelope_to: vec![SUPPORT.into()],
            bytes: raw.into_bytes(),
        })
        .await
        .expect("the mail is accepted by Postfix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_reply_written_in_mutt_reaches_the_requester_threaded_without_the_quote_and_a_note_does_not(
) {
    let _gate = crate::stack::GATE.read().await;
    let _mailbox = SUPPORT_MAILBOX.lock().await;
    let Some(stack) = stack() else { return };
    assert!(
        Command::new("sh")
            .args(["-c", "command -v mutt && command -v script"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "mutt and script(1) are needed: run scripts/install-test-deps.sh (scripts/test does)"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let mutt = Mutt::new(work.path(), &stack);

    let hops = measure_received_hops(&stack, &mutt).await;
    eprintln!("Received headers above the stamp (Postfix + Dovecot LMTP): {hops}");
    assert!(
        hops >= 1,
        "the stamp must sit below the MTA's own Received header"
    );

    empty_support_inbox(&stack).await;
    let tag = unique("pm");
    let username = format!("mutt{}", &tag[2..]).replace('x', "y");
    let metrics_port = free_port();
    let config = config(&stack, work.path(), hops, metrics_port, &username);
    let mut daemon = start_logged_in(&stack, &config, work.path(), metrics_port);

    // The requester writes to support over SMTP.
    let requester = format!("{REQUESTER_USER}+{tag}@example.org");
    let request_id = format!("{tag}.request@example.org");
    send_request(
        &stack,
        &requester,
        &format!("Lost my 2FA device ({tag})"),
        &request_id,
        &format!(
            "Hello,\r\n\r\nUsername: {username}\r\nI lost my phone with the authenticator app and my recovery codes.\r\n\
             I still have access to the email address on the account.\r\n\
             I agree to the Code of Conduct and understand this may take a while.\r\n\r\nPat\r\n"
        ),
    )
    .await;

    // The acknowledgement names the case; staff get a notification for it.
    let to_requester =
        |raw: &str| header(raw, "to").is_some_and(|t| t.to_ascii_lowercase().contains(&requester));
    let requester_search = format!("TO \"{requester}\"");
    let ack = wait_for_mail(
        &stack,
        REQUESTER_USER,
        &requester_search,
        "acknowledgement",
        |raw| to_requester(raw) && header(raw, "x-recoverydesk-case").is_some(),
    )
    .await
    .remove(0);
    let case_id = header(&ack, "x-recoverydesk-case").unwrap();
    let ack_id = ids(&header(&ack, "message-id").unwrap()).remove(0);
    let notification_search = format!("HEADER X-Recoverydesk-Case \"{case_id}\"");
    let notification = wait_for_mail(
        &stack,
        "staff",
        &notification_search,
        "staff notification",
        |raw| header(raw, "x-recoverydesk-case").as_deref() == Some(case_id.as_str()),
    )
    .await
    .remove(0);
    let notification_text = text_of(&notification);
    assert!(notification_text.contains(&case_id), "{notification_text}");
    let case_address = header(&notification, "reply-to").expect("the notification has a Reply-To");
    assert!(
        case_address.contains(&format!("{SUPPORT_USER}+")),
        "Reply-To is the case's reply address: {case_address}"
    );
    wait_ingested(&mut daemon, metrics_port, 1.0).await;

    // 1. A /note from mutt: recorded, never relayed.
    mutt.load(&notification);
    let note_marker = format!("INTERNAL-{tag}");
    let note = mutt.reply(&format!(
        "/note checked the account history, looks genuine {note_marker}\n\n"
    ));
    assert!(note.starts_with(STAMP), "{note}");
    assert!(
        note.contains("wrote:") && note.contains("\n> "),
        "mutt quoted the notification: {note}"
    );
    wait_ingested(&mut daemon, metrics_port, 2.0).await;

    // 2. A plain reply from mutt: relayed.
    let relay_marker = format!("RELAY-{tag}");
    let staff_text = format!(
        "Hello Pat,\n\nthanks for the details. We have checked your request and will \
         reset the second factor today ({relay_marker}).\n\nSam\n\n"
    );
    let sent = mutt.reply(&staff_text);
    let sent_headers = headers(&sent);
    assert_eq!(
        sent_headers.first().map(|(n, _)| n.as_str()),
        Some("authentication-results")
    );
    let sent_to = header(&sent, "to").unwrap_or_default();
    assert!(
        sent_to.contains(&case_address),
        "mutt replied to the Reply-To: {sent_to} vs {case_address}"
    );
    let notification_id = ids(&header(&notification, "message-id").unwrap()).remove(0);
    assert_eq!(
        header(&sent, "in-reply-to").map(|v| ids(&v)),
        Some(vec![notification_id.clone()]),
        "mutt threads its reply under the notification"
    );
    let sent_text = text_of(&sent);
    assert!(
        sent_text.contains("wrote:")
            && sent_text
                .lines()
                .any(|l| l.starts_with("> ") && l.contains(&case_id)),
        "mutt quotes the notification, case id included: {sent_text}"
    );

    let relay = wait_for_mail(
        &stack,
        REQUESTER_USER,
        &requester_search,
        "relayed staff reply",
        |raw| to_requester(raw) && raw.contains(&relay_marker),
    )
    .await;
    assert_eq!(relay.len(), 1, "relayed once: {relay:?}");
    let relay = &relay[0];
    let text = text_of(relay);
    eprintln!("--- mutt handed to Postfix:\n{sent}\n--- the requester received:\n{relay}");
    assert!(
        text.contains("thanks for the details") && text.contains(&relay_marker),
        "the staff text is relayed: {text}"
    );
    assert!(
        !text.contains("wrote:") && !text.lines().any(|l| l.trim_start().starts_with('>')),
        "no quoted notification in the relay: {text}"
    );
    assert!(
        !relay.contains("wrote:") && !relay.contains(&note_marker),
        "no part of the relay (text or HTML) carries the quote or the note"
    );
    for line in notification_text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 30)
    {
        assert!(
            !text.contains(line),
            "a line of the staff notification reached the requester: {line:?}\n{text}"
        );
    }
    assert_eq!(
        from_address(relay),
        SUPPORT,
        "relayed from the support address"
    );
    let references = header(relay, "references")
        .map(|v| ids(&v))
        .unwrap_or_default();
    assert!(
        references.contains(&request_id),
        "References lead back to the request: {references:?}"
    );
    // What the requester has seen: their request and everything sent to them.
    let mut known = vec![request_id.clone(), ack_id.clone()];
    for raw in inbox(&stack, REQUESTER_USER, &requester_search).await {
        let raw = String::from_utf8_lossy(&raw);
        if to_requester(&raw) && !raw.contains(&relay_marker) {
            known.extend(
                header(&raw, "message-id")
                    .map(|v| ids(&v))
                    .unwrap_or_default(),
            );
        }
    }
    let in_reply_to = header(relay, "in-reply-to")
        .map(|v| ids(&v))
        .unwrap_or_default();
    assert!(
        in_reply_to.len() == 1 && known.contains(&in_reply_to[0]),
        "In-Reply-To names a message the requester has seen ({known:?}): {in_reply_to:?}"
    );
    assert!(
        !references.contains(&notification_id),
        "the staff notification is no part of the requester's thread: {references:?}"
    );
    assert!(
        header(relay, "subject").is_some_and(|s| s.contains(&case_id)),
        "the relay carries the case tag"
    );
    assert!(
        header(relay, "reply-to").is_some_and(|r| r.contains(&format!("{SUPPORT_USER}+"))),
        "answers from the requester go back to the case"
    );

    // The note, handled before the relay, reached nobody but the store.
    for raw in inbox(&stack, REQUESTER_USER, &requester_search).await {
        let raw = String::from_utf8_lossy(&raw);
        assert!(
            !raw.contains(&note_marker),
            "the /note reached the requester's mailbox:\n{raw}"
        );
    }
    daemon.assert_running();
    let metrics = scrape(metrics_port);
    assert_eq!(
        metric(
            &metrics,
            "recoverydesk_messages_ingested_total{kind=\"human\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "recoverydesk_replies_total{result=\"failed\"}"),
        Some(0.0),
        "{metrics}"
    );

    // Both replies counted as staff (not forged): the note is in the case
    // log as the staff member's, the relay too, and no flag was raised.
    let stopping = Instant::now();
    drop(daemon);
    eprintln!("daemon stopped in {:?}", stopping.elapsed());
    let export = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["cases", "export", "--json"])
        .env_remove("RECOVERYDESK_CONFIG")
        .output()
        .expect("cases export");
    assert!(export.status.success(), "cases export failed: {export:?}");
    let stdout = String::from_utf8_lossy(&export.stdout);
    let case: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|c| c["id"].as_str() == Some(case_id.as_str()))
        .unwrap_or_else(|| panic!("{case_id} in cases export: {stdout}"));
    let events: Vec<(String, String)> = case["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_string(),
                e["what"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|(actor, what)| actor.contains(STAFF) && what.contains(&note_marker)),
        "the note is logged as the staff member's: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(actor, what)| actor.contains(STAFF) && what.contains("relayed")),
        "the relay is logged as the staff member's: {events:?}"
    );
    let flags = case["flags"].to_string();
    assert!(!flags.contains("forged"), "no forged-staff flag: {flags}");
}
