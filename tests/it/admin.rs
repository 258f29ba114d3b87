//! Looking at cases while the daemon runs: the CLI's views and `backup`
//! go through the daemon's admin socket (sled lets one process hold the
//! store), and a backup restored into a new folder carries a conversation
//! on.

use crate::{common, daemon};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::{cli, ok_text, Daemon, BIN};
use recoverydesk::config::Settings;
use recoverydesk::domain::CaseId;
use recoverydesk::thread::{reply_address, Role};

const ANN: &str = "ann@requester.example";
const BOB: &str = "bob@requester.example";

fn setup(root: &Path) {
    std::fs::write(root.join("secret.key"), "test-secret-key-0123456789abcdef").unwrap();
    std::fs::write(root.join("accounts.toml"), common::ACCOUNTS).unwrap();
    let config = common::config_text("", common::FILE_DIRECTORY)
        .replace("[source]\n", "[source]\npoll_interval = \"1s\"\n");
    std::fs::write(root.join("config.toml"), config).unwrap();
    std::fs::create_dir_all(root.join("inbox/new")).unwrap();
}

fn deliver(root: &Path, name: &str, text: &str) {
    recoverydesk::source::maildir::deliver(&root.join("inbox"), text.as_bytes(), name).unwrap();
}

/// The case id on the listing line of `requester`.
fn case_of(list: &str, requester: &str) -> CaseId {
    list.lines()
        .find(|l| l.contains(requester))
        .and_then(|l| l.split_whitespace().next())
        .and_then(CaseId::parse)
        .unwrap_or_else(|| panic!("no case for {requester}: {list}"))
}

#[test]
fn the_cli_reads_cases_through_the_running_daemon_and_a_restored_backup_continues() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("live");
    std::fs::create_dir_all(&root).unwrap();
    setup(&root);
    deliver(
        &root,
        "1.admin.test",
        &common::complete_request(ANN, "a1@x.example"),
    );
    deliver(
        &root,
        "2.admin.test",
        &common::mail(
            BOB,
            "support@pypi.example",
            "Forgot my password",
            "b1@x.example",
            "",
            "Username: bobby\r\nI cannot log in any more.\r\n",
        ),
    );
    let mut daemon = Daemon::start(&root.join("config.toml"), &[], root.join("run.log"));
    daemon.wait_for_socket(&root.join("admin.sock"), Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        daemon.assert_running();
        let out = cli(&root, &["cases", "list"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("2 case(s)") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "cases list while running: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let ann = case_of(&list, ANN);

    let by_user = ok_text(&root, &["cases", "list", "--username", "ALICE"]);
    assert!(by_user.contains(ANN) && !by_user.contains(BOB), "{by_user}");
    let by_address = ok_text(&root, &["cases", "list", "--address", BOB]);
    assert!(
        by_address.contains(BOB) && !by_address.contains(ANN),
        "{by_address}"
    );
    let by_state = ok_text(
        &root,
        &["cases", "list", "--state", "awaiting_verification"],
    );
    assert!(
        by_state.contains(ANN) && !by_state.contains(BOB),
        "{by_state}"
    );
    let searched = ok_text(&root, &["cases", "list", "--search", "forgot my PASSWORD"]);
    assert!(
        searched.contains(BOB) && searched.contains("1 case(s)"),
        "{searched}"
    );
    let old = ok_text(&root, &["cases", "list", "--older-than", "1d"]);
    assert!(old.contains("0 case(s)"), "{old}");
    let high = ok_text(&root, &["cases", "list", "--priority", "high"]);
    assert!(high.contains("0 case(s)"), "{high}");

    let shown = ok_text(&root, &["cases", "show", ann.as_str()]);
    assert!(
        shown.contains(ann.as_str()) && shown.contains(ANN),
        "{shown}"
    );
    let export = ok_text(&root, &["cases", "export", "--json", "--address", ANN]);
    let lines: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{export}");
    assert_eq!(lines[0]["id"], ann.as_str());
    let outs = |case: &serde_json::Value| {
        case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "out")
            .count()
    };
    let outs_before = outs(&lines[0]);
    let followups = ok_text(&root, &["followups", "--within", "30d"]);
    assert!(followups.contains(ann.as_str()), "{followups}");

    let backup = dir.path().join("store.backup");
    let said = ok_text(&root, &["backup", backup.to_str().unwrap()]);
    assert!(said.contains("from the running daemon"), "{said}");
    drop(daemon);

    // A new installation from the backup: same key and config, new folder.
    let root2 = dir.path().join("restored");
    std::fs::create_dir_all(&root2).unwrap();
    setup(&root2);
    let restored = ok_text(&root2, &["restore", backup.to_str().unwrap()]);
    assert!(restored.contains("restored"), "{restored}");
    let settings = Settings::load(&root2.join("config.toml")).unwrap();
    let to = reply_address(
        &settings.support_address,
        settings.secret_key.expose().as_bytes(),
        &ann,
        Role::Case,
    );
    deliver(
        &root2,
        "3.admin.test",
        &common::mail(
            ANN,
            &to,
            "Re: Lost my 2FA device",
            "a2@x.example",
            "In-Reply-To: <a1@x.example>\r\n",
            "My username is alice, and I also own the package alice-tools.\r\n",
        ),
    );
    let once = ok_text(&root2, &["once"]);
    assert!(once.contains("handled 1 message(s)"), "{once}");
    let export = ok_text(&root2, &["cases", "export", "--json", "--address", ANN]);
    let case: serde_json::Value = serde_json::from_str(export.trim()).unwrap();
    let messages = case["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m["message_id"]
            .as_str()
            .unwrap_or("")
            .contains("a2@x.example")
            && m["direction"] == "in"),
        "the reply joined the restored case: {export}"
    );
    assert!(
        outs(&case) > outs_before,
        "and it was answered after the restore: {export}"
    );
    assert_eq!(
        ok_text(&root2, &["cases", "list"])
            .lines()
            .filter(|l| l.contains(ANN))
            .count(),
        1,
        "no second case for the same requester"
    );
}

#[test]
fn a_listing_cut_short_by_its_reader_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args(["followups", "--within", "3650d"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is read.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}
