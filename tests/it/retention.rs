//! Retention and erasure (issue 15 item 10): the timer pass purges a
//! closed case once its retention has run out and keeps a tombstone;
//! `cases erase` removes a person's cases through the running daemon, with
//! their pending mail and timers; every removal is in `cases audit`, which
//! never names what it removed.

use crate::common::{self, TestApp, DAY, T0};
use crate::daemon::{cli, ok_text, Daemon};

use std::path::Path;
use std::time::{Duration, Instant};

use recoverydesk::case::CaseState;
use recoverydesk::domain::CaseId;
use recoverydesk::store::Removal;

const ANN: &str = "ann@requester.example";
const BOB: &str = "bob@requester.example";

fn incomplete(from: &str, message_id: &str) -> String {
    common::mail(
        from,
        "support@pypi.example",
        "Help",
        message_id,
        "",
        "I cannot get into my account any more.\r\n",
    )
}

fn with_retention(keep: &str) -> String {
    format!(
        "{}\n[retention]\nclosed_after = \"{keep}\"\n",
        common::config_text("", common::FILE_DIRECTORY)
    )
}

#[tokio::test]
async fn the_timer_pass_purges_a_closed_case_after_its_retention_and_its_mail_stays_handled() {
    let mut app = TestApp::spawn_with_config(with_retention("60d")).await;
    let raw = incomplete(ANN, "ann-1@requester.example");
    app.deliver(&raw);
    app.pass(T0).await;
    let id = app.case_of(ANN).id;
    let hashes: Vec<String> = vec![recoverydesk::parse::content_hash(raw.as_bytes())];
    // Unanswered, it is reminded and then closed.
    let mut now = T0;
    while app.store().case(&id).unwrap().unwrap().state != CaseState::Closed {
        now += DAY;
        assert!(now < T0 + 90 * DAY, "the case never closed");
        app.pass(now).await;
    }
    let closed_at = app.store().case(&id).unwrap().unwrap().closed_at.unwrap();

    app.pass(closed_at + 59 * DAY).await;
    assert!(app.store().case(&id).unwrap().is_some(), "kept within 60d");
    assert!(app.store().raw(&hashes[0]).unwrap().is_some());

    app.pass(closed_at + 61 * DAY).await;
    let store = app.store();
    assert!(store.case(&id).unwrap().is_none(), "purged after 60d");
    assert!(store.raw(&hashes[0]).unwrap().is_none(), "raw mail gone");
    assert!(store.events(&id).unwrap().is_empty(), "log gone");
    assert!(
        store.outbox_of(&id).unwrap().is_empty(),
        "mail records gone"
    );
    let tomb = store.tombstone(&id).unwrap().expect("a tombstone");
    assert_eq!(tomb.closed_at, Some(closed_at));
    assert_eq!(tomb.outcome, CaseState::Closed);
    let audit = store.audit().unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, Removal::Retention);
    assert_eq!(audit[0].by, "retention");
    assert!(audit[0].removed.raw_messages >= 1, "{audit:?}");

    // The same mail delivered again (a server that shows it anew) is
    // still known as handled: no new case, no second acknowledgement.
    let sent_before = app.sent().len();
    app.deliver(&raw);
    app.pass(closed_at + 62 * DAY).await;
    assert!(app.cases().is_empty(), "{:?}", app.cases());
    assert_eq!(app.sent().len(), sent_before);
}

#[test]
fn purge_needs_a_retention_setting_and_then_removes_what_expired() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("secret.key"), "test-secret-key-0123456789abcdef").unwrap();
    std::fs::write(root.join("accounts.toml"), common::ACCOUNTS).unwrap();
    std::fs::write(
        root.join("config.toml"),
        common::config_text("", common::FILE_DIRECTORY),
    )
    .unwrap();
    let out = cli(root, &["cases", "purge"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("retention.closed_after"),
        "{out:?}"
    );
    std::fs::write(root.join("config.toml"), with_retention("30d")).unwrap();
    let said = ok_text(root, &["cases", "purge"]);
    assert!(said.contains("purged 0 closed case(s)"), "{said}");
    let audit = ok_text(root, &["cases", "audit"]);
    assert!(audit.contains("0 audit entries"), "{audit}");
}

/// Waits until `cases list` through the daemon satisfies `done`.
fn list_until(root: &Path, daemon: &mut Daemon, done: impl Fn(&str) -> bool) -> String {
    daemon.wait_for_socket(&root.join("admin.sock"), Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        daemon.assert_running();
        let out = cli(root, &["cases", "list"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "cases list: {text}{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn case_of(list: &str, requester: &str) -> Option<CaseId> {
    list.lines()
        .find(|l| l.contains(requester))
        .and_then(|l| l.split_whitespace().next())
        .and_then(CaseId::parse)
}

#[test]
fn erasing_an_address_through_the_running_daemon_takes_its_cases_timers_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("secret.key"), "test-secret-key-0123456789abcdef").unwrap();
    std::fs::write(root.join("accounts.toml"), common::ACCOUNTS).unwrap();
    let config = common::config_text("", common::FILE_DIRECTORY)
        .replace("[source]\n", "[source]\npoll_interval = \"1s\"\n");
    std::fs::write(root.join("config.toml"), config).unwrap();
    let inbox = root.join("inbox");
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    let deliver = |name: &str, text: &str| {
        recoverydesk::source::maildir::deliver(&inbox, text.as_bytes(), name).unwrap();
    };
    deliver("1.erase.test", &incomplete(ANN, "ann-1@requester.example"));
    deliver("2.erase.test", &incomplete(BOB, "bob-1@requester.example"));
    let mut daemon = Daemon::start(&root.join("config.toml"), &[], root.join("run.log"));
    let list = list_until(root, &mut daemon, |t| t.contains("2 case(s)"));
    let ann = case_of(&list, ANN).unwrap();
    let bob = case_of(&list, BOB).unwrap();
    let followups = ok_text(root, &["followups", "--within", "30d"]);
    assert!(followups.contains(ann.as_str()), "{followups}");

    // Without --yes it only says what would go.
    let asked = ok_text(root, &["cases", "erase", "--address", ANN]);
    assert!(
        asked.contains(ann.as_str()) && asked.contains("nothing changed"),
        "{asked}"
    );
    assert!(ok_text(root, &["cases", "list"]).contains("2 case(s)"));

    let said = ok_text(
        root,
        &[
            "cases",
            "erase",
            "--address",
            ANN,
            "--reason",
            "ticket 7",
            "--yes",
        ],
    );
    assert!(said.contains("erased 1 case(s)"), "{said}");
    let list = ok_text(root, &["cases", "list"]);
    assert!(list.contains("1 case(s)") && !list.contains(ANN), "{list}");
    assert_eq!(case_of(&list, BOB), Some(bob.clone()));
    let followups = ok_text(root, &["followups", "--within", "30d"]);
    assert!(
        !followups.contains(ann.as_str()) && followups.contains(bob.as_str()),
        "{followups}"
    );
    let shown = ok_text(root, &["cases", "show", ann.as_str()]);
    assert!(
        shown.contains("removed by erasure") && !shown.contains(ANN),
        "{shown}"
    );
    let audit = ok_text(root, &["cases", "audit"]);
    assert!(
        audit.contains("erasure") && audit.contains(ann.as_str()) && audit.contains("ticket 7"),
        "{audit}"
    );
    assert!(!audit.to_lowercase().contains(ANN), "{audit}");

    // Writing again, Ann starts afresh: the erased case is not written back.
    deliver("3.erase.test", &incomplete(ANN, "ann-2@requester.example"));
    let list = list_until(root, &mut daemon, |t| t.contains("2 case(s)"));
    let again = case_of(&list, ANN).unwrap();
    assert_ne!(again, ann, "{list}");
}
