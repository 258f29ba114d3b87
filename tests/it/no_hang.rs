//! A server that accepts TCP and never says a word (STARTTLS configured
//! against an implicit-TLS port does just that) must not hang `doctor`,
//! `once` or `run`: every network step has the configured timeout, and
//! `run` stops within a few seconds of SIGTERM whatever the network does.

use crate::{common, daemon};

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon::{Daemon, BIN};

/// Listens on a loopback port and keeps every connection open in silence.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A Maildir setup whose SMTP transport points at the silent server.
fn setup(timeout: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("secret.key"), "test-secret-key-0123456789abcdef").unwrap();
    std::fs::write(root.join("accounts.toml"), common::ACCOUNTS).unwrap();
    let smtp = format!(
        "[transport]\nkind = \"smtp\"\n[transport.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\ntimeout = \"{timeout}\"\n",
        silent_server()
    );
    let config = common::config_text("", common::FILE_DIRECTORY)
        .replace(
            "[transport]\nkind = \"file\"\n[transport.file]\ndir = \"outbox\"\n",
            &smtp,
        )
        .replace("[source]\n", "[source]\npoll_interval = \"1s\"\n");
    assert!(config.contains("tls = \"starttls\""), "{config}");
    std::fs::write(root.join("config.toml"), config).unwrap();
    recoverydesk::source::maildir::deliver(
        &root.join("inbox"),
        common::complete_request("jo@requester.example", "h1@x.example").as_bytes(),
        "1.hang.test",
    )
    .unwrap();
    dir
}

fn wait_with_deadline(child: &mut std::process::Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn doctor_prints_each_check_as_it_finishes_and_crosses_the_silent_server() {
    let dir = setup("5s");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("doctor")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Lines arrive on a channel so a hung doctor fails the test instead of
    // hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains(" source ")) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("doctor printed nothing more for 30 s: {seen:?}");
            }
        }
    }
    // The checks before the transport are printed while the transport
    // check is still waiting on the silent server.
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "doctor printed the early checks only at the end: {seen:?}"
    );
    assert!(seen.iter().any(|l| l.starts_with("✓ config")), "{seen:?}");
    assert!(
        wait_with_deadline(&mut child, Duration::from_secs(60)),
        "doctor hung"
    );
    seen.extend(rx.try_iter());
    let transport = seen
        .iter()
        .find(|l| l.contains(" transport "))
        .unwrap_or_else(|| panic!("no transport line: {seen:?}"));
    assert!(
        transport.starts_with('✗') && transport.contains("no answer within 5s"),
        "{transport}"
    );
}

#[test]
fn once_returns_and_keeps_the_reply_queued_when_the_server_never_greets() {
    let dir = setup("1s");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("once")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_with_deadline(&mut child, Duration::from_secs(60)),
        "once hung"
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("handled 1 message(s)"), "{stdout}");
    assert!(
        !out.status.success(),
        "deferred mail is a failure of `once`"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stay queued"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_paused_sending_log_line_shows_the_error_text_not_rust_debug() {
    let dir = setup("1s");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("once")
        .env("RECOVERYDESK_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("sending paused"))
        .unwrap_or_else(|| panic!("no 'sending paused' line: {stderr}"));
    assert!(!line.contains("Some("), "{line}");
    assert!(line.contains("error.message"), "{line}");
}

#[test]
fn run_stops_within_seconds_of_sigterm_while_a_send_hangs() {
    // A timeout far longer than the test waits: only the shutdown path can
    // end the stuck send in time.
    let dir = setup("120s");
    let log = dir.path().join("run.log");
    let mut daemon = Daemon::start(&dir.path().join("config.toml"), &[], log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log().contains("message handled") {
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "no message handled: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pass is now sending to the silent server.
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.signal("TERM"));
    assert!(
        wait_with_deadline(&mut daemon.child, Duration::from_secs(15)),
        "run ignored SIGTERM: {}",
        daemon.log()
    );
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", daemon.log());
    // What the pass committed is durable: the case is there after the stop.
    let list = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args(["cases", "list"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("jo@requester.example"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
}
