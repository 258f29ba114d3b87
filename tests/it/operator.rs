//! What an operator does with the built binary, on the embedded-demo style
//! setup (a Maildir inbox, the file transport, a file account directory in
//! a temp folder): scrape the metrics endpoint while mail is processed,
//! reload templates with SIGHUP (a broken set is refused and the old one
//! keeps sending), check and preview templates, run `doctor`, and read
//! JSON logs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;

use crate::daemon;
use daemon::{Daemon, BIN};
const DEADLINE: Duration = Duration::from_secs(30);
const HUMAN: &str = "recoverydesk_messages_ingested_total{kind=\"human\"}";

/// A temp folder with a key, an account file, an empty Maildir inbox and a
/// config; `extra` is appended to the config (whole tables).
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(
            root.join("secret.key"),
            "operator-test-key-0123456789abcdef-0123",
        )
        .unwrap();
        let mut accounts = String::new();
        for n in 0..40 {
            accounts.push_str(&format!(
                "[[account]]\nusername = \"opuser{n}\"\n\
                 addresses = [{{ address = \"opuser{n}@linked.example\", verified = true, primary = true }}]\n\n"
            ));
        }
        std::fs::write(root.join("accounts.toml"), accounts).unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(root.join("inbox").join(sub)).unwrap();
        }
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[instance]
id = "rd-operator-test"
support_address = "support@pypi.example"
support_name = "PyPI Support"
secret_key = {{ file = "secret.key" }}

[store]
path = "store"

[source]
kind = "maildir"
poll_interval = "300ms"

[source.maildir]
path = "inbox"

[transport]
kind = "file"

[transport.file]
dir = "outbox"

[directory]
kind = "file"
path = "accounts.toml"

[staff]
addresses = ["admin@pypi.example"]
notify = ["admins@pypi.example"]
trusted_authserv_ids = ["mx.pypi.example"]

[policy]
waiting_period = "0s"

{extra}
"#
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Drops a complete request from `opuser{n}@example.org` for account
    /// `opuser{n}` into the inbox.
    fn deliver_request(&self, n: usize) {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let raw = format!(
            "From: Requester {n} <opuser{n}@example.org>\r\nTo: support@pypi.example\r\n\
             Subject: Lost my 2FA device\r\nMessage-ID: <op-{n}-{pid}@example.org>\r\n\
             Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Username: opuser{n}\r\nI lost my phone with the authenticator app.\r\n\
             I still have access to the email address on the account.\r\n\
             I agree to the Code of Conduct and understand this may take a while.\r\n",
            pid = std::process::id()
        );
        let name = format!(
            "1763888400.{}.{n}.operator",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        recoverydesk::source::maildir::deliver(&self.path("inbox"), raw.as_bytes(), &name)
            .expect("deliver into the Maildir");
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RECOVERYDESK_CONFIG")
            .env_remove("RECOVERYDESK_LOG")
            .env_remove("RECOVERYDESK_CRASH_AFTER_COMMIT")
            .output()
            .expect("the binary runs")
    }

    /// Acknowledgements written to `address`, as text bodies.
    fn acks_to(&self, address: &str) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.path("outbox")) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            let Some(parsed) = MessageParser::default().parse(&raw) else {
                continue;
            };
            let to_address = parsed
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .is_some_and(|a| a.eq_ignore_ascii_case(address));
            // One subject per case: the first line says which mail it is.
            let text = parsed.body_text(0).unwrap_or_default();
            if to_address && text.starts_with("We received your account recovery request") {
                out.push(
                    parsed
                        .body_text(0)
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                );
            }
        }
        out
    }

    /// Waits for exactly one acknowledgement to `address` and returns it.
    fn wait_for_ack(&self, daemon: &mut Daemon, address: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            daemon.assert_running();
            let acks = self.acks_to(address);
            if let Some(ack) = acks.first() {
                assert_eq!(acks.len(), 1, "one acknowledgement to {address}");
                return ack.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no acknowledgement to {address} within {DEADLINE:?}\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Operator-test helpers on the shared daemon handle.
impl Daemon {
    /// Starts the daemon on the setup's config, logging into its folder.
    fn start_with(setup: &Setup, global: &[&str]) -> Daemon {
        let stderr = setup.path(&format!("daemon-{}.stderr", rand_suffix()));
        Daemon::start(&setup.config, global, stderr)
    }

    /// `kill -HUP <pid>`.
    fn hangup(&self) {
        assert!(self.signal("HUP"), "kill -HUP failed");
    }

    /// Waits until the log has `needle` at least `count` times.
    fn wait_log(&mut self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.assert_running();
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{count}) in the log within {DEADLINE:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn rand_suffix() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A plain HTTP/1.1 GET: (status code, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A sample's value; a labelled series that is not exposed yet counts 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

fn cases_total(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("recoverydesk_cases{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn repo_templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn metrics_are_scraped_over_http_and_move_when_mail_is_processed() {
    let port = free_port();
    let setup = Setup::new(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut daemon = Daemon::start_with(&setup, &[]);

    let deadline = Instant::now() + DEADLINE;
    let health = loop {
        daemon.assert_running();
        match http_get(port, "/healthz") {
            Ok(answer) => break answer,
            Err(e) => assert!(
                Instant::now() < deadline,
                "/healthz never answered: {e}\n{}",
                daemon.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health, (200, "ok\n".to_string()));

    let (status, before) = http_get(port, "/metrics").expect("scrape /metrics");
    assert_eq!(status, 200, "{before}");
    assert!(
        before.contains("# TYPE recoverydesk_cases gauge")
            && before.contains("# TYPE recoverydesk_messages_ingested_total counter")
            && before.contains("recoverydesk_replies_total{result=\"sent\"}"),
        "{before}"
    );
    assert_eq!(sample(&before, HUMAN), 0.0, "{before}");
    assert_eq!(cases_total(&before), 0.0, "{before}");

    setup.deliver_request(1);
    setup.deliver_request(2);
    let deadline = Instant::now() + DEADLINE;
    let after = loop {
        daemon.assert_running();
        let (status, text) = http_get(port, "/metrics").expect("scrape /metrics");
        assert_eq!(status, 200);
        if sample(&text, HUMAN) >= 2.0
            && sample(&text, "recoverydesk_replies_total{result=\"sent\"}") >= 2.0
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the counters did not move within {DEADLINE:?}:\n{text}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sample(&after, HUMAN), 2.0, "{after}");
    assert_eq!(cases_total(&after), 2.0, "two open cases: {after}");
    let open: f64 = [
        "awaiting_info",
        "awaiting_verification",
        "awaiting_staff",
        "waiting_period",
    ]
    .iter()
    .map(|s| sample(&after, &format!("recoverydesk_cases{{state=\"{s}\"}}")))
    .sum();
    assert_eq!(open, 2.0, "{after}");
    assert_eq!(
        sample(&after, "recoverydesk_replies_total{result=\"failed\"}"),
        0.0
    );
    assert_eq!(http_get(port, "/nothing-here").expect("scrape").0, 404);
}

#[test]
fn a_broken_template_is_refused_on_sighup_the_old_set_keeps_sending_and_a_fixed_one_is_taken() {
    let setup = Setup::new("[templates]\ndir = \"templates\"\nwatch = false\n");
    let templates = setup.path("templates");
    copy_dir(&repo_templates(), &templates);
    let ack_file = templates.join("en/acknowledgement.txt.tera");
    let original = std::fs::read_to_string(&ack_file).unwrap();
    std::fs::write(
        &ack_file,
        format!("Operator marker: VERSION-ONE\n{original}"),
    )
    .unwrap();

    let mut daemon = Daemon::start_with(&setup, &[]);
    daemon.wait_log("recoverydesk running", 1);
    setup.deliver_request(1);
    let first = setup.wait_for_ack(&mut daemon, "opuser1@example.org");
    assert!(first.contains("VERSION-ONE"), "{first}");

    // Break it: a tera syntax error on line 2.
    std::fs::write(
        &ack_file,
        format!("Operator marker: VERSION-BROKEN\n{{% if %}}\n{original}"),
    )
    .unwrap();
    daemon.hangup();
    let log = daemon.wait_log("template reload failed", 1);
    let line = log
        .lines()
        .find(|l| l.contains("template reload failed"))
        .unwrap();
    assert!(
        line.contains("acknowledgement.txt.tera:2"),
        "the log names the file and the line: {line}"
    );
    setup.deliver_request(2);
    let second = setup.wait_for_ack(&mut daemon, "opuser2@example.org");
    assert!(
        second.contains("VERSION-ONE") && !second.contains("VERSION-BROKEN"),
        "the previous set keeps sending: {second}"
    );

    // Fix it with new text: the next reload takes it.
    std::fs::write(
        &ack_file,
        format!("Operator marker: VERSION-TWO\n{original}"),
    )
    .unwrap();
    daemon.hangup();
    daemon.wait_log("templates reloaded", 1);
    setup.deliver_request(3);
    let third = setup.wait_for_ack(&mut daemon, "opuser3@example.org");
    assert!(
        third.contains("VERSION-TWO") && !third.contains("VERSION-ONE"),
        "the fixed set is used: {third}"
    );
    daemon.assert_running();
}

#[test]
fn preview_shows_the_configured_instance_and_a_stored_case_read_only() {
    let setup = Setup::new("");
    let out = setup.run(&["templates", "preview", "acknowledgement"]);
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("From: PyPI Support <support@pypi.example>"),
        "{text}"
    );
    assert!(
        text.contains("Reply-To: support+rd-") && text.contains("@pypi.example"),
        "the reply address is under the configured domain: {text}"
    );
    assert!(
        !text.contains("@example.org>"),
        "no sample instance: {text}"
    );

    setup.deliver_request(7);
    assert!(setup.run(&["once"]).status.success());
    let list = String::from_utf8_lossy(&setup.run(&["cases", "list"]).stdout).into_owned();
    let id = list
        .lines()
        .find(|l| l.contains("opuser7@example.org"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_owned();
    let before = std::fs::read_dir(setup.path("outbox")).unwrap().count();
    let out = setup.run(&["templates", "preview", "acknowledgement", "--case", &id]);
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("To: opuser7@example.org") && text.contains(&id) && text.contains("opuser7"),
        "the case's own values: {text}"
    );
    assert_eq!(
        std::fs::read_dir(setup.path("outbox")).unwrap().count(),
        before,
        "a preview sends nothing"
    );
    let out = setup.run(&[
        "templates",
        "preview",
        "acknowledgement",
        "--case",
        "RD-ZZZZZZ",
    ]);
    assert!(!out.status.success() && show(&out).contains("no case RD-ZZZZZZ"));
}

#[test]
fn sighup_reloads_the_accounts_file_and_a_broken_one_keeps_the_old_accounts() {
    let setup = Setup::new("");
    let mut daemon = Daemon::start_with(&setup, &[]);
    daemon.wait_log("recoverydesk running", 1);
    let accounts = setup.path("accounts.toml");
    let original = std::fs::read_to_string(&accounts).unwrap();
    std::fs::write(
        &accounts,
        format!(
            "{original}[[account]]\nusername = \"newcomer\"\n\
             addresses = [{{ address = \"newcomer@linked.example\", verified = true, primary = true }}]\n"
        ),
    )
    .unwrap();
    daemon.hangup();
    let log = daemon.wait_log("account directory reloaded", 1);
    let line = log
        .lines()
        .find(|l| l.contains("account directory reloaded"))
        .unwrap();
    assert!(
        line.contains("41 account(s): 1 added, 0 removed, 0 changed") && !line.contains("newcomer"),
        "{line}"
    );
    std::fs::write(&accounts, "[[account]\n").unwrap();
    daemon.hangup();
    let log = daemon.wait_log("account directory reload failed", 1);
    let line = log
        .lines()
        .find(|l| l.contains("account directory reload failed"))
        .unwrap();
    assert!(
        line.contains("accounts.toml"),
        "the log says which file: {line}"
    );
    daemon.assert_running();
}

/// Saves like an editor does: write a temporary file, then rename it over.
fn save(path: &Path, text: &str) {
    let tmp = path.with_file_name(".operator-test-save.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn with_watch_on_a_saved_broken_template_is_refused_and_a_saved_fix_is_taken() {
    let setup = Setup::new("[templates]\ndir = \"templates\"\nwatch = true\n");
    let templates = setup.path("templates");
    copy_dir(&repo_templates(), &templates);
    let ack_file = templates.join("en/acknowledgement.txt.tera");
    let original = std::fs::read_to_string(&ack_file).unwrap();
    save(&ack_file, &format!("Watched marker: WATCH-ONE\n{original}"));

    let mut daemon = Daemon::start_with(&setup, &[]);
    daemon.wait_log("watching templates for changes", 1);
    setup.deliver_request(11);
    let first = setup.wait_for_ack(&mut daemon, "opuser11@example.org");
    assert!(first.contains("WATCH-ONE"), "{first}");

    save(
        &ack_file,
        &format!("Watched marker: WATCH-BROKEN\n{{{{ case.id | }}}}\n{original}"),
    );
    let log = daemon.wait_log("template reload failed", 1);
    assert!(
        log.contains("acknowledgement.txt.tera:2"),
        "the log names the file and the line:\n{log}"
    );
    setup.deliver_request(12);
    let second = setup.wait_for_ack(&mut daemon, "opuser12@example.org");
    assert!(
        second.contains("WATCH-ONE") && !second.contains("WATCH-BROKEN"),
        "the previous set keeps sending: {second}"
    );

    save(&ack_file, &format!("Watched marker: WATCH-TWO\n{original}"));
    daemon.wait_log("templates reloaded", 1);
    setup.deliver_request(13);
    let third = setup.wait_for_ack(&mut daemon, "opuser13@example.org");
    assert!(
        third.contains("WATCH-TWO"),
        "the saved fix is used: {third}"
    );
    daemon.assert_running();
}

#[test]
fn sighup_while_the_first_pass_runs_does_not_stop_the_daemon() {
    // A backlog makes the first pass take a while; SIGHUP's default action
    // is to terminate, so the handler must be in place before that pass.
    let setup = Setup::new("[templates]\ndir = \"templates\"\n");
    copy_dir(&repo_templates(), &setup.path("templates"));
    for n in 0..40 {
        setup.deliver_request(n);
    }
    let mut daemon = Daemon::start_with(&setup, &[]);
    daemon.wait_log("recoverydesk running", 1);
    daemon.hangup();
    daemon.wait_log("templates reloaded", 1);
    for n in 0..40 {
        setup.wait_for_ack(&mut daemon, &format!("opuser{n}@example.org"));
    }
    daemon.assert_running();
}

#[test]
fn preview_writes_an_eml_that_parses_and_check_names_the_broken_file_and_line() {
    let setup = Setup::new("");
    let eml = setup.path("ack.eml");
    let out = Command::new(BIN)
        .args(["templates", "preview", "acknowledgement", "--eml"])
        .arg(&eml)
        .env_remove("RECOVERYDESK_CONFIG")
        .output()
        .expect("run preview");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let raw = std::fs::read(&eml).expect("the .eml was written");
    let parsed = MessageParser::default()
        .parse(&raw)
        .expect("the .eml parses as mail");
    let subject = parsed.subject().unwrap_or_default().to_string();
    assert!(
        subject.contains("[Case RD-") && !subject.contains('\n'),
        "{subject}"
    );
    assert!(parsed.from().is_some() && parsed.to().is_some());
    let text = parsed.body_text(0).expect("a text part").into_owned();
    let html = parsed.body_html(0).expect("an html part").into_owned();
    assert!(
        text.contains("account recovery request") && !text.contains("{{"),
        "{text}"
    );
    assert!(html.contains("<html") || html.contains("<p"), "{html}");
    assert!(parsed.text_body.len() == 1 && parsed.html_body.len() == 1);

    // The same from a copied folder with the config's [templates] dir.
    let broken = setup.path("broken");
    copy_dir(&repo_templates(), &broken);
    let ok = Command::new(BIN)
        .args(["templates", "check", "--dir"])
        .arg(&broken)
        .output()
        .expect("run check");
    assert_eq!(ok.status.code(), Some(0), "{}", show(&ok));
    let file = broken.join("en/acknowledgement.txt.tera");
    let original = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    lines.insert(3, "{% if case.id %}never closed");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let bad = Command::new(BIN)
        .args(["templates", "check", "--dir"])
        .arg(&broken)
        .output()
        .expect("run check");
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        all.contains("acknowledgement.txt.tera:"),
        "names the file with a line: {all}"
    );
    let line: Option<usize> = all
        .split("acknowledgement.txt.tera:")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        });
    assert!(
        line.is_some_and(|l| l >= 4),
        "the line is at or after the broken tag (line 4): {all}"
    );
}

#[test]
fn doctor_ticks_a_good_config_and_crosses_a_missing_maildir() {
    let setup = Setup::new("");
    let good = setup.run(&["doctor"]);
    let stdout = String::from_utf8_lossy(&good.stdout).into_owned();
    assert_eq!(good.status.code(), Some(0), "{}", show(&good));
    for part in [
        "config",
        "store",
        "templates",
        "directory",
        "source",
        "transport",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with('✓') && l.contains(part)),
            "✓ {part}: {stdout}"
        );
    }
    assert!(!stdout.contains('✗'), "{stdout}");

    std::fs::remove_dir_all(setup.path("inbox")).unwrap();
    let bad = setup.run(&["doctor"]);
    let stdout = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_ne!(bad.status.code(), Some(0), "{}", show(&bad));
    let source = stdout
        .lines()
        .find(|l| l.contains("source"))
        .unwrap_or_default();
    assert!(
        source.starts_with('✗') && source.contains("inbox"),
        "✗ source names the missing Maildir: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with('✓') && l.contains("templates")),
        "the other parts are still checked: {stdout}"
    );
}

#[test]
fn json_logs_carry_case_id_and_message_id_when_a_message_is_handled() {
    let setup = Setup::new("");
    setup.deliver_request(7);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&setup.config)
        .args(["--log-format", "json", "once"])
        .env_remove("RECOVERYDESK_CONFIG")
        .env("RECOVERYDESK_LOG", "warn,recoverydesk=info")
        .output()
        .expect("run once");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut handled = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        let fields = value.get("fields").cloned().unwrap_or(value.clone());
        let field = |name: &str| {
            fields
                .get(name)
                .or_else(|| value.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        if field("message").as_deref() != Some("message handled") {
            continue;
        }
        if let (Some(case_id), Some(message_id)) = (field("case_id"), field("message_id")) {
            handled.push((case_id, message_id));
        }
    }
    assert_eq!(
        handled.len(),
        1,
        "one \"message handled\" line with case_id and message_id: {stderr}"
    );
    let (case_id, message_id) = &handled[0];
    assert!(case_id.starts_with("RD-"), "{case_id}");
    assert!(message_id.contains("op-7-"), "{message_id}");
}

/// The "message handled" line of a JSON log.
fn handled_line(stderr: &str) -> Option<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "message handled")
}

#[test]
fn json_logs_carry_lists_as_json_arrays() {
    let setup = Setup::new("");
    setup.deliver_request(8);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&setup.config)
        .args(["--log-format", "json", "once"])
        .env_remove("RECOVERYDESK_CONFIG")
        .env("RECOVERYDESK_LOG", "warn,recoverydesk=info")
        .output()
        .expect("run once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = handled_line(&stderr).unwrap_or_else(|| panic!("{stderr}"));
    let queued = &line["fields"]["queued"];
    assert!(
        queued
            .as_array()
            .is_some_and(|q| q.iter().any(|t| t == "acknowledgement")),
        "queued is a JSON array: {line}"
    );
}

#[test]
fn human_logs_to_a_file_have_no_colour_codes() {
    let setup = Setup::new("");
    // Forced colour would be a terminal's; NO_COLOR must win over it too.
    for (n, no_color) in [(9, None), (10, Some("1"))] {
        setup.deliver_request(n);
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&setup.config)
            .arg("once")
            .env_remove("RECOVERYDESK_CONFIG")
            .env_remove("NO_COLOR")
            .env("RECOVERYDESK_LOG", "warn,recoverydesk=info");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("run once");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("INFO"), "{stderr}");
        assert!(
            !stderr.contains('\u{1b}'),
            "ANSI codes in a log file: {stderr:?}"
        );
    }
}

/// Polls `/readyz` until `want` holds, returning the last answer.
fn readyz_until(
    daemon: &mut Daemon,
    port: u16,
    want: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        daemon.assert_running();
        if let Ok((status, body)) = http_get(port, "/readyz") {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if want(status, &value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz stayed {status}: {body}\n{}",
                daemon.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readyz_turns_503_while_the_mail_source_fails_and_200_when_it_is_back() {
    let port = free_port();
    let setup = Setup::new(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\nnot_ready_after = \"1s\"\n"
    ));
    let mut daemon = Daemon::start_with(&setup, &[]);
    let up = readyz_until(&mut daemon, port, |s, v| s == 200 && v["source"] == "up");
    assert_eq!(up["outbox_pending"], 0, "{up}");
    assert!(up["last_fetch_ok"].as_i64().is_some(), "{up}");

    // The mailbox disappears (an unmounted volume, say): passes fail.
    std::fs::rename(setup.path("inbox"), setup.path("inbox.away")).unwrap();
    let down = readyz_until(&mut daemon, port, |s, _| s == 503);
    assert_eq!(down["source"], "down", "{down}");
    assert!(
        down["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("mail source failing")),
        "{down}"
    );
    assert!(down["source_error"].is_string(), "{down}");
    // /healthz stays a liveness check: the process answers.
    assert_eq!(http_get(port, "/healthz").unwrap().0, 200);

    std::fs::rename(setup.path("inbox.away"), setup.path("inbox")).unwrap();
    readyz_until(&mut daemon, port, |s, v| s == 200 && v["source"] == "up");
}
