//! The IMAP source against a real Dovecot (and Postfix) on loopback,
//! started by `scripts/mailstack.sh up $MAILSTACK_DIR`.
//!
//! Each test works in a mailbox of its own (a fresh folder per test, or a
//! unique subject in INBOX), so the tests run in parallel. The one test
//! that restarts Dovecot takes the write side of `GATE`; all others take
//! the read side. Set `RD_SKIP_MAILSTACK=1` to skip them (they say so);
//! otherwise a stack that fails to start fails the tests.

use crate::stack;
use stack::unique;
use stack::{shared as stack, Stack};

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_imap::types::Flag;
use futures::TryStreamExt;
use recoverydesk::error::Error;
use recoverydesk::secret::SecretSource;
use recoverydesk::source::imap::{self, ImapAuth, ImapSettings, ImapSource, ImapTls};
use recoverydesk::source::{CursorReader, Fetched, Source};
use recoverydesk::transport::smtp::{self, SmtpSettings, SmtpTls};
use recoverydesk::transport::{OutgoingMessage, Transport};
use tokio::net::TcpStream;

use crate::stack::GATE;

/// Settings for implicit TLS on the IMAPS port with the test CA.
fn settings(stack: &Stack, user: &str, mailbox: &str) -> ImapSettings {
    ImapSettings {
        host: "127.0.0.1".into(),
        port: stack.imaps_port,
        tls: ImapTls::Implicit,
        allow_plaintext: false,
        ca_file: Some(stack.ca_file.clone()),
        tls_server_name: None,
        username: user.into(),
        password: SecretSource {
            env: None,
            file: Some("good".into()),
            credential: None,
        },
        auth: ImapAuth::Login,
        mailbox: mailbox.into(),
        processed_flag: "\\Seen".into(),
        processed_keyword: Some("$RecoverydeskDone".into()),
        move_to: None,
        secrets_move_to: None,
        batch_size: 100,
        idle: true,
        poll_interval: Duration::from_secs(1),
        max_message_bytes: 1024 * 1024,
        batch_bytes: 8 * 1024 * 1024,
        timeout: Duration::from_secs(30),
        read_only: false,
    }
}

/// A cursor store the test can commit to and read from.
#[derive(Clone, Default)]
struct Cursors(Arc<Mutex<HashMap<String, String>>>);

impl Cursors {
    fn reader(&self) -> CursorReader {
        let map = self.0.clone();
        Arc::new(move |key: &str| map.lock().ok()?.get(key).cloned())
    }

    fn commit(&self, fetched: &Fetched) {
        let cursor = fetched
            .cursor
            .clone()
            .expect("an IMAP message carries a cursor");
        self.0
            .lock()
            .expect("cursor lock")
            .insert(cursor.key, cursor.value);
    }
}

async fn open(stack: &Stack, settings: &ImapSettings, cursors: &Cursors) -> ImapSource {
    imap::connect(settings, stack.secrets.path(), cursors.reader())
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", settings.username))
}

/// A plain IMAP session for arranging mailboxes behind the source's back.
async fn admin(stack: &Stack, user: &str) -> async_imap::Session<TcpStream> {
    stack::imap_login(stack.imap_port, user)
        .await
        .unwrap_or_else(|e| panic!("admin login {user}: {e}"))
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Requester <requester@example.org>\r\nTo: support@mailstack.test\r\n\
         Subject: {subject}\r\nMessage-ID: <{}@example.org>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n",
        unique("m")
    )
    .into_bytes()
}

async fn append(
    session: &mut async_imap::Session<TcpStream>,
    mailbox: &str,
    flags: Option<&str>,
    raw: &[u8],
) {
    session
        .append(mailbox, flags, None, raw)
        .await
        .expect("append");
}

/// Fetches until `pred` holds for the collected messages, or 15 s pass.
async fn fetch_until(source: &mut ImapSource, pred: impl Fn(&[Fetched]) -> bool) -> Vec<Fetched> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut all = Vec::new();
    loop {
        all.extend(source.fetch_batch(50).await.expect("fetch_batch"));
        if pred(&all) || Instant::now() > deadline {
            return all;
        }
        source
            .wait_for_new(Duration::from_secs(2))
            .await
            .expect("wait_for_new");
    }
}

fn contains(fetched: &Fetched, needle: &str) -> bool {
    String::from_utf8_lossy(&fetched.raw).contains(needle)
}

async fn flags_of(session: &mut async_imap::Session<TcpStream>, mailbox: &str) -> Vec<Vec<String>> {
    session.select(mailbox).await.expect("select");
    let fetches: Vec<_> = session
        .uid_fetch("1:*", "(UID FLAGS)")
        .await
        .expect("fetch flags")
        .try_collect()
        .await
        .expect("fetch flags");
    fetches
        .iter()
        .map(|f| {
            f.flags()
                .map(|flag| match flag {
                    Flag::Seen => "\\Seen".to_string(),
                    Flag::Custom(c) => c.to_string(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn smtp_send_then_imap_fetch_returns_the_message_with_a_cursor_and_mark_done_flags_it() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let subject = unique("smtp-to-imap");
    let transport = smtp::build(
        &SmtpSettings {
            host: "127.0.0.1".into(),
            port: stack.smtp_port,
            tls: SmtpTls::Plain,
            allow_plaintext: true,
            ca_file: None,
            tls_server_name: None,
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
            connections: 1,
        },
        stack.secrets.path(),
    )
    .expect("build smtp");
    transport
        .send(&OutgoingMessage {
            message_id: unique("id"),
            envelope_from: "requester@example.org".into(),
            envelope_to: vec!["Alice+tag@mailstack.test".into()],
            bytes: message(&subject, "I lost my second factor."),
        })
        .await
        .expect("send");

    let cursors = Cursors::default();
    let mut source = open(stack, &settings(stack, "alice", "INBOX"), &cursors).await;
    let all = fetch_until(&mut source, |all| all.iter().any(|f| contains(f, &subject))).await;
    let mine = all
        .iter()
        .find(|f| contains(f, &subject))
        .expect("the sent message arrives over IMAP");
    assert!(contains(mine, "I lost my second factor."));
    assert_eq!(mine.oversize, None);
    let cursor = mine.cursor.clone().expect("cursor");
    assert_eq!(
        cursor.key,
        format!("imap:alice@127.0.0.1:{}/INBOX", stack.imaps_port)
    );
    let (validity, uid) = cursor.value.split_once(':').expect("value is v:uid");
    assert!(
        validity.parse::<u32>().is_ok() && uid.parse::<u32>().is_ok(),
        "{}",
        cursor.value
    );
    assert_eq!(mine.source_id, cursor.value);
    assert_eq!(source.describe(), cursor.key);

    source
        .mark_done(std::slice::from_ref(&mine.source_id))
        .await
        .expect("mark_done");
    let mut admin = admin(stack, "alice").await;
    admin.select("INBOX").await.expect("select");
    let fetches: Vec<_> = admin
        .uid_fetch(uid, "(UID FLAGS)")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("fetch");
    let flags: Vec<String> = fetches
        .iter()
        .flat_map(|f| {
            f.flags()
                .map(|flag| format!("{flag:?}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(flags.iter().any(|f| f.contains("Seen")), "{flags:?}");
    assert!(
        flags.iter().any(|f| f.contains("$RecoverydeskDone")),
        "{flags:?}"
    );
}

#[tokio::test]
async fn a_message_already_seen_by_another_client_is_still_fetched() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("seen");
    let mut admin = admin(stack, "bob").await;
    admin.create(&mailbox).await.expect("create");
    append(
        &mut admin,
        &mailbox,
        Some("(\\Seen)"),
        &message("read elsewhere", "hello"),
    )
    .await;

    let cursors = Cursors::default();
    let mut source = open(stack, &settings(stack, "bob", &mailbox), &cursors).await;
    let got = source.fetch_batch(10).await.expect("fetch");
    assert_eq!(got.len(), 1);
    assert!(contains(&got[0], "read elsewhere"));
    // Fetching used BODY.PEEK: we did not change anyone's flags either.
    assert_eq!(source.fetch_batch(10).await.expect("fetch").len(), 0);
}

#[tokio::test]
async fn fetch_after_reconnect_continues_from_the_committed_cursor() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("cursor");
    let mut admin = admin(stack, "carol").await;
    admin.create(&mailbox).await.expect("create");
    for n in 1..=3 {
        append(
            &mut admin,
            &mailbox,
            None,
            &message(&format!("number {n}"), "x"),
        )
        .await;
    }
    let cursors = Cursors::default();
    let settings = settings(stack, "carol", &mailbox);
    let mut first = open(stack, &settings, &cursors).await;
    let got = first.fetch_batch(2).await.expect("fetch");
    assert_eq!(got.len(), 2, "max is respected");
    assert!(contains(&got[0], "number 1") && contains(&got[1], "number 2"));
    // Only the first is committed; the second was handed out but not stored.
    cursors.commit(&got[0]);

    // Within one source, a rewind after a failed commit hands the
    // uncommitted message out again.
    first.rewind_to_committed();
    let again = first.fetch_batch(10).await.expect("fetch after rewind");
    assert_eq!(again.len(), 2, "numbers 2 and 3 again");
    assert!(contains(&again[0], "number 2"));
    drop(first);

    let mut second = open(stack, &settings, &cursors).await;
    let got = second.fetch_batch(10).await.expect("fetch");
    let subjects: Vec<bool> = got.iter().map(|f| contains(f, "number 1")).collect();
    assert_eq!(
        got.len(),
        2,
        "resumes after the committed UID: {subjects:?}"
    );
    assert!(contains(&got[0], "number 2") && contains(&got[1], "number 3"));
    append(&mut admin, &mailbox, None, &message("number 4", "x")).await;
    let got = fetch_until(&mut second, |all| !all.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert!(contains(&got[0], "number 4"));
}

#[tokio::test]
async fn uidvalidity_change_rescans_the_recreated_mailbox() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("validity");
    let mut admin = admin(stack, "dave").await;
    admin.create(&mailbox).await.expect("create");
    let one = message("first", "a");
    let two = message("second", "b");
    append(&mut admin, &mailbox, None, &one).await;
    append(&mut admin, &mailbox, None, &two).await;

    let cursors = Cursors::default();
    let mut source = open(stack, &settings(stack, "dave", &mailbox), &cursors).await;
    let before = source.fetch_batch(10).await.expect("fetch");
    assert_eq!(before.len(), 2);
    before.iter().for_each(|f| cursors.commit(f));
    let old_validity = before[1]
        .source_id
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();

    admin.delete(&mailbox).await.expect("delete");
    admin.create(&mailbox).await.expect("recreate");
    append(&mut admin, &mailbox, None, &one).await;
    append(&mut admin, &mailbox, None, &two).await;

    // The open session still sees the old mailbox; the source notices the
    // new UIDVALIDITY and rescans from UID 1.
    let after = fetch_until(&mut source, |all| all.len() >= 2).await;
    assert_eq!(after.len(), 2, "both messages come again after the rescan");
    let new_validity = after[0]
        .source_id
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    assert_ne!(new_validity, old_validity);
    assert!(after.iter().all(|f| f
        .cursor
        .as_ref()
        .is_some_and(|c| c.value.starts_with(&new_validity))));
    assert_eq!(*after[0].raw, one, "the same bytes come again");
    assert!(contains(&after[0], "first") && contains(&after[1], "second"));

    // A stale id from before the rescan is not marked (and not an error).
    source
        .mark_done(std::slice::from_ref(&before[0].source_id))
        .await
        .expect("stale ids are skipped");
}

#[tokio::test]
async fn wrong_password_is_a_config_error_quickly_and_says_where() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mut settings = settings(stack, "staff", "INBOX");
    settings.password.file = Some("bad".into());
    let started = Instant::now();
    let err = imap::connect(&settings, stack.secrets.path(), Cursors::default().reader())
        .await
        .expect_err("wrong password must fail");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Config(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("staff@127.0.0.1:{}", stack.imaps_port)),
        "{text}"
    );
    assert!(text.contains("login refused"), "{text}");
}

#[tokio::test]
async fn unknown_mailbox_is_a_config_error_naming_it() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let settings = settings(stack, "staff", "No/Such/Box");
    let err = imap::connect(&settings, stack.secrets.path(), Cursors::default().reader())
        .await
        .expect_err("unknown mailbox");
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("No/Such/Box"), "{err}");
}

#[tokio::test]
async fn an_oversize_message_comes_as_headers_only_with_its_size() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("oversize");
    let mut admin = admin(stack, "agent").await;
    admin.create(&mailbox).await.expect("create");
    let big_body = "BIGBODY ".repeat(4000);
    append(&mut admin, &mailbox, None, &message("small one", "tiny")).await;
    append(&mut admin, &mailbox, None, &message("huge one", &big_body)).await;

    let mut settings = settings(stack, "agent", &mailbox);
    settings.max_message_bytes = 4096;
    let mut source = open(stack, &settings, &Cursors::default()).await;
    let got = source.fetch_batch(10).await.expect("fetch");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].oversize, None);
    assert!(contains(&got[0], "tiny"));
    let size = got[1].oversize.expect("the big one is oversize");
    assert!(size > 30_000, "full size reported: {size}");
    assert!(contains(&got[1], "Subject: huge one"), "headers are there");
    assert!(!contains(&got[1], "BIGBODY"), "the body is not");
    assert!(got[1].cursor.is_some());
}

#[tokio::test]
async fn implicit_tls_starttls_and_auth_plain_all_work_with_the_test_ca() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let implicit = settings(stack, "carol", "INBOX");
    let report = imap::check(&implicit, stack.secrets.path())
        .await
        .expect("implicit TLS");
    assert!(
        report.contains("login ok") && report.contains("IDLE yes"),
        "{report}"
    );

    let mut starttls = settings(stack, "carol", "INBOX");
    starttls.tls = ImapTls::Starttls;
    starttls.port = stack.imap_port;
    starttls.auth = ImapAuth::Plain;
    let report = imap::check(&starttls, stack.secrets.path())
        .await
        .expect("STARTTLS");
    assert!(report.contains("Starttls"), "{report}");

    let mut plain = starttls.clone();
    plain.tls = ImapTls::Plain;
    let err = imap::check(&plain, stack.secrets.path())
        .await
        .expect_err("plain refused");
    assert!(matches!(err, Error::Config(_)), "{err}");
    plain.allow_plaintext = true;
    imap::check(&plain, stack.secrets.path())
        .await
        .expect("plain allowed explicitly");
}

#[tokio::test]
async fn tls_with_the_wrong_name_or_port_fails_clearly() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mut wrong_name = settings(stack, "carol", "INBOX");
    wrong_name.tls_server_name = Some("wrong.example".into());
    let err = imap::check(&wrong_name, stack.secrets.path())
        .await
        .expect_err("name mismatch");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("wrong.example"),
        "{text}"
    );

    let mut no_ca = settings(stack, "carol", "INBOX");
    no_ca.ca_file = None;
    let err = imap::check(&no_ca, stack.secrets.path())
        .await
        .expect_err("unknown CA");
    assert!(matches!(err, Error::Config(_)), "{err}");

    let mut wrong_port = settings(stack, "carol", "INBOX");
    wrong_port.port = stack.imap_port;
    let err = imap::check(&wrong_port, stack.secrets.path())
        .await
        .expect_err("plain port");
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(
        err.to_string().contains(&format!(":{}", stack.imap_port)),
        "{err}"
    );
}

#[tokio::test]
async fn idle_wakes_up_when_mail_arrives_and_mark_done_can_move() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("idle");
    let done_folder = unique("done");
    let mut admin = admin(stack, "bob").await;
    admin.create(&mailbox).await.expect("create");
    let mut settings = settings(stack, "bob", &mailbox);
    settings.move_to = Some(done_folder.clone());
    let mut source = open(stack, &settings, &Cursors::default()).await;
    assert!(source.fetch_batch(10).await.expect("fetch").is_empty());

    let raw = message("while idling", "x");
    let appender = tokio::spawn({
        let mailbox = mailbox.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            append(&mut admin, &mailbox, None, &raw).await;
            admin
        }
    });
    let started = Instant::now();
    source
        .wait_for_new(Duration::from_secs(20))
        .await
        .expect("wait_for_new");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "IDLE woke after {waited:?}"
    );
    let mut admin = appender.await.expect("appender");
    let got = source.fetch_batch(10).await.expect("fetch");
    assert_eq!(got.len(), 1);

    // The processed folder does not exist yet: it is created on first use.
    source
        .mark_done(std::slice::from_ref(&got[0].source_id))
        .await
        .expect("mark_done with move");
    assert!(flags_of(&mut admin, &mailbox).await.is_empty(), "moved out");
    let moved = flags_of(&mut admin, &done_folder).await;
    assert_eq!(moved.len(), 1);
    assert!(moved[0].iter().any(|f| f == "\\Seen"), "{moved:?}");
    assert!(
        moved[0].iter().any(|f| f == "$RecoverydeskDone"),
        "{moved:?}"
    );
}

#[tokio::test]
async fn a_dovecot_restart_mid_run_is_survived_without_loss() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.write().await;
    let mailbox = unique("restart");
    let mut admin = admin(stack, "dave").await;
    admin.create(&mailbox).await.expect("create");
    append(&mut admin, &mailbox, None, &message("before restart", "x")).await;
    drop(admin);

    let cursors = Cursors::default();
    let mut source = open(stack, &settings(stack, "dave", &mailbox), &cursors).await;
    let got = source.fetch_batch(10).await.expect("fetch");
    assert_eq!(got.len(), 1);
    cursors.commit(&got[0]);

    // Restart while the source sits in IDLE: the wait must end when the
    // server drops the connection (with a transient error or a wake-up), not
    // hang until its timeout. Dovecot's old imap process lingers about 10 s
    // after its master stopped before it says BYE.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack.sh");
    let dir = stack.dir.clone();
    let restart = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(300));
        Command::new("bash")
            .arg(&script)
            .arg("restart-dovecot")
            .arg(&dir)
            .status()
            .expect("restart-dovecot")
    });
    let started = Instant::now();
    let waited = source.wait_for_new(Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "IDLE noticed the restart after {:?}",
        started.elapsed()
    );
    if let Err(e) = waited {
        assert!(e.is_transient(), "{e}");
    }
    assert!(restart.await.expect("join").success());

    let mut admin = admin_with_retry(stack, "dave").await;
    append(&mut admin, &mailbox, None, &message("after restart", "y")).await;
    // The old connection is dead; the source reconnects on its own and
    // continues after the committed cursor.
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while all.is_empty() && Instant::now() < deadline {
        match source.fetch_batch(10).await {
            Ok(got) => all.extend(got),
            Err(e) => assert!(
                e.is_transient(),
                "only transient errors while reconnecting: {e}"
            ),
        }
    }
    assert_eq!(all.len(), 1, "exactly the new message");
    assert!(contains(&all[0], "after restart"));
}

async fn admin_with_retry(stack: &Stack, user: &str) -> async_imap::Session<TcpStream> {
    for _ in 0..50 {
        if let Ok(session) = stack::imap_login(stack.imap_port, user).await {
            return session;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("dovecot did not come back");
}

#[tokio::test]
async fn without_idle_the_source_polls_at_its_interval() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("poll");
    let mut admin = admin(stack, "agent").await;
    admin.create(&mailbox).await.expect("create");
    let mut settings = settings(stack, "agent", &mailbox);
    settings.idle = false;
    settings.poll_interval = Duration::from_millis(500);
    // Built without a connection; the first call connects.
    let mut source = imap::prepare(&settings, stack.secrets.path(), Cursors::default().reader())
        .expect("prepare");
    assert!(source.fetch_batch(10).await.expect("fetch").is_empty());
    append(&mut admin, &mailbox, None, &message("polled", "x")).await;
    let started = Instant::now();
    source
        .wait_for_new(Duration::from_secs(30))
        .await
        .expect("wait");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "slept one poll interval, not the timeout: {waited:?}"
    );
    let got = source.fetch_batch(10).await.expect("fetch");
    assert_eq!(got.len(), 1);
    assert!(contains(&got[0], "polled"));
}

#[tokio::test]
async fn mail_that_held_a_secret_is_moved_to_its_own_folder_and_never_expunged() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mailbox = unique("sec");
    let done_folder = unique("done");
    let secrets_folder = unique("secrets");
    let mut admin = admin(stack, "bob").await;
    admin.create(&mailbox).await.expect("create");
    append(&mut admin, &mailbox, None, &message("plain", "hello")).await;
    append(&mut admin, &mailbox, None, &message("token", "pypi-AgE...")).await;
    let mut settings = settings(stack, "bob", &mailbox);
    settings.move_to = Some(done_folder.clone());
    settings.secrets_move_to = Some(secrets_folder.clone());
    let mut source = open(stack, &settings, &Cursors::default()).await;
    let got = fetch_until(&mut source, |all| all.len() >= 2).await;
    assert_eq!(got.len(), 2);
    let (plain, secret) = if contains(&got[0], "Subject: plain") {
        (&got[0], &got[1])
    } else {
        (&got[1], &got[0])
    };
    source
        .mark_done(std::slice::from_ref(&plain.source_id))
        .await
        .expect("mark_done");
    source
        .mark_secret(std::slice::from_ref(&secret.source_id))
        .await
        .expect("mark_secret");
    assert!(
        flags_of(&mut admin, &mailbox).await.is_empty(),
        "both moved out"
    );
    assert_eq!(flags_of(&mut admin, &done_folder).await.len(), 1);
    let set_aside = flags_of(&mut admin, &secrets_folder).await;
    assert_eq!(set_aside.len(), 1, "the secret one is in its own folder");
    assert!(set_aside[0].iter().any(|f| f == "\\Seen"), "{set_aside:?}");
    assert!(
        !set_aside[0].iter().any(|f| f.contains("Deleted")),
        "never flagged for deletion: {set_aside:?}"
    );
}
