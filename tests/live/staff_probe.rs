//! `doctor --staff-probe` against the real loopback stack: the probe goes
//! out through SMTP, past a stand-in for the trusted inbound MTA (a small
//! SMTP relay in this test that prepends its `Authentication-Results` and
//! hands the mail to Postfix's own sendmail), through Postfix and Dovecot
//! LMTP into the mailbox, and is read back over IMAP. Postfix and Dovecot
//! each add a `Received` header above the stamp, so the value to configure
//! is 2.
//!
//! Needs root (the stack does); `RD_SKIP_MAILSTACK=1` skips with a reason.

use crate::stack;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use recoverydesk::config::Settings;
use recoverydesk::staff_probe::{self, Placement};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const STAMP: &str = "Authentication-Results: mx.probe.test; dmarc=pass header.from=mailstack.test";
const MAILBOX_USER: &str = "carol";

/// Starts the stamping relay; returns its port.
async fn stamping_relay(postfix_etc: PathBuf) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, postfix_etc.clone()));
        }
    });
    port
}

/// Just enough SMTP for one client: the envelope, the data, then sendmail.
async fn serve(socket: tokio::net::TcpStream, postfix_etc: PathBuf) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 relay.probe.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-relay.probe.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line);
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line));
            b"250 ok\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut data = format!("{STAMP}\r\n");
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push_str("\r\n");
            }
            let (etc, from, to) = (postfix_etc.clone(), from.clone(), to.clone());
            let handed = tokio::task::spawn_blocking(move || sendmail(&etc, &from, &to, &data))
                .await
                .unwrap();
            if handed {
                b"250 queued\r\n"
            } else {
                b"451 sendmail failed\r\n"
            }
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end.max(start)].to_string()
}

fn sendmail(postfix_etc: &Path, from: &str, to: &[String], data: &str) -> bool {
    let mut child = Command::new("/usr/sbin/sendmail")
        .arg("-C")
        .arg(postfix_etc)
        .args(["-i", "-f", from, "--"])
        .args(to)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run Postfix's sendmail");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    child.wait().is_ok_and(|s| s.success())
}

/// A config that reads `carol`'s INBOX over IMAPS and sends via the relay.
fn config(stack: &stack::Stack, dir: &Path, relay_port: u16, hops: usize) -> PathBuf {
    std::fs::write(
        dir.join("secret.key"),
        "staff-probe-test-key-0123456789abcdef",
    )
    .unwrap();
    std::fs::write(dir.join("imap.pass"), format!("{}\n", stack::PASSWORD)).unwrap();
    std::fs::write(dir.join("accounts.toml"), "").unwrap();
    let text = format!(
        r#"
[instance]
id = "rd-staff-probe-test"
support_address = "{MAILBOX_USER}@mailstack.test"
support_name = "Support"
secret_key = {{ file = "secret.key" }}

[store]
path = "store"

[source]
kind = "imap"

[source.imap]
host = "127.0.0.1"
port = {imaps}
tls = "implicit"
ca_file = "{ca}"
username = "{MAILBOX_USER}"
password = {{ file = "imap.pass" }}
mailbox = "INBOX"

[transport]
kind = "smtp"

[transport.smtp]
host = "127.0.0.1"
port = {relay_port}
tls = "plain"
allow_plaintext = true

[directory]
kind = "file"
path = "accounts.toml"

[staff]
addresses = ["staff@mailstack.test"]
notify = ["staff@mailstack.test"]
trusted_authserv_ids = ["mx.probe.test"]
trusted_received_hops = {hops}
"#,
        imaps = stack.imaps_port,
        ca = stack.ca_file.display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_measures_the_hops_and_doctor_prints_the_value() {
    let Some(stack) = stack::shared() else { return };
    let _gate = stack::GATE.read().await;
    let relay = stamping_relay(stack.dir.join("postfix/etc")).await;
    let dir = tempfile::tempdir().unwrap();

    // With the shipped default of 0 the stamp is not read: the probe says so.
    let path = config(stack, dir.path(), relay, 0);
    let settings = Settings::load(&path).expect("config loads");
    let report = staff_probe::run(&settings, staff_probe::PROBE_WAIT)
        .await
        .expect("the probe arrives");
    assert_eq!(
        report.placement,
        Placement::Stamped {
            authserv_id: "mx.probe.test".into(),
            received_above: 2,
            same_id_below: 0
        },
        "{:?}",
        report.lines()
    );
    assert!(!report.is_ok());
    assert!(
        report
            .lines()
            .iter()
            .any(|l| l.contains("trusted_received_hops = 2 (configured now: 0)")),
        "{:?}",
        report.lines()
    );

    // The binary: fails with the advice at 0, passes once set to 2.
    let run = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
            .arg("--config")
            .arg(path)
            .args(["doctor", "--staff-probe"])
            .output()
            .expect("run doctor")
    };
    let out = run(&path);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("set [staff] trusted_received_hops = 2"),
        "{stdout}"
    );
    println!("doctor --staff-probe at 0 hops:\n{stdout}");
    let fixed = config(stack, dir.path(), relay, 2);
    let out = run(&fixed);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("✓ staff-probe"), "{stdout}");
    println!("doctor --staff-probe at 2 hops:\n{stdout}");
}
