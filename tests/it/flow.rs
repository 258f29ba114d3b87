//! End to end through the real pipeline: Maildir in, sled store, `.eml`
//! files out. Each test drives the clock through `app.pass(now)`.

use crate::common;

use common::*;
use recoverydesk::case::{CaseState, Flag};
use recoverydesk::demo::{SEED_2FA, SEED_PASSWORD};
use recoverydesk::domain::Priority;
use recoverydesk::request::{Claim, Field, Reason};

const SEED_2FA_FROM: &str = "iineolineii@gmail.example";
const SEED_PW_FROM: &str = "pat@home.example";

/// The demo's two accounts next to the harness's own.
const SEED_ACCOUNTS: &str = r#"
[[account]]
username = "iineolineii"
addresses = [{ address = "iineolineii@mailbox.example", verified = true, primary = true }]

[[account]]
username = "pwforgetter"
addresses = [{ address = "pw.forgetter@mailbox.example", verified = true, primary = true }]
"#;

/// An app whose directory also knows the seed accounts.
async fn seeded_app() -> TestApp {
    let mut app = TestApp::spawn().await;
    std::fs::write(
        app.dir.path().join("accounts.toml"),
        format!("{ACCOUNTS}\n{SEED_ACCOUNTS}"),
    )
    .unwrap();
    app.restart().await;
    app
}

/// Delivers raw bytes (not necessarily text) into the inbox.
fn deliver_bytes(app: &TestApp, name: &str, raw: &[u8]) {
    recoverydesk::source::maildir::deliver(&app.dir.path().join("inbox"), raw, name).unwrap();
}

/// The header block of a raw message (up to the first empty line).
fn header_block(raw: &str) -> &str {
    let end = raw
        .find("\r\n\r\n")
        .or_else(|| raw.find("\n\n"))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// Unfolded header values with this name in the top header block.
fn header_values(raw: &str, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in header_block(raw).lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case(name) {
                current = Some(v.trim().to_owned());
            }
        }
    }
    if let Some(c) = current {
        out.push(c);
    }
    out
}

/// Asserts the headers every outgoing message must carry.
fn assert_automatic_headers(all: &[Sent]) {
    assert!(!all.is_empty(), "nothing was sent");
    for s in all {
        let auto = header_values(&s.raw, "Auto-Submitted");
        assert_eq!(auto.len(), 1, "{}: one Auto-Submitted header", s.file);
        assert!(
            auto[0] == "auto-replied" || auto[0] == "auto-generated",
            "{}: Auto-Submitted {}",
            s.file,
            auto[0]
        );
        assert_eq!(
            header_values(&s.raw, "X-Auto-Response-Suppress"),
            vec!["All".to_string()],
            "{}",
            s.file
        );
        assert_eq!(
            header_values(&s.raw, "X-Recoverydesk-Loop"),
            vec!["rd-test".to_string()],
            "{}",
            s.file
        );
        assert!(!s.message_id.is_empty(), "{}: Message-ID", s.file);
    }
}

// ---------------------------------------------------------------- seeds

#[tokio::test]
async fn seed_2fa_request_is_understood_and_acknowledged_in_its_thread() {
    let mut app = seeded_app().await;
    app.deliver(SEED_2FA);
    let report = app.pass(T0).await;
    assert_eq!(report.errors, 0);
    assert_eq!(report.handled.len(), 1);

    let case = app.case_of(SEED_2FA_FROM);
    assert_eq!(case.fields.username.as_deref(), Some("iineolineii"));
    for reason in [
        Reason::Lost2faDevice,
        Reason::RecoveryCodesLostOrNotWorking,
        Reason::SuspectedCompromise,
    ] {
        assert!(
            case.fields.reasons.contains(&reason),
            "{reason:?} in {:?}",
            case.fields.reasons
        );
    }
    assert_eq!(case.fields.claims_email_access, Claim::Yes);
    assert!(
        case.missing.is_empty(),
        "nothing missing: {:?}",
        case.missing
    );
    // "reset without my knowledge": suspected compromise raises the priority.
    assert_eq!(case.priority, Priority::High);
    assert!(case.flags.contains(&Flag::SuspectedCompromise));
    assert_eq!(case.state, CaseState::AwaitingVerification);

    let acks = app.sent_to(SEED_2FA_FROM);
    assert_eq!(acks.len(), 1, "one acknowledgement");
    let ack = &acks[0];
    assert_eq!(
        ack.in_reply_to, "seed-2fa-1@gmail.example",
        "threaded under the request"
    );
    assert_eq!(ack.reply_to, app.reply_address(&case.id));
    assert!(
        ack.subject.contains(&format!("[Case {}]", case.id)),
        "{}",
        ack.subject
    );
    assert!(
        header_values(&ack.raw, "References")
            .iter()
            .any(|r| r.contains("<seed-2fa-1@gmail.example>")),
        "References"
    );
    assert!(
        ack.text.contains("iineolineii"),
        "shows the username: {}",
        ack.text
    );
    assert!(
        ack.text.contains("lost two-factor device"),
        "shows the reason: {}",
        ack.text
    );
    assert!(ack.text.contains(case.id.as_str()));

    // The challenge goes to the linked address only, on its own thread.
    let challenge = app.sent_to("iineolineii@mailbox.example");
    assert_eq!(challenge.len(), 1, "one challenge");
    assert_eq!(challenge[0].reply_to, app.challenge_address(&case.id));
    // Staff hear about the new case and the suspected compromise.
    let staff = app.sent_to("admins@pypi.example");
    assert!(
        staff
            .iter()
            .any(|s| s.subject.contains("HIGH PRIORITY") || s.text.contains("compromise")),
        "staff alerted"
    );
    assert_automatic_headers(&app.sent());
}

#[tokio::test]
async fn seed_password_request_is_asked_for_exactly_what_is_missing() {
    let mut app = seeded_app().await;
    app.deliver(SEED_PASSWORD);
    app.pass(T0).await;

    let case = app.case_of(SEED_PW_FROM);
    assert_eq!(case.fields.username.as_deref(), Some("pwforgetter"));
    assert!(
        case.fields.reasons.contains(&Reason::ForgotPassword),
        "{:?}",
        case.fields.reasons
    );
    assert!(
        !case.fields.reasons.contains(&Reason::Lost2faDevice),
        "never set up 2FA: {:?}",
        case.fields.reasons
    );
    assert_eq!(
        case.missing,
        vec![
            Field::EmailAccess,
            Field::CodeOfConduct,
            Field::DelayAcknowledged
        ]
    );
    assert_eq!(case.state, CaseState::AwaitingInfo);
    assert_eq!(case.priority, Priority::Normal);

    let acks = app.sent_to(SEED_PW_FROM);
    assert_eq!(acks.len(), 1);
    let ack = &acks[0];
    assert_eq!(ack.in_reply_to, "seed-pw-1@home.example");
    assert_eq!(ack.reply_to, app.reply_address(&case.id));
    assert!(
        ack.subject.contains(&format!("[Case {}]", case.id)),
        "{}",
        ack.subject
    );
    assert!(ack.text.contains("pwforgetter"), "understood: {}", ack.text);
    assert!(
        ack.text.contains("forgotten password"),
        "understood: {}",
        ack.text
    );
    assert!(
        ack.text.contains("Code of Conduct"),
        "asks for the CoC: {}",
        ack.text
    );
    assert!(
        ack.text.contains("linked to the account"),
        "asks about the linked address: {}",
        ack.text
    );
    assert!(
        !ack.text.contains("Your account username"),
        "does not ask for what it has: {}",
        ack.text
    );
    // No challenge while information is missing.
    assert!(app.sent_to("pw.forgetter@mailbox.example").is_empty());

    // The reply with the rest, through the reply address, completes the case.
    let ack_id = ack.message_id.clone();
    let reply = mail(
        "Pat Forgetter <pat@home.example>",
        &app.reply_address(&case.id),
        "Re: Forgot my password",
        "seed-pw-2@home.example",
        &format!("In-Reply-To: <{ack_id}>\r\nReferences: <seed-pw-1@home.example> <{ack_id}>\r\n"),
        "Yes, I still have access to the email address on the account.\r\nI agree to the Code of Conduct and I understand this can take a while.\r\n\r\nOn Mon, PyPI Support wrote:\r\n> Your account username\r\n",
    );
    app.deliver(&reply);
    app.pass(T0 + 3600).await;
    let case = app.case_of(SEED_PW_FROM);
    assert!(case.missing.is_empty(), "{:?}", case.missing);
    assert_eq!(case.state, CaseState::AwaitingVerification);
    assert_eq!(
        app.sent_to("pw.forgetter@mailbox.example").len(),
        1,
        "challenge to the linked address"
    );
    assert_eq!(app.cases().len(), 1);
}

// ---------------------------------------------------------------- threading

/// One complete case for `jo@example.org`; returns the ack's Message-ID.
async fn one_case(app: &mut TestApp) -> String {
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-1@example.org",
    ));
    app.pass(T0).await;
    let acks = app.sent_to("jo@example.org");
    assert_eq!(acks.len(), 1, "one acknowledgement");
    acks[0].message_id.clone()
}

#[tokio::test]
async fn a_reply_to_the_case_address_joins_the_case_from_any_address() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    // A different address of the requester's, no threading headers, new subject.
    app.deliver(&mail(
        "jo@work.example",
        &app.reply_address(&case.id),
        "more details",
        "r-2@work.example",
        "",
        "I also maintain the package alice-tools.\r\n",
    ));
    let report = app.pass(T0 + 2 * 3600).await;
    assert_eq!(report.handled[0].via, "reply_address");
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    assert_eq!(app.cases().len(), 1, "no new case");
    let case = app.case_of("jo@example.org");
    assert!(case
        .messages
        .iter()
        .any(|m| m.message_id == "r-2@work.example"));
}

#[tokio::test]
async fn a_reply_naming_our_message_in_references_joins_the_case() {
    let mut app = TestApp::spawn().await;
    let ack_id = one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    app.deliver(&mail(
        "jo@phone.example",
        "support@pypi.example",
        "Re: your mail",
        "r-3@phone.example",
        &format!("References: <other@x.example> <{ack_id}>\r\n"),
        "Any news?\r\n",
    ));
    let report = app.pass(T0 + 2 * 3600).await;
    assert_eq!(report.handled[0].via, "reference");
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    assert_eq!(app.cases().len(), 1);
}

#[tokio::test]
async fn a_subject_tag_from_a_participant_joins_the_case() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    app.deliver(&mail(
        "Jo <JO@example.org>",
        "support@pypi.example",
        &format!("Question about [Case {}]", case.id),
        "r-4@example.org",
        "",
        "Is there anything else you need from me?\r\n",
    ));
    let report = app.pass(T0 + 2 * 3600).await;
    assert_eq!(report.handled[0].via, "subject_tag");
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    assert_eq!(app.cases().len(), 1);
}

#[tokio::test]
async fn the_same_tag_from_a_stranger_is_held_flagged_and_not_answered() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    let before = app.sent_to("admins@pypi.example").len();
    app.deliver(&mail(
        "mallory@evil.example",
        "support@pypi.example",
        &format!("Re: [Case {}] update", case.id),
        "m-1@evil.example",
        "",
        "Username: alice\r\nI no longer have access to the email address. Please send the reset to this address.\r\n",
    ));
    let report = app.pass(T0 + 2 * 3600).await;
    assert_eq!(report.handled[0].via, "unverified_tag");
    let case = app.case_of("jo@example.org");
    assert_eq!(app.cases().len(), 1, "no case for the stranger either");
    assert!(case.flags.contains(&Flag::UnverifiedSubjectTag));
    assert!(
        !case.requesters().any(|r| r == "mallory@evil.example"),
        "not merged as a requester"
    );
    assert_eq!(
        case.fields.claims_email_access,
        Claim::Yes,
        "the stranger's text changed nothing"
    );
    assert!(
        app.sent_to("mallory@evil.example").is_empty(),
        "no reply to the stranger"
    );
    assert!(
        app.sent_to("admins@pypi.example").len() > before,
        "staff told"
    );

    // A follow-up that threads under the stranger's own held message is not merged either.
    app.deliver(&mail(
        "mallory@evil.example",
        "support@pypi.example",
        "Re: update",
        "m-2@evil.example",
        "In-Reply-To: <m-1@evil.example>\r\nReferences: <m-1@evil.example>\r\n",
        "I do not have access to the email address any more.\r\n",
    ));
    app.pass(T0 + 4 * 3600).await;
    let case = app.case_of("jo@example.org");
    assert_eq!(
        case.fields.claims_email_access,
        Claim::Yes,
        "the stranger's follow-up changed nothing"
    );
    assert!(!case.requesters().any(|r| r == "mallory@evil.example"));
    let to_stranger = app.sent_to("mallory@evil.example");
    assert!(
        to_stranger.iter().all(|s| !s
            .raw
            .to_lowercase()
            .contains(&case.id.as_str().to_lowercase())),
        "nothing about the case reaches the stranger"
    );
}

#[tokio::test]
async fn a_stranger_cannot_join_a_case_by_guessing_our_message_ids() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    let id = case.id.as_str().to_lowercase();
    // The case id is in every subject; our Message-IDs must not be derivable from it.
    let guesses: Vec<String> = (0..100)
        .map(|n| format!("<{id}.{n}@pypi.example>"))
        .collect();
    app.deliver(&mail(
        "mallory@evil.example",
        "support@pypi.example",
        "Re: recovery",
        "m-9@evil.example",
        &format!("References: {}\r\n", guesses.join(" ")),
        "Username: alice\r\nI do not have access to the linked email address.\r\n",
    ));
    let report = app.pass(T0 + 2 * 3600).await;
    assert_ne!(
        report.handled[0].via, "reference",
        "matched a guessed Message-ID"
    );
    let case = app.case_of("jo@example.org");
    assert_eq!(
        case.fields.claims_email_access,
        Claim::Yes,
        "the stranger's text changed nothing"
    );
    // Naming the same account makes them a second requester: a neutral reply only.
    for reply in app.sent_to("mallory@evil.example") {
        assert!(
            !reply.raw.to_lowercase().contains(&id),
            "no case id to the stranger:\n{}",
            reply.raw
        );
    }
    // Our Message-IDs carry a random part.
    for sent in app.sent() {
        let local = sent.message_id.split('@').next().unwrap();
        assert!(
            local.rsplit('.').next().unwrap().len() >= 10,
            "{}",
            sent.message_id
        );
    }
}

#[tokio::test]
async fn a_duplicate_request_is_merged_with_a_polite_note() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    // The same person writes again as if new: no threading headers, new subject.
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-2@example.org",
    ));
    let report = app.pass(T0 + 2 * 3600).await;
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    assert_eq!(app.cases().len(), 1, "merged, not a second case");
    let to_jo = app.sent_to("jo@example.org");
    assert_eq!(to_jo.len(), 2, "the acknowledgement and one note");
    let note = to_jo
        .iter()
        .find(|s| s.in_reply_to == "req-2@example.org")
        .expect("a note threaded under the repeat");
    // One subject per case; the first line says what this mail is.
    assert!(
        note.text
            .lines()
            .next()
            .unwrap_or("")
            .contains("already in our queue"),
        "{}",
        note.text
    );
    assert!(
        note.text.contains("do not need to send the request again"),
        "{}",
        note.text
    );
    assert!(note.text.contains(case.id.as_str()));
    assert_eq!(note.in_reply_to, "req-2@example.org");
    assert_eq!(note.reply_to, app.reply_address(&case.id));
}

#[tokio::test]
async fn a_second_requester_for_the_same_username_gets_a_neutral_reply() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    app.deliver(&complete_request(
        "Someone <someone@else.example>",
        "other-1@else.example",
    ));
    app.pass(T0 + 2 * 3600).await;
    assert_eq!(app.cases().len(), 1, "one active recovery per account");
    let case_after = app.case_of("jo@example.org");
    assert!(
        case_after
            .other_requesters
            .iter()
            .any(|r| r == "someone@else.example"),
        "staff see both requesters"
    );
    assert!(case_after.flags.contains(&Flag::MultipleRequesters));
    let replies = app.sent_to("someone@else.example");
    assert_eq!(replies.len(), 1, "answered once");
    let raw = replies[0].raw.to_lowercase();
    let id = case.id.as_str().to_lowercase();
    assert!(
        !raw.contains(&id),
        "the reply must not confirm a case exists (case id found):\n{}",
        replies[0].raw
    );
    assert!(
        !replies[0].text.to_lowercase().contains("already"),
        "{}",
        replies[0].text
    );
    // It reads as a letter: no case number left blank, no empty tag to keep.
    for blank in ["case .", "case number is .", "\"\""] {
        assert!(
            !replies[0].text.contains(blank),
            "a blank case reference ({blank}) in:\n{}",
            replies[0].text
        );
    }
    assert!(
        app.sent_to("jo@example.org").len() == 1,
        "the first requester is not told"
    );
    assert_eq!(
        replies[0].in_reply_to, "other-1@else.example",
        "threaded under their own message only"
    );
    assert_eq!(
        header_values(&replies[0].raw, "References"),
        vec!["<other-1@else.example>".to_string()]
    );

    // They write again as if new, then answer our note: still neutral, and
    // still nothing to the first requester.
    let note_id = replies[0].message_id.clone();
    app.deliver(&mail(
        "someone@else.example",
        "support@pypi.example",
        "hello?",
        "other-2@else.example",
        "",
        "Username: alice\r\nAny news about my account?\r\n",
    ));
    app.pass(T0 + 4 * 3600).await;
    app.deliver(&mail(
        "someone@else.example",
        "support@pypi.example",
        "Re: About your request",
        "other-3@else.example",
        &format!("In-Reply-To: <{note_id}>\r\nReferences: <other-1@else.example> <{note_id}>\r\n"),
        "I no longer have access to the linked email address.\r\n",
    ));
    app.pass(T0 + 6 * 3600).await;
    assert_eq!(app.cases().len(), 1);
    assert_eq!(
        app.sent_to("jo@example.org").len(),
        1,
        "the first requester is not told about the second: {:?}",
        app.sent_to("jo@example.org")
            .iter()
            .map(|s| (&s.subject, &s.in_reply_to, &s.text))
            .collect::<Vec<_>>()
    );
    for reply in app.sent_to("someone@else.example") {
        assert!(
            !reply.raw.to_lowercase().contains(&id),
            "no case id to the second requester:\n{}",
            reply.raw
        );
    }
    let case_after = app.case_of("jo@example.org");
    assert_eq!(case_after.fields.claims_email_access, Claim::Yes);
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn bad_input_is_kept_never_panics_and_the_run_goes_on() {
    let mut app = TestApp::spawn().await;
    let no_from = b"To: support@pypi.example\r\nSubject: help\r\nMessage-ID: <nofrom@x.example>\r\n\r\nUsername: alice\r\n".to_vec();
    let bad_from = b"From: this is not an address\r\nTo: support@pypi.example\r\nSubject: help\r\nMessage-ID: <badfrom@x.example>\r\n\r\nUsername: alice\r\n".to_vec();
    let mut random = Vec::with_capacity(4096);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        random.push((x & 0xff) as u8);
    }
    let big_headers = "From: Big <big@example.org>\r\nTo: support@pypi.example\r\nSubject: huge\r\nMessage-ID: <big@example.org>\r\nContent-Type: text/plain\r\n\r\n";
    let mut big = big_headers.as_bytes().to_vec();
    let line = "Username: alice. This line repeats to make a very large body.\r\n";
    while big.len() < 20 * 1024 * 1024 {
        big.extend_from_slice(line.as_bytes());
    }
    let mut words = String::from("From: Words <words@example.org>\r\nTo: support@pypi.example\r\nMessage-ID: <words@example.org>\r\nSubject:");
    for _ in 0..10_000 {
        words.push_str(" =?utf-8?q?caf=C3=A9?=\r\n");
    }
    words.push_str("\r\nUsername: alice\r\n");
    let cr_only = b"From: cr@example.org\rTo: support@pypi.example\rSubject: CR only\rMessage-ID: <cr@example.org>\r\rUsername: alice\rI lost my phone.\r".to_vec();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("a-nofrom", no_from),
        ("b-badfrom", bad_from),
        ("c-random", random),
        ("d-big", big.clone()),
        ("e-words", words.into_bytes()),
        ("f-cronly", cr_only),
    ];
    for (name, raw) in &inputs {
        deliver_bytes(&app, &format!("{T0}.{name}.test"), raw);
    }
    // A good request after them, in the same pass.
    deliver_bytes(
        &app,
        &format!("{T0}.z-good.test"),
        complete_request("Good <good@example.org>", "good@example.org").as_bytes(),
    );
    let report = app.pass(T0).await;
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.handled.len(), inputs.len() + 1);

    let store = app.store();
    for (name, raw) in &inputs {
        let kept = if *name == "d-big" {
            let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            &raw[..end]
        } else {
            raw.as_slice()
        };
        let hash = recoverydesk::parse::content_hash(kept);
        assert!(
            store.seen_content(&hash).unwrap(),
            "{name} kept in the store"
        );
        assert!(store.raw(&hash).unwrap().is_some(), "{name} raw bytes kept");
    }
    // The 20 MB message is stored headers-only and its sender told.
    let big_hash = recoverydesk::parse::content_hash(big_headers.as_bytes());
    assert!(store.raw(&big_hash).unwrap().unwrap().len() < 4096);
    let told = app.sent_to("big@example.org");
    assert!(
        told.iter().any(
            |s| s.text.lines().next().unwrap_or("").contains("too large")
                && s.in_reply_to == "big@example.org"
        ),
        "the sender of the oversize message is told"
    );
    assert!(app
        .case_of("big@example.org")
        .flags
        .contains(&Flag::Oversize));

    // No reply to anything without a usable address.
    for s in app.sent() {
        for to in &s.to {
            assert!(
                recoverydesk::domain::EmailAddress::parse(to).is_some(),
                "sent to an unparseable address {to:?}"
            );
            assert!(!to.contains("not an address"));
        }
    }
    // The message without From and the random bytes answer nobody and create no case.
    let senders: Vec<String> = app.cases().iter().map(|c| c.requester.clone()).collect();
    assert!(senders.iter().all(|s| s.contains('@')), "{senders:?}");
    // The run went on: the good request was answered.
    assert_eq!(app.sent_to("good@example.org").len(), 1);
    // Every source file was moved to cur/ with the S flag.
    let new_left = std::fs::read_dir(app.dir.path().join("inbox/new"))
        .unwrap()
        .count();
    assert_eq!(new_left, 0, "everything marked");
    // A second pass does nothing more.
    let again = app.pass(T0 + 60).await;
    assert!(again.handled.is_empty());
}

#[tokio::test]
async fn a_header_of_ten_thousand_encoded_words_is_cheap_and_answered_with_a_sane_subject() {
    let mut app = TestApp::spawn().await;
    let mut raw = String::from("From: Words <words@example.org>\r\nTo: support@pypi.example\r\nMessage-ID: <w2@example.org>\r\nSubject:");
    for _ in 0..10_000 {
        raw.push_str(" =?utf-8?b?w6k=?=\r\n");
    }
    raw.push_str("\r\nUsername: alice\r\nI lost my phone with the authenticator app.\r\n");
    app.deliver(&raw);
    let started = std::time::Instant::now();
    let report = app.pass(T0).await;
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.errors, 0);
    let case = app.case_of("words@example.org");
    assert!(
        case.messages[0].subject.len() <= 16 * 1024,
        "subject kept bounded: {}",
        case.messages[0].subject.len()
    );
    for s in app.sent() {
        for line in header_block(&s.raw).lines() {
            assert!(
                line.len() <= 998,
                "{}: header line of {} bytes",
                s.file,
                line.len()
            );
        }
    }
}

// ---------------------------------------------------------------- machines

#[tokio::test]
async fn machine_mail_is_never_answered() {
    let mut app = TestApp::spawn().await;
    app.deliver(&mail(
        "Bob <bob@example.org>",
        "support@pypi.example",
        "Out of office",
        "ooo-1@example.org",
        "Auto-Submitted: auto-replied\r\n",
        "I am away until Monday.\r\n",
    ));
    app.deliver(&mail(
        "news@lists.example",
        "support@pypi.example",
        "Weekly digest",
        "list-1@lists.example",
        "List-Id: <news.lists.example>\r\nPrecedence: list\r\n",
        "Username: alice\r\n",
    ));
    app.deliver(&mail(
        "noreply@service.example",
        "support@pypi.example",
        "Your receipt",
        "nr-1@service.example",
        "",
        "Username: alice\r\n",
    ));
    let report = app.pass(T0).await;
    assert_eq!(report.handled.len(), 3);
    assert!(
        app.sent().is_empty(),
        "nothing sent: {:?}",
        app.sent().iter().map(|s| &s.to).collect::<Vec<_>>()
    );
    assert!(app.cases().is_empty(), "machine mail opens no case");
    for h in &report.handled {
        assert!(
            h.notes.iter().any(|n| n.contains("not answered")),
            "a reason is recorded: {h:?}"
        );
    }
}

#[tokio::test]
async fn a_bounce_of_our_reply_is_recorded_on_the_case_and_not_answered() {
    let mut app = TestApp::spawn().await;
    let ack_id = one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    let staff_before = app.sent_to("admins@pypi.example").len();
    let dsn = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: support@pypi.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.example.org>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; jo@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@pypi.example\r\nTo: jo@example.org\r\nMessage-ID: <{ack_id}>\r\n\r\n--b1--\r\n"
    );
    app.deliver(&dsn);
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.handled[0].kind.to_string(), "bounce");
    assert_eq!(report.handled[0].case_id.as_ref(), Some(&case.id));
    let case = app.case_of("jo@example.org");
    assert!(case.flags.contains(&Flag::DeliveryFailure));
    let events = app.store().events(&case.id).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.what.contains("delivery failed to jo@example.org")),
        "{events:?}"
    );
    assert!(
        app.sent().iter().all(|s| s
            .to
            .iter()
            .all(|t| !t.to_lowercase().contains("mailer-daemon"))),
        "bounce not answered"
    );
    assert_eq!(
        app.sent_to("jo@example.org").len(),
        1,
        "no mail to the requester about it"
    );
    assert!(
        app.sent_to("admins@pypi.example").len() > staff_before,
        "staff told of the failure"
    );
}

#[tokio::test]
async fn our_own_mail_delivered_back_is_recognised_and_not_answered() {
    let mut app = TestApp::spawn().await;
    one_case(&mut app).await;
    let sent = app.sent();
    let count = sent.len();
    let ack = sent
        .iter()
        .find(|s| s.to.iter().any(|t| t == "jo@example.org"))
        .unwrap()
        .clone();
    // As written (minus the file transport's envelope line).
    let as_sent = ack
        .raw
        .split_once('\n')
        .map(|(_, rest)| rest.to_owned())
        .unwrap();
    app.deliver(&as_sent);
    // Same mail with a fresh Message-ID: the loop header still gives it away.
    let renamed = as_sent.replace(
        &format!("<{}>", ack.message_id),
        "<relabelled-1@relay.example>",
    );
    assert_ne!(renamed, as_sent);
    app.deliver(&renamed);
    // Same Message-ID with the loop header stripped by some relay.
    let stripped: String = as_sent
        .split_inclusive('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with("x-recoverydesk-loop:"))
        .collect::<String>()
        .replace("Auto-Submitted:", "X-Was-Auto-Submitted:");
    app.deliver(&stripped);
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.handled.len(), 3);
    for h in &report.handled {
        assert_eq!(h.kind.to_string(), "own_loop", "{h:?}");
        assert!(h.queued.is_empty(), "{h:?}");
    }
    assert_eq!(app.sent().len(), count, "nothing new was sent");
    assert_eq!(app.cases().len(), 1);
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn every_outgoing_mail_carries_the_automatic_headers() {
    let mut app = seeded_app().await;
    app.deliver(SEED_2FA);
    app.deliver(SEED_PASSWORD);
    app.pass(T0).await;
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-1@example.org",
    ));
    app.pass(T0 + 3600).await;
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-2@example.org",
    ));
    app.pass(T0 + 2 * 3600).await;
    let all = app.sent();
    assert!(all.len() >= 6, "a good mix of templates: {}", all.len());
    assert_automatic_headers(&all);
}

#[tokio::test]
async fn header_injection_in_the_subject_or_name_never_adds_a_header() {
    let mut app = TestApp::spawn().await;
    let raw = "From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40injected=2Eexample?= <eve@example.org>\r\n\
To: support@pypi.example\r\n\
Subject: =?utf-8?q?Help=0D=0ABcc=3A_victim=40injected=2Eexample=0D=0A=0D=0Abody?=\r\n\
Message-ID: <inj-1@example.org>\r\n\
Content-Type: text/plain\r\n\r\n\
Username: alice\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n";
    app.deliver(raw);
    app.pass(T0).await;
    let all = app.sent();
    assert!(!all.is_empty());
    assert_eq!(app.sent_to("eve@example.org").len(), 1, "answered");
    for s in &all {
        assert!(s.to.iter().all(|t| !t.contains("injected")), "{:?}", s.to);
        for line in header_block(&s.raw).lines() {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:"),
                "{}: injected header line {line:?}",
                s.file
            );
            assert!(
                !lower.starts_with("body"),
                "{}: header block broken: {line:?}",
                s.file
            );
        }
        let parsed = mail_parser::MessageParser::default()
            .parse(s.raw.as_bytes())
            .unwrap();
        assert!(parsed.bcc().is_none(), "{}: a Bcc header appeared", s.file);
    }
    let case = app.case_of("eve@example.org");
    assert!(!case.messages[0].subject.contains('\n') && !case.messages[0].subject.contains('\r'));
}

/// The n-th message (from 0) of an mbox, split on `From ` lines.
fn mbox_message(mbox: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in mbox.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
        } else if let Some(m) = messages.last_mut() {
            m.extend_from_slice(line);
        }
    }
    messages.into_iter().nth(n)
}

#[tokio::test]
async fn a_message_that_makes_the_mime_parser_panic_is_kept_and_set_aside() {
    // mimekit's content-length mbox holds messages on which mail-parser 0.11 panics.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/mimekit/mbox/content-length.mbox.txt");
    let Ok(mbox) = std::fs::read(&path) else {
        println!("skipped: {} is not on this machine", path.display());
        return;
    };
    let raw = mbox_message(&mbox, 1).expect("the mbox has a second message");
    // The panic is a debug assertion in mail-parser: release builds go on.
    if std::panic::catch_unwind(|| mail_parser::MessageParser::default().parse(&raw)).is_ok() {
        println!("skipped: mail-parser does not panic on this input in this build");
        return;
    }
    let mut app = TestApp::spawn().await;
    deliver_bytes(&app, &format!("{T0}.a-panic.test"), &raw);
    app.deliver(&complete_request(
        "Good <good@example.org>",
        "good@example.org",
    ));
    let report = app.pass(T0).await;
    assert_eq!(report.errors, 1, "set aside, not fatal");
    assert_eq!(app.sent_to("good@example.org").len(), 1, "the run went on");
    let hash = recoverydesk::parse::content_hash(&raw);
    assert!(
        app.store().seen_content(&hash).unwrap(),
        "kept in the store"
    );
    let record = app.store().inbound_record(&hash).unwrap().unwrap();
    assert_eq!(record.kind.to_string(), "quarantined");
    assert!(app
        .sent()
        .iter()
        .all(|s| s.to.iter().all(|t| t != "jwz@netscape.com")));
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("inbox/new"))
            .unwrap()
            .count(),
        0,
        "marked"
    );
    // Never retried.
    let again = app.pass(T0 + 60).await;
    assert!(again.handled.is_empty() && again.errors == 0);
}

#[tokio::test]
async fn an_out_of_office_answer_to_our_mail_is_recorded_and_never_becomes_a_parent() {
    let mut app = TestApp::spawn().await;
    let ack_id = one_case(&mut app).await;
    let case = app.case_of("jo@example.org");
    app.deliver(&mail(
        "Jo <jo@example.org>",
        &app.reply_address(&case.id),
        "Automatic reply: We received your account recovery request",
        "ooo-jo@example.org",
        &format!("In-Reply-To: <{ack_id}>\r\nAuto-Submitted: auto-replied\r\n"),
        "I am out of the office until Monday.\r\n",
    ));
    let report = app.pass(T0 + 3600).await;
    assert_eq!(
        report.handled[0].case_id.as_ref(),
        Some(&case.id),
        "recorded on the case"
    );
    assert!(report.handled[0].queued.is_empty(), "not answered");
    assert_eq!(app.sent_to("jo@example.org").len(), 1);
    let log = app.store().events(&case.id).unwrap();
    assert!(
        log.iter().any(|e| e.what.contains("not answered")),
        "{log:?}"
    );
    // The next mail to Jo threads under Jo's own mail, not the auto-reply.
    app.deliver(&mail(
        "Jo <jo@example.org>",
        &app.reply_address(&case.id),
        "Re: your request",
        "jo-2@example.org",
        &format!("In-Reply-To: <{ack_id}>\r\n"),
        "Any news?\r\n",
    ));
    app.pass(T0 + 5 * 3600).await;
    let to_jo = app.sent_to("jo@example.org");
    assert_eq!(
        to_jo.len(),
        2,
        "{:?}",
        to_jo.iter().map(|s| &s.subject).collect::<Vec<_>>()
    );
    for s in &to_jo {
        assert!(
            !s.raw.contains("ooo-jo@example.org"),
            "an auto-reply became part of our thread:\n{}",
            s.raw
        );
    }
}

#[tokio::test]
async fn a_flood_from_one_address_is_capped_by_the_rate_limit() {
    let mut app = TestApp::spawn().await;
    for i in 0..10 {
        app.deliver(&mail(
            "Loopy <loopy@example.org>",
            "support@pypi.example",
            &format!("help {i}"),
            &format!("flood-{i}@example.org"),
            "",
            "Username: alice\r\nI lost my phone.\r\n",
        ));
    }
    let report = app.pass(T0).await;
    assert_eq!(report.handled.len(), 10);
    assert_eq!(app.cases().len(), 1, "one case");
    let replies = app.sent_to("loopy@example.org");
    assert!(
        !replies.is_empty() && replies.len() <= 3,
        "capped at the hourly limit: {}",
        replies.len()
    );
    let case = app.case_of("loopy@example.org");
    let log = app.store().events(&case.id).unwrap();
    assert!(
        log.iter()
            .any(|e| e.what.contains("held back by the rate limit")),
        "the reason is logged: {log:?}"
    );
    // What was held is merged into one mail per recipient, sent once the
    // window allows: a loop gets one more mail, not seven.
    let before = replies.len();
    app.pass(T0 + 2 * 3600).await;
    assert_eq!(app.sent_to("loopy@example.org").len(), before + 1);
    app.pass(T0 + 4 * 3600).await;
    assert_eq!(app.sent_to("loopy@example.org").len(), before + 1);
    assert!(app.case_of("loopy@example.org").held.is_empty());
}
