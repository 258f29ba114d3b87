//! Staff by email, through the real pipeline: relayed replies, commands,
//! the Cc path, command errors, and forged staff mail.

use crate::common;

use common::*;
use recoverydesk::case::{Case, CaseState, Flag};
use recoverydesk::domain::Priority;
use recoverydesk::request::Field;

const REQUESTER: &str = "jo@example.org";
const STAFF: &str = "admin@pypi.example";
const STAFF_LIST: &str = "admins@pypi.example";
const TRUSTED: &str =
    "Authentication-Results: mx.pypi.example; dmarc=pass header.from=pypi.example\r\n";

/// An app with one complete case for `alice`, challenge sent.
async fn app_with_case() -> (TestApp, Case) {
    let mut app = TestApp::spawn().await;
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-1@example.org",
    ));
    app.pass(T0).await;
    let case = app.case_of(REQUESTER);
    assert_eq!(case.state, CaseState::AwaitingVerification);
    (app, case)
}

/// A staff reply to the case, as a mail client writes it, with the given
/// Authentication-Results lines put on top (as the MTA stamps them).
fn staff_mail(app: &TestApp, case: &Case, auth: &str, message_id: &str, body: &str) -> String {
    let parent = last_out(app, case);
    format!(
        "{auth}From: Ada Admin <{STAFF}>\r\nTo: {}\r\nSubject: Re: [Case {}] New recovery case\r\nMessage-ID: <{message_id}>\r\nIn-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        app.reply_address(&case.id),
        case.id
    )
}

/// The Message-ID of the latest staff notification on the case.
fn last_out(app: &TestApp, case: &Case) -> String {
    let case = app.store().case(&case.id).unwrap().unwrap();
    case.messages
        .iter()
        .rev()
        .find(|m| {
            m.direction == recoverydesk::case::Direction::Out
                && m.to.iter().any(|t| t == STAFF_LIST)
        })
        .or_else(|| {
            case.messages
                .iter()
                .rev()
                .find(|m| m.direction == recoverydesk::case::Direction::Out)
        })
        .map(|m| m.message_id.clone())
        .expect("an outgoing message")
}

fn reload(app: &TestApp, case: &Case) -> Case {
    app.store().case(&case.id).unwrap().unwrap()
}

/// Templates of the outgoing mail on the case, in order, after `skip` of them.
fn templates_after(case: &Case, skip: usize) -> Vec<String> {
    case.messages
        .iter()
        .filter(|m| m.direction == recoverydesk::case::Direction::Out)
        .skip(skip)
        .map(|m| m.kind.to_string())
        .collect()
}

fn out_count(case: &Case) -> usize {
    case.messages
        .iter()
        .filter(|m| m.direction == recoverydesk::case::Direction::Out)
        .count()
}

/// Sends one staff message and runs a pass; returns the templates it caused.
async fn staff_says(app: &mut TestApp, case: &Case, id: &str, body: &str, at: i64) -> Vec<String> {
    let before = out_count(&reload(app, case));
    let raw = staff_mail(app, case, TRUSTED, id, body);
    app.deliver(&raw);
    let report = app.pass(at).await;
    assert_eq!(report.errors, 0);
    assert_eq!(
        report.handled[0].case_id.as_ref(),
        Some(&case.id),
        "{:?}",
        report.handled
    );
    templates_after(&reload(app, case), before)
}

fn events(app: &TestApp, case: &Case) -> Vec<(String, String)> {
    app.store()
        .events(&case.id)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor.to_string(), e.what))
        .collect()
}

#[tokio::test]
async fn a_plain_staff_reply_is_relayed_in_the_case_thread_without_quotes() {
    let (mut app, case) = app_with_case().await;
    let body = "Hello Jo,\r\n\r\nthanks for the details. We are checking the account now.\r\n\r\nAda\r\n\r\nOn Mon, 23 Nov 2026 at 09:00, PyPI Support <support@pypi.example> wrote:\r\n> Case notes: linked address a***@l***.example\r\n> DMARC: none\r\n";
    let before = app.sent_to(REQUESTER).len();
    let queued = staff_says(&mut app, &case, "staff-1@pypi.example", body, T0 + 3600).await;
    assert_eq!(queued, vec!["staff_relay"]);
    let to_requester = app.sent_to(REQUESTER);
    assert_eq!(to_requester.len(), before + 1);
    let relay = to_requester
        .iter()
        .find(|s| s.text.contains("We are checking the account now"))
        .expect("relayed");
    assert!(
        !relay.text.contains("linked address a***"),
        "quoted history stripped: {}",
        relay.text
    );
    assert!(!relay.text.contains("> "), "no quote lines: {}", relay.text);
    assert!(
        !relay.raw.contains("admin@pypi.example"),
        "the staff address is not shown"
    );
    assert!(
        !relay.text.contains("Ada Admin"),
        "show_staff_name is off: {}",
        relay.text
    );
    assert!(relay.subject.contains(&format!("[Case {}]", case.id)));
    assert_eq!(relay.reply_to, app.reply_address(&case.id));
    assert_eq!(
        relay.in_reply_to, "req-1@example.org",
        "threaded under the requester's mail"
    );
    assert!(
        relay
            .raw
            .contains("From: \"PyPI Support\" <support@pypi.example>"),
        "from the support address"
    );
    let log = events(&app, &case);
    assert!(
        log.iter()
            .any(|(a, w)| a == "staff:admin@pypi.example" && w.contains("relayed")),
        "{log:?}"
    );
    // Staff mail is not answered with an acknowledgement.
    assert!(app.sent_to(STAFF).is_empty());
}

#[tokio::test]
async fn a_note_never_reaches_the_requester() {
    let (mut app, case) = app_with_case().await;
    let before = app.sent_to(REQUESTER).len();
    let queued = staff_says(
        &mut app,
        &case,
        "staff-note@pypi.example",
        "/note checked the packages, the owner looks right\r\nDear Jo, this line is part of the note too.\r\n",
        T0 + 3600,
    )
    .await;
    assert!(queued.is_empty(), "{queued:?}");
    assert_eq!(app.sent_to(REQUESTER).len(), before);
    assert!(
        app.sent()
            .iter()
            .all(|s| !s.text.contains("checked the packages")),
        "the note went nowhere"
    );
    let log = events(&app, &case);
    assert!(
        log.iter()
            .any(|(a, w)| a == "staff:admin@pypi.example"
                && w.contains("note: checked the packages")),
        "{log:?}"
    );
}

#[tokio::test]
async fn close_resolve_and_reopen_act_on_the_case() {
    let (mut app, case) = app_with_case().await;
    let queued = staff_says(
        &mut app,
        &case,
        "s-close@pypi.example",
        "/close duplicate of another case\r\n",
        T0 + 3600,
    )
    .await;
    assert_eq!(queued, vec!["closed"]);
    let c = reload(&app, &case);
    assert_eq!(c.state, CaseState::Closed);
    assert!(c.timers.is_empty(), "{:?}", c.timers);

    let queued = staff_says(
        &mut app,
        &case,
        "s-reopen@pypi.example",
        "/reopen\r\n",
        T0 + 2 * 3600,
    )
    .await;
    assert_eq!(queued, vec!["reopened"]);
    assert_eq!(reload(&app, &case).state, CaseState::AwaitingStaff);

    let queued = staff_says(
        &mut app,
        &case,
        "s-resolve@pypi.example",
        "/resolve\r\n",
        T0 + 3 * 3600,
    )
    .await;
    assert_eq!(queued, vec!["resolved"]);
    let c = reload(&app, &case);
    assert_eq!(c.state, CaseState::Resolved);
    assert!(c.resolved_at.is_some());
    // One subject per case: what each mail says is in its first line.
    let subjects: Vec<String> = app
        .sent_to(REQUESTER)
        .iter()
        .map(|s| s.text.lines().next().unwrap_or("").to_owned())
        .collect();
    assert!(
        subjects.iter().any(|s| s.contains("closed")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("open again")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("resolved")),
        "{subjects:?}"
    );
    let log = events(&app, &case);
    for what in ["closed: duplicate of another case", "reopened", "resolved"] {
        assert!(
            log.iter()
                .any(|(a, w)| a == "staff:admin@pypi.example" && w == what),
            "{what} in {log:?}"
        );
    }
}

#[tokio::test]
async fn verify_issues_a_fresh_challenge_to_the_linked_address() {
    let (mut app, case) = app_with_case().await;
    assert_eq!(app.sent_to("alice@linked.example").len(), 1);
    let queued = staff_says(
        &mut app,
        &case,
        "s-verify@pypi.example",
        "/verify\r\n",
        T0 + 3600,
    )
    .await;
    assert!(queued.contains(&"challenge".to_string()), "{queued:?}");
    assert!(queued.contains(&"challenge_sent".to_string()), "{queued:?}");
    assert_eq!(
        app.sent_to("alice@linked.example").len(),
        2,
        "a second challenge"
    );
    assert_eq!(reload(&app, &case).state, CaseState::AwaitingVerification);
}

#[tokio::test]
async fn ask_requests_exactly_the_named_fields() {
    let (mut app, case) = app_with_case().await;
    let queued = staff_says(
        &mut app,
        &case,
        "s-ask@pypi.example",
        "/ask username, proofs\r\n",
        T0 + 3600,
    )
    .await;
    assert_eq!(queued, vec!["request_info"]);
    let c = reload(&app, &case);
    assert_eq!(c.state, CaseState::AwaitingInfo);
    assert_eq!(c.missing, vec![Field::Username, Field::Proofs]);
    let ask = app
        .sent_to(REQUESTER)
        .into_iter()
        // One subject per case: the first line names the request.
        .find(|s| s.text.starts_with("A few more details"))
        .expect("asked");
    assert!(ask.text.contains("Your account username"), "{}", ask.text);
    assert!(ask.text.contains("packages you maintain"), "{}", ask.text);
    assert!(
        !ask.text.contains("That you agree to the Code of Conduct"),
        "asks only for what staff named: {}",
        ask.text
    );
}

#[tokio::test]
async fn priority_and_assign_change_the_case_and_send_nothing() {
    let (mut app, case) = app_with_case().await;
    let queued = staff_says(
        &mut app,
        &case,
        "s-prio@pypi.example",
        "/priority high\r\n/assign me\r\n",
        T0 + 3600,
    )
    .await;
    assert!(queued.is_empty(), "{queued:?}");
    let c = reload(&app, &case);
    assert_eq!(c.priority, Priority::High);
    assert_eq!(c.assignee.as_deref(), Some(STAFF));
    let log = events(&app, &case);
    assert!(
        log.iter().any(|(_, w)| w == "priority set to high"),
        "{log:?}"
    );
    assert!(log.iter().any(|(_, w)| w.contains("assigned")), "{log:?}");
}

#[tokio::test]
async fn commands_and_text_together_act_and_relay_only_the_text() {
    let (mut app, case) = app_with_case().await;
    let queued = staff_says(
        &mut app,
        &case,
        "s-mix@pypi.example",
        "/assign me\r\n\r\nWe have what we need and will be in touch.\r\n",
        T0 + 3600,
    )
    .await;
    assert_eq!(queued, vec!["staff_relay"]);
    let relay = app
        .sent_to(REQUESTER)
        .into_iter()
        .find(|s| s.text.contains("will be in touch"))
        .expect("relayed");
    assert!(
        !relay.text.contains("/assign"),
        "commands are never relayed: {}",
        relay.text
    );
    assert_eq!(reload(&app, &case).assignee.as_deref(), Some(STAFF));
}

#[tokio::test]
async fn staff_writing_to_the_requester_with_support_in_cc_is_recorded_not_relayed() {
    let (mut app, case) = app_with_case().await;
    let before = app.sent().len();
    let raw = format!(
        "{TRUSTED}From: Ada Admin <{STAFF}>\r\nTo: Jo <{REQUESTER}>\r\nCc: {}\r\nSubject: Re: [Case {}] your account\r\nMessage-ID: <staff-cc@pypi.example>\r\nIn-Reply-To: <req-1@example.org>\r\n\r\nHi Jo, I am writing to you directly about this.\r\n",
        app.reply_address(&case.id),
        case.id
    );
    app.deliver(&raw);
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    assert_eq!(
        app.sent().len(),
        before,
        "nothing sent: the requester already has it"
    );
    let c = reload(&app, &case);
    assert!(
        c.messages
            .iter()
            .any(|m| m.message_id == "staff-cc@pypi.example"),
        "recorded on the case"
    );
    let log = events(&app, &case);
    assert!(
        log.iter()
            .any(|(a, w)| a == "staff:admin@pypi.example" && w.contains("not relayed")),
        "{log:?}"
    );
}

#[tokio::test]
async fn an_unknown_command_is_explained_to_staff_and_nothing_is_relayed() {
    let (mut app, case) = app_with_case().await;
    let before = app.sent_to(REQUESTER).len();
    let queued = staff_says(
        &mut app,
        &case,
        "s-bad@pypi.example",
        "/frobnicate now\r\nHello Jo, all sorted.\r\n",
        T0 + 3600,
    )
    .await;
    assert_eq!(queued, vec!["staff_command_error"]);
    assert_eq!(app.sent_to(REQUESTER).len(), before, "nothing relayed");
    let explained = app.sent_to(STAFF);
    assert_eq!(
        explained.len(),
        1,
        "the staff member who wrote gets the explanation"
    );
    assert!(
        explained[0].text.contains("frobnicate"),
        "{}",
        explained[0].text
    );
    assert_eq!(
        reload(&app, &case).state,
        CaseState::AwaitingVerification,
        "nothing executed"
    );

    // A malformed known command is an error too, and stops the whole reply.
    let queued = staff_says(
        &mut app,
        &case,
        "s-bad2@pypi.example",
        "/close\r\n/priority urgent\r\nBye\r\n",
        T0 + 2 * 3600,
    )
    .await;
    assert_eq!(queued, vec!["staff_command_error"]);
    assert_ne!(
        reload(&app, &case).state,
        CaseState::Closed,
        "no command of a reply with an error runs"
    );
}

/// A forged staff reply carrying a command and text; returns the case after.
async fn forged(auth: &str) -> (TestApp, Case) {
    let (mut app, case) = app_with_case().await;
    let requester_before = app.sent_to(REQUESTER).len();
    let staff_before = app.sent_to(STAFF_LIST).len();
    let raw = staff_mail(&app, &case, auth, "forged-1@pypi.example", "/close\r\n/assign me\r\nYour account has been handed over, log in with the new address.\r\n");
    app.deliver(&raw);
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.errors, 0);
    let c = reload(&app, &case);
    assert_eq!(
        c.state,
        CaseState::AwaitingVerification,
        "no command executed ({auth})"
    );
    assert_eq!(c.assignee, None, "no command executed ({auth})");
    assert!(c.flags.contains(&Flag::ForgedStaff), "flagged ({auth})");
    assert_eq!(
        app.sent_to(REQUESTER).len(),
        requester_before,
        "nothing relayed ({auth})"
    );
    assert!(
        app.sent()
            .iter()
            .filter(|s| s.text.contains("handed over"))
            .all(|s| s.to == vec![STAFF_LIST.to_string()]),
        "the forged text reaches staff only, as evidence ({auth})"
    );
    assert!(
        app.sent_to(STAFF_LIST).len() > staff_before,
        "staff alerted ({auth})"
    );
    let alert = app
        .sent_to(STAFF_LIST)
        .into_iter()
        .find(|s| s.subject.contains("Unauthenticated"))
        .expect("an alert about the forgery");
    assert!(
        alert.text.contains("could not authenticate"),
        "{}",
        alert.text
    );
    assert!(alert.subject.contains(&format!("[Case {}]", case.id)));
    assert!(
        app.sent_to(STAFF).is_empty(),
        "no answer to the forged address ({auth})"
    );
    (app, c)
}

#[tokio::test]
async fn forged_staff_mail_without_results_executes_nothing() {
    forged("").await;
}

#[tokio::test]
async fn forged_staff_mail_with_failing_dmarc_executes_nothing() {
    forged("Authentication-Results: mx.pypi.example; dmarc=fail header.from=pypi.example; spf=fail smtp.mailfrom=pypi.example\r\n").await;
}

#[tokio::test]
async fn staff_mail_with_results_from_an_untrusted_server_executes_nothing() {
    forged("Authentication-Results: mx.evil.example; dmarc=pass header.from=pypi.example; dkim=pass header.d=pypi.example\r\n").await;
}

#[tokio::test]
async fn trusted_results_below_a_received_header_do_not_count() {
    // The sender wrote the "trusted" header itself; our MTA added Received on top.
    forged("Received: from attacker.example by mx.pypi.example; Mon, 23 Nov 2026 12:00:00 +0000\r\nAuthentication-Results: mx.pypi.example; dmarc=pass header.from=pypi.example\r\n").await;
}

#[tokio::test]
async fn the_export_shows_staff_events_and_flags() {
    let (mut app, case) = forged("").await;
    staff_says(
        &mut app,
        &case,
        "s-exp@pypi.example",
        "/priority high\r\n/note called the maintainer\r\n",
        T0 + 2 * 3600,
    )
    .await;
    let c = reload(&app, &case);
    let json = recoverydesk::report::export(app.store(), &c).unwrap();
    let flags: Vec<&str> = json["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(flags.contains(&"forged_staff"), "{flags:?}");
    assert_eq!(json["priority"], "high");
    let events = json["events"].as_array().unwrap();
    let staff_events: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["actor"] == "staff:admin@pypi.example")
        .collect();
    assert!(
        staff_events
            .iter()
            .any(|e| e["what"] == "priority set to high"),
        "{events:?}"
    );
    assert!(
        staff_events
            .iter()
            .any(|e| e["what"] == "note: called the maintainer"),
        "{events:?}"
    );
    assert!(
        staff_events.iter().all(|e| e["at"].as_i64().unwrap() >= T0),
        "when is recorded"
    );
    assert!(
        events
            .iter()
            .any(|e| e["what"].as_str().unwrap().contains("not trusted")),
        "the forgery is in the log: {events:?}"
    );
    assert!(json["outgoing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["template"] == "staff_forged"));
}

#[tokio::test]
async fn staff_writing_to_the_requester_with_the_case_address_in_bcc_is_recorded_not_relayed() {
    let (mut app, case) = app_with_case().await;
    let before = app.sent().len();
    // Bcc leaves no trace in the headers; our MTA records the envelope recipient.
    let raw = format!(
        "Delivered-To: {}\r\n{TRUSTED}From: Ada Admin <{STAFF}>\r\nTo: Jo <{REQUESTER}>\r\nSubject: your account\r\nMessage-ID: <staff-bcc@pypi.example>\r\n\r\nHi Jo, writing to you directly.\r\n",
        app.reply_address(&case.id)
    );
    app.deliver(&raw);
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.handled[0].via, "reply_address");
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    assert_eq!(app.sent().len(), before, "nothing sent");
    let log = events(&app, &case);
    assert!(
        log.iter()
            .any(|(a, w)| a == "staff:admin@pypi.example" && w.contains("not relayed")),
        "{log:?}"
    );
}
