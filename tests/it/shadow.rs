//! Shadow mode for a safe rollout: `run --dry-run` processes the live
//! mailbox, stores cases and renders every reply, but writes the replies to
//! `shadow-outbox/` instead of sending and never marks the source.

use crate::common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dry_run_renders_replies_to_files_and_leaves_the_mailbox_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("secret.key"), "test-secret-key-0123456789abcdef").unwrap();
    std::fs::write(root.join("accounts.toml"), ACCOUNTS).unwrap();
    let config =
        config_text("", FILE_DIRECTORY).replace("[source]\n", "[source]\npoll_interval = \"1s\"\n");
    std::fs::write(root.join("config.toml"), config).unwrap();
    let inbox = root.join("inbox");
    recoverydesk::source::maildir::deliver(
        &inbox,
        complete_request("jo@requester.example", "s1@x.example").as_bytes(),
        "1.shadow.test",
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("--config")
        .arg(root.join("config.toml"))
        .args(["run", "--dry-run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while files(&root.join("shadow-outbox"))
        .iter()
        .filter(|f| f.ends_with(".eml"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no shadow replies within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let at least one more poll pass: nothing may be marked or sent then either.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    let shadow = common::sent_in(&root.join("shadow-outbox"));
    assert!(
        shadow
            .iter()
            .any(|s| s.to.contains(&"jo@requester.example".to_string())),
        "the acknowledgement was rendered"
    );
    assert!(
        files(&root.join("outbox")).is_empty(),
        "nothing went to the real transport"
    );
    assert_eq!(
        files(&inbox.join("new")),
        vec!["1.shadow.test".to_string()],
        "the source is not marked"
    );
    assert!(files(&inbox.join("cur")).is_empty());
    // The case is stored: `cases list` shows it.
    let list = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("--config")
        .arg(root.join("config.toml"))
        .args(["cases", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("jo@requester.example") && text.contains("awaiting_verification"),
        "{text}"
    );
}
