//! The built binary, stopped between the commit and the source marking,
//! then run again: nothing lost, nothing sent twice. Also the exit code and
//! message of a broken config.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{complete_request, config_text, sent_in, FILE_DIRECTORY};

const BIN: &str = env!("CARGO_BIN_EXE_recoverydesk");

/// A folder with a key, an account file and a config, like the harness's.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret.key"),
        "crash-test-key-0123456789abcdef-0123",
    )
    .unwrap();
    std::fs::write(dir.path().join("accounts.toml"), common::ACCOUNTS).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text("", FILE_DIRECTORY)).unwrap();
    (dir, config)
}

fn run(config: &Path, args: &[&str], crash: bool) -> Output {
    run_with(config, args, crash, None)
}

/// `crash_after_sends`: the outbox exits once the transport accepted that
/// many messages, before marking the last (like a kill -9 mid-send: no
/// destructor, no final flush).
fn run_with(config: &Path, args: &[&str], crash: bool, crash_after_sends: Option<usize>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args);
    cmd.env_remove("RECOVERYDESK_CONFIG").env_remove("RUST_LOG");
    match crash_after_sends {
        Some(n) => cmd.env("RECOVERYDESK_CRASH_AFTER_SENDS", n.to_string()),
        None => cmd.env_remove("RECOVERYDESK_CRASH_AFTER_SENDS"),
    };
    if crash {
        cmd.env("RECOVERYDESK_CRASH_AFTER_COMMIT", "1");
    } else {
        cmd.env_remove("RECOVERYDESK_CRASH_AFTER_COMMIT");
    }
    cmd.output().expect("the binary runs")
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const REQUESTERS: [&str; 3] = ["one@example.org", "two@example.org", "three@example.org"];

fn deliver_requests(dir: &Path) {
    let inbox = dir.join("inbox");
    for (i, from) in REQUESTERS.iter().enumerate() {
        // Each a complete request; the later ones name other accounts so each opens its own case.
        let raw = complete_request(from, &format!("req-{i}@example.org"))
            .replace("Username: alice", &format!("Username: user{i}"));
        recoverydesk::source::maildir::deliver(
            &inbox,
            raw.as_bytes(),
            &format!("1763888400.{i}.crash"),
        )
        .unwrap();
    }
}

fn acks_to(outbox: &Path, address: &str) -> usize {
    sent_in(outbox)
        .iter()
        .filter(|s| {
            s.to.iter().any(|t| t == address)
                // The subject is the case's own (one per case); the first
                // line says which mail this is.
                && s.text
                    .starts_with("We received your account recovery request")
        })
        .count()
}

#[test]
fn a_crash_between_commit_and_marking_sends_no_second_acknowledgement() {
    let (dir, config) = setup();
    deliver_requests(dir.path());
    let inbox = dir.path().join("inbox");
    let outbox = dir.path().join("outbox");

    let crashed = run(&config, &["once"], true);
    assert_eq!(
        crashed.status.code(),
        Some(99),
        "the crash hook stops the process\n{}",
        show(&crashed)
    );
    // Committed and flushed, but not marked and not yet sent.
    assert_eq!(
        files(&inbox.join("new")).len(),
        3,
        "the source was not marked"
    );
    assert!(sent_in(&outbox).is_empty(), "nothing sent before the crash");

    let rerun = run(&config, &["once"], false);
    assert_eq!(rerun.status.code(), Some(0), "{}", show(&rerun));
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    for from in REQUESTERS {
        assert_eq!(
            acks_to(&outbox, from),
            1,
            "exactly one acknowledgement to {from}\n{}",
            show(&rerun)
        );
    }
    // Every message processed once: marked, moved to cur/ with the S flag.
    assert!(
        files(&inbox.join("new")).is_empty(),
        "new/ is empty: {:?}",
        files(&inbox.join("new"))
    );
    let cur = files(&inbox.join("cur"));
    assert_eq!(cur.len(), 3, "{cur:?}");
    for name in &cur {
        assert!(name.ends_with(":2,S"), "{name}");
    }
    assert!(stdout.contains("sent"), "{stdout}");

    // A third run finds nothing to do and sends nothing.
    let before = files(&outbox);
    let third = run(&config, &["once"], false);
    assert_eq!(third.status.code(), Some(0), "{}", show(&third));
    assert!(
        String::from_utf8_lossy(&third.stdout).contains("handled 0 message(s)"),
        "{}",
        show(&third)
    );
    assert_eq!(files(&outbox), before, "nothing new sent");

    // The store agrees: three cases, each with one inbound message.
    let export = run(&config, &["cases", "export", "--json"], false);
    assert_eq!(export.status.code(), Some(0), "{}", show(&export));
    let cases: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(cases.len(), 3);
    for case in &cases {
        let inbound = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "in")
            .count();
        assert_eq!(inbound, 1, "{case}");
        let acks = case["outgoing"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["template"] == "acknowledgement")
            .count();
        assert_eq!(acks, 1, "{case}");
    }
}

#[test]
fn a_run_after_a_crash_marks_what_was_committed_and_redoes_nothing() {
    let (dir, config) = setup();
    deliver_requests(dir.path());
    let outbox = dir.path().join("outbox");
    // A crash: everything committed, nothing marked.
    let crashed = run(&config, &["once"], true);
    assert_eq!(crashed.status.code(), Some(99), "{}", show(&crashed));
    // A second run with the hook still set: the committed messages are not
    // fetched again, so there is no batch to crash on; they are only marked
    // and the queued acknowledgements go out.
    let again = run(&config, &["once"], true);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("handled 0 message(s)"),
        "{}",
        show(&again)
    );
    // Another client clears the S flag of a processed file: nothing is redone.
    let inbox = dir.path().join("inbox");
    std::fs::rename(
        inbox.join("cur/1763888400.0.crash:2,S"),
        inbox.join("cur/1763888400.0.crash:2,"),
    )
    .unwrap();
    let rerun = run(&config, &["once"], false);
    assert_eq!(rerun.status.code(), Some(0), "{}", show(&rerun));
    for from in REQUESTERS {
        assert_eq!(
            acks_to(&outbox, from),
            1,
            "exactly one acknowledgement to {from}"
        );
    }
    let cur = files(&inbox.join("cur"));
    assert_eq!(cur.len(), 3, "{cur:?}");
    assert!(cur.iter().all(|n| n.ends_with(":2,S")), "{cur:?}");
}

/// Each sent file with its inode: the file transport writes a fresh file
/// (temp + rename) for every send, so a changed inode is a re-send.
fn sent_files(outbox: &Path) -> std::collections::BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    files(outbox)
        .into_iter()
        .filter(|n| n.ends_with(".eml"))
        .map(|n| {
            let ino = std::fs::metadata(outbox.join(&n)).unwrap().ino();
            (n, ino)
        })
        .collect()
}

#[test]
fn a_crash_while_sending_resends_only_the_mail_in_flight() {
    let (dir, config) = setup();
    deliver_requests(dir.path());
    let outbox = dir.path().join("outbox");
    let crashed = run_with(&config, &["once"], false, Some(4));
    assert_eq!(crashed.status.code(), Some(98), "{}", show(&crashed));
    let before = sent_files(&outbox);
    assert_eq!(
        before.len(),
        4,
        "four accepted before the crash: {before:?}"
    );

    let rerun = run(&config, &["once"], false);
    assert_eq!(rerun.status.code(), Some(0), "{}", show(&rerun));
    let after = sent_files(&outbox);
    assert!(after.len() > before.len(), "the rest went out: {after:?}");
    let resent: Vec<&String> = before
        .iter()
        .filter(|(name, ino)| after.get(*name) != Some(ino))
        .map(|(name, _)| name)
        .collect();
    // The file transport sends one at a time: only the fourth, accepted
    // but not yet marked, goes again.
    assert_eq!(resent.len(), 1, "re-sent: {resent:?}");
    for from in REQUESTERS {
        assert_eq!(acks_to(&outbox, from), 1, "one acknowledgement to {from}");
    }
}

#[test]
fn a_bad_value_in_the_config_exits_2_naming_the_key_and_line() {
    let (dir, config) = setup();
    let text = config_text("", FILE_DIRECTORY).replace(
        "[source]\nkind = \"maildir\"",
        "[source]\nkind = \"maildir\"\npoll_interval = \"soonish\"",
    );
    assert!(text.contains("soonish"));
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.contains("soonish")).unwrap() + 1;
    let out = run(&config, &["once"], false);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("poll_interval"), "names the key: {stderr}");
    assert!(
        stderr.contains(&format!("line {line}")),
        "names line {line}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(dir);
}

#[test]
fn a_bad_quiet_hours_time_exits_2_naming_the_key_and_line() {
    let (_dir, config) = setup();
    let text = format!(
        "{}\n[policy.quiet_hours]\ntimezone = \"Europe/Berlin\"\nstart = \"22:00\"\nend = \"7 o'clock\"\n",
        config_text("", FILE_DIRECTORY)
    );
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.contains("o'clock")).unwrap() + 1;
    let out = run(&config, &["once"], false);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy.quiet_hours.end"),
        "names the key: {stderr}"
    );
    assert!(
        stderr.contains(&format!("line {line}")),
        "names line {line}: {stderr}"
    );
}

#[test]
fn a_typo_in_a_key_is_refused_with_its_name() {
    let (_dir, config) = setup();
    let text = config_text("", FILE_DIRECTORY).replace(
        "[source]\nkind = \"maildir\"",
        "[source]\nkind = \"maildir\"\npolll_interval = \"5s\"",
    );
    assert!(text.contains("polll_interval"));
    std::fs::write(&config, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("polll_interval"))
        .unwrap()
        + 1;
    let out = run(&config, &["once"], false);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("polll_interval"),
        "names the typo: {stderr}"
    );
    assert!(
        stderr.contains(&format!("line {line}")),
        "names line {line}: {stderr}"
    );
}

#[test]
fn a_broken_policy_value_and_a_missing_file_are_config_errors_too() {
    let (_dir, config) = setup();
    std::fs::write(
        &config,
        config_text("challenge_attempts = \"five\"", FILE_DIRECTORY),
    )
    .unwrap();
    let out = run(&config, &["once"], false);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("challenge_attempts"),
        "{}",
        show(&out)
    );

    let missing = config.with_file_name("nope.toml");
    let out = run(&missing, &["once"], false);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope.toml"),
        "{}",
        show(&out)
    );
}
