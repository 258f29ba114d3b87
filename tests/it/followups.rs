//! Follow-ups on a controlled clock, through the whole pipeline: Maildir in,
//! sled timers, the case core, `.eml` files out. Every test moves time only
//! through `app.pass(now)`, and checks both what the store queued and what
//! the file transport actually wrote.

use crate::common;

use common::*;
use recoverydesk::case::{Case, CaseState, TimerKind};
use recoverydesk::domain::CaseId;

/// Monday 2026-11-23 09:00 UTC (10:00 in Berlin). The harness's `T0` is a
/// Sunday, and the weekend tests need to know which day it is.
const MONDAY: i64 = 1_795_424_400;
const HOUR: i64 = 3600;

/// Accounts for requests that must not join each other's case (one open
/// recovery per account).
const MORE_ACCOUNTS: &str = r#"
[[account]]
username = "bob"
addresses = [{ address = "bob@linked.example", verified = true, primary = true }]

[[account]]
username = "carol"
addresses = [{ address = "carol@linked.example", verified = true, primary = true }]

[[account]]
username = "dave"
addresses = [{ address = "dave@linked.example", verified = true, primary = true }]
"#;

const STAFF_NOTIFY: &str = "admins@pypi.example";

async fn app_with(policy_extra: &str) -> TestApp {
    let mut app = TestApp::spawn_with(policy_extra, FILE_DIRECTORY).await;
    std::fs::write(
        app.dir.path().join("accounts.toml"),
        format!("{ACCOUNTS}\n{MORE_ACCOUNTS}"),
    )
    .unwrap();
    app.restart().await;
    app
}

/// A request that names the account and the reason but not the Code of
/// Conduct or the review delay: the case waits on the requester.
fn incomplete_request(from: &str, username: &str, message_id: &str) -> String {
    mail(
        from,
        "support@pypi.example",
        "Lost my 2FA device",
        message_id,
        "",
        &format!(
            "Username: {username}\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\n"
        ),
    )
}

/// A complete request from someone who can no longer read the linked
/// address: no challenge, the case waits on staff.
fn lost_email_request(from: &str, username: &str, message_id: &str) -> String {
    mail(
        from,
        "support@pypi.example",
        "Lost my 2FA device",
        message_id,
        "",
        &format!(
            "Username: {username}\r\nI lost my phone with the authenticator app.\r\nI no longer have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n"
        ),
    )
}

/// A complete request with access to the linked address: a challenge goes out.
fn full_request(from: &str, username: &str, message_id: &str) -> String {
    mail(
        from,
        "support@pypi.example",
        "Lost my 2FA device",
        message_id,
        "",
        &format!(
            "Username: {username}\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n"
        ),
    )
}

/// A reply on the case thread (to its reply address).
fn reply_on(app: &TestApp, case: &Case, from: &str, message_id: &str, body: &str) -> String {
    mail(
        from,
        &app.reply_address(&case.id),
        &format!("Re: [Case {}]", case.id),
        message_id,
        "",
        body,
    )
}

/// Templates queued for one address on one case, oldest first.
fn templates_to(app: &TestApp, case: &CaseId, address: &str) -> Vec<String> {
    app.store()
        .outbox_of(case)
        .unwrap()
        .into_iter()
        .filter(|o| o.to.iter().any(|t| t == address))
        .map(|o| o.template.name().to_string())
        .collect()
}

/// Runs one pass a day from `from` to `to` (inclusive), like a worker that
/// never stops; returns the files written in that time.
async fn run_days(app: &mut TestApp, from: i64, to: i64) -> usize {
    let before = app.sent().len();
    let mut now = from;
    while now <= to {
        app.pass(now).await;
        now += DAY;
    }
    app.sent().len() - before
}

fn case_by_id(app: &TestApp, id: &CaseId) -> Case {
    app.store().case(id).unwrap().expect("case exists")
}

#[tokio::test]
async fn a_silent_requester_gets_one_reminder_then_a_close_notice_and_nothing_after() {
    let mut app = app_with("").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    let case = app.case_of("bob@home.example");
    assert_eq!(case.state, CaseState::AwaitingInfo);
    assert_eq!(
        templates_to(&app, &case.id, "bob@home.example"),
        vec!["acknowledgement"]
    );

    assert_eq!(
        run_days(&mut app, MONDAY + DAY, MONDAY + 4 * DAY).await,
        0,
        "nothing before the reminder is due"
    );
    app.pass(MONDAY + 5 * DAY).await;
    assert_eq!(
        templates_to(&app, &case.id, "bob@home.example"),
        vec!["acknowledgement", "reminder"]
    );
    assert_eq!(case_by_id(&app, &case.id).state, CaseState::AwaitingInfo);

    run_days(&mut app, MONDAY + 6 * DAY, MONDAY + 12 * DAY).await;
    assert_eq!(
        templates_to(&app, &case.id, "bob@home.example"),
        vec!["acknowledgement", "reminder", "close_notice"]
    );
    let closed = case_by_id(&app, &case.id);
    assert_eq!(closed.state, CaseState::Closed);
    assert_eq!(closed.closed_at, Some(MONDAY + 12 * DAY));
    // The close notice says a reply reopens the case.
    let notice = app.sent_to("bob@home.example").pop().unwrap();
    assert!(notice.text.contains("reopen"), "{}", notice.text);

    assert_eq!(
        run_days(&mut app, MONDAY + 13 * DAY, MONDAY + 60 * DAY).await,
        0,
        "a closed case stays quiet"
    );
    assert_eq!(
        app.sent_to("bob@home.example").len(),
        3,
        "every queued mail was written once"
    );
}

#[tokio::test]
async fn a_reply_after_the_close_reopens_the_case_within_the_window() {
    let mut app = app_with("").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    run_days(&mut app, MONDAY + DAY, MONDAY + 12 * DAY).await;
    let case = app.case_of("bob@home.example");
    assert_eq!(case.state, CaseState::Closed);

    let body = "I agree to the Code of Conduct and understand this may take a while.\r\n";
    app.deliver(&reply_on(
        &app,
        &case,
        "bob@home.example",
        "reply-1@home.example",
        body,
    ));
    app.pass(MONDAY + 20 * DAY).await;

    assert_eq!(app.cases().len(), 1, "the same case, not a new one");
    let reopened = case_by_id(&app, &case.id);
    assert_eq!(reopened.closed_at, None);
    // Complete now: the challenge that was never sent goes out.
    assert_eq!(reopened.state, CaseState::AwaitingVerification);
    let to_bob = templates_to(&app, &case.id, "bob@home.example");
    assert_eq!(&to_bob[3..], ["reopened", "challenge_sent"]);
    assert_eq!(
        templates_to(&app, &case.id, "bob@linked.example"),
        vec!["challenge"]
    );
    // And the follow-ups run again from here.
    assert!(reopened.timers.contains_key(&TimerKind::Reminder));
}

#[tokio::test]
async fn a_reply_after_the_window_opens_a_new_case_linked_to_the_old_one() {
    let mut app = app_with("").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    run_days(&mut app, MONDAY + DAY, MONDAY + 12 * DAY).await;
    let old = app.case_of("bob@home.example");
    assert_eq!(old.state, CaseState::Closed);

    // Default window: 30 days after the close.
    let body = "Hello again, I still cannot log in. I agree to the Code of Conduct.\r\n";
    app.deliver(&reply_on(
        &app,
        &old,
        "bob@home.example",
        "reply-1@home.example",
        body,
    ));
    app.pass(MONDAY + 12 * DAY + 31 * DAY).await;

    let cases = app.cases();
    assert_eq!(cases.len(), 2);
    let new = cases.iter().find(|c| c.id != old.id).unwrap();
    assert_eq!(new.continues.as_ref(), Some(&old.id));
    assert!(new.state.is_open());
    assert_eq!(
        case_by_id(&app, &old.id).state,
        CaseState::Closed,
        "the old case stays closed"
    );
    assert_eq!(
        templates_to(&app, &new.id, "bob@home.example"),
        vec!["acknowledgement"]
    );
    assert_eq!(
        templates_to(&app, &old.id, "bob@home.example").len(),
        3,
        "nothing more on the old case"
    );
}

#[tokio::test]
async fn waiting_on_staff_sends_status_notes_to_the_cap_each_with_a_staff_nudge() {
    let mut app = app_with("").await;
    app.deliver(&lost_email_request(
        "dave@home.example",
        "dave",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    let case = app.case_of("dave@home.example");
    assert_eq!(case.state, CaseState::AwaitingStaff);

    run_days(&mut app, MONDAY + DAY, MONDAY + 80 * DAY).await;
    // Defaults: first after 10 days, then every 7, at most 3.
    assert_eq!(
        templates_to(&app, &case.id, "dave@home.example"),
        vec![
            "acknowledgement",
            "status_note",
            "status_note",
            "status_note"
        ]
    );
    assert_eq!(
        templates_to(&app, &case.id, STAFF_NOTIFY),
        vec![
            "staff_new_case",
            "staff_stale",
            "staff_stale",
            "staff_stale"
        ]
    );
    let notes: Vec<i64> = app
        .store()
        .outbox_of(&case.id)
        .unwrap()
        .into_iter()
        .filter(|o| o.template.name() == "status_note")
        .map(|o| o.queued_at)
        .collect();
    assert_eq!(
        notes,
        vec![MONDAY + 10 * DAY, MONDAY + 17 * DAY, MONDAY + 24 * DAY]
    );
    assert_eq!(app.sent_to("dave@home.example").len(), 4);
    assert!(
        case_by_id(&app, &case.id).timers.is_empty(),
        "no timer left after the cap"
    );
}

#[tokio::test]
async fn any_update_is_answered_once_per_interval_whether_a_reply_or_a_new_message() {
    let mut app = app_with("").await;
    app.deliver(&lost_email_request(
        "dave@home.example",
        "dave",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    let case = app.case_of("dave@home.example");

    app.deliver(&reply_on(
        &app,
        &case,
        "dave@home.example",
        "chase-1@home.example",
        "Any update on my case?\r\n",
    ));
    app.pass(MONDAY + DAY).await;
    assert_eq!(
        templates_to(&app, &case.id, "dave@home.example"),
        vec!["acknowledgement", "status_reply"]
    );

    // Asked again the next day, in a reply and then in a fresh mail: no answer.
    app.deliver(&reply_on(
        &app,
        &case,
        "dave@home.example",
        "chase-2@home.example",
        "Hello, any news?\r\n",
    ));
    app.pass(MONDAY + 2 * DAY).await;
    let fresh = mail(
        "dave@home.example",
        "support@pypi.example",
        "Recovery",
        "chase-3@home.example",
        "",
        "Hi, any update on my recovery request?\r\n",
    );
    app.deliver(&fresh);
    app.pass(MONDAY + 2 * DAY + HOUR).await;
    assert_eq!(
        templates_to(&app, &case.id, "dave@home.example"),
        vec!["acknowledgement", "status_reply"]
    );
    assert_eq!(app.cases().len(), 1, "a chase is never a new case");
    let events = app.store().events(&case.id).unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.what.contains("asked for an update"))
            .count()
            >= 3,
        "staff see each chase in the log"
    );

    // After the interval (3 days by default), a fresh mail gets one again,
    // as a status reply, not as a duplicate-request note.
    let later = mail(
        "dave@home.example",
        "support@pypi.example",
        "Recovery",
        "chase-4@home.example",
        "",
        "Any update?\r\n",
    );
    app.deliver(&later);
    app.pass(MONDAY + 5 * DAY).await;
    assert_eq!(
        templates_to(&app, &case.id, "dave@home.example"),
        vec!["acknowledgement", "status_reply", "status_reply"]
    );
    assert_eq!(app.sent_to("dave@home.example").len(), 3);
}

#[tokio::test]
async fn a_timer_set_before_a_restart_still_fires_exactly_once() {
    let mut app = app_with("").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    let case = app.case_of("bob@home.example");
    app.restart().await;

    app.pass(MONDAY + 5 * DAY).await;
    app.pass(MONDAY + 5 * DAY + 60).await;
    app.restart().await;
    app.pass(MONDAY + 5 * DAY + HOUR).await;
    app.pass(MONDAY + 6 * DAY).await;

    assert_eq!(
        templates_to(&app, &case.id, "bob@home.example"),
        vec!["acknowledgement", "reminder"]
    );
    let files: Vec<String> = app
        .sent_to("bob@home.example")
        .into_iter()
        .map(|s| s.subject)
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    // The close it set survived the restart too.
    assert_eq!(
        case_by_id(&app, &case.id)
            .timers
            .get(&TimerKind::CloseInactive),
        Some(&(MONDAY + 12 * DAY))
    );
}

#[tokio::test]
async fn after_a_three_week_outage_each_case_gets_at_most_one_message() {
    let mut app = app_with("").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.deliver(&full_request(
        "carol@home.example",
        "carol",
        "req-2@home.example",
    ));
    app.deliver(&lost_email_request(
        "dave@home.example",
        "dave",
        "req-3@home.example",
    ));
    app.deliver(&full_request(
        "erin@home.example",
        "nobody-here",
        "req-4@home.example",
    ));
    app.pass(MONDAY).await;
    let ids: Vec<(String, CaseId)> = app
        .cases()
        .into_iter()
        .map(|c| (c.requester.clone(), c.id))
        .collect();
    assert_eq!(ids.len(), 4);
    let queued_before: Vec<usize> = ids
        .iter()
        .map(|(_, id)| app.store().outbox_of(id).unwrap().len())
        .collect();
    let files_before = app.sent().len();

    // The worker was off for three weeks.
    app.pass(MONDAY + 21 * DAY).await;
    app.pass(MONDAY + 21 * DAY + HOUR).await;

    for ((requester, id), before) in ids.iter().zip(queued_before) {
        let new: Vec<_> = app
            .store()
            .outbox_of(id)
            .unwrap()
            .into_iter()
            .skip(before)
            .collect();
        let to_requester: Vec<&str> = new
            .iter()
            .filter(|o| o.to.contains(requester))
            .map(|o| o.template.name())
            .collect();
        assert!(to_requester.len() <= 1, "{requester}: {to_requester:?}");
        assert!(
            !to_requester.contains(&"reminder"),
            "{requester}: a stale reminder"
        );
        let others: Vec<&str> = new
            .iter()
            .filter(|o| !o.to.contains(requester) && !o.to.iter().any(|t| t == STAFF_NOTIFY))
            .map(|o| o.template.name())
            .collect();
        assert!(
            others.is_empty(),
            "{requester}: {others:?} to the linked address after its challenge expired"
        );
        assert!(
            new.iter()
                .filter(|o| o.to.iter().any(|t| t == STAFF_NOTIFY))
                .count()
                <= 1,
            "{requester}"
        );
    }
    // What fits now: the silent ones are closed, the one with staff is told it is queued.
    let state = |who: &str| app.case_of(who).state;
    assert_eq!(state("bob@home.example"), CaseState::Closed);
    assert_eq!(state("carol@home.example"), CaseState::Closed);
    assert_eq!(state("erin@home.example"), CaseState::Closed);
    assert_eq!(state("dave@home.example"), CaseState::AwaitingStaff);
    let dave = app.case_of("dave@home.example");
    assert_eq!(
        templates_to(&app, &dave.id, "dave@home.example")
            .last()
            .map(String::as_str),
        Some("status_note")
    );
    // Four requesters, one message each, plus one staff nudge.
    assert_eq!(app.sent().len() - files_before, 5);
}

#[tokio::test]
async fn weekend_quiet_hours_hold_a_reminder_until_monday_in_the_operators_time_zone() {
    let mut app =
        app_with("[policy.quiet_hours]\ntimezone = \"Europe/Berlin\"\nweekends = true\n").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    let case = app.case_of("bob@home.example");

    // Due Saturday 09:00 UTC: held all weekend.
    let saturday = MONDAY + 5 * DAY;
    app.pass(saturday).await;
    app.pass(saturday + DAY).await;
    // Sunday 22:00 UTC is still Sunday (23:00) in Berlin.
    app.pass(saturday + DAY + 13 * HOUR).await;
    assert_eq!(
        templates_to(&app, &case.id, "bob@home.example"),
        vec!["acknowledgement"]
    );
    let held = case_by_id(&app, &case.id);
    // Monday 00:00 in Berlin is Sunday 23:00 UTC.
    assert_eq!(
        held.timers.get(&TimerKind::Reminder),
        Some(&(saturday + DAY + 14 * HOUR))
    );

    // Sunday 23:30 UTC is Monday 00:30 in Berlin: it goes.
    app.pass(saturday + DAY + 14 * HOUR + 30 * 60).await;
    assert_eq!(
        templates_to(&app, &case.id, "bob@home.example"),
        vec!["acknowledgement", "reminder"]
    );
    assert_eq!(app.sent_to("bob@home.example").len(), 2);
}

#[tokio::test]
async fn the_followups_command_lists_the_due_reminder_with_case_timer_and_recipient() {
    let mut app = app_with("").await;
    app.deliver(&incomplete_request(
        "bob@home.example",
        "bob",
        "req-1@home.example",
    ));
    app.pass(MONDAY).await;
    let case = app.case_of("bob@home.example");
    assert_eq!(
        case.timers.get(&TimerKind::Reminder),
        Some(&(MONDAY + 5 * DAY))
    );

    // The command opens the store itself: the worker must let go of it.
    // (Destructuring keeps the folder alive while the worker is dropped.)
    let TestApp { dir, worker, .. } = app;
    drop(worker);
    let config = dir.path().join("config.toml");
    let run = |now: i64, within: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
            .arg("--config")
            .arg(&config)
            .args(["followups", "--within", within])
            .env("RECOVERYDESK_NOW", now.to_string())
            .output()
            .expect("the binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let listed = run(MONDAY + DAY, "7d");
    let line = listed
        .lines()
        .find(|l| l.contains(case.id.as_str()))
        .unwrap_or_else(|| panic!("case {} not listed:\n{listed}", case.id));
    assert!(line.contains("reminder"), "{line}");
    assert!(line.contains("requester"), "{line}");
    assert!(line.contains("2026-11-28 09:00"), "{line}");
    assert!(listed.contains("1 follow-up(s)"), "{listed}");

    // Four days ahead is not far enough; six days later it is overdue.
    let short = run(MONDAY + DAY, "3d");
    assert!(!short.contains(case.id.as_str()), "{short}");
    assert!(short.contains("0 follow-up(s)"), "{short}");
    let late = run(MONDAY + 6 * DAY, "1d");
    assert!(
        late.lines()
            .any(|l| l.contains(case.id.as_str()) && l.contains("due now")),
        "{late}"
    );
}
