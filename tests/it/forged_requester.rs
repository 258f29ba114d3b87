//! A forged requester: mail with the requester's From but no reply address
//! and no reference to a message we sent is tied to the case only by what
//! anyone can write. It must not burn the challenge, switch the language or
//! change the request.

use crate::common;

use common::*;
use recoverydesk::case::{Case, CaseState, Verification};

const REQUESTER: &str = "jo@example.org";

/// An app with one complete case for `alice` from Jo, challenge pending.
async fn app_with_challenge() -> (TestApp, Case) {
    let mut app = TestApp::spawn().await;
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-1@example.org",
    ));
    app.pass(T0).await;
    let case = app.case_of(REQUESTER);
    assert_eq!(case.state, CaseState::AwaitingVerification);
    assert!(matches!(case.verification, Verification::Pending(_)));
    assert_eq!(case.language, "en");
    (app, case)
}

/// Five code-shaped guesses, a different username and a "no access" claim,
/// in German, as a fresh mail with the requester's From.
const FORGED_BODY: &str =
    "Hallo,\r\n\r\nich habe die Codes bekommen: K7QM-3XPA, W4NR-8TBE, ZZZZ-2222, \
HJKL-4567, MNPQ-8923. Mein Benutzername ist mallory, und ich habe keinen Zugriff mehr auf \
die E-Mail-Adresse des Kontos. Bitte antworten Sie schnell, ich brauche den Zugang \
dringend für meine Arbeit und meine Pakete.\r\n\r\nViele Grüße\r\nJo\r\n";

fn attempts_left(case: &Case) -> u32 {
    match &case.verification {
        Verification::Pending(ch) => ch.attempts_left,
        other => panic!("challenge not pending: {other:?}"),
    }
}

#[tokio::test]
async fn a_fresh_mail_with_the_requesters_from_neither_locks_the_challenge_nor_switches_the_language(
) {
    let (mut app, case) = app_with_challenge().await;
    let attempts = attempts_left(&case);
    let sent_before = app.sent().len();
    app.deliver(&mail(
        "Jo <jo@example.org>",
        "support@pypi.example",
        "Codes",
        "forged-1@attacker.example",
        "",
        FORGED_BODY,
    ));
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.errors, 0);
    assert_eq!(
        report.handled[0].case_id.as_ref(),
        Some(&case.id),
        "threaded by the sender's open case: {:?}",
        report.handled
    );
    let after = app.store().case(&case.id).unwrap().unwrap();
    assert_eq!(attempts_left(&after), attempts, "no attempt was counted");
    assert_eq!(after.language, "en", "the language stays");
    assert_eq!(after.fields.username.as_deref(), Some("alice"));
    assert_eq!(
        after.fields.claims_email_access,
        case.fields.claims_email_access
    );
    assert_eq!(after.state, CaseState::AwaitingVerification);
    // Whatever is answered goes to the requester's own address or to staff,
    // never to the linked address (no new challenge).
    for sent in app.sent().iter().skip(sent_before) {
        assert!(
            sent.to == [REQUESTER] || sent.to == ["admins@pypi.example"],
            "{:?}",
            sent.to
        );
    }
}

#[tokio::test]
async fn the_same_codes_in_a_reply_to_our_mail_do_count() {
    // The control: a reply through the case's reply address is proven.
    let (mut app, case) = app_with_challenge().await;
    let attempts = attempts_left(&case);
    app.deliver(&mail(
        "Jo <jo@example.org>",
        &app.reply_address(&case.id),
        &format!("Re: [Case {}] codes", case.id),
        "reply-1@example.org",
        "",
        FORGED_BODY,
    ));
    app.pass(T0 + 3600).await;
    let after = app.store().case(&case.id).unwrap().unwrap();
    assert!(
        matches!(after.verification, Verification::Locked { .. }),
        "five wrong codes from the real thread lock it ({attempts} attempts): {:?}",
        after.verification
    );
    assert_eq!(after.language, "de");
}

#[tokio::test]
async fn a_subject_tag_and_a_reference_to_the_requesters_own_mail_are_not_proof() {
    let (mut app, case) = app_with_challenge().await;
    let attempts = attempts_left(&case);
    // The tag is in every subject we send and the requester's first
    // Message-ID is known to anyone copied on it: neither proves anything.
    app.deliver(&mail(
        "Jo <jo@example.org>",
        "support@pypi.example",
        &format!("Re: [Case {}] codes", case.id),
        "forged-2@attacker.example",
        "In-Reply-To: <req-1@example.org>\r\nReferences: <req-1@example.org>\r\n",
        FORGED_BODY,
    ));
    app.pass(T0 + 3600).await;
    let after = app.store().case(&case.id).unwrap().unwrap();
    assert_eq!(attempts_left(&after), attempts);
    assert_eq!(after.language, "en");
    assert_eq!(after.fields.username.as_deref(), Some("alice"));
}
