//! The verification challenge end to end: real workers over a temp Maildir
//! with the file transport, the account directory either the test file or
//! a real HTTP service started inside the test (axum on `127.0.0.1:0`).
//!
//! Covers ARCHITECTURE.md "Verification challenge": the code only ever goes to
//! the linked address, proof by the code on the case or the owner's yes,
//! the owner's no, locking, quoted codes, expiry with its one reminder, an
//! unavailable directory, the lost-address path, the waiting period, and
//! no account enumeration in anything the requester receives.

use crate::common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use regex::Regex;

use common::*;
use recoverydesk::case::{Case, CaseState, Flag, TimerKind, Verification};
use recoverydesk::config::Settings;
use recoverydesk::domain::Priority;

const REQUESTER: &str = "someone@requester.example";
const LINKED: &str = "alice@linked.example";
const STAFF: &str = "admins@pypi.example";
const HOUR: i64 = 3_600;

// ---------------------------------------------------------------------------
// The account directory as an HTTP service.

/// A fake account service: the same accounts as `common::ACCOUNTS`, and a
/// switch that makes every lookup answer 503 while it is on.
#[derive(Clone, Default)]
struct Service {
    down: Arc<AtomicBool>,
    slow: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
}

async fn serve_accounts(State(service): State<Service>, uri: Uri) -> Response {
    service.hits.fetch_add(1, Ordering::SeqCst);
    if service.slow.load(Ordering::SeqCst) {
        // Well past the configured timeout (4 s: generous, as a loaded test
        // machine must not turn a healthy answer into "unavailable").
        tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    }
    if service.down.load(Ordering::SeqCst) {
        service.failures.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let json = |body: &str| {
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_owned(),
        )
            .into_response()
    };
    match uri.path() {
        "/accounts/by-username/alice" | "/accounts/by-address/alice%40linked.example" => json(
            r#"{"username": "alice", "addresses": [{"address": "alice@linked.example", "verified": true, "primary": true}],
                "two_factor": ["totp"], "has_recovery_codes": false, "projects": ["alice-utils"]}"#,
        ),
        "/accounts/by-username/noaddr" => json(r#"{"username": "noaddr", "addresses": []}"#),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn spawn_service() -> (String, Service) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Service::default();
    let app = Router::new()
        .fallback(serve_accounts)
        .with_state(service.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), service)
}

fn http_section(base_url: &str) -> String {
    format!("[directory]\nkind = \"http\"\nbase_url = \"{base_url}\"\ntimeout = \"4s\"")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    File,
    Http,
}

const BOTH: [Dir; 2] = [Dir::File, Dir::Http];

/// An app with the given directory backend (the HTTP service, when used,
/// lives as long as the test's runtime).
async fn app_with(dir: Dir, policy_extra: &str) -> (TestApp, Service) {
    match dir {
        Dir::File => (
            TestApp::spawn_with(policy_extra, FILE_DIRECTORY).await,
            Service::default(),
        ),
        Dir::Http => {
            let (base, service) = spawn_service().await;
            (
                TestApp::spawn_with(policy_extra, &http_section(&base)).await,
                service,
            )
        }
    }
}

/// Reopens the app on the same folder with a config edited by `edit`
/// (for settings the harness fixes, such as the waiting period).
async fn reconfigure(app: &mut TestApp, edit: impl Fn(&str) -> String) {
    let path = app.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(&text)).unwrap();
    let settings = Arc::new(Settings::load(&path).expect("edited config loads"));
    let old = std::mem::replace(&mut app.worker, open_placeholder());
    drop(old);
    app.worker = open(settings.clone()).await;
    app.settings = settings;
}

/// Every value of every tree of the app's sled store, read with the worker
/// closed (sled locks its folder), then the worker is reopened.
async fn store_dump(app: &mut TestApp) -> Vec<(String, Vec<u8>)> {
    let old = std::mem::replace(&mut app.worker, open_placeholder());
    drop(old);
    let path = app.dir.path().join("store");
    let mut out = Vec::new();
    {
        let db = sled::Config::new()
            .path(&path)
            .open()
            .expect("store opens after the worker is gone");
        for name in db.tree_names() {
            let tree = db.open_tree(&name).unwrap();
            let name = String::from_utf8_lossy(&name).into_owned();
            for item in tree.iter() {
                let (key, value) = item.unwrap();
                let mut both = key.to_vec();
                both.push(b'=');
                both.extend_from_slice(&value);
                out.push((name.clone(), both));
            }
        }
    }
    app.restart().await;
    out
}

// ---------------------------------------------------------------------------
// Mail helpers.

/// A message with threading headers.
fn reply(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    in_reply_to: &str,
    body: &str,
) -> String {
    let headers = if in_reply_to.is_empty() {
        String::new()
    } else {
        format!("In-Reply-To: <{in_reply_to}>\r\nReferences: <{in_reply_to}>\r\n")
    };
    mail(from, to, subject, message_id, &headers, body)
}

/// `text` as a quoted history block under an attribution line.
fn quoted(text: &str) -> String {
    let mut out = String::from(
        "On Mon, 23 Nov 2026 at 09:00, PyPI Support <support@pypi.example> wrote:\r\n",
    );
    for line in text.lines() {
        out.push_str("> ");
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

static CODE_RE: once_cell::sync::Lazy<Regex> =
    once_cell::sync::Lazy::new(|| Regex::new(r"\b[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}\b").unwrap());

/// The one code a challenge mail carries.
fn code_of(sent: &Sent) -> String {
    let mut codes: Vec<String> = CODE_RE
        .find_iter(&sent.text)
        .map(|m| m.as_str().to_owned())
        .collect();
    codes.dedup();
    assert_eq!(
        codes.len(),
        1,
        "one code expected in {}:\n{}",
        sent.subject,
        sent.text
    );
    codes.remove(0)
}

/// Every spelling of a code that might leak it.
fn spellings(code: &str) -> Vec<String> {
    let plain = code.replace('-', "");
    vec![
        code.to_owned(),
        code.to_lowercase(),
        plain.clone(),
        plain.to_lowercase(),
        code.replace('-', " "),
    ]
}

fn contains_code(haystack: &str, code: &str) -> bool {
    spellings(code)
        .iter()
        .any(|s| haystack.contains(s.as_str()))
}

fn bytes_contain(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The decoded text and HTML parts of a sent mail, and its raw bytes.
fn all_text(sent: &Sent) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(sent.raw.as_bytes())
        .unwrap();
    let mut out = sent.raw.clone();
    for i in 0..parsed.text_body_count() {
        out.push_str(&parsed.body_text(i).unwrap_or_default());
    }
    for i in 0..parsed.html_body_count() {
        out.push_str(&parsed.body_html(i).unwrap_or_default());
    }
    out.push_str(&sent.subject);
    out
}

/// Template name of a sent mail (from the outbox record).
fn template_of(app: &TestApp, sent: &Sent) -> String {
    for case in app.cases() {
        if let Some(m) = case
            .messages
            .iter()
            .find(|m| m.message_id == sent.message_id)
        {
            return m.kind.to_string();
        }
    }
    panic!("no case knows the message {}", sent.message_id)
}

/// Sent mail to one address in the order it was queued (the harness sorts
/// by file name, which follows the Message-ID, not time).
fn sent_to(app: &TestApp, address: &str) -> Vec<Sent> {
    let mut order: Vec<String> = Vec::new();
    for case in app.cases() {
        order.extend(
            case.messages
                .iter()
                .filter(|m| m.direction == recoverydesk::case::Direction::Out)
                .map(|m| m.message_id.clone()),
        );
    }
    let mut sent = app.sent_to(address);
    sent.sort_by_key(|s| {
        order
            .iter()
            .position(|m| *m == s.message_id)
            .unwrap_or(usize::MAX)
    });
    sent
}

fn templates_to(app: &TestApp, address: &str) -> Vec<String> {
    sent_to(app, address)
        .iter()
        .map(|s| template_of(app, s))
        .collect()
}

fn the_case(app: &TestApp) -> Case {
    let cases = app.cases();
    assert_eq!(cases.len(), 1, "one case expected: {cases:#?}");
    cases.into_iter().next().unwrap()
}

fn attempts_left(case: &Case) -> u32 {
    match &case.verification {
        Verification::Pending(ch) => ch.attempts_left,
        other => panic!("no pending challenge: {other:?}"),
    }
}

fn events_text(app: &TestApp, case: &Case) -> String {
    app.store()
        .events(&case.id)
        .unwrap()
        .iter()
        .map(|e| format!("{} {}: {}\n", e.at, e.actor, e.what))
        .collect()
}

/// Opens a case for `username` from `from` and returns it with the
/// challenge mail (if one went out).
async fn open_case(app: &mut TestApp, from: &str, username: &str, now: i64) -> Case {
    app.deliver(&mail(
        from,
        "support@pypi.example",
        "Lost my 2FA device",
        &format!("open-{now}@requester.example"),
        "",
        &format!(
            "Username: {username}\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n"
        ),
    ));
    app.pass(now).await;
    the_case(app)
}

/// The challenge mails the linked address received, oldest first.
fn challenges(app: &TestApp) -> Vec<Sent> {
    sent_to(app, LINKED)
        .into_iter()
        .filter(|s| template_of(app, s) != "owner_receipt")
        .collect()
}

/// The requester replies on the case thread.
async fn requester_says(app: &mut TestApp, case: &Case, id: &str, body: &str, now: i64) {
    let to = app.reply_address(&case.id);
    app.deliver(&reply(
        REQUESTER,
        &to,
        &format!("Re: [Case {}] Lost my 2FA device", case.id),
        id,
        "",
        body,
    ));
    app.pass(now).await;
}

/// The owner of the linked address answers on the challenge thread.
async fn owner_says(app: &mut TestApp, case: &Case, id: &str, body: &str, now: i64) {
    let challenge = challenges(app)
        .into_iter()
        .next_back()
        .expect("a challenge was sent");
    let to = app.challenge_address(&case.id);
    assert_eq!(
        challenge.reply_to, to,
        "the challenge thread has its own reply address"
    );
    let body = format!("{body}\r\n\r\n{}", quoted(&challenge.text));
    app.deliver(&reply(
        LINKED,
        &to,
        &format!("Re: {}", challenge.subject),
        id,
        &challenge.message_id,
        &body,
    ));
    app.pass(now).await;
}

// ---------------------------------------------------------------------------
// Verified.

#[tokio::test]
async fn the_code_sent_back_on_the_case_verifies() {
    for dir in BOTH {
        let (mut app, service) = app_with(dir, "").await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        assert_eq!(case.state, CaseState::AwaitingVerification, "{dir:?}");
        assert!(
            matches!(case.verification, Verification::Pending(_)),
            "{dir:?}: {:?}",
            case.verification
        );
        assert_eq!(
            case.linked_address_masked.as_deref(),
            Some("a***@l***.example"),
            "{dir:?}"
        );
        if dir == Dir::Http {
            assert!(
                service.hits.load(Ordering::SeqCst) >= 1,
                "the HTTP directory was asked"
            );
        }
        let sent = challenges(&app);
        assert_eq!(
            sent.len(),
            1,
            "{dir:?}: one challenge to the linked address"
        );
        assert_eq!(sent[0].to, vec![LINKED.to_owned()]);
        assert_eq!(
            templates_to(&app, REQUESTER),
            ["acknowledgement"],
            "{dir:?}"
        );
        let code = code_of(&sent[0]);
        assert!(
            !sent[0].text.contains(REQUESTER),
            "the owner sees the requester masked only"
        );
        let masked = [
            recoverydesk::verify::mask_address(REQUESTER),
            recoverydesk::verify::mask_requester_for_owner(REQUESTER),
        ];
        assert!(
            masked.iter().any(|m| sent[0].text.contains(m.as_str())),
            "the owner is told who asked, masked:\n{}",
            sent[0].text
        );
        assert!(
            sent[0].text.contains("alice"),
            "the owner is told which account"
        );
        // Staff see the linked address masked, never in full; the requester
        // sees neither.
        for note in sent_to(&app, STAFF) {
            assert!(
                !note.text.contains(LINKED),
                "{dir:?}: staff see the linked address in full"
            );
        }
        let staff_new = sent_to(&app, STAFF)
            .into_iter()
            .find(|s| template_of(&app, s) == "staff_new_case")
            .expect("staff told of the new case");
        assert!(
            staff_new.text.contains("a***@l***.example"),
            "{}",
            staff_new.text
        );
        for mail in sent_to(&app, REQUESTER) {
            let text = all_text(&mail);
            assert!(
                !text.contains("linked.example") && !text.contains("a***@l***"),
                "{dir:?}: {}",
                mail.text
            );
        }

        requester_says(
            &mut app,
            &case,
            "code-1@requester.example",
            &format!("Here is the code: {code}\r\n"),
            T0 + HOUR,
        )
        .await;
        let case = the_case(&app);
        let Verification::Verified { how, .. } = &case.verification else {
            panic!(
                "{dir:?}: not verified: {:?}\n{}",
                case.verification,
                events_text(&app, &case)
            );
        };
        assert!(how.contains("code"), "{how}");
        assert_eq!(
            case.state,
            CaseState::AwaitingStaff,
            "{dir:?}: no waiting period configured"
        );
        assert!(!case.timers.contains_key(&TimerKind::ChallengeExpiry));
        assert!(!case.timers.contains_key(&TimerKind::ChallengeReminder));
        assert_eq!(
            templates_to(&app, REQUESTER),
            ["acknowledgement", "verified"],
            "{dir:?}"
        );
        let staff = templates_to(&app, STAFF);
        assert!(
            staff.contains(&"staff_verified".to_owned()),
            "{dir:?}: staff told: {staff:?}"
        );
        let told = sent_to(&app, STAFF)
            .into_iter()
            .find(|s| template_of(&app, s) == "staff_verified")
            .unwrap();
        assert!(
            told.text.contains("code"),
            "staff learn how it was proven:\n{}",
            told.text
        );
        assert!(
            !contains_code(&all_text(&told), &code),
            "{dir:?}: the code is in the staff notification:\n{}",
            told.text
        );
    }
}

#[tokio::test]
async fn the_code_verifies_from_any_address_written_in_lower_case_or_without_the_dash() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let typed = code.replace('-', "").to_lowercase();
    let to = app.reply_address(&case.id);
    app.deliver(&reply(
        "other-phone@elsewhere.example",
        &to,
        "Re: my case",
        "code-2@elsewhere.example",
        "",
        &format!("code {typed}\r\n"),
    ));
    app.pass(T0 + HOUR).await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::Verified { .. }),
        "{:?}",
        case.verification
    );
}

#[tokio::test]
async fn the_owners_yes_on_the_challenge_thread_verifies() {
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        owner_says(
            &mut app,
            &case,
            "yes-1@linked.example",
            "Yes, that was me.",
            T0 + HOUR,
        )
        .await;
        let case = the_case(&app);
        let Verification::Verified { how, .. } = &case.verification else {
            panic!(
                "{dir:?}: not verified: {:?}\n{}",
                case.verification,
                events_text(&app, &case)
            );
        };
        assert!(how.contains("owner"), "{how}");
        assert_eq!(case.state, CaseState::AwaitingStaff);
        assert_eq!(
            templates_to(&app, REQUESTER),
            ["acknowledgement", "verified"],
            "{dir:?}"
        );
        assert!(templates_to(&app, STAFF).contains(&"staff_verified".to_owned()));
        // Nothing but the one challenge went to the owner, and the
        // receipt for their answer (13.9).
        assert_eq!(challenges(&app).len(), 1, "{dir:?}");
        assert_eq!(
            templates_to(&app, LINKED),
            ["challenge", "owner_receipt"],
            "{dir:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Denied.

#[tokio::test]
async fn the_owners_no_flags_a_takeover_alerts_staff_at_once_and_tells_the_requester_nothing() {
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        let code = code_of(&challenges(&app)[0]);
        let staff_before = sent_to(&app, STAFF).len();
        let requester_before = sent_to(&app, REQUESTER).len();
        owner_says(
            &mut app,
            &case,
            "no-1@linked.example",
            "No, I did not ask for this. This wasn't me!",
            T0 + HOUR,
        )
        .await;
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Denied { .. }),
            "{dir:?}: {:?}",
            case.verification
        );
        assert!(
            case.flags.contains(&Flag::TakeoverAttempt),
            "{:?}",
            case.flags
        );
        assert_eq!(case.priority, Priority::High);
        // Staff in the same pass.
        let staff: Vec<String> = sent_to(&app, STAFF)[staff_before..]
            .iter()
            .map(|s| template_of(&app, s))
            .collect();
        assert!(
            staff.contains(&"staff_denied".to_owned()),
            "{dir:?}: {staff:?}"
        );
        // The requester: nothing at all from the denial.
        assert_eq!(
            sent_to(&app, REQUESTER).len(),
            requester_before,
            "{dir:?}: the requester heard of the denial"
        );
        assert!(!case.timers.contains_key(&TimerKind::ChallengeExpiry));

        // The code no longer verifies, and what the requester hears is neutral.
        requester_says(
            &mut app,
            &case,
            "late-code@requester.example",
            &format!("The code is {code}. Any update?\r\n"),
            T0 + 2 * HOUR,
        )
        .await;
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Denied { .. }),
            "{dir:?}: {:?}",
            case.verification
        );
        for sent in &sent_to(&app, REQUESTER)[requester_before..] {
            let text = all_text(sent).to_lowercase();
            for word in [
                "takeover",
                "denied",
                "not you",
                "wasn't me",
                "did not ask",
                "objected",
                "alert",
            ] {
                assert!(
                    !text.contains(word),
                    "{dir:?}: the requester was told {word:?}:\n{}",
                    sent.text
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Wrong codes, quoted codes.

const WRONG: [&str; 6] = [
    "AB2C-DE3F",
    "GH4J-KL5M",
    "NP6Q-RS7T",
    "UV8W-XY9Z",
    "Z2Z3-Y4Y5",
    "Q7Q8-W9W2",
];

#[tokio::test]
async fn five_wrong_codes_lock_the_challenge_and_the_right_one_then_fails() {
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        let code = code_of(&challenges(&app)[0]);
        let wrong: Vec<&str> = WRONG
            .iter()
            .copied()
            .filter(|w| *w != code)
            .take(5)
            .collect();
        for (i, w) in wrong.iter().enumerate() {
            // An hour apart: the per-recipient rate limit is not what is tested.
            let now = T0 + (i as i64 + 1) * HOUR;
            requester_says(
                &mut app,
                &case,
                &format!("wrong-{i}@requester.example"),
                &format!("My code: {w}\r\n"),
                now,
            )
            .await;
            let case = the_case(&app);
            if i < 4 {
                assert_eq!(
                    attempts_left(&case),
                    4 - i as u32,
                    "{dir:?}: one attempt per wrong code"
                );
                let last = sent_to(&app, REQUESTER).into_iter().next_back().unwrap();
                assert_eq!(template_of(&app, &last), "challenge_sent");
            }
        }
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Locked { .. }),
            "{dir:?}: {:?}",
            case.verification
        );
        assert!(case.flags.contains(&Flag::ChallengeLocked));
        assert_eq!(case.state, CaseState::AwaitingStaff);
        let staff = templates_to(&app, STAFF);
        assert!(
            staff.iter().any(|t| t == "staff_nudge"),
            "{dir:?}: staff told of the lock: {staff:?}"
        );
        requester_says(
            &mut app,
            &case,
            "right-late@requester.example",
            &format!("Sorry, it is {code}\r\n"),
            T0 + 7 * HOUR,
        )
        .await;
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Locked { .. }),
            "{dir:?}: the right code after the lock: {:?}",
            case.verification
        );
        // Locking sent no new challenge.
        assert_eq!(challenges(&app).len(), 1);
    }
}

#[tokio::test]
async fn a_code_only_in_quoted_text_neither_verifies_nor_uses_an_attempt() {
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        let challenge = challenges(&app).remove(0);
        let code = code_of(&challenge);

        // The requester forwards the challenge mail as quoted history.
        let body = format!("I got this, what now?\r\n\r\n{}", quoted(&challenge.text));
        requester_says(
            &mut app,
            &case,
            "quoted-1@requester.example",
            &body,
            T0 + HOUR,
        )
        .await;
        let case = the_case(&app);
        assert_eq!(
            attempts_left(&case),
            5,
            "{dir:?}: a quoted code used an attempt"
        );
        assert_eq!(case.state, CaseState::AwaitingVerification);
        assert!(
            events_text(&app, &case).contains("quoted"),
            "{}",
            events_text(&app, &case)
        );

        // The owner quoting the challenge without saying yes or no.
        owner_says(
            &mut app,
            &case,
            "quoted-2@linked.example",
            "What is this about?",
            T0 + 2 * HOUR,
        )
        .await;
        let case = the_case(&app);
        assert_eq!(
            attempts_left(&case),
            5,
            "{dir:?}: a quoted code on the challenge thread used an attempt"
        );

        // A wrong code in the new text with the right one quoted below: one attempt, not verified.
        let body = format!(
            "Is it {}?\r\n\r\n{}",
            WRONG.iter().find(|w| **w != code).unwrap(),
            quoted(&challenge.text)
        );
        requester_says(
            &mut app,
            &case,
            "quoted-3@requester.example",
            &body,
            T0 + 3 * HOUR,
        )
        .await;
        let case = the_case(&app);
        assert_eq!(attempts_left(&case), 4, "{dir:?}");

        // Written in the new text, it verifies.
        requester_says(
            &mut app,
            &case,
            "quoted-4@requester.example",
            &format!("{code}\r\n"),
            T0 + 4 * HOUR,
        )
        .await;
        assert!(
            matches!(the_case(&app).verification, Verification::Verified { .. }),
            "{dir:?}"
        );
    }
}

#[tokio::test]
async fn guesses_packed_into_one_message_each_use_an_attempt() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let wrong: Vec<&str> = WRONG.iter().copied().filter(|w| *w != code).collect();
    // Two guesses: two attempts.
    requester_says(
        &mut app,
        &case,
        "packed-1@requester.example",
        &format!("{} {}\r\n", wrong[0], wrong[1]),
        T0 + HOUR,
    )
    .await;
    assert_eq!(attempts_left(&the_case(&app)), 3);
    // Three wrong guesses before the right one: only three are checked, the
    // right one is never reached, and the challenge locks.
    let body = format!("{}\r\n{}\r\n{}\r\n{code}\r\n", wrong[2], wrong[3], wrong[4]);
    requester_says(
        &mut app,
        &case,
        "packed-2@requester.example",
        &body,
        T0 + 2 * HOUR,
    )
    .await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::Locked { .. }),
        "the code hidden behind the guesses: {:?}",
        case.verification
    );
}

#[tokio::test]
async fn the_right_code_among_fewer_guesses_than_attempts_left_verifies() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let wrong = WRONG.iter().find(|w| **w != code).unwrap();
    requester_says(
        &mut app,
        &case,
        "among-1@requester.example",
        &format!("{wrong}? or {code}?\r\n"),
        T0 + HOUR,
    )
    .await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Verified { .. }
    ));
}

#[tokio::test]
async fn the_code_in_a_fresh_message_rather_than_a_reply_is_not_counted() {
    // A fresh mail is tied to the case only by its From, which anyone can
    // write (issue 14 item 3): its codes are neither a proof nor attempts.
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        open_case(&mut app, REQUESTER, "alice", T0).await;
        let code = code_of(&challenges(&app)[0]);
        // A new mail to the support address, no reply headers, no tag.
        app.deliver(&mail(
            REQUESTER,
            "support@pypi.example",
            "My verification code",
            "fresh-code@requester.example",
            "",
            &format!("Hello, the code I received is {code}.\r\n"),
        ));
        app.pass(T0 + HOUR).await;
        let case = the_case(&app);
        assert!(
            matches!(&case.verification, Verification::Pending(ch) if ch.attempts_left == 5),
            "{dir:?}: {:?}\n{}",
            case.verification,
            events_text(&app, &case)
        );
        assert_eq!(
            templates_to(&app, REQUESTER),
            ["acknowledgement", "duplicate"],
            "{dir:?}"
        );
    }
}

#[tokio::test]
async fn the_owners_no_after_expiry_or_a_lock_still_alerts_staff() {
    // After expiry.
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    app.pass(T0 + 2 * DAY + 60).await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Expired { .. }
    ));
    let staff_before = sent_to(&app, STAFF).len();
    let requester_before = sent_to(&app, REQUESTER).len();
    owner_says(
        &mut app,
        &case,
        "late-no@linked.example",
        "No, this wasn't me. I never asked for this.",
        T0 + 3 * DAY,
    )
    .await;
    let case = the_case(&app);
    assert!(
        case.flags.contains(&Flag::TakeoverAttempt),
        "a late no was ignored: {:?}",
        case.flags
    );
    assert!(
        matches!(case.verification, Verification::Denied { .. }),
        "{:?}",
        case.verification
    );
    let staff: Vec<String> = sent_to(&app, STAFF)[staff_before..]
        .iter()
        .map(|s| template_of(&app, s))
        .collect();
    assert!(staff.contains(&"staff_denied".to_owned()), "{staff:?}");
    assert_eq!(sent_to(&app, REQUESTER).len(), requester_before);
    // A denied case never challenges again, however the requester asks.
    requester_says(
        &mut app,
        &case,
        "late-ask@requester.example",
        "Please send the code again.\r\n",
        T0 + 3 * DAY + HOUR,
    )
    .await;
    assert_eq!(
        challenges(&app).len(),
        1,
        "a new challenge after the owner said no"
    );

    // After the requester locked it with wrong guesses.
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let guesses: Vec<&str> = WRONG
        .iter()
        .copied()
        .filter(|w| *w != code)
        .take(5)
        .collect();
    requester_says(
        &mut app,
        &case,
        "lock@requester.example",
        &guesses.join("\r\n"),
        T0 + HOUR,
    )
    .await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Locked { .. }
    ));
    let staff_before = sent_to(&app, STAFF).len();
    owner_says(
        &mut app,
        &case,
        "locked-no@linked.example",
        "No! I did not request this.",
        T0 + 2 * HOUR,
    )
    .await;
    let case = the_case(&app);
    assert!(case.flags.contains(&Flag::TakeoverAttempt));
    let staff: Vec<String> = sent_to(&app, STAFF)[staff_before..]
        .iter()
        .map(|s| template_of(&app, s))
        .collect();
    assert!(staff.contains(&"staff_denied".to_owned()), "{staff:?}");
}

/// An HTML-only message (as many webmail and phone clients send).
fn html_mail(from: &str, to: &str, subject: &str, message_id: &str, html: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
    )
}

#[tokio::test]
async fn html_only_replies_a_quoted_code_in_a_blockquote_is_no_attempt_a_typed_one_verifies() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let to = app.reply_address(&case.id);
    let quoted_html = format!(
        "<div dir=\"ltr\">Thanks, I will look for it.</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, 23 Nov 2026 at 09:00, PyPI Support &lt;support@pypi.example&gt; wrote:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0 0 0 .8ex\"><div>Your code is <b>{code}</b></div></blockquote></div>"
    );
    app.deliver(&html_mail(
        REQUESTER,
        &to,
        "Re: my case",
        "html-1@requester.example",
        &quoted_html,
    ));
    app.pass(T0 + HOUR).await;
    let case = the_case(&app);
    assert_eq!(
        attempts_left(&case),
        5,
        "a code in a blockquote used an attempt\n{}",
        events_text(&app, &case)
    );
    let typed = format!("<div dir=\"ltr\">Here it is: <b>{code}</b></div>");
    app.deliver(&html_mail(
        REQUESTER,
        &to,
        "Re: my case",
        "html-2@requester.example",
        &typed,
    ));
    app.pass(T0 + 2 * HOUR).await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Verified { .. }
    ));
}

#[tokio::test]
async fn the_owners_answer_threads_by_references_when_the_client_ignores_reply_to() {
    for (answer, verified) in [("Yes, it was me.", true), ("No, that wasn't me.", false)] {
        let (mut app, _) = app_with(Dir::File, "").await;
        open_case(&mut app, REQUESTER, "alice", T0).await;
        let challenge = challenges(&app).remove(0);
        app.deliver(&reply(
            LINKED,
            "support@pypi.example",
            &format!("Re: {}", challenge.subject),
            "by-refs@linked.example",
            &challenge.message_id,
            &format!("{answer}\r\n\r\n{}", quoted(&challenge.text)),
        ));
        app.pass(T0 + HOUR).await;
        let case = the_case(&app);
        if verified {
            assert!(
                matches!(case.verification, Verification::Verified { .. }),
                "{answer}: {:?}",
                case.verification
            );
        } else {
            assert!(
                matches!(case.verification, Verification::Denied { .. }),
                "{answer}: {:?}",
                case.verification
            );
            assert!(templates_to(&app, STAFF).contains(&"staff_denied".to_owned()));
        }
    }
}

#[tokio::test]
async fn the_owner_may_answer_in_another_language() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    owner_says(
        &mut app,
        &case,
        "ja@linked.example",
        "Ja, das war ich.",
        T0 + HOUR,
    )
    .await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Verified { .. }
    ));

    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    owner_says(
        &mut app,
        &case,
        "nein@linked.example",
        "Nein, das war ich nicht.",
        T0 + HOUR,
    )
    .await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::Denied { .. }),
        "{:?}",
        case.verification
    );
    assert!(case.flags.contains(&Flag::TakeoverAttempt));
}

#[tokio::test]
async fn a_second_requester_for_the_same_account_gets_no_second_challenge_and_nothing_telling() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let other = "second@other.example";
    app.deliver(&complete_request(other, "second-1@other.example"));
    app.pass(T0 + HOUR).await;
    assert_eq!(app.cases().len(), 1, "joined, not a new case");
    assert_eq!(challenges(&app).len(), 1, "no second challenge");
    let case_now = the_case(&app);
    assert_eq!(case_now.id, case.id);
    assert!(case_now.other_requesters.iter().any(|r| r == other));
    assert!(matches!(case_now.verification, Verification::Pending(_)));
    let replies = sent_to(&app, other);
    assert_eq!(replies.len(), 1);
    for sent in &replies {
        let text = all_text(sent);
        assert!(!contains_code(&text, &code));
        assert!(
            !text.contains("linked.example") && !text.contains("l***"),
            "{}",
            sent.text
        );
        assert!(
            !text.contains(REQUESTER),
            "the first requester is named to the second:\n{}",
            sent.text
        );
        assert!(
            !text.contains(case.id.as_str()),
            "the case id is named to the second requester:\n{}",
            sent.text
        );
    }
}

// ---------------------------------------------------------------------------
// Expiry.

#[tokio::test]
async fn one_reminder_with_a_fresh_code_goes_to_the_linked_address_before_expiry() {
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        let first = code_of(&challenges(&app)[0]);
        let expires_at = match &case.verification {
            Verification::Pending(ch) => ch.expires_at,
            other => panic!("{other:?}"),
        };
        assert_eq!(expires_at, T0 + 2 * DAY, "default lifetime 48 h");

        app.pass(T0 + 20 * HOUR).await;
        assert_eq!(challenges(&app).len(), 1, "{dir:?}: no reminder yet");
        app.pass(T0 + DAY + 60).await;
        let sent = challenges(&app);
        assert_eq!(sent.len(), 2, "{dir:?}: the reminder");
        assert_eq!(template_of(&app, &sent[1]), "challenge_reminder");
        assert_eq!(
            sent[1].reply_to,
            app.challenge_address(&case.id),
            "on the challenge thread"
        );
        let fresh = code_of(&sent[1]);
        assert_ne!(fresh, first, "the reminder carries a fresh code");
        assert!(!sent_to(&app, REQUESTER)
            .iter()
            .any(|s| contains_code(&all_text(s), &fresh)));

        // Only once.
        app.pass(T0 + DAY + 12 * HOUR).await;
        app.pass(T0 + 2 * DAY - 60).await;
        assert_eq!(challenges(&app).len(), 2, "{dir:?}: one reminder only");
        assert!(matches!(
            the_case(&app).verification,
            Verification::Pending(_)
        ));

        // Expired: nothing more to the linked address; a late code does not verify.
        app.pass(T0 + 2 * DAY + 60).await;
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Expired { .. }),
            "{dir:?}: {:?}",
            case.verification
        );
        assert_eq!(
            challenges(&app).len(),
            2,
            "{dir:?}: expiry sends nothing to the owner"
        );
        requester_says(
            &mut app,
            &case,
            "late@requester.example",
            &format!("Here: {fresh}\r\n"),
            T0 + 2 * DAY + HOUR,
        )
        .await;
        let case = the_case(&app);
        assert!(
            !matches!(case.verification, Verification::Verified { .. }),
            "{dir:?}: an expired code verified\n{}",
            events_text(&app, &case)
        );
        // Asking again brings a new challenge (within the daily limit), with a new code.
        let all = challenges(&app);
        if all.len() > 2 {
            let renewed = code_of(all.last().unwrap());
            assert!(renewed != fresh && renewed != first);
            assert!(matches!(case.verification, Verification::Pending(_)));
            assert!(all.iter().all(|s| s.to == vec![LINKED.to_owned()]));
        }
    }
}

// ---------------------------------------------------------------------------
// The directory is down.

#[tokio::test]
async fn a_directory_5xx_makes_the_case_wait_and_retry_never_no_account() {
    let (mut app, service) = app_with(Dir::Http, "").await;
    service.down.store(true, Ordering::SeqCst);
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    assert!(
        service.failures.load(Ordering::SeqCst) >= 1,
        "the service was asked"
    );
    assert!(
        matches!(case.verification, Verification::LookupPending { tries: 1 }),
        "{:?}\n{}",
        case.verification,
        events_text(&app, &case)
    );
    assert_eq!(case.state, CaseState::AwaitingVerification);
    let retry_at = *case
        .timers
        .get(&TimerKind::DirectoryRetry)
        .expect("a retry timer");
    assert!(
        retry_at > T0 && retry_at <= T0 + HOUR,
        "retry at {retry_at}"
    );
    assert!(challenges(&app).is_empty());
    assert_eq!(templates_to(&app, REQUESTER), ["acknowledgement"]);

    // Still down at the retry: waits again, still not "no account".
    app.pass(retry_at).await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::LookupPending { tries: 2 }),
        "{:?}",
        case.verification
    );
    assert!(case.timers.contains_key(&TimerKind::DirectoryRetry));
    assert!(challenges(&app).is_empty());
    assert_eq!(
        templates_to(&app, REQUESTER),
        ["acknowledgement"],
        "no mail per failed retry"
    );

    // The service recovers: the next retry challenges the linked address.
    service.down.store(false, Ordering::SeqCst);
    let next = case.timers[&TimerKind::DirectoryRetry];
    app.pass(next).await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::Pending(_)),
        "{:?}\n{}",
        case.verification,
        events_text(&app, &case)
    );
    assert!(!case.timers.contains_key(&TimerKind::DirectoryRetry));
    let sent = challenges(&app);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        templates_to(&app, REQUESTER),
        ["acknowledgement", "challenge_sent"]
    );
    let code = code_of(&sent[0]);
    requester_says(
        &mut app,
        &case,
        "after-outage@requester.example",
        &format!("{code}\r\n"),
        next + HOUR,
    )
    .await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Verified { .. }
    ));
}

#[tokio::test]
async fn a_directory_down_on_an_unknown_name_is_not_told_apart_from_a_known_one() {
    // While the directory is down, the requester's mail for an unknown name
    // and for a known one must read the same; after recovery, both get the
    // same "we have written" note.
    let mut texts = Vec::new();
    for username in ["alice", "zelda"] {
        let (mut app, service) = app_with(Dir::Http, "").await;
        service.down.store(true, Ordering::SeqCst);
        let case = open_case(&mut app, REQUESTER, username, T0).await;
        service.down.store(false, Ordering::SeqCst);
        app.pass(case.timers[&TimerKind::DirectoryRetry]).await;
        let case = the_case(&app);
        assert_eq!(case.state, CaseState::AwaitingVerification, "{username}");
        texts.push(
            sent_to(&app, REQUESTER)
                .iter()
                .map(|s| normalise(s, username))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(texts[0].len(), 2);
    assert_eq!(texts[0], texts[1]);
}

#[tokio::test]
async fn a_directory_timeout_is_waited_out_like_a_5xx() {
    let (mut app, service) = app_with(Dir::Http, "").await;
    service.slow.store(true, Ordering::SeqCst);
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    assert!(
        matches!(case.verification, Verification::LookupPending { tries: 1 }),
        "{:?}\n{}",
        case.verification,
        events_text(&app, &case)
    );
    assert!(
        events_text(&app, &case).contains("timed out"),
        "{}",
        events_text(&app, &case)
    );
    assert!(challenges(&app).is_empty());
    service.slow.store(false, Ordering::SeqCst);
    app.pass(case.timers[&TimerKind::DirectoryRetry]).await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Pending(_)
    ));
    assert_eq!(challenges(&app).len(), 1);
}

#[tokio::test]
async fn the_reminders_fresh_code_is_not_stored_either() {
    let (mut app, _) = app_with(Dir::File, "").await;
    open_case(&mut app, REQUESTER, "alice", T0).await;
    app.pass(T0 + DAY + 60).await;
    let sent = challenges(&app);
    assert_eq!(sent.len(), 2);
    let codes = [code_of(&sent[0]), code_of(&sent[1])];
    for (tree, value) in store_dump(&mut app).await {
        for code in &codes {
            for s in spellings(code) {
                assert!(
                    !bytes_contain(&value, &s),
                    "a code is in the store tree {tree:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Lost access to the linked address.

#[tokio::test]
async fn a_lost_linked_address_goes_to_staff_without_a_challenge_and_a_named_address_is_never_written_to(
) {
    for dir in BOTH {
        let (mut app, _) = app_with(dir, "").await;
        app.deliver(&mail(
            REQUESTER,
            "support@pypi.example",
            "Lost my 2FA device and my old email",
            "lost-1@requester.example",
            "",
            "Username: alice\r\nI lost my phone with the authenticator app.\r\nI no longer have access to the email address on the account; the old mailbox was deleted.\r\nPlease use my new address new-me@elsewhere.example instead.\r\nI maintain the alice-utils package.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n",
        ));
        app.pass(T0).await;
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Skipped { .. }),
            "{dir:?}: {:?}",
            case.verification
        );
        assert_eq!(case.state, CaseState::AwaitingStaff);
        assert!(challenges(&app).is_empty(), "{dir:?}: no challenge");
        assert!(
            sent_to(&app, "new-me@elsewhere.example").is_empty(),
            "{dir:?}: an address named in the body was written to"
        );
        assert_eq!(templates_to(&app, REQUESTER), ["acknowledgement"]);
        let staff = sent_to(&app, STAFF);
        assert!(
            staff
                .iter()
                .any(|s| template_of(&app, s) == "staff_new_case"),
            "{dir:?}"
        );
        let note = staff
            .iter()
            .find(|s| template_of(&app, s) == "staff_new_case")
            .unwrap();
        assert!(
            note.text.contains("alice-utils"),
            "staff see the proofs offered:\n{}",
            note.text
        );
        // Every mail so far went to the requester or staff, nowhere else.
        for sent in app.sent() {
            assert!(
                sent.to.iter().all(|t| t == REQUESTER || t == STAFF),
                "{dir:?}: {:?}",
                sent.to
            );
        }
        // A later reply does not start a challenge either.
        requester_says(
            &mut app,
            &case,
            "lost-2@requester.example",
            "Any news?\r\n",
            T0 + DAY,
        )
        .await;
        assert!(challenges(&app).is_empty());
        assert!(sent_to(&app, "new-me@elsewhere.example").is_empty());
    }
}

// ---------------------------------------------------------------------------
// Waiting period.

async fn app_with_waiting_period(dir: Dir) -> (TestApp, Service) {
    let (mut app, service) = app_with(dir, "").await;
    reconfigure(&mut app, |t| {
        t.replace("waiting_period = \"0s\"", "waiting_period = \"7d\"")
    })
    .await;
    assert_eq!(app.worker.pipeline.policy.waiting_period, 7 * DAY);
    (app, service)
}

#[tokio::test]
async fn the_waiting_period_is_honoured_before_the_case_reaches_staff() {
    for dir in BOTH {
        let (mut app, _) = app_with_waiting_period(dir).await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        let code = code_of(&challenges(&app)[0]);
        requester_says(
            &mut app,
            &case,
            "wp-code@requester.example",
            &format!("{code}\r\n"),
            T0 + HOUR,
        )
        .await;
        let case = the_case(&app);
        assert!(matches!(case.verification, Verification::Verified { .. }));
        assert_eq!(case.state, CaseState::WaitingPeriod, "{dir:?}");
        assert_eq!(
            case.timers.get(&TimerKind::WaitingPeriodEnd),
            Some(&(T0 + HOUR + 7 * DAY))
        );
        let verified = sent_to(&app, REQUESTER).into_iter().next_back().unwrap();
        assert_eq!(template_of(&app, &verified), "verified");
        assert!(verified.text.contains("7 days"), "{}", verified.text);

        app.pass(T0 + HOUR + 7 * DAY - 60).await;
        assert_eq!(
            the_case(&app).state,
            CaseState::WaitingPeriod,
            "{dir:?}: ended early"
        );
        let staff_before = sent_to(&app, STAFF).len();
        app.pass(T0 + HOUR + 7 * DAY + 60).await;
        let case = the_case(&app);
        assert_eq!(
            case.state,
            CaseState::AwaitingStaff,
            "{dir:?}: {}",
            events_text(&app, &case)
        );
        assert!(matches!(case.verification, Verification::Verified { .. }));
        let told = sent_to(&app, STAFF)[staff_before..].to_vec();
        assert!(
            told.iter().any(|s| template_of(&app, s) == "staff_verified"
                && s.text.contains("waiting period is over")),
            "{dir:?}: staff are told the case is ready: {:?}",
            told.iter().map(|s| &s.subject).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_denial_during_the_waiting_period_cancels_it() {
    for dir in BOTH {
        let (mut app, _) = app_with_waiting_period(dir).await;
        let case = open_case(&mut app, REQUESTER, "alice", T0).await;
        let code = code_of(&challenges(&app)[0]);
        requester_says(
            &mut app,
            &case,
            "wpd-code@requester.example",
            &format!("{code}\r\n"),
            T0 + HOUR,
        )
        .await;
        assert_eq!(the_case(&app).state, CaseState::WaitingPeriod);
        let requester_before = sent_to(&app, REQUESTER).len();
        let staff_before = sent_to(&app, STAFF).len();

        owner_says(
            &mut app,
            &case,
            "wpd-no@linked.example",
            "No. I never asked for this, this wasn't me.",
            T0 + 3 * DAY,
        )
        .await;
        let case = the_case(&app);
        assert!(
            matches!(case.verification, Verification::Denied { .. }),
            "{dir:?}: {:?}",
            case.verification
        );
        assert!(case.flags.contains(&Flag::TakeoverAttempt));
        assert!(
            !case.timers.contains_key(&TimerKind::WaitingPeriodEnd),
            "{dir:?}: the waiting period still runs"
        );
        assert_eq!(case.state, CaseState::AwaitingStaff);
        let staff: Vec<String> = sent_to(&app, STAFF)[staff_before..]
            .iter()
            .map(|s| template_of(&app, s))
            .collect();
        assert!(
            staff.contains(&"staff_denied".to_owned()),
            "{dir:?}: {staff:?}"
        );
        assert_eq!(
            sent_to(&app, REQUESTER).len(),
            requester_before,
            "{dir:?}: the requester was told of the denial"
        );

        app.pass(T0 + HOUR + 8 * DAY).await;
        assert!(
            matches!(the_case(&app).verification, Verification::Denied { .. }),
            "{dir:?}: the denial was undone"
        );
    }
}

// ---------------------------------------------------------------------------
// No account enumeration.

static NORMALISE: once_cell::sync::Lazy<Vec<(Regex, &'static str)>> =
    once_cell::sync::Lazy::new(|| {
        [
            // Reply addresses (case id and MAC).
            (r"support\+[A-Za-z0-9.\-]+@pypi\.example", "REPLY-ADDRESS"),
            // Message-IDs, In-Reply-To, References.
            (
                r"<(?:rd-[0-9a-z]{6}\.)?\d+(?:\.[0-9a-z]+)?@pypi\.example>",
                "<MESSAGE-ID>",
            ),
            // Case ids.
            (r"(?i)\bRD-[0-9A-Z]{6}\b", "RD-CASE"),
            // Date header and dates in the text.
            (r"(?m)^Date: .*$", "Date: DATE"),
            (
                r"\b[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC",
                "DATE",
            ),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).unwrap(), to))
        .collect()
    });

/// A sent mail with ids, dates, Message-IDs, MIME boundaries, the reply
/// address and the username the requester typed replaced by placeholders.
fn normalise(sent: &Sent, username: &str) -> String {
    // Quoted-printable soft line breaks fall wherever the line length puts
    // them, which moves with the length of an id: undo them first.
    let mut text = sent.raw.replace("=\r\n", "");
    let boundary = Regex::new(r#"boundary="?([^";\r\n]+)"?"#).unwrap();
    let found: Vec<String> = boundary
        .captures_iter(&text)
        .map(|c| c[1].to_owned())
        .collect();
    for (i, b) in found.iter().enumerate() {
        text = text.replace(b.as_str(), &format!("BOUNDARY{i}"));
    }
    for (re, to) in NORMALISE.iter() {
        text = re.replace_all(&text, *to).into_owned();
    }
    let word = Regex::new(&format!(r"\b{}\b", regex::escape(username))).unwrap();
    word.replace_all(&text, "USERNAME").into_owned()
}

/// Runs the same conversation for one username in a fresh app and returns
/// what the requester received, normalised.
async fn requester_view(dir: Dir, username: &str) -> (Vec<String>, Vec<String>, Case) {
    let (mut app, _) = app_with(dir, "").await;
    let case = open_case(&mut app, REQUESTER, username, T0).await;
    // A wrong code.
    requester_says(
        &mut app,
        &case,
        "enum-1@requester.example",
        "Is it AB2C-DE3F?\r\n",
        T0 + HOUR,
    )
    .await;
    // A chase.
    requester_says(
        &mut app,
        &case,
        "enum-2@requester.example",
        "Any update on my case?\r\n",
        T0 + 2 * HOUR,
    )
    .await;
    // Expiry, the owner's reminder (if any), the requester's reminder.
    for day in 1..=6 {
        app.pass(T0 + day * DAY + 60).await;
    }
    // Asking again after expiry.
    requester_says(
        &mut app,
        &case,
        "enum-3@requester.example",
        "Nothing arrived, please send it again.\r\n",
        T0 + 6 * DAY + HOUR,
    )
    .await;
    // Two more wrong codes in one message (two attempts either way).
    requester_says(
        &mut app,
        &case,
        "enum-4@requester.example",
        "GH4J-KL5M or NP6Q-RS7T\r\n",
        T0 + 6 * DAY + 2 * HOUR,
    )
    .await;
    let sent = sent_to(&app, REQUESTER);
    let templates = sent.iter().map(|s| template_of(&app, s)).collect();
    let texts = sent.iter().map(|s| normalise(s, username)).collect();
    (templates, texts, the_case(&app))
}

#[tokio::test]
async fn the_requester_hears_the_same_for_an_account_one_without_an_address_and_an_unknown_name() {
    for dir in BOTH {
        let (t_alice, alice, case_alice) = requester_view(dir, "alice").await;
        let (t_noaddr, noaddr, case_noaddr) = requester_view(dir, "noaddr").await;
        let (t_unknown, unknown, case_unknown) = requester_view(dir, "nosuchuser").await;
        // The three cases really took different paths.
        assert!(
            matches!(case_alice.verification, Verification::Pending(_)),
            "{:?}",
            case_alice.verification
        );
        assert!(
            matches!(case_noaddr.verification, Verification::NoTarget { .. }),
            "{:?}",
            case_noaddr.verification
        );
        assert!(
            matches!(case_unknown.verification, Verification::NoTarget { .. }),
            "{:?}",
            case_unknown.verification
        );
        assert!(
            t_alice.len() >= 5,
            "{dir:?}: a real conversation: {t_alice:?}"
        );
        assert!(t_alice.contains(&"reminder".to_owned()), "{t_alice:?}");
        assert_eq!(t_alice, t_noaddr, "{dir:?}");
        assert_eq!(t_alice, t_unknown, "{dir:?}");
        for (i, ((a, n), u)) in alice.iter().zip(&noaddr).zip(&unknown).enumerate() {
            assert_eq!(
                a, n,
                "{dir:?}: mail {i} ({}) differs for an account without an address",
                t_alice[i]
            );
            assert_eq!(
                a, u,
                "{dir:?}: mail {i} ({}) differs for an unknown username",
                t_alice[i]
            );
        }
    }
}

/// Asks again and again after each short-lived challenge expires, past the
/// per-day limit of challenges.
async fn requester_view_past_the_daily_limit(username: &str) -> (Vec<String>, Vec<String>, usize) {
    let (mut app, _) = app_with(Dir::File, "challenge_ttl = \"1h\"").await;
    let case = open_case(&mut app, REQUESTER, username, T0).await;
    for round in 1..=4 {
        let at = T0 + 2 * round * HOUR;
        app.pass(at - HOUR + 60).await;
        requester_says(
            &mut app,
            &case,
            &format!("again-{round}@requester.example"),
            "Nothing arrived, please send it again.\r\n",
            at,
        )
        .await;
    }
    let sent = sent_to(&app, REQUESTER);
    let templates = sent.iter().map(|s| template_of(&app, s)).collect();
    let texts = sent.iter().map(|s| normalise(s, username)).collect();
    (templates, texts, challenges(&app).len())
}

#[tokio::test]
async fn the_daily_challenge_limit_reads_the_same_whether_or_not_the_account_exists() {
    let (t_alice, alice, challenged) = requester_view_past_the_daily_limit("alice").await;
    assert_eq!(challenged, 3, "at most three challenges a day: {t_alice:?}");
    for other in ["noaddr", "nosuchuser"] {
        let (t_other, texts, none) = requester_view_past_the_daily_limit(other).await;
        assert_eq!(none, 0);
        assert_eq!(t_alice, t_other, "{other}");
        for (i, (a, o)) in alice.iter().zip(&texts).enumerate() {
            assert_eq!(a, o, "mail {i} ({}) differs for {other}", t_alice[i]);
        }
    }
}

#[tokio::test]
async fn the_requester_hears_the_same_for_a_known_and_an_unknown_address_given_as_the_account() {
    for dir in BOTH {
        let (t_known, known, case_known) = requester_view(dir, "alice@linked.example").await;
        let (t_unknown, unknown, case_unknown) = requester_view(dir, "zzzzz@linked.example").await;
        assert_eq!(
            case_known.fields.lookup_address.as_deref(),
            Some("alice@linked.example")
        );
        assert!(
            matches!(case_known.verification, Verification::Pending(_)),
            "{dir:?}: {:?}",
            case_known.verification
        );
        assert!(
            matches!(case_unknown.verification, Verification::NoTarget { .. }),
            "{:?}",
            case_unknown.verification
        );
        assert_eq!(t_known, t_unknown, "{dir:?}");
        for (i, (k, u)) in known.iter().zip(&unknown).enumerate() {
            assert_eq!(
                k, u,
                "{dir:?}: mail {i} ({}) differs for an unknown address",
                t_known[i]
            );
        }
    }
}

#[tokio::test]
async fn a_yes_from_the_requester_or_in_reply_to_guessed_message_ids_never_verifies() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let challenge_id = challenges(&app)[0].message_id.clone();
    // "Yes" on the case thread is not the owner's yes.
    requester_says(
        &mut app,
        &case,
        "yes-case@requester.example",
        "Yes, that was me.\r\n",
        T0 + HOUR,
    )
    .await;
    assert!(matches!(
        the_case(&app).verification,
        Verification::Pending(_)
    ));
    // Nor in reply to everything the requester was sent, plus guesses at
    // the challenge's Message-ID made from theirs.
    let mut refs: Vec<String> = sent_to(&app, REQUESTER)
        .iter()
        .map(|s| s.message_id.clone())
        .collect();
    let seen = refs.clone();
    for id in &seen {
        let (local, domain) = id.split_once('@').unwrap();
        let parts: Vec<&str> = local.split('.').collect();
        if let Some(n) = parts.get(1).and_then(|n| n.parse::<i64>().ok()) {
            for k in (n - 12).max(0)..=n + 12 {
                let mut guess = parts.clone();
                let k = k.to_string();
                guess[1] = &k;
                refs.push(format!("{}@{domain}", guess.join(".")));
                refs.push(format!("{}.{k}@{domain}", parts[0]));
            }
        }
    }
    assert!(
        !refs.contains(&challenge_id),
        "the challenge's Message-ID was guessable from {seen:?}: {challenge_id}"
    );
    let guesses: Vec<String> = refs
        .iter()
        .filter(|r| !seen.contains(r))
        .map(|r| format!("<{r}>"))
        .collect();
    app.deliver(&mail(
        REQUESTER,
        "support@pypi.example",
        "Re: Confirm your account recovery",
        "yes-guess@requester.example",
        &format!("References: {}\r\n", guesses.join(" ")),
        "Yes, that was me.\r\n",
    ));
    app.pass(T0 + 2 * HOUR).await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::Pending(_)),
        "{:?}\n{}",
        case.verification,
        events_text(&app, &case)
    );
}

// ---------------------------------------------------------------------------
// Where the code goes, and where it never is.

/// Captures every log line the worker writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_code_goes_only_to_the_linked_address_and_is_never_stored_logged_exported_or_shown_to_staff(
) {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, not scoped: a callsite first hit by another test's thread
    // would otherwise stay cached as uninteresting. Other tests' lines land
    // here too; they carry other codes.
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this test binary");

    let (mut app, _) = app_with(Dir::File, "").await;
    let attacker = "mallory@attacker.example";
    let case = open_case(&mut app, attacker, "alice", T0).await;
    assert_eq!(case.requester, attacker);
    let sent = challenges(&app);
    assert_eq!(sent.len(), 1);
    let code = code_of(&sent[0]);
    for mail in app.sent() {
        if mail.message_id == sent[0].message_id {
            assert_eq!(mail.to, vec![LINKED.to_owned()]);
            continue;
        }
        assert!(
            !mail.to.iter().any(|t| t == LINKED),
            "other mail to the linked address: {}",
            mail.subject
        );
        assert!(
            !contains_code(&all_text(&mail), &code),
            "the code is in {:?} to {:?}",
            mail.subject,
            mail.to
        );
    }
    assert!(sent_to(&app, attacker)
        .iter()
        .all(|s| template_of(&app, s) != "challenge"));

    // The outbox kept no body once sent.
    let items = app.store().outbox_of(&case.id).unwrap();
    let challenge_item = items
        .iter()
        .find(|i| i.template.name() == "challenge")
        .expect("challenge queued");
    assert!(challenge_item.sent_at.is_some());
    assert_eq!(
        app.store().outbox_body(challenge_item.seq).unwrap(),
        None,
        "the challenge body stayed in the store"
    );
    for item in &items {
        assert!(
            app.store().outbox_body(item.seq).unwrap().is_none(),
            "{} kept its body",
            item.template
        );
    }

    // Every value of the store, the export, the log.
    let dump = store_dump(&mut app).await;
    assert!(
        dump.iter().any(|(tree, _)| tree == "cases"),
        "the dump read the store"
    );
    for (tree, value) in &dump {
        for s in spellings(&code) {
            assert!(
                !bytes_contain(value, &s),
                "the code is in the store tree {tree:?}"
            );
        }
    }
    let case = the_case(&app);
    let export =
        serde_json::to_string(&recoverydesk::report::export(app.store(), &case).unwrap()).unwrap();
    assert!(!contains_code(&export, &code), "the code is in the export");

    // The owner of the mailbox (writing from elsewhere) sends it back: verified.
    let to = app.reply_address(&case.id);
    app.deliver(&reply(
        "alice.personal@elsewhere.example",
        &to,
        "Re: my case",
        "proof@elsewhere.example",
        "",
        &format!("It was me. The code is {code}\r\n"),
    ));
    app.pass(T0 + HOUR).await;
    let case = the_case(&app);
    assert!(
        matches!(case.verification, Verification::Verified { .. }),
        "{:?}",
        case.verification
    );

    // Still nowhere but the challenge: no staff notification, no other mail.
    for mail in app.sent() {
        if mail.to == vec![LINKED.to_owned()] {
            continue;
        }
        assert!(
            !contains_code(&all_text(&mail), &code),
            "the code is in {:?} to {:?}:\n{}",
            mail.subject,
            mail.to,
            mail.text
        );
    }
    let export =
        serde_json::to_string(&recoverydesk::report::export(app.store(), &case).unwrap()).unwrap();
    assert!(
        !contains_code(&export, &code),
        "the code is in the export after verification"
    );
    assert!(!contains_code(&events_text(&app, &case), &code));
    // The raw mail the sender wrote is kept as received (ARCHITECTURE.md: raw
    // messages are kept); everything we derived from it is code-free.
    let dump = store_dump(&mut app).await;
    for (tree, value) in dump.iter().filter(|(t, _)| t != "raw") {
        for s in spellings(&code) {
            assert!(
                !bytes_contain(value, &s),
                "the code is in the store tree {tree:?} after verification"
            );
        }
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("sent"), "the log was captured: {logged}");
    assert!(!contains_code(&logged, &code), "the code is in a log line");
}

#[tokio::test]
async fn a_code_written_in_the_subject_line_does_not_leak_into_the_store_export_or_staff_mail() {
    let (mut app, _) = app_with(Dir::File, "").await;
    let case = open_case(&mut app, REQUESTER, "alice", T0).await;
    let code = code_of(&challenges(&app)[0]);
    let to = app.reply_address(&case.id);
    app.deliver(&reply(
        REQUESTER,
        &to,
        &format!("My code: {code}"),
        "subject-code@requester.example",
        "",
        "The code is in the subject.\r\n",
    ));
    app.pass(T0 + HOUR).await;
    let case = the_case(&app);
    for mail in app.sent() {
        if mail.to == vec![LINKED.to_owned()] {
            continue;
        }
        assert!(
            !contains_code(&all_text(&mail), &code),
            "the code is in {:?} to {:?}",
            mail.subject,
            mail.to
        );
    }
    let export =
        serde_json::to_string(&recoverydesk::report::export(app.store(), &case).unwrap()).unwrap();
    assert!(!contains_code(&export, &code), "the code is in the export");
    for (tree, value) in store_dump(&mut app)
        .await
        .iter()
        .filter(|(t, _)| t != "raw")
    {
        for s in spellings(&code) {
            assert!(
                !bytes_contain(value, &s),
                "the code is in the store tree {tree:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_challenge_never_goes_to_an_address_the_requester_names() {
    let (mut app, _) = app_with(Dir::File, "").await;
    // The requester gives the linked address's look-alike and asks us to use it.
    app.deliver(&mail(
        "mallory@attacker.example",
        "support@pypi.example",
        "Recovery",
        "named-1@attacker.example",
        "Reply-To: mallory@attacker.example\r\n",
        "Username: alice\r\nMy email on the account is alice@linked.example but please send the code to mallory@attacker.example.\r\nI lost my 2FA device. I still have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n",
    ));
    app.pass(T0).await;
    let sent = challenges(&app);
    assert_eq!(sent.len(), 1);
    let code = code_of(&sent[0]);
    for mail in sent_to(&app, "mallory@attacker.example") {
        assert!(!contains_code(&all_text(&mail), &code));
        assert_ne!(template_of(&app, &mail), "challenge");
    }
    assert_eq!(the_case(&app).requester, "mallory@attacker.example");
}

#[test]
fn the_normaliser_only_hides_what_it_should() {
    // A guard for the enumeration test: the normaliser must not hide text.
    let raw = "Subject: Case RD-7K3M9Q\r\nReply-To: support+rd-7k3m9q.abcdefgh@pypi.example\r\nMessage-ID: <rd-7k3m9q.12@pypi.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nAccount alice: we sent a message.\r\n";
    let sent = Sent {
        file: String::new(),
        raw: raw.into(),
        to: vec![],
        subject: String::new(),
        message_id: String::new(),
        text: String::new(),
        reply_to: String::new(),
        in_reply_to: String::new(),
    };
    let n = normalise(&sent, "alice");
    assert!(n.contains("Account USERNAME: we sent a message."), "{n}");
    assert!(
        n.contains("REPLY-ADDRESS") && n.contains("<MESSAGE-ID>") && n.contains("Case RD-CASE"),
        "{n}"
    );
    let mut other = sent.clone();
    other.raw = raw.replace("we sent", "we did not send");
    assert_ne!(normalise(&other, "alice"), n);
}
