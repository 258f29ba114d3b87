//! One test per transition of the pure case core. Cases, events, the policy
//! and the context are built by hand; time only moves when a test says so.

use super::*;
use crate::request::{Claim, Reason, Tick};
use crate::staff_cmd::Command;
use crate::verify;

/// Monday 2026-11-23 09:00 UTC.
const T0: i64 = 1_795_424_400;
const DAY: i64 = 86_400;
const KEY: &[u8] = b"unit-test-installation-key-0123456789";
const CODE: &str = "K7QM-3XPA";
const NEXT_CODE: &str = "W4NR-8TBE";
const REQUESTER: &str = "requester@mail.example";
const LINKED: &str = "alice@linked.example";

/// The default rules, small enough to read in a test.
fn policy() -> Policy {
    Policy {
        required: vec![
            Field::Username,
            Field::Reason,
            Field::EmailAccess,
            Field::CodeOfConduct,
            Field::DelayAcknowledged,
        ],
        challenge_ttl: 2 * DAY,
        challenge_attempts: 3,
        challenges_per_day: 3,
        waiting_period: 0,
        reminder_after: 5 * DAY,
        close_after: 7 * DAY,
        staff_status_after: 10 * DAY,
        status_repeat: 7 * DAY,
        status_cap: 3,
        status_reply_interval: 3 * DAY,
        resolved_close_after: 7 * DAY,
        reopen_window: 30 * DAY,
        directory_retry: 15 * 60,
        quiet_hours: None,
    }
}

fn ctx(now: i64, policy: &Policy) -> Ctx<'_> {
    ctx_with_code(now, policy, CODE)
}

fn ctx_with_code<'a>(now: i64, policy: &'a Policy, code: &str) -> Ctx<'a> {
    Ctx {
        now,
        policy,
        key: KEY,
        previous_keys: &[],
        fresh_code: code.into(),
    }
}

fn run(case: &Case, event: &Event, now: i64, policy: &Policy) -> Outcome {
    apply(case, event, &ctx(now, policy))
}

fn case_id() -> CaseId {
    CaseId::parse("RD-7K3M9Q").unwrap()
}

fn fresh() -> Case {
    Case::new(case_id(), REQUESTER, T0)
}

/// Everything a complete request states.
fn complete_fields() -> RequestFields {
    RequestFields {
        username: Some("alice".into()),
        reasons: vec![Reason::Lost2faDevice],
        claims_email_access: Claim::Yes,
        agreed_code_of_conduct: Tick::Stated,
        acknowledged_delay: Tick::Stated,
        ..RequestFields::default()
    }
}

fn message(fields: RequestFields) -> RequesterMessage {
    RequesterMessage {
        from: REQUESTER.into(),
        fields,
        codes: Vec::new(),
        quoted_codes: Vec::new(),
        secrets: Vec::new(),
        language: None,
        opens_case: false,
        duplicate: false,
        lookup: None,
        oversize: None,
        malformed: false,
        short_answer: None,
        thread: ThreadStrength::Proven,
    }
}

fn opening(fields: RequestFields, lookup: Option<LookupOutcome>) -> Event {
    Event::Requester(RequesterMessage {
        opens_case: true,
        lookup,
        ..message(fields)
    })
}

fn reply(fields: RequestFields) -> Event {
    Event::Requester(message(fields))
}

fn reply_with_codes(codes: &[&str]) -> Event {
    Event::Requester(RequesterMessage {
        codes: codes.iter().map(|c| c.to_string()).collect(),
        ..message(RequestFields::default())
    })
}

fn chase() -> Event {
    reply(RequestFields {
        status_chase: true,
        ..RequestFields::default()
    })
}

fn found() -> LookupOutcome {
    LookupOutcome::Found {
        address: Some(LINKED.into()),
        username: "alice".into(),
    }
}

fn owner(answer: OwnerAnswerKind, codes: &[&str]) -> Event {
    Event::Owner {
        from: LINKED.into(),
        answer,
        codes: codes.iter().map(|c| c.to_string()).collect(),
    }
}

fn staff(commands: Vec<Command>, relay_text: &str) -> Event {
    Event::Staff {
        from: "admin@pypi.example".into(),
        name: Some("Ada".into()),
        message: StaffMessage {
            commands,
            relay_text: relay_text.into(),
            ..StaffMessage::default()
        },
        direct: false,
        lookup: None,
    }
}

/// A complete request for an account with a linked address: a challenge is out.
fn challenged(policy: &Policy) -> Case {
    run(
        &fresh(),
        &opening(complete_fields(), Some(found())),
        T0,
        policy,
    )
    .case
}

/// A complete request from someone who lost the linked address: with staff.
fn with_staff(policy: &Policy) -> Case {
    let fields = RequestFields {
        claims_email_access: Claim::No,
        ..complete_fields()
    };
    run(&fresh(), &opening(fields, None), T0, policy).case
}

/// A request that still lacks the Code of Conduct and the delay answer.
fn awaiting_info(policy: &Policy) -> Case {
    let fields = RequestFields {
        agreed_code_of_conduct: Tick::Unknown,
        acknowledged_delay: Tick::Unknown,
        ..complete_fields()
    };
    run(&fresh(), &opening(fields, Some(found())), T0, policy).case
}

/// Templates sent to one recipient, in order.
fn to<'a>(outcome: &'a Outcome, recipient: &Recipient) -> Vec<&'a str> {
    outcome
        .mails
        .iter()
        .filter(|m| &m.to == recipient)
        .map(|m| m.template.name())
        .collect()
}

fn to_requester(outcome: &Outcome) -> Vec<&str> {
    to(outcome, &Recipient::Requester)
}

fn to_staff(outcome: &Outcome) -> Vec<&str> {
    to(outcome, &Recipient::Staff)
}

/// The timers of a case due at `now`, fired as the scheduler would.
fn tick(case: &Case, now: i64, policy: &Policy, lookup: Option<LookupOutcome>) -> Outcome {
    let kinds = case
        .timers
        .iter()
        .filter(|(_, due)| **due <= now)
        .map(|(k, _)| *k)
        .collect();
    run(case, &Event::Timers { kinds, lookup }, now, policy)
}

/// Runs the scheduler at every due time up to `until`, as a worker that
/// never stops would; returns the case and every (time, mail) sent.
fn run_clock(mut case: Case, until: i64, policy: &Policy) -> (Case, Vec<(i64, Mail)>) {
    let mut sent = Vec::new();
    while let Some(next) = case.timers.values().copied().min().filter(|t| *t <= until) {
        let outcome = tick(&case, next, policy, None);
        sent.extend(outcome.mails.into_iter().map(|m| (next, m)));
        case = outcome.case;
    }
    (case, sent)
}

fn logged(outcome: &Outcome, needle: &str) -> bool {
    outcome.log.iter().any(|l| l.what.contains(needle))
}

// ---- new requests -------------------------------------------------------

#[test]
fn a_new_request_with_fields_missing_is_acknowledged_and_waits_for_the_missing_information() {
    let p = policy();
    let fields = RequestFields {
        agreed_code_of_conduct: Tick::Unknown,
        acknowledged_delay: Tick::Unknown,
        ..complete_fields()
    };
    let out = run(&fresh(), &opening(fields, Some(found())), T0, &p);

    assert_eq!(out.case.state, CaseState::AwaitingInfo);
    assert_eq!(
        out.case.missing,
        vec![Field::CodeOfConduct, Field::DelayAcknowledged]
    );
    assert_eq!(to_requester(&out), vec!["acknowledgement"]);
    assert_eq!(to_staff(&out), vec!["staff_new_case"]);
    // Nobody is challenged before the request is complete.
    assert!(out
        .mails
        .iter()
        .all(|m| !matches!(m.to, Recipient::Linked(_))));
    assert_eq!(out.case.verification, Verification::NotStarted);
    assert_eq!(
        out.case.timers.get(&TimerKind::Reminder),
        Some(&(T0 + 5 * DAY))
    );
}

#[test]
fn a_complete_request_challenges_only_the_linked_address_and_keeps_the_mac_not_the_code() {
    let p = policy();
    let out = run(&fresh(), &opening(complete_fields(), Some(found())), T0, &p);

    assert_eq!(out.case.state, CaseState::AwaitingVerification);
    let challenges: Vec<&Mail> = out
        .mails
        .iter()
        .filter(|m| m.template.name() == "challenge")
        .collect();
    assert_eq!(challenges.len(), 1);
    assert_eq!(challenges[0].to, Recipient::Linked(LINKED.into()));
    assert_eq!(challenges[0].role, crate::thread::Role::Challenge);
    assert_eq!(challenges[0].code.as_deref(), Some(CODE));
    // The code travels only in the challenge itself.
    for mail in out
        .mails
        .iter()
        .filter(|m| m.template.name() != "challenge")
    {
        assert_eq!(mail.code, None, "{} carries a code", mail.template);
        assert!(mail.extra.values().all(|v| !v.contains(CODE)));
    }
    assert_eq!(to_requester(&out), vec!["acknowledgement"]);

    let Verification::Pending(ch) = &out.case.verification else {
        panic!("{:?}", out.case.verification)
    };
    assert_eq!(ch.code_mac, verify::code_mac(KEY, case_id().as_str(), CODE));
    assert_eq!(ch.sent_to, LINKED);
    assert_eq!(ch.expires_at, T0 + 2 * DAY);
    assert_eq!(ch.attempts_left, 3);
    // Nothing stored in the case holds the code in clear.
    let stored = serde_json::to_string(&out.case).unwrap();
    assert!(!stored.contains(CODE) && !stored.contains(&CODE.replace('-', "")));
    assert_eq!(
        out.case.linked_address_masked.as_deref(),
        Some(verify::mask_address(LINKED).as_str())
    );
    assert!(!out
        .case
        .linked_address_masked
        .as_deref()
        .unwrap()
        .contains("alice@"));
    assert_eq!(
        out.case.timers.get(&TimerKind::ChallengeExpiry),
        Some(&(T0 + 2 * DAY))
    );
    assert_eq!(
        out.case.timers.get(&TimerKind::ChallengeReminder),
        Some(&(T0 + DAY))
    );
}

#[test]
fn a_requester_who_lost_the_linked_address_goes_to_staff_without_a_challenge() {
    let p = policy();
    let fields = RequestFields {
        claims_email_access: Claim::No,
        ..complete_fields()
    };
    // Even if the caller looked the account up, the address is not written to.
    let out = run(&fresh(), &opening(fields, Some(found())), T0, &p);

    assert_eq!(out.case.state, CaseState::AwaitingStaff);
    assert!(matches!(
        out.case.verification,
        Verification::Skipped { .. }
    ));
    assert!(out
        .mails
        .iter()
        .all(|m| !matches!(m.to, Recipient::Linked(_))));
    assert_eq!(to_requester(&out), vec!["acknowledgement"]);
    assert_eq!(to_staff(&out), vec!["staff_new_case"]);
    assert_eq!(
        out.case.timers.get(&TimerKind::StaffStatus),
        Some(&(T0 + 10 * DAY))
    );
    assert!(!out.case.timers.contains_key(&TimerKind::Reminder));
}

#[test]
fn an_unknown_account_or_one_without_an_address_gets_the_same_requester_mail_as_a_found_one() {
    let p = policy();
    let with =
        |lookup: LookupOutcome| run(&fresh(), &opening(complete_fields(), Some(lookup)), T0, &p);
    let found = with(found());
    let not_found = with(LookupOutcome::NotFound);
    let no_address = with(LookupOutcome::Found {
        address: None,
        username: "alice".into(),
    });

    let requester_view = |o: &Outcome| -> Vec<Mail> {
        o.mails
            .iter()
            .filter(|m| m.to == Recipient::Requester)
            .cloned()
            .collect()
    };
    for other in [&not_found, &no_address] {
        assert_eq!(requester_view(other), requester_view(&found));
        assert_eq!(other.case.state, found.case.state);
        assert_eq!(
            other.case.timers.get(&TimerKind::Reminder),
            found.case.timers.get(&TimerKind::Reminder)
        );
        assert_eq!(
            other.case.timers.get(&TimerKind::ChallengeExpiry),
            found.case.timers.get(&TimerKind::ChallengeExpiry)
        );
        assert!(other
            .mails
            .iter()
            .all(|m| !matches!(m.to, Recipient::Linked(_))));
        let Verification::NoTarget {
            expires_at,
            attempts_left,
            ..
        } = &other.case.verification
        else {
            panic!("{:?}", other.case.verification)
        };
        assert_eq!((*expires_at, *attempts_left), (T0 + 2 * DAY, 3));
    }
    // Only staff learn why nothing was sent.
    assert!(
        matches!(&not_found.case.verification, Verification::NoTarget { why, .. } if why.contains("no account"))
    );
    assert!(
        matches!(&no_address.case.verification, Verification::NoTarget { why, .. } if why.contains("no linked address"))
    );
}

#[test]
fn wrong_codes_against_a_pretend_challenge_look_exactly_like_wrong_codes_against_a_real_one() {
    let p = policy();
    let real = challenged(&p);
    let pretend = run(
        &fresh(),
        &opening(complete_fields(), Some(LookupOutcome::NotFound)),
        T0,
        &p,
    )
    .case;
    let (mut a, mut b) = (real, pretend);
    for i in 0..3 {
        let oa = run(
            &a,
            &reply_with_codes(&["ZZZZ-2222"]),
            T0 + 3600 * (i + 1),
            &p,
        );
        let ob = run(
            &b,
            &reply_with_codes(&["ZZZZ-2222"]),
            T0 + 3600 * (i + 1),
            &p,
        );
        let view = |o: &Outcome| {
            o.mails
                .iter()
                .filter(|m| m.to == Recipient::Requester)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(view(&oa), view(&ob));
        a = oa.case;
        b = ob.case;
    }
    assert!(matches!(a.verification, Verification::Locked { .. }));
    assert!(matches!(b.verification, Verification::Locked { .. }));
}

#[test]
fn an_unavailable_directory_acknowledges_now_and_challenges_once_a_retry_finds_the_account() {
    let p = policy();
    let down = LookupOutcome::Unavailable {
        reason: "timeout".into(),
    };
    let first = run(
        &fresh(),
        &opening(complete_fields(), Some(down.clone())),
        T0,
        &p,
    );
    assert_eq!(
        first.case.verification,
        Verification::LookupPending { tries: 1 }
    );
    assert_eq!(first.case.state, CaseState::AwaitingVerification);
    assert_eq!(
        first.case.timers.get(&TimerKind::DirectoryRetry),
        Some(&(T0 + 900))
    );
    assert_eq!(to_requester(&first), vec!["acknowledgement"]);
    assert!(first
        .mails
        .iter()
        .all(|m| !matches!(m.to, Recipient::Linked(_))));

    // Still down: another try later, nothing sent.
    let second = tick(&first.case, T0 + 900, &p, Some(down));
    assert_eq!(
        second.case.verification,
        Verification::LookupPending { tries: 2 }
    );
    assert_eq!(
        second.case.timers.get(&TimerKind::DirectoryRetry),
        Some(&(T0 + 1800))
    );
    assert!(second.mails.is_empty());

    // Back: the challenge goes out and the requester hears it did.
    let third = tick(&second.case, T0 + 1800, &p, Some(found()));
    assert!(matches!(third.case.verification, Verification::Pending(_)));
    assert_eq!(
        to(&third, &Recipient::Linked(LINKED.into())),
        vec!["challenge"]
    );
    assert_eq!(to_requester(&third), vec!["challenge_sent"]);
    assert!(!third.case.timers.contains_key(&TimerKind::DirectoryRetry));
    assert_eq!(third.case.state, CaseState::AwaitingVerification);
}

// ---- answers in context --------------------------------------------------

/// A request that lacks only the email-access answer.
fn asked_about_access(policy: &Policy) -> Case {
    let fields = RequestFields {
        claims_email_access: Claim::Unknown,
        ..complete_fields()
    };
    run(&fresh(), &opening(fields, None), T0, policy).case
}

fn short(answer: Option<YesNo>, lookup: Option<LookupOutcome>) -> Event {
    Event::Requester(RequesterMessage {
        short_answer: answer,
        lookup,
        ..message(RequestFields::default())
    })
}

#[test]
fn a_short_yes_answers_the_one_open_question_and_the_challenge_goes_out() {
    let p = policy();
    let case = asked_about_access(&p);
    assert_eq!(case.missing, vec![Field::EmailAccess]);
    let out = run(&case, &short(Some(YesNo::Yes), Some(found())), T0 + 600, &p);
    assert_eq!(out.case.fields.claims_email_access, Claim::Yes);
    assert!(out.case.missing.is_empty());
    assert_eq!(to_requester(&out), vec!["challenge_sent"]);
    assert!(logged(
        &out,
        "a short yes answered the one open question (email_access)"
    ));
}

#[test]
fn a_short_no_to_the_access_question_sends_the_case_to_staff_review() {
    let p = policy();
    let out = run(
        &asked_about_access(&p),
        &short(Some(YesNo::No), None),
        T0 + 600,
        &p,
    );
    assert_eq!(out.case.fields.claims_email_access, Claim::No);
    assert_eq!(out.case.state, CaseState::AwaitingStaff);
}

#[test]
fn a_short_yes_with_two_questions_open_answers_neither() {
    let p = policy();
    let case = awaiting_info(&p);
    let out = run(&case, &short(Some(YesNo::Yes), None), T0 + 600, &p);
    assert_eq!(out.case.missing, case.missing);
    assert_eq!(to_requester(&out), vec!["request_info"]);
}

#[test]
fn two_replies_without_progress_hand_the_case_to_staff_instead_of_a_third_request() {
    let p = policy();
    let case = awaiting_info(&p);
    let first = run(&case, &short(None, None), T0 + 600, &p);
    assert_eq!(to_requester(&first), vec!["request_info"]);
    let second = run(&first.case, &short(None, None), T0 + 1200, &p);
    assert_eq!(to_requester(&second), vec!["handed_to_staff"]);
    assert_eq!(to_staff(&second), vec!["staff_nudge"]);
    assert_eq!(second.case.state, CaseState::AwaitingStaff);
    assert!(logged(
        &second,
        "handed to staff instead of asking a third time"
    ));
    // Progress in between starts the count again.
    let fields = RequestFields {
        agreed_code_of_conduct: Tick::Stated,
        ..RequestFields::default()
    };
    let moved = run(
        &first.case,
        &Event::Requester(message(fields)),
        T0 + 1200,
        &p,
    );
    assert_eq!(to_requester(&moved), vec!["request_info"]);
    assert_eq!(moved.case.rounds_without_progress, 0);
}

// ---- verification -----------------------------------------------------

#[test]
fn the_code_sent_back_on_the_case_verifies_it_and_hands_it_to_staff() {
    let p = policy();
    // Written as a person might type it: lower case, a space for the dash.
    let out = run(
        &challenged(&p),
        &reply_with_codes(&["k7qm 3xpa"]),
        T0 + 3600,
        &p,
    );

    assert!(
        matches!(&out.case.verification, Verification::Verified { at, .. } if *at == T0 + 3600)
    );
    assert_eq!(out.case.state, CaseState::AwaitingStaff);
    assert_eq!(to_requester(&out), vec!["verified"]);
    assert_eq!(to_staff(&out), vec!["staff_verified"]);
    for gone in [
        TimerKind::ChallengeExpiry,
        TimerKind::ChallengeReminder,
        TimerKind::Reminder,
    ] {
        assert!(!out.case.timers.contains_key(&gone), "{gone:?} left behind");
    }
    assert!(out.case.timers.contains_key(&TimerKind::StaffStatus));
}

#[test]
fn verification_with_a_waiting_period_waits_before_it_reaches_staff() {
    let p = Policy {
        waiting_period: 7 * DAY,
        ..policy()
    };
    let verified = run(&challenged(&p), &reply_with_codes(&[CODE]), T0 + 3600, &p);
    assert_eq!(verified.case.state, CaseState::WaitingPeriod);
    assert_eq!(
        verified.case.timers.get(&TimerKind::WaitingPeriodEnd),
        Some(&(T0 + 3600 + 7 * DAY))
    );

    let over = tick(&verified.case, T0 + 3600 + 7 * DAY, &p, None);
    assert_eq!(over.case.state, CaseState::AwaitingStaff);
    assert!(to_requester(&over).is_empty());
}

#[test]
fn the_owner_saying_yes_on_the_challenge_thread_verifies_the_case() {
    let p = policy();
    let out = run(
        &challenged(&p),
        &owner(OwnerAnswerKind::Confirmed, &[]),
        T0 + 3600,
        &p,
    );
    assert!(matches!(
        out.case.verification,
        Verification::Verified { .. }
    ));
    assert_eq!(out.case.state, CaseState::AwaitingStaff);
    assert_eq!(to_requester(&out), vec!["verified"]);
}

#[test]
fn the_owner_saying_no_flags_a_takeover_alerts_staff_and_tells_the_requester_nothing() {
    let p = policy();
    let out = run(
        &challenged(&p),
        &owner(OwnerAnswerKind::Denied, &[]),
        T0 + 3600,
        &p,
    );
    assert!(matches!(out.case.verification, Verification::Denied { .. }));
    assert!(out.case.flags.contains(&Flag::TakeoverAttempt));
    assert_eq!(out.case.priority, Priority::High);
    assert_eq!(to_staff(&out), vec!["staff_denied"]);
    assert!(to_requester(&out).is_empty());
    assert_eq!(out.case.state, CaseState::AwaitingStaff);
    assert!(!out.case.timers.contains_key(&TimerKind::ChallengeExpiry));
    // The requester sending the old code now gets nowhere.
    let later = run(&out.case, &reply_with_codes(&[CODE]), T0 + 7200, &p);
    assert!(matches!(
        later.case.verification,
        Verification::Denied { .. }
    ));
}

#[test]
fn a_denial_during_the_waiting_period_cancels_it() {
    let p = Policy {
        waiting_period: 7 * DAY,
        ..policy()
    };
    let waiting = run(
        &challenged(&p),
        &owner(OwnerAnswerKind::Confirmed, &[]),
        T0 + 3600,
        &p,
    )
    .case;
    assert_eq!(waiting.state, CaseState::WaitingPeriod);

    let out = run(
        &waiting,
        &owner(OwnerAnswerKind::Denied, &[]),
        T0 + 3 * DAY,
        &p,
    );
    assert!(matches!(out.case.verification, Verification::Denied { .. }));
    assert!(!out.case.timers.contains_key(&TimerKind::WaitingPeriodEnd));
    assert!(out.case.flags.contains(&Flag::TakeoverAttempt));
    assert_eq!(to_staff(&out), vec!["staff_denied"]);
    assert!(to_requester(&out).is_empty());
}

#[test]
fn a_wrong_code_uses_one_attempt_and_the_last_one_locks_the_challenge() {
    let p = policy();
    let one = run(
        &challenged(&p),
        &reply_with_codes(&["ZZZZ-2222"]),
        T0 + 60,
        &p,
    );
    let Verification::Pending(ch) = &one.case.verification else {
        panic!()
    };
    assert_eq!(ch.attempts_left, 2);
    assert_eq!(to_requester(&one), vec!["challenge_sent"]);
    assert_eq!(
        one.mails[0].extra.get("wrong_code").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        one.mails[0].extra.get("attempts_left").map(String::as_str),
        Some("2")
    );

    let two = run(&one.case, &reply_with_codes(&["ZZZZ-3333"]), T0 + 120, &p);
    let three = run(&two.case, &reply_with_codes(&["ZZZZ-4444"]), T0 + 180, &p);
    assert!(matches!(
        three.case.verification,
        Verification::Locked { .. }
    ));
    assert!(three.case.flags.contains(&Flag::ChallengeLocked));
    assert_eq!(three.case.state, CaseState::AwaitingStaff);
    assert_eq!(to_requester(&three), vec!["neutral"]);
    assert_eq!(to_staff(&three), vec!["staff_nudge"]);

    // Once locked, even the right code does nothing.
    let late = run(&three.case, &reply_with_codes(&[CODE]), T0 + 240, &p);
    assert!(matches!(
        late.case.verification,
        Verification::Locked { .. }
    ));
}

#[test]
fn each_distinct_wrong_code_is_one_attempt_and_guesses_stop_at_the_attempts_left() {
    let p = policy();
    let two = run(
        &challenged(&p),
        &reply_with_codes(&["ZZZZ-2222", "ZZZZ-3333"]),
        T0 + 60,
        &p,
    );
    let Verification::Pending(ch) = &two.case.verification else {
        panic!("{:?}", two.case.verification)
    };
    assert_eq!(ch.attempts_left, 1);
    // Packing more guesses than attempts into one message buys nothing:
    // the right code after the last allowed guess is never checked.
    let stuffed = run(
        &challenged(&p),
        &reply_with_codes(&["ZZZZ-2222", "ZZZZ-3333", "ZZZZ-4444", CODE]),
        T0 + 60,
        &p,
    );
    assert!(matches!(
        stuffed.case.verification,
        Verification::Locked { .. }
    ));
    // The right code early enough among wrong ones verifies.
    let mixed = run(
        &challenged(&p),
        &reply_with_codes(&["ZZZZ-2222", CODE]),
        T0 + 60,
        &p,
    );
    assert!(matches!(
        mixed.case.verification,
        Verification::Verified { .. }
    ));
}

#[test]
fn a_code_that_appears_only_in_quoted_text_is_not_an_attempt_or_a_confirmation() {
    let p = policy();
    let event = Event::Requester(RequesterMessage {
        quoted_codes: vec![CODE.into(), "ZZZZ-2222".into()],
        ..message(RequestFields::default())
    });
    let out = run(&challenged(&p), &event, T0 + 60, &p);
    let Verification::Pending(ch) = &out.case.verification else {
        panic!("{:?}", out.case.verification)
    };
    assert_eq!(ch.attempts_left, 3);
    assert!(logged(&out, "only in quoted text"));
}

#[test]
fn a_wrong_code_on_the_challenge_thread_uses_an_attempt_but_tells_the_requester_nothing() {
    let p = policy();
    let out = run(
        &challenged(&p),
        &owner(OwnerAnswerKind::Unclear, &["ZZZZ-2222"]),
        T0 + 60,
        &p,
    );
    let Verification::Pending(ch) = &out.case.verification else {
        panic!()
    };
    assert_eq!(ch.attempts_left, 2);
    assert!(to_requester(&out).is_empty(), "{:?}", out.mails);
    // The code itself sent back on the challenge thread proves the mailbox too.
    let right = run(
        &challenged(&p),
        &owner(OwnerAnswerKind::Unclear, &[CODE]),
        T0 + 60,
        &p,
    );
    assert!(matches!(
        right.case.verification,
        Verification::Verified { .. }
    ));
}

#[test]
fn the_challenge_reminder_goes_once_to_the_linked_address_with_a_fresh_code() {
    let p = policy();
    let case = challenged(&p);
    let out = apply(
        &case,
        &Event::Timers {
            kinds: vec![TimerKind::ChallengeReminder],
            lookup: None,
        },
        &ctx_with_code(T0 + DAY, &p, NEXT_CODE),
    );
    assert_eq!(out.mails.len(), 1);
    assert_eq!(out.mails[0].to, Recipient::Linked(LINKED.into()));
    assert_eq!(out.mails[0].template.to_string(), "challenge_reminder");
    assert_eq!(out.mails[0].code.as_deref(), Some(NEXT_CODE));
    // Only the newest code works: the old one was never kept, so it cannot be resent.
    let old = run(&out.case, &reply_with_codes(&[CODE]), T0 + DAY + 60, &p);
    assert!(matches!(old.case.verification, Verification::Pending(_)));
    let new = run(
        &out.case,
        &reply_with_codes(&[NEXT_CODE]),
        T0 + DAY + 60,
        &p,
    );
    assert!(matches!(
        new.case.verification,
        Verification::Verified { .. }
    ));
}

#[test]
fn an_unanswered_challenge_expires_and_a_late_code_gets_a_fresh_challenge_not_a_verification() {
    let p = policy();
    let (expired, _) = run_clock(challenged(&p), T0 + 2 * DAY, &p);
    assert!(matches!(expired.verification, Verification::Expired { .. }));
    assert!(!expired.timers.contains_key(&TimerKind::ChallengeExpiry));
    // Still waiting on the requester: the reminder is what is left.
    assert_eq!(expired.state, CaseState::AwaitingVerification);
    assert!(expired.timers.contains_key(&TimerKind::Reminder));

    // A code that arrives after expiry but before the expiry timer ran
    // (the worker was down) does not verify either.
    let late = apply(
        &challenged(&p),
        &reply_with_codes(&[CODE]),
        &ctx_with_code(T0 + 3 * DAY, &p, NEXT_CODE),
    );
    let Verification::Pending(ch) = &late.case.verification else {
        panic!("{:?}", late.case.verification)
    };
    assert_eq!(
        ch.code_mac,
        verify::code_mac(KEY, case_id().as_str(), NEXT_CODE)
    );
    assert_eq!(to_requester(&late), vec!["challenge_sent"]);
    assert_eq!(
        to(&late, &Recipient::Linked(LINKED.into())),
        vec!["challenge"]
    );
}

// ---- staff ---------------------------------------------------------------

#[test]
fn ask_or_close_with_text_sends_the_requester_one_mail_with_the_text_first() {
    let p = policy();
    let ask = staff(
        vec![Command::Ask {
            fields: vec![Field::Proofs],
        }],
        "Could you tell us which packages you maintain?",
    );
    let out = run(&with_staff(&p), &ask, T0 + DAY, &p);
    assert_eq!(to_requester(&out), vec!["staff_relay"]);
    assert_eq!(
        out.mails[0].extra.get("with").map(String::as_str),
        Some("request_info")
    );
    let close = staff(
        vec![Command::Close { reason: None }],
        "We restored your account. Take care.",
    );
    let out = run(&with_staff(&p), &close, T0 + DAY, &p);
    assert_eq!(to_requester(&out), vec!["staff_relay"]);
    assert_eq!(out.case.state, CaseState::Closed);
    assert_eq!(
        out.mails[0].extra.get("with").map(String::as_str),
        Some("closed")
    );
    // Without text the command's own mail still goes out.
    let out = run(
        &with_staff(&p),
        &staff(vec![Command::Close { reason: None }], ""),
        T0 + DAY,
        &p,
    );
    assert_eq!(to_requester(&out), vec!["closed"]);
}

#[test]
fn staff_text_is_relayed_to_the_requester_with_the_staff_name() {
    let p = policy();
    let out = run(
        &with_staff(&p),
        &staff(vec![], "We are looking into it."),
        T0 + DAY,
        &p,
    );
    assert_eq!(to_requester(&out), vec!["staff_relay"]);
    assert_eq!(
        out.mails[0].extra.get("text").map(String::as_str),
        Some("We are looking into it.")
    );
    assert_eq!(
        out.mails[0].extra.get("staff_name").map(String::as_str),
        Some("Ada")
    );
    assert_eq!(out.case.last_staff_action_at, Some(T0 + DAY));
}

#[test]
fn a_staff_note_is_internal_and_never_relayed() {
    // `/internal` marks the message internal: its text is never relayed.
    // Staff get the one receipt a silent command earns (13.12), nothing else.
    let p = policy();
    let mut event = staff(
        vec![Command::Note {
            text: "called them".into(),
        }],
        "and more text",
    );
    if let Event::Staff { message, .. } = &mut event {
        message.internal = true;
    }
    let out = run(&with_staff(&p), &event, T0, &p);
    assert!(to_requester(&out).is_empty(), "{:?}", out.mails);
    assert_eq!(
        to(&out, &Recipient::StaffMember("admin@pypi.example".into())),
        vec!["staff_receipt"]
    );
    assert!(logged(&out, "note: called them"));
}

#[test]
fn a_one_line_note_with_text_relays_the_text_and_the_receipt_says_both() {
    let p = policy();
    let out = run(
        &with_staff(&p),
        &staff(
            vec![Command::Note {
                text: "called them".into(),
            }],
            "Hello Jo, we called you.",
        ),
        T0,
        &p,
    );
    assert_eq!(to_requester(&out), vec!["staff_relay"]);
    let receipt = out
        .mails
        .iter()
        .find(|m| m.template == TemplateKind::StaffReceipt)
        .expect("a receipt");
    assert_eq!(
        receipt.extra.get("done").map(String::as_str),
        Some("added your internal note to the case log\nrelayed your text to the requester")
    );
}

#[test]
fn a_staff_message_whose_command_cannot_run_changes_nothing() {
    let p = policy();
    let before = with_staff(&p);
    let event = Event::Staff {
        from: "admin@pypi.example".into(),
        name: None,
        message: StaffMessage {
            commands: vec![
                Command::Priority {
                    priority: Priority::High,
                },
                Command::AssignMe,
                Command::Verify,
            ],
            relay_text: "Hello Jo, a code is on its way.".into(),
            ..StaffMessage::default()
        },
        direct: false,
        lookup: Some(LookupOutcome::NotFound),
    };
    let out = run(&before, &event, T0 + DAY, &p);
    assert_eq!(out.case.priority, before.priority);
    assert_eq!(out.case.assignee, None);
    assert_eq!(out.case.state, before.state);
    assert_eq!(out.case.verification, before.verification);
    let templates: Vec<&str> = out.mails.iter().map(|m| m.template.name()).collect();
    assert_eq!(templates, vec!["staff_command_error"]);
    assert!(out.mails[0].extra["error"].contains("/verify"));
    assert!(!logged(&out, "priority set to high"));
    assert!(logged(&out, "nothing was done or relayed"));
}

#[test]
fn staff_close_closes_the_case_clears_its_timers_and_tells_the_requester() {
    let p = policy();
    let out = run(
        &with_staff(&p),
        &staff(
            vec![Command::Close {
                reason: Some("done".into()),
            }],
            "",
        ),
        T0 + DAY,
        &p,
    );
    assert_eq!(out.case.state, CaseState::Closed);
    assert_eq!(out.case.closed_at, Some(T0 + DAY));
    assert!(out.case.timers.is_empty());
    assert_eq!(to_requester(&out), vec!["closed"]);
}

#[test]
fn staff_resolve_marks_it_resolved_and_schedules_the_close() {
    let p = policy();
    let out = run(
        &with_staff(&p),
        &staff(vec![Command::Resolve], ""),
        T0 + DAY,
        &p,
    );
    assert_eq!(out.case.state, CaseState::Resolved);
    assert_eq!(out.case.resolved_at, Some(T0 + DAY));
    assert_eq!(
        out.case.timers.keys().copied().collect::<Vec<_>>(),
        vec![TimerKind::ResolvedClose]
    );
    assert_eq!(out.case.timers[&TimerKind::ResolvedClose], T0 + 8 * DAY);
    assert_eq!(to_requester(&out), vec!["resolved"]);
}

#[test]
fn staff_verify_sends_a_challenge_when_the_account_has_an_address_and_explains_when_not() {
    let p = policy();
    let verify = |lookup: LookupOutcome| {
        let event = Event::Staff {
            from: "admin@pypi.example".into(),
            name: None,
            message: StaffMessage {
                commands: vec![Command::Verify],
                ..StaffMessage::default()
            },
            direct: false,
            lookup: Some(lookup),
        };
        run(&with_staff(&p), &event, T0 + DAY, &p)
    };
    let ok = verify(found());
    assert_eq!(ok.case.state, CaseState::AwaitingVerification);
    assert_eq!(
        to(&ok, &Recipient::Linked(LINKED.into())),
        vec!["challenge"]
    );
    assert_eq!(to_requester(&ok), vec!["challenge_sent"]);
    assert!(ok.case.timers.contains_key(&TimerKind::Reminder));

    let none = verify(LookupOutcome::NotFound);
    assert_eq!(none.case.state, CaseState::AwaitingStaff);
    assert_eq!(
        to(&none, &Recipient::StaffMember("admin@pypi.example".into())),
        vec!["staff_command_error"]
    );
    assert!(to_requester(&none).is_empty());
}

#[test]
fn staff_ask_requests_exactly_the_named_fields() {
    let p = policy();
    let out = run(
        &with_staff(&p),
        &staff(
            vec![Command::Ask {
                fields: vec![Field::Proofs],
            }],
            "",
        ),
        T0 + DAY,
        &p,
    );
    assert_eq!(out.case.state, CaseState::AwaitingInfo);
    assert_eq!(out.case.missing, vec![Field::Proofs]);
    assert_eq!(to_requester(&out), vec!["request_info"]);
    assert_eq!(
        out.case.timers.get(&TimerKind::Reminder),
        Some(&(T0 + 6 * DAY))
    );
    assert!(!out.case.timers.contains_key(&TimerKind::StaffStatus));
}

#[test]
fn staff_reopen_brings_a_closed_case_back_to_staff() {
    let p = policy();
    let closed = run(
        &with_staff(&p),
        &staff(vec![Command::Close { reason: None }], ""),
        T0,
        &p,
    )
    .case;
    let out = run(&closed, &staff(vec![Command::Reopen], ""), T0 + DAY, &p);
    assert_eq!(out.case.state, CaseState::AwaitingStaff);
    assert_eq!(out.case.closed_at, None);
    assert_eq!(to_requester(&out), vec!["reopened"]);
    assert!(out.case.timers.contains_key(&TimerKind::StaffStatus));
    // On an open case it is a no-op apart from the log.
    let open = run(&with_staff(&p), &staff(vec![Command::Reopen], ""), T0, &p);
    assert!(open.mails.is_empty());
}

#[test]
fn staff_priority_and_assign_change_only_the_case() {
    let p = policy();
    let event = staff(
        vec![
            Command::Priority {
                priority: Priority::High,
            },
            Command::AssignMe,
        ],
        "",
    );
    let out = run(&with_staff(&p), &event, T0, &p);
    assert_eq!(out.case.priority, Priority::High);
    assert_eq!(out.case.assignee.as_deref(), Some("admin@pypi.example"));
    // Nothing to the requester or the list; the writer's receipt (13.12).
    assert!(to_requester(&out).is_empty() && to_staff(&out).is_empty());
    assert_eq!(
        to(&out, &Recipient::StaffMember("admin@pypi.example".into())),
        vec!["staff_receipt"]
    );
}

#[test]
fn a_staff_command_error_goes_back_to_that_staff_member_and_nothing_is_relayed() {
    let p = policy();
    let event = Event::Staff {
        from: "admin@pypi.example".into(),
        name: None,
        message: StaffMessage {
            errors: vec!["unknown command /frobnicate".into()],
            ..StaffMessage::default()
        },
        direct: false,
        lookup: None,
    };
    let out = run(&with_staff(&p), &event, T0, &p);
    assert_eq!(
        to(&out, &Recipient::StaffMember("admin@pypi.example".into())),
        vec!["staff_command_error"]
    );
    assert!(to_requester(&out).is_empty());
}

#[test]
fn staff_writing_to_the_requester_directly_is_recorded_not_relayed() {
    let p = policy();
    let event = Event::Staff {
        from: "admin@pypi.example".into(),
        name: None,
        message: StaffMessage {
            relay_text: "hello".into(),
            ..StaffMessage::default()
        },
        direct: true,
        lookup: None,
    };
    let out = run(&with_staff(&p), &event, T0 + DAY, &p);
    assert!(out.mails.is_empty());
    assert_eq!(out.case.last_staff_action_at, Some(T0 + DAY));
}

#[test]
fn forged_staff_mail_is_flagged_and_acts_on_nothing() {
    let p = policy();
    let before = with_staff(&p);
    let event = Event::ForgedStaff {
        from: "admin@pypi.example".into(),
        why: "no DMARC pass".into(),
    };
    let out = run(&before, &event, T0 + DAY, &p);
    assert!(out.case.flags.contains(&Flag::ForgedStaff));
    assert_eq!(to_staff(&out), vec!["staff_forged"]);
    assert!(to_requester(&out).is_empty());
    assert_eq!(out.case.state, before.state);
    assert_eq!(out.case.timers, before.timers);
    assert_eq!(out.case.last_staff_action_at, None);
}

// ---- machine mail, duplicates, other people ---------------------------

#[test]
fn a_bounce_is_recorded_on_the_case_and_staff_are_told() {
    let p = policy();
    let before = challenged(&p);
    let bounce = crate::classify::Bounce {
        failed_recipients: vec![LINKED.into()],
        diagnostic: Some("550 no such user".into()),
        ..Default::default()
    };
    let out = run(&before, &Event::DeliveryFailed { bounce }, T0 + 60, &p);
    assert!(out.case.flags.contains(&Flag::DeliveryFailure));
    assert_eq!(to_staff(&out), vec!["staff_delivery_failure"]);
    assert!(to_requester(&out).is_empty());
    assert_eq!(out.case.state, before.state);
}

#[test]
fn machine_mail_is_recorded_and_never_answered() {
    let p = policy();
    let event = Event::Machine {
        kind: "auto_reply".into(),
        reason: "Auto-Submitted: auto-replied".into(),
    };
    let out = run(&challenged(&p), &event, T0 + 60, &p);
    assert!(out.mails.is_empty());
    assert!(logged(&out, "not answered"));
}

#[test]
fn a_subject_tag_from_a_stranger_is_held_and_flagged_not_merged() {
    let p = policy();
    let out = run(
        &challenged(&p),
        &Event::UnverifiedTag {
            from: "stranger@evil.example".into(),
        },
        T0 + 60,
        &p,
    );
    assert!(out.case.flags.contains(&Flag::UnverifiedSubjectTag));
    assert!(out.case.other_requesters.is_empty());
    assert!(to_requester(&out).is_empty());
    assert_eq!(to_staff(&out), vec!["staff_unverified_tag"]);
}

#[test]
fn a_duplicate_request_gets_a_polite_note_and_keeps_its_place() {
    let p = policy();
    let before = challenged(&p);
    let event = Event::Requester(RequesterMessage {
        duplicate: true,
        ..message(complete_fields())
    });
    let out = run(&before, &event, T0 + 3600, &p);
    assert_eq!(to_requester(&out), vec!["duplicate"]);
    assert!(
        to_staff(&out).is_empty(),
        "staff are not told of a new case"
    );
    assert_eq!(out.case.state, CaseState::AwaitingVerification);
    assert_eq!(
        out.case.verification, before.verification,
        "no second challenge"
    );
    assert_eq!(out.case.created_at, before.created_at);
}

#[test]
fn a_second_requester_gets_a_neutral_reply_and_the_first_hears_nothing() {
    let p = policy();
    let before = challenged(&p);
    let event = Event::SecondRequester {
        from: "other@mail.example".into(),
    };
    let out = run(&before, &event, T0 + 3600, &p);
    assert_eq!(
        to(&out, &Recipient::Other("other@mail.example".into())),
        vec!["neutral"]
    );
    assert!(to_requester(&out).is_empty());
    assert_eq!(to_staff(&out), vec!["staff_new_case"]);
    assert_eq!(
        out.case.other_requesters,
        vec!["other@mail.example".to_string()]
    );
    assert!(out.case.flags.contains(&Flag::MultipleRequesters));
    // The neutral reply carries nothing from the case.
    let neutral = out
        .mails
        .iter()
        .find(|m| m.template.name() == "neutral")
        .unwrap();
    assert!(neutral.extra.is_empty() && neutral.code.is_none());
    assert_eq!(out.case.verification, before.verification);
    // Asking twice does not list them twice.
    let again = run(&out.case, &event, T0 + 7200, &p);
    assert_eq!(again.case.other_requesters.len(), 1);
}

// ---- follow-ups --------------------------------------------------------

#[test]
fn a_silent_requester_gets_one_reminder_and_then_a_close_notice() {
    let p = policy();
    let (case, sent) = run_clock(awaiting_info(&p), T0 + 60 * DAY, &p);
    let to_req: Vec<(i64, &str)> = sent
        .iter()
        .filter(|(_, m)| m.to == Recipient::Requester)
        .map(|(t, m)| (*t, m.template.name()))
        .collect();
    assert_eq!(
        to_req,
        vec![(T0 + 5 * DAY, "reminder"), (T0 + 12 * DAY, "close_notice")]
    );
    assert_eq!(case.state, CaseState::Closed);
    assert_eq!(case.closed_at, Some(T0 + 12 * DAY));
    assert_eq!(case.reminders_sent, 1);
    assert!(case.timers.is_empty());
}

#[test]
fn an_unanswered_challenge_is_reminded_and_closed_like_missing_information() {
    let p = policy();
    let (case, sent) = run_clock(challenged(&p), T0 + 60 * DAY, &p);
    let to_req: Vec<&str> = sent
        .iter()
        .filter(|(_, m)| m.to == Recipient::Requester)
        .map(|(_, m)| m.template.name())
        .collect();
    assert_eq!(to_req, vec!["reminder", "close_notice"]);
    assert_eq!(case.state, CaseState::Closed);
    // The challenge does not outlive the case.
    assert!(matches!(case.verification, Verification::Expired { .. }));
}

#[test]
fn a_reply_after_the_reminder_cancels_the_close() {
    let p = policy();
    let reminded = tick(&awaiting_info(&p), T0 + 5 * DAY, &p, None).case;
    assert!(reminded.timers.contains_key(&TimerKind::CloseInactive));
    let fields = RequestFields {
        agreed_code_of_conduct: Tick::Stated,
        ..RequestFields::default()
    };
    let out = run(&reminded, &reply(fields), T0 + 6 * DAY, &p);
    assert_eq!(out.case.missing, vec![Field::DelayAcknowledged]);
    assert!(!out.case.timers.contains_key(&TimerKind::CloseInactive));
    assert_eq!(
        out.case.timers.get(&TimerKind::Reminder),
        Some(&(T0 + 11 * DAY))
    );
    assert_eq!(to_requester(&out), vec!["request_info"]);
}

#[test]
fn a_reply_to_a_closed_case_within_the_window_reopens_it_and_later_it_does_not() {
    let p = policy();
    let (closed, _) = run_clock(awaiting_info(&p), T0 + 12 * DAY, &p);
    assert_eq!(closed.state, CaseState::Closed);
    assert!(closed.accepts_reopen(T0 + 12 * DAY + 30 * DAY, &p));
    assert!(!closed.accepts_reopen(T0 + 12 * DAY + 30 * DAY + 1, &p));

    // The reply brings what was missing: the case goes on where it stopped.
    let fields = RequestFields {
        agreed_code_of_conduct: Tick::Stated,
        acknowledged_delay: Tick::Stated,
        ..RequestFields::default()
    };
    let event = Event::Requester(RequesterMessage {
        lookup: Some(found()),
        ..message(fields)
    });
    let out = run(&closed, &event, T0 + 20 * DAY, &p);
    assert_eq!(out.case.closed_at, None);
    assert_eq!(out.case.state, CaseState::AwaitingVerification);
    assert_eq!(to_requester(&out), vec!["reopened", "challenge_sent"]);
    assert_eq!(
        to(&out, &Recipient::Linked(LINKED.into())),
        vec!["challenge"]
    );
}

#[test]
fn a_closed_case_with_a_stale_challenge_gets_a_fresh_one_when_reopened() {
    let p = policy();
    let (closed, _) = run_clock(challenged(&p), T0 + 60 * DAY, &p);
    assert_eq!(closed.state, CaseState::Closed);
    // Even a case stored before challenges were ended on close: a Pending
    // challenge long past its time must not leave the case waiting forever.
    let mut old_style = closed.clone();
    old_style.verification = challenged(&p).verification;
    // The caller looks the account up again for an expired challenge, but
    // not for one it believes pending.
    let looked_up = Event::Requester(RequesterMessage {
        lookup: Some(found()),
        ..message(RequestFields::default())
    });
    for (case, event) in [
        (closed, looked_up),
        (old_style, reply(RequestFields::default())),
    ] {
        let out = apply(&case, &event, &ctx_with_code(T0 + 20 * DAY, &p, NEXT_CODE));
        assert_eq!(
            out.case.state,
            CaseState::AwaitingVerification,
            "{:?}",
            out.log
        );
        let Verification::Pending(ch) = &out.case.verification else {
            panic!("{:?}", out.case.verification)
        };
        assert_eq!(ch.expires_at, T0 + 22 * DAY);
        assert!(out.case.timers.contains_key(&TimerKind::ChallengeExpiry));
        assert!(out.case.timers.contains_key(&TimerKind::Reminder));
    }
}

#[test]
fn a_reply_to_a_case_with_nothing_pending_reopens_it_for_staff() {
    let p = policy();
    let closed = run(
        &with_staff(&p),
        &staff(vec![Command::Close { reason: None }], ""),
        T0,
        &p,
    )
    .case;
    let out = run(&closed, &reply(RequestFields::default()), T0 + DAY, &p);
    assert_eq!(out.case.state, CaseState::AwaitingStaff);
    assert_eq!(to_requester(&out), vec!["reopened"]);
    assert_eq!(
        out.case.timers.get(&TimerKind::StaffStatus),
        Some(&(T0 + 11 * DAY))
    );
}

#[test]
fn any_update_is_answered_once_per_interval() {
    let p = policy();
    let case = with_staff(&p);
    let first = run(&case, &chase(), T0 + DAY, &p);
    assert_eq!(to_requester(&first), vec!["status_reply"]);
    assert_eq!(first.case.last_status_reply_at, Some(T0 + DAY));

    let second = run(&first.case, &chase(), T0 + 2 * DAY, &p);
    assert!(second.mails.is_empty(), "{:?}", second.mails);
    assert!(logged(&second, "within the configured interval"));

    let third = run(&second.case, &chase(), T0 + 4 * DAY, &p);
    assert_eq!(to_requester(&third), vec!["status_reply"]);
    assert_eq!(third.case.state, CaseState::AwaitingStaff);
}

#[test]
fn any_update_sent_as_a_new_message_is_a_status_chase_not_a_duplicate() {
    let p = policy();
    let event = Event::Requester(RequesterMessage {
        duplicate: true,
        ..message(RequestFields {
            status_chase: true,
            ..RequestFields::default()
        })
    });
    let first = run(&with_staff(&p), &event, T0 + DAY, &p);
    assert_eq!(to_requester(&first), vec!["status_reply"]);
    let second = run(&first.case, &event, T0 + DAY + 3600, &p);
    assert!(second.mails.is_empty(), "{:?}", second.mails);
}

#[test]
fn any_update_while_information_is_missing_is_a_status_reply_within_the_interval_too() {
    let p = policy();
    let first = run(&awaiting_info(&p), &chase(), T0 + DAY, &p);
    assert_eq!(to_requester(&first), vec!["status_reply"]);
    assert_eq!(first.case.state, CaseState::AwaitingInfo);
    let second = run(&first.case, &chase(), T0 + DAY + 60, &p);
    assert!(second.mails.is_empty());
}

#[test]
fn waiting_on_staff_sends_status_notes_up_to_the_cap_each_with_a_staff_nudge() {
    let p = policy();
    let (case, sent) = run_clock(with_staff(&p), T0 + 120 * DAY, &p);
    let notes: Vec<i64> = sent
        .iter()
        .filter(|(_, m)| m.template.name() == "status_note")
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(notes, vec![T0 + 10 * DAY, T0 + 17 * DAY, T0 + 24 * DAY]);
    let nudges: Vec<i64> = sent
        .iter()
        .filter(|(_, m)| m.to == Recipient::Staff)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(nudges, notes, "staff are nudged at the same time");
    assert!(sent
        .iter()
        .all(|(_, m)| m.to != Recipient::Requester || m.template.name() == "status_note"));
    assert_eq!(case.status_notes_sent, 3);
    assert!(case.timers.is_empty());
}

#[test]
fn a_staff_action_starts_the_status_notes_over() {
    let p = policy();
    let (capped, _) = run_clock(with_staff(&p), T0 + 40 * DAY, &p);
    assert!(capped.timers.is_empty());
    let out = run(&capped, &staff(vec![], "Still on it."), T0 + 41 * DAY, &p);
    assert_eq!(out.case.status_notes_sent, 0);
    assert_eq!(
        out.case.timers.get(&TimerKind::StaffStatus),
        Some(&(T0 + 51 * DAY))
    );
}

#[test]
fn a_resolved_case_closes_quietly_after_the_quiet_period() {
    let p = policy();
    let resolved = run(&with_staff(&p), &staff(vec![Command::Resolve], ""), T0, &p).case;
    let early = tick(&resolved, T0 + 6 * DAY, &p, None);
    assert_eq!(early.case.state, CaseState::Resolved);
    let out = tick(&resolved, T0 + 7 * DAY, &p, None);
    assert_eq!(out.case.state, CaseState::Closed);
    assert_eq!(out.case.closed_at, Some(T0 + 7 * DAY));
    assert!(out.mails.is_empty());
}

#[test]
fn a_reply_to_a_resolved_case_goes_back_to_staff_unless_it_says_solved() {
    let p = policy();
    let resolved = run(&with_staff(&p), &staff(vec![Command::Resolve], ""), T0, &p).case;

    let thanks = run(
        &resolved,
        &reply(RequestFields {
            solved: true,
            ..RequestFields::default()
        }),
        T0 + 5 * DAY,
        &p,
    );
    assert_eq!(thanks.case.state, CaseState::Resolved);
    assert_eq!(
        thanks.case.timers.get(&TimerKind::ResolvedClose),
        Some(&(T0 + 12 * DAY))
    );
    assert!(thanks.mails.is_empty());

    let problem = run(
        &resolved,
        &reply(RequestFields::default()),
        T0 + 5 * DAY,
        &p,
    );
    assert_eq!(problem.case.state, CaseState::AwaitingStaff);
    assert!(
        !problem.case.timers.contains_key(&TimerKind::ResolvedClose),
        "the old close must not linger"
    );
    assert_eq!(to_requester(&problem), vec!["reopened"]);
    assert_eq!(to_staff(&problem), vec!["staff_nudge"]);
}

#[test]
fn a_timer_that_no_longer_fits_the_state_is_skipped() {
    let p = policy();
    let mut case = with_staff(&p);
    case.timers.insert(TimerKind::Reminder, T0 + DAY);
    let out = tick(&case, T0 + DAY, &p, None);
    assert!(out.mails.is_empty());
    assert!(!out.case.timers.contains_key(&TimerKind::Reminder));
    assert!(logged(&out, "no longer applies"));
    // And a timer that is not yet due is left alone even if named.
    let early = run(
        &case,
        &Event::Timers {
            kinds: vec![TimerKind::StaffStatus],
            lookup: None,
        },
        T0 + DAY,
        &p,
    );
    assert!(early.mails.is_empty());
    assert_eq!(
        early.case.timers.get(&TimerKind::StaffStatus),
        Some(&(T0 + 10 * DAY))
    );
}

// ---- quiet hours and downtime -------------------------------------------

fn berlin_weekends() -> QuietHours {
    QuietHours {
        timezone: chrono_tz::Europe::Berlin,
        weekends: true,
        start: None,
        end: None,
    }
}

#[test]
fn quiet_hours_postpone_a_reminder_due_on_a_weekend_to_monday_morning_local_time() {
    let p = Policy {
        quiet_hours: Some(berlin_weekends()),
        ..policy()
    };
    let saturday = T0 + 5 * DAY; // Saturday 2026-11-28 10:00 Berlin
    let out = tick(&awaiting_info(&p), saturday, &p, None);
    assert!(out.mails.is_empty());
    // Monday 2026-11-30 00:00 in Berlin is Sunday 23:00 UTC.
    let monday = T0 + 7 * DAY - 10 * 3600;
    assert_eq!(out.case.timers.get(&TimerKind::Reminder), Some(&monday));
    assert!(logged(&out, "postponed by quiet hours"));

    let later = tick(&out.case, monday, &p, None);
    assert_eq!(to_requester(&later), vec!["reminder"]);
}

#[test]
fn quiet_nights_wrap_past_midnight_and_never_hold_the_challenge_expiry() {
    let night = QuietHours {
        timezone: chrono_tz::UTC,
        weekends: false,
        start: chrono::NaiveTime::from_hms_opt(20, 0, 0),
        end: chrono::NaiveTime::from_hms_opt(8, 0, 0),
    };
    assert_eq!(next_allowed(Some(&night), T0 - 3 * 3600), T0 - 3600); // 06:00 → 08:00
    assert_eq!(next_allowed(Some(&night), T0), T0); // 09:00 is allowed
    assert_eq!(next_allowed(Some(&night), T0 + 12 * 3600), T0 + 23 * 3600); // 21:00 → 08:00
    assert_eq!(next_allowed(None, T0 + 12 * 3600), T0 + 12 * 3600);

    let p = Policy {
        quiet_hours: Some(night),
        ..policy()
    };
    let case = challenged(&p);
    let at_night = case.timers[&TimerKind::ChallengeExpiry] + 12 * 3600; // 21:00 UTC
    let out = tick(&case, at_night, &p, None);
    assert!(
        matches!(out.case.verification, Verification::Expired { .. }),
        "expiry ignores quiet hours"
    );
    assert!(out.mails.is_empty(), "the reminders wait: {:?}", out.mails);
}

#[test]
fn a_three_week_outage_sends_each_recipient_at_most_one_message_that_fits_now() {
    let p = Policy {
        waiting_period: 7 * DAY,
        ..policy()
    };
    let back = T0 + 21 * DAY;
    let waiting_period = run(&challenged(&p), &reply_with_codes(&[CODE]), T0 + 3600, &p).case;
    let resolved = run(&with_staff(&p), &staff(vec![Command::Resolve], ""), T0, &p).case;
    let lookup_pending = run(
        &fresh(),
        &opening(
            complete_fields(),
            Some(LookupOutcome::Unavailable {
                reason: "down".into(),
            }),
        ),
        T0,
        &p,
    )
    .case;
    let cases = [
        ("awaiting info", awaiting_info(&p)),
        ("challenged", challenged(&p)),
        ("with staff", with_staff(&p)),
        ("waiting period", waiting_period),
        ("resolved", resolved),
        ("lookup pending", lookup_pending),
    ];
    for (name, case) in cases {
        let out = tick(&case, back, &p, Some(found()));
        let mut recipients: Vec<&Recipient> = out.mails.iter().map(|m| &m.to).collect();
        let total = recipients.len();
        recipients.dedup();
        assert_eq!(recipients.len(), total, "{name}: {:?}", out.mails);
        // Nothing stale: no reminder for a case whose close moment has passed.
        assert!(
            out.mails.iter().all(|m| m.template.name() != "reminder"),
            "{name}: {:?}",
            out.mails
        );
        // And nothing left due: the next pass sends nothing more.
        assert!(
            out.case.timers.values().all(|due| *due > back),
            "{name}: {:?}",
            out.case.timers
        );
        let again = tick(&out.case, back + 60, &p, Some(found()));
        assert!(again.mails.is_empty(), "{name}: {:?}", again.mails);
    }
    let out = tick(&awaiting_info(&p), back, &p, None);
    assert_eq!(to_requester(&out), vec!["close_notice"]);
    assert_eq!(out.case.state, CaseState::Closed);
    let out = tick(&with_staff(&p), back, &p, None);
    assert_eq!(to_requester(&out), vec!["status_note"]);
    assert_eq!(out.case.status_notes_sent, 1);
}

#[test]
fn an_outage_that_ends_on_a_weekend_closes_on_monday_instead_of_sending_a_stale_reminder() {
    let p = Policy {
        quiet_hours: Some(berlin_weekends()),
        ..policy()
    };
    let saturday = T0 + 19 * DAY; // 2026-12-12, long past the close moment
    let out = tick(&awaiting_info(&p), saturday, &p, None);
    assert!(out.mails.is_empty());
    assert!(!out.case.timers.contains_key(&TimerKind::Reminder));
    let monday = *out
        .case
        .timers
        .get(&TimerKind::CloseInactive)
        .expect("the close waits for Monday");
    let later = tick(&out.case, monday, &p, None);
    assert_eq!(to_requester(&later), vec!["close_notice"]);
}

// ---- what the requester says --------------------------------------------

#[test]
fn suspected_compromise_raises_the_priority_and_tells_staff_at_once() {
    let p = policy();
    let fields = RequestFields {
        reasons: vec![Reason::SuspectedCompromise],
        ..complete_fields()
    };
    let out = run(&fresh(), &opening(fields.clone(), Some(found())), T0, &p);
    assert_eq!(out.case.priority, Priority::High);
    assert!(out.case.flags.contains(&Flag::SuspectedCompromise));
    // One mail, not "SUSPECTED COMPROMISE" and "New recovery case" apart.
    assert_eq!(to_staff(&out), vec!["staff_compromise"]);
    assert_eq!(
        out.mails
            .iter()
            .find(|m| m.template == TemplateKind::StaffCompromise)
            .and_then(|m| m.extra.get("new_case"))
            .map(String::as_str),
        Some("true")
    );
    // Saying it again is not news.
    let again = run(&out.case, &reply(fields), T0 + 60, &p);
    assert!(!to_staff(&again).contains(&"staff_compromise"));

    // Learned from a later message, it still raises the case at once.
    let later = run(
        &challenged(&p),
        &reply(RequestFields {
            reasons: vec![Reason::SuspectedCompromise],
            ..Default::default()
        }),
        T0 + 60,
        &p,
    );
    assert_eq!(later.case.priority, Priority::High);
    assert_eq!(to_staff(&later), vec!["staff_compromise"]);
}

#[test]
fn posted_secrets_are_flagged_and_an_oversize_message_is_answered_with_its_size() {
    let p = policy();
    let event = Event::Requester(RequesterMessage {
        secrets: vec![crate::secrets::SecretKind::ApiToken],
        ..message(RequestFields::default())
    });
    let out = run(&challenged(&p), &event, T0 + 60, &p);
    assert!(out.case.flags.contains(&Flag::SecretsPosted));
    assert_eq!(
        out.case.secrets_found,
        vec![crate::secrets::SecretKind::ApiToken]
    );

    let big = Event::Requester(RequesterMessage {
        oversize: Some(30_000_000),
        ..message(RequestFields::default())
    });
    let out = run(&challenged(&p), &big, T0 + 60, &p);
    assert!(out.case.flags.contains(&Flag::Oversize));
    assert_eq!(to_requester(&out), vec!["too_large"]);
    assert_eq!(
        out.mails[0].extra.get("size_bytes").map(String::as_str),
        Some("30000000")
    );
}

#[test]
fn the_language_of_the_first_message_is_kept() {
    let p = policy();
    let event = Event::Requester(RequesterMessage {
        language: Some("de".into()),
        opens_case: true,
        ..message(complete_fields())
    });
    let out = run(&fresh(), &event, T0, &p);
    assert_eq!(out.case.language, "de");
    let later = Event::Requester(RequesterMessage {
        language: Some("fr".into()),
        ..message(RequestFields::default())
    });
    assert_eq!(run(&out.case, &later, T0 + 60, &p).case.language, "de");
}

#[test]
fn a_lasting_directory_outage_keeps_retrying_and_tells_staff_once() {
    let p = policy();
    let down = || LookupOutcome::Unavailable {
        reason: "503".into(),
    };
    let mut case = run(&fresh(), &opening(complete_fields(), Some(down())), T0, &p).case;
    let mut nudges = 0;
    let mut now = T0;
    for _ in 0..6 {
        now = *case
            .timers
            .get(&TimerKind::DirectoryRetry)
            .expect("a retry stays scheduled");
        let out = tick(&case, now, &p, Some(down()));
        nudges += out
            .mails
            .iter()
            .filter(|m| m.template.name() == "staff_nudge")
            .count();
        assert!(
            out.mails.iter().all(|m| m.to != Recipient::Requester),
            "the requester learns nothing"
        );
        case = out.case;
    }
    assert!(
        matches!(case.verification, Verification::LookupPending { .. }),
        "never treated as no account"
    );
    assert_eq!(nudges, 1, "staff are told exactly once");
    assert!(now > T0);
}

#[test]
fn mail_tied_only_by_the_sender_answers_no_challenge_and_changes_nothing_held() {
    let p = policy();
    let case = challenged(&p);
    let weak = |fields: RequestFields| RequesterMessage {
        codes: vec!["ZZZZ-2222".into(), "HJKL-4567".into(), "MNPQ-8923".into()],
        language: Some("de".into()),
        thread: ThreadStrength::SenderOnly,
        ..message(fields)
    };
    let event = Event::Requester(weak(RequestFields {
        username: Some("mallory".into()),
        claims_email_access: Claim::No,
        ..RequestFields::default()
    }));
    let out = run(&case, &event, T0 + 60, &p);
    let Verification::Pending(ch) = &out.case.verification else {
        panic!("{:?}", out.case.verification)
    };
    assert_eq!(ch.attempts_left, 3, "no attempt counted");
    assert_eq!(out.case.language, case.language);
    assert_eq!(out.case.fields.username, case.fields.username);
    assert_eq!(
        out.case.fields.claims_email_access,
        case.fields.claims_email_access
    );
    assert!(logged(&out, "only by the sender's address"));
    // The same message, proven, counts its codes.
    let proven = Event::Requester(RequesterMessage {
        thread: ThreadStrength::Proven,
        ..weak(RequestFields::default())
    });
    let out = run(&case, &proven, T0 + 60, &p);
    assert!(
        !matches!(&out.case.verification, Verification::Pending(ch) if ch.attempts_left == 3),
        "{:?}",
        out.case.verification
    );
}

#[test]
fn mail_tied_only_by_the_sender_may_fill_in_what_is_missing() {
    let held = RequestFields {
        username: Some("alice".into()),
        ..RequestFields::default()
    };
    let msg = RequesterMessage {
        thread: ThreadStrength::SenderOnly,
        ..message(RequestFields {
            username: Some("mallory".into()),
            claims_email_access: Claim::Yes,
            ..RequestFields::default()
        })
    };
    let fields = msg.fields_for(&held);
    assert_eq!(fields.username, None);
    assert_eq!(fields.claims_email_access, Claim::Yes);
    let opening = RequesterMessage {
        opens_case: true,
        ..msg.clone()
    };
    assert_eq!(
        opening.fields_for(&held).username.as_deref(),
        Some("mallory")
    );
}

#[test]
fn losing_the_linked_address_mid_challenge_withdraws_it_and_hands_the_case_to_staff_now() {
    let p = policy();
    for lookup in [found(), LookupOutcome::NotFound] {
        let case = run(&fresh(), &opening(complete_fields(), Some(lookup)), T0, &p).case;
        assert_eq!(case.state, CaseState::AwaitingVerification);
        let lost = RequestFields {
            claims_email_access: Claim::No,
            ..RequestFields::default()
        };
        let out = run(&case, &reply(lost.clone()), T0 + 3600, &p);
        assert_eq!(out.case.state, CaseState::AwaitingStaff);
        assert!(matches!(
            out.case.verification,
            Verification::Skipped { .. }
        ));
        assert!(!out.case.timers.contains_key(&TimerKind::ChallengeReminder));
        assert!(!out.case.timers.contains_key(&TimerKind::ChallengeExpiry));
        assert_eq!(to_requester(&out), vec!["linked_address_lost"]);
        assert_eq!(to_staff(&out), vec!["staff_nudge"]);
        // Mail tied to the case only by the sender's address may not
        // cancel a challenge: a forged From would.
        let forged = Event::Requester(RequesterMessage {
            thread: ThreadStrength::SenderOnly,
            ..message(lost)
        });
        let out = run(&case, &forged, T0 + 3600, &p);
        assert_eq!(out.case.state, CaseState::AwaitingVerification);
        assert!(to_requester(&out) != vec!["linked_address_lost"]);
    }
}

#[test]
fn typed_effects_read_and_write_the_names_earlier_stores_hold() {
    use crate::case::{Actor, Direction, LogEntry, MessageRef, RefKind};
    use crate::domain::HandledKind;
    let stored = r#"{"message_id":"a@b","direction":"out","from":"s@x","to":["r@y"],
        "subject":"S","date":1,"kind":"acknowledgement","role":"case"}"#;
    let sent: MessageRef = serde_json::from_str(stored).expect("an outgoing ref");
    assert_eq!(sent.direction, Direction::Out);
    assert_eq!(sent.kind, RefKind::Sent(TemplateKind::Acknowledgement));
    let read: MessageRef =
        serde_json::from_str(&stored.replace("acknowledgement", "auto_reply")).expect("a read ref");
    assert_eq!(read.kind, RefKind::Read(HandledKind::AutoReply));
    let back = serde_json::to_value(&sent).expect("serializes");
    assert_eq!(back["kind"], "acknowledgement");
    assert_eq!(back["direction"], "out");
    let line: LogEntry =
        serde_json::from_str(r#"{"at":5,"actor":"staff:ann@x.example","what":"resolved"}"#)
            .expect("a staff log line");
    assert_eq!(line.actor, Actor::Staff("ann@x.example".into()));
    assert_eq!(
        serde_json::to_value(&line).expect("serializes")["actor"],
        "staff:ann@x.example"
    );
    assert!(serde_json::from_str::<LogEntry>(r#"{"at":5,"actor":"nobody","what":"x"}"#).is_err());
}

#[test]
fn template_names_and_reading_kinds_never_collide() {
    use crate::domain::HandledKind;
    let read = [
        HandledKind::Human,
        HandledKind::AutoReply,
        HandledKind::Bounce,
        HandledKind::List,
        HandledKind::OwnLoop,
        HandledKind::Repeat,
        HandledKind::Timer,
        HandledKind::DeliveryFailure,
        HandledKind::Quarantined,
    ];
    for kind in TemplateKind::ALL {
        assert!(
            read.iter().all(|r| r.name() != kind.name()),
            "{kind} is both"
        );
    }
}

#[test]
fn the_found_accounts_username_is_kept_for_staff_and_a_later_miss_forgets_it() {
    let p = policy();
    let mut fields = complete_fields();
    fields.agreed_code_of_conduct = Tick::default();
    let first = run(&fresh(), &opening(fields, Some(found())), T0, &p);
    assert_eq!(first.case.account_username.as_deref(), Some("alice"));
    assert!(first.case.linked_address_masked.is_some());
    // The requester corrects the username to one no account has.
    let corrected = RequestFields {
        username: Some("alicia".into()),
        ..RequestFields::default()
    };
    let reply = Event::Requester(RequesterMessage {
        lookup: Some(LookupOutcome::NotFound),
        ..message(corrected)
    });
    let later = run(&first.case, &reply, T0 + 600, &p);
    assert_eq!(later.case.account_username, None);
    assert_eq!(later.case.linked_address_masked, None);
}
