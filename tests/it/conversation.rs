//! Whole conversations through the real binary, written as scripts: who
//! writes what at which minute, and what comes back. Each step is one
//! `recoverydesk once` with the clock pinned.

use crate::common;
use common::conversation::{code_in, first_line, to, Conversation};
use common::{mail, T0};

const JO: &str = "jo@requester.example";
const LINKED: &str = "alice@linked.example";
const STAFF: &str = "admins@pypi.example";
const MIN: i64 = 60;

/// A reply on the case thread, threaded by the reply address and In-Reply-To.
fn reply(conv: &Conversation, case: &str, parent: &str, id: &str, body: &str) -> String {
    mail(
        JO,
        &conv.reply_address(case),
        "Re: Lost my 2FA device",
        id,
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        body,
    )
}

/// Everything a request needs, the linked address still read.
const COMPLETE: &str = "Username: alice\r\nI lost my phone with the authenticator app.\r\nI can still read the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n";

/// 09:00: Jo writes in about a lost 2FA device; the mail that comes back.
fn jo_writes_in(conv: &mut Conversation, body: &str) -> Vec<common::Sent> {
    conv.write(&mail(
        JO,
        "support@pypi.example",
        "Lost my 2FA device",
        "jo-1@requester.example",
        "",
        body,
    ));
    conv.step(T0)
}

/// A tidy 2FA recovery inside one hour, with the shipped rate limits: the
/// acknowledgement, a request for the rest, "we wrote to the linked
/// address" and "verified" all reach the requester, each once, and staff
/// hear of the new case and of the verification.
#[test]
fn a_tidy_2fa_recovery_reaches_verified_within_the_hour_with_every_mail_delivered() {
    let mut conv = Conversation::start("");

    // 09:00 Jo writes in: username and reason, nothing else.
    let out = jo_writes_in(
        &mut conv,
        "Hello,\r\n\r\nI lost my phone with the authenticator app. My username is alice.\r\n",
    );
    let ack = to(&out, JO);
    assert_eq!(ack.len(), 1, "one acknowledgement: {out:#?}");
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    assert!(ack[0].subject.contains(&case), "{}", ack[0].subject);
    assert_eq!(to(&out, STAFF).len(), 1, "staff hear of the new case");

    // 09:10 Jo answers one of the questions.
    let parent = ack[0].message_id.clone();
    conv.write(&reply(
        &conv,
        &case,
        &parent,
        "jo-2@requester.example",
        "I can still read the email address on the account.\r\n",
    ));
    let out = conv.step(T0 + 10 * MIN);
    let details = to(&out, JO);
    assert_eq!(details.len(), 1, "one request for the rest: {out:#?}");

    // 09:20 Jo sends the rest.
    let parent = details[0].message_id.clone();
    conv.write(&reply(
        &conv,
        &case,
        &parent,
        "jo-3@requester.example",
        "I agree to the Code of Conduct and I understand this may take a while.\r\n",
    ));
    let out = conv.step(T0 + 20 * MIN);
    let sent = to(&out, JO);
    assert_eq!(sent.len(), 1, "we wrote to the linked address: {out:#?}");
    // That mail also says what the reply told us: Jo is not left to
    // wonder whether the agreement was read.
    for said in [
        "This is what it told us:",
        "Agrees to the Code of Conduct: yes",
        "Understands review takes time: yes",
    ] {
        assert!(sent[0].text.contains(said), "{said}: {}", sent[0].text);
    }
    let challenge = to(&out, LINKED);
    assert_eq!(
        challenge.len(),
        1,
        "the challenge goes to the linked address"
    );
    let code = code_in(challenge[0]);

    // 09:30 Jo, who reads the linked mailbox, pastes the code on the case.
    let parent = sent[0].message_id.clone();
    conv.write(&reply(
        &conv,
        &case,
        &parent,
        "jo-4@requester.example",
        &format!("Here is the code: {code}\r\n"),
    ));
    let out = conv.step(T0 + 30 * MIN);
    let verified = to(&out, JO);
    assert_eq!(
        verified.len(),
        1,
        "the verified mail is sent at once: {out:#?}"
    );
    assert_eq!(to(&out, STAFF).len(), 1, "staff hear of the verification");
    assert_eq!(
        conv.case(T0 + 30 * MIN)["verification"]["state"],
        "verified"
    );

    // Read as Jo would: four mails, none twice, nothing asked twice.
    let all = conv.sent();
    let jo = to(&all, JO);
    let firsts: Vec<String> = jo.iter().map(|m| first_line(m)).collect();
    for (mail, first) in jo.iter().zip(&firsts) {
        eprintln!("to Jo:    {} | {first}", mail.subject);
    }
    for mail in to(&all, STAFF) {
        eprintln!("to staff: {} | {}", mail.subject, first_line(mail));
    }
    assert_eq!(jo.len(), 4, "{firsts:#?}");
    // One conversation in every mail client: one subject, and the first
    // line says what changed.
    for mail in &jo {
        assert_eq!(
            mail.subject,
            format!("Re: [Case {case}] Lost my 2FA device")
        );
    }
    assert_eq!(
        firsts,
        vec![
            "We received your account recovery request",
            "A few more details, please",
            "Please check the email address linked to the account",
            "Thank you, the linked address confirmed your request",
        ]
    );
    let mut unique: Vec<&str> = jo.iter().map(|m| m.text.as_str()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 4, "no mail twice: {firsts:#?}");
    let asks_access = |m: &&&common::Sent| m.text.contains("(yes or no)");
    assert!(
        jo.iter().filter(asks_access).count() <= 1,
        "the linked-address question is asked once"
    );
    // Nothing held back or suppressed on a tidy case.
    let log = conv.run(T0 + 30 * MIN, &["cases", "show", &case]);
    assert!(!log.contains("rate limit"), "{log}");
}

/// Strangers use case tags of four cases: staff hear once per case, and the
/// flood across cases becomes one summary instead of one mail each.
#[test]
fn a_flood_of_strangers_case_tags_gives_staff_one_alert_per_case_and_one_summary() {
    let mut conv =
        Conversation::start("staff_alert_interval = \"10m\"\nstaff_flood_threshold = 2\n");
    // Four people write in a quarter of an hour apart (each new-case alert
    // alone in its interval). The account is the same; they use different
    // usernames so each gets a case of their own.
    let mut cases = Vec::new();
    for (i, who) in ["ann", "ben", "cat", "dan"].iter().enumerate() {
        let at = T0 + i as i64 * 15 * MIN;
        conv.write(&mail(
            &format!("{who}@people.example"),
            "support@pypi.example",
            "Lost my 2FA device",
            &format!("{who}-1@people.example"),
            "",
            &format!("Username: {who}\r\nI lost my phone with the authenticator app.\r\n"),
        ));
        let out = conv.step(at);
        assert_eq!(to(&out, STAFF).len(), 1, "staff hear of {who}'s case");
        // Staff read what the requester has not given, about the requester.
        let staff: Vec<&str> = to(&out, STAFF)[0].text.lines().map(str::trim_end).collect();
        let staff = staff.join("\n");
        assert!(
            staff.contains("Still missing:\n  - Whether they can read the linked address\n  - Their agreement to the Code of Conduct"),
            "{staff}"
        );
        assert!(!staff.contains("That you agree"), "{staff}");
        let case = conv
            .cases(at)
            .into_iter()
            .find(|c| c["requesters"][0] == format!("{who}@people.example"))
            .unwrap();
        cases.push(case["id"].as_str().unwrap().to_owned());
    }
    let stranger = |conv: &mut Conversation, case: &str, n: usize| {
        conv.write(&mail(
            "mallory@elsewhere.example",
            "support@pypi.example",
            &format!("Re: [Case {case}] Lost my 2FA device"),
            &format!("mallory-{n}@elsewhere.example"),
            "",
            "Please send the code to me instead.\r\n",
        ));
    };
    // 11:00 Mallory writes twice on Ann's case, then on Ben's, Cat's, Dan's.
    let at = T0 + 2 * 3600;
    stranger(&mut conv, &cases[0], 1);
    stranger(&mut conv, &cases[0], 2);
    stranger(&mut conv, &cases[1], 3);
    stranger(&mut conv, &cases[2], 4);
    stranger(&mut conv, &cases[3], 5);
    let out = conv.step(at);
    let staff = to(&out, STAFF);
    let subjects: Vec<&str> = staff.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(staff.len(), 3, "{subjects:#?}");
    assert!(staff[0].subject.contains(&cases[0]), "{subjects:?}");
    assert!(staff[1].subject.contains(&cases[1]), "{subjects:?}");
    assert!(staff[2].subject.contains("Flood"), "{subjects:?}");
    assert!(
        staff[2]
            .text
            .contains("3 alerts \"someone outside the case used its tag\""),
        "{}",
        staff[2].text
    );
    assert!(to(&out, "mallory@elsewhere.example").is_empty());
    // Nothing is lost: each case's log says what was folded.
    let ann = conv.run(at, &["cases", "show", &cases[0]]);
    assert!(ann.contains("one went to staff for this case"), "{ann}");
    let dan = conv.run(at, &["cases", "show", &cases[3]]);
    assert!(dan.contains("folded into the flood summary"), "{dan}");

    // 11:15 The interval is over: a single alert is a single mail again.
    stranger(&mut conv, &cases[3], 6);
    let out = conv.step(at + 15 * MIN);
    let staff = to(&out, STAFF);
    assert_eq!(staff.len(), 1);
    assert!(staff[0].subject.contains(&cases[3]), "{}", staff[0].subject);
    assert!(!staff[0].subject.contains("Flood"));
}

/// With a tight progress limit, news that cannot go out at once waits on
/// the case, staff see it waiting, and it goes out later as one mail that
/// tells the case as it stands: never dropped, never twice.
#[test]
fn progress_mail_over_its_limit_waits_on_the_case_and_goes_out_merged() {
    let mut conv =
        Conversation::start("[policy.rate_limit_progress]\nper_hour = 2\nper_day = 30\n");

    // 09:00 Jo writes in: username and reason only.
    let out = jo_writes_in(
        &mut conv,
        "Username: alice\r\nI lost my phone with the authenticator app.\r\n",
    );
    let ack = to(&out, JO);
    assert_eq!(ack.len(), 1);
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();

    // 09:05 Jo answers two questions: the request for the last one is the
    // second mail.
    conv.write(&reply(
        &conv,
        &case,
        &ack[0].message_id,
        "jo-2@requester.example",
        "I agree to the Code of Conduct and understand this may take a while.\r\n",
    ));
    let out = conv.step(T0 + 5 * MIN);
    assert_eq!(to(&out, JO).len(), 1, "{out:#?}");

    // 09:10 Jo says yes: the challenge goes to the linked address at once,
    // but "we wrote to the linked address" is over Jo's limit: it waits.
    conv.write(&reply(
        &conv,
        &case,
        &ack[0].message_id,
        "jo-3@requester.example",
        "I still have access to the email address on the account.\r\n",
    ));
    let out = conv.step(T0 + 10 * MIN);
    assert!(to(&out, JO).is_empty(), "{out:#?}");
    let challenge = to(&out, LINKED);
    assert_eq!(challenge.len(), 1, "the challenge is never held");
    let code = code_in(challenge[0]);
    let held = &conv.case(T0 + 10 * MIN)["held"];
    assert_eq!(held[0]["template"], "challenge_sent", "{held}");

    // 09:20 The owner of the linked mailbox answers with the code.
    conv.write(&mail(
        LINKED,
        &conv.challenge_address(&case),
        "Re: Account recovery request",
        "alice-1@linked.example",
        &format!("In-Reply-To: <{}>\r\n", challenge[0].message_id),
        &format!("Yes, that was me. {code}\r\n"),
    ));
    let out = conv.step(T0 + 20 * MIN);
    assert!(to(&out, JO).is_empty(), "still over the limit: {out:#?}");
    let staff = to(&out, STAFF);
    assert_eq!(staff.len(), 1);
    assert!(
        staff[0].text.contains("Held back by the rate limit")
            && staff[0].text.contains("verified to jo@requester.example")
            && staff[0].text.contains("in place of challenge_sent"),
        "staff see what waits:\n{}",
        staff[0].text
    );
    let shown = conv.run(T0 + 20 * MIN, &["cases", "show", &case]);
    assert!(shown.contains("Held back"), "{shown}");

    // 10:05 The hour since the acknowledgement is over: one mail, the
    // verified one, and nothing after it.
    let out = conv.step(T0 + 65 * MIN);
    let jo = to(&out, JO);
    assert_eq!(jo.len(), 1, "{out:#?}");
    assert!(jo[0].subject.contains(&case));
    assert!(jo[0].text.contains("confirmed"), "{}", jo[0].text);
    assert!(conv.case(T0 + 65 * MIN)["held"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(to(&conv.step(T0 + 3 * 3600), JO).is_empty(), "sent once");
}

/// Terse answers: a bare "Yes." (with the quoted question under it)
/// answers the one question asked; replies that bring nothing new twice
/// get a person, not a third identical request.
#[test]
fn terse_answers_are_understood_in_context_and_a_stuck_case_goes_to_a_person() {
    let mut conv = Conversation::start("");
    // 09:00 Jo says everything but whether the linked address still works.
    let out = jo_writes_in(&mut conv, "Username: alice\r\nI lost my phone with the authenticator app.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n");
    let ack = to(&out, JO);
    assert!(ack[0].text.contains("(yes or no)"), "{}", ack[0].text);
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();

    // 09:05 Jo: "Yes." above the quoted acknowledgement.
    let quoted: String = ack[0].text.lines().map(|l| format!("> {l}\r\n")).collect();
    conv.write(&reply(
        &conv,
        &case,
        &ack[0].message_id,
        "jo-2@requester.example",
        &format!("Yes.\r\n\r\nOn Sun, 23 Nov 2025 at 09:00, PyPI Support wrote:\r\n{quoted}"),
    ));
    let out = conv.step(T0 + 5 * MIN);
    let jo = to(&out, JO);
    assert_eq!(jo.len(), 1, "{out:#?}");
    assert!(
        first_line(jo[0]).contains("linked to the account"),
        "the challenge is announced, not the same question again: {}",
        jo[0].text
    );
    assert_eq!(to(&out, LINKED).len(), 1);
    assert_eq!(conv.case(T0 + 5 * MIN)["claims_email_access"], "yes");

    // A second requester, Kim, is stuck on the Code of Conduct question.
    let kim = "kim@requester.example";
    conv.write(&mail(
        kim,
        "support@pypi.example",
        "Locked out",
        "kim-1@requester.example",
        "",
        "Username: kim\r\nI forgot my password. I still have access to the email address on the account.\r\n",
    ));
    let out = conv.step(T0 + 10 * MIN);
    let kim_case = conv
        .cases(T0 + 10 * MIN)
        .into_iter()
        .find(|c| c["requesters"][0] == kim)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut parent = to(&out, kim)[0].message_id.clone();
    let mut answers = Vec::new();
    let mut staff_heard = None;
    for (n, text) in ["What do you mean?", "Please just help me."]
        .iter()
        .enumerate()
    {
        conv.write(&mail(
            kim,
            &conv.reply_address(&kim_case),
            "Re: Locked out",
            &format!("kim-{}@requester.example", n + 2),
            &format!("In-Reply-To: <{parent}>\r\n"),
            &format!("{text}\r\n"),
        ));
        let out = conv.step(T0 + (20 + 10 * n as i64) * MIN);
        let mails = to(&out, kim);
        assert_eq!(mails.len(), 1, "{out:#?}");
        parent = mails[0].message_id.clone();
        answers.push((first_line(mails[0]), to(&out, STAFF).len()));
        if let Some(nudge) = to(&out, STAFF).first() {
            staff_heard = Some((nudge.subject.clone(), nudge.text.clone()));
        }
    }
    // Staff read what happened, in words, not "still waiting" and codes.
    let (subject, text) = staff_heard.expect("staff are told");
    assert_eq!(
        subject,
        format!("[Case {kim_case}] The requester is stuck, please reply in your own words: kim")
    );
    assert!(
        text.starts_with(&format!(
            "The requester on case {kim_case} has answered twice"
        )),
        "{text}"
    );
    assert!(
        text.contains("without giving their agreement to the Code of Conduct or their acknowledgement that review takes time"),
        "{text}"
    );
    assert!(!text.contains("code_of_conduct"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "Linked address:  (not looked up yet)"),
        "the challenge waits for a complete request: {text}"
    );
    assert!(answers[0].0.contains("A few more details"), "{answers:?}");
    assert_eq!(answers[0].1, 0);
    assert!(
        answers[1].0.contains("A person from our team"),
        "{answers:?}"
    );
    assert_eq!(answers[1].1, 1, "staff are told why");
    assert_eq!(
        conv.cases(T0 + 30 * MIN)
            .into_iter()
            .find(|c| c["id"] == kim_case.as_str())
            .unwrap()["state"],
        "awaiting_staff"
    );
}

/// Staff, from their mail client, first ask for proofs and then close
/// with a word of their own: each staff message is one mail to the
/// requester, the person's words first, and none of it automatic.
#[test]
fn a_staff_conversation_sends_one_mail_per_staff_message_with_the_text_first() {
    let mut conv = Conversation::start("");
    // 09:00 Jo has lost the linked mailbox: the case goes to staff.
    let out = jo_writes_in(&mut conv, "Username: alice\r\nI lost my phone with the authenticator app.\r\nI no longer have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n");
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    assert_eq!(conv.case(T0)["state"], "awaiting_staff");
    // Jo said the linked mailbox is gone: the acknowledgement does not
    // promise to write there.
    let ack = to(&out, JO)[0]
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!ack.contains("we may also write"), "{ack}");
    assert!(ack.contains("we will not write to it"), "{ack}");
    // Staff learn why no linked address is shown: nobody asked the
    // directory, not "the account has none".
    let new_case = &to(&out, STAFF)[0].text;
    assert!(
        new_case
            .lines()
            .any(|l| l == "Linked address:  (not looked up: no challenge is sent on this case)"),
        "{new_case}"
    );
    let notification = to(&out, STAFF)[0].message_id.clone();
    let reply_to = conv.reply_address(&case);
    let staff = |id: &str, body: &str| {
        format!(
            "Authentication-Results: mx.pypi.example; dmarc=pass header.from=pypi.example\r\nFrom: Ada Admin <admin@pypi.example>\r\nTo: {}\r\nSubject: Re: [Case {case}] New recovery case\r\nMessage-ID: <{id}>\r\nIn-Reply-To: <{notification}>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            reply_to
        )
    };

    // 10:00 Ada asks for proofs, with a sentence of her own.
    conv.write(&staff(
        "ada-1@pypi.example",
        "/ask proofs\r\nHello Jo, could you name a package you maintain on the account?\r\n",
    ));
    let out = conv.step(T0 + 60 * MIN);
    let jo = to(&out, JO);
    assert_eq!(jo.len(), 1, "one mail for one staff message: {out:#?}");
    let text = &jo[0].text;
    let words = text.find("could you name a package").expect("Ada's words");
    let list = text
        .find("Anything that shows the account is yours")
        .expect("the ask");
    assert!(words < list, "the person's words come first:\n{text}");
    assert!(!text.contains("Thank you for your reply"), "{text}");
    assert!(jo[0].raw.contains("Auto-Submitted: no"), "{}", jo[0].raw);
    assert!(!text.contains("sent automatically"), "{text}");

    // 11:00 Jo answers the question: staff hear it at once, with Jo's
    // words and what the answer changed, in the thread of Jo's mail.
    conv.write(&reply(
        &conv,
        &case,
        &jo[0].message_id,
        "jo-2@requester.example",
        "I maintain the package alice-tools.\r\n",
    ));
    let out = conv.step(T0 + 120 * MIN);
    let told = to(&out, STAFF);
    assert_eq!(told.len(), 1, "one notification to staff: {out:#?}");
    assert_eq!(
        told[0].subject,
        format!("[Case {case}] The requester replied: alice")
    );
    assert_eq!(
        first_line(told[0]),
        format!("The requester wrote on case {case}, which waits on the team.")
    );
    let text = &told[0].text;
    assert!(text.contains("the requester answered your /ask"), "{text}");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    assert!(
        lines
            .windows(2)
            .any(|w| w == ["What changed: proofs", "  - Package: alice-tools"]),
        "staff read what the answer brought:\n{text}"
    );
    assert!(
        text.contains("> I maintain the package alice-tools."),
        "{text}"
    );
    assert_eq!(told[0].in_reply_to, "jo-2@requester.example");
    assert_eq!(conv.case(T0 + 120 * MIN)["state"], "awaiting_staff");
    // Jo is not asked for "a few more details" when none are missing.
    let jo = to(&out, JO);
    assert_eq!(jo.len(), 1, "{out:#?}");
    assert_eq!(first_line(jo[0]), "Thank you, we have what we asked for");
    // ... and says what it received, so Jo sees the answer was understood.
    let received: Vec<&str> = jo[0]
        .text
        .lines()
        .skip_while(|l| !l.starts_with("This is what your reply told us:"))
        .skip(1)
        .take_while(|l| l.starts_with("  - "))
        .collect();
    assert_eq!(received, ["  - Package: alice-tools"], "{}", jo[0].text);
    assert!(
        !jo[0].text.contains("wait for your answer"),
        "{}",
        jo[0].text
    );

    // 12:00 Ada closes the case with an explanation.
    conv.write(&staff(
        "ada-2@pypi.example",
        "/close\r\nWe could not confirm the account is yours, so we cannot change it.\r\n",
    ));
    let out = conv.step(T0 + 180 * MIN);
    let jo = to(&out, JO);
    assert_eq!(jo.len(), 1, "{out:#?}");
    let text = &jo[0].text;
    let words = text.find("We could not confirm").expect("Ada's words");
    let closed = text.find("We have closed case").expect("the close");
    assert!(words < closed, "{text}");
    assert_eq!(conv.case(T0 + 180 * MIN)["state"], "closed");
    // As Jo and the team read it (printed for the issue notes).
    let all = conv.sent();
    for mail in to(&all, JO) {
        eprintln!("to Jo:    {} | {}", mail.subject, first_line(mail));
    }
    for mail in to(&all, STAFF) {
        eprintln!("to staff: {} | {}", mail.subject, first_line(mail));
    }
    for mail in to(&conv.sent(), JO) {
        assert_eq!(
            mail.subject,
            format!("Re: [Case {case}] Lost my 2FA device")
        );
    }
}

/// A Spanish conversation: the answers are in Spanish, and so are their
/// dates, with the time zone named.
#[test]
fn a_spanish_conversation_gets_spanish_dates_with_the_time_zone() {
    let mut conv = Conversation::start("");
    // 09:00 Jo escribe en español con todo lo necesario.
    conv.write(&mail(
        JO,
        "support@pypi.example",
        "Perdí mi dispositivo de doble factor",
        "jo-1@requester.example",
        "",
        "Hola,\r\n\r\nMi nombre de usuario es alice. Perdí mi teléfono con la aplicación de autenticación y no puedo entrar en mi cuenta.\r\nTodavía tengo acceso al correo electrónico vinculado a la cuenta.\r\nAcepto el Código de Conducta y entiendo que la revisión puede tardar.\r\n",
    ));
    let out = conv.step(T0);
    assert_eq!(conv.case(T0)["language"], "es");
    let jo = to(&out, JO);
    assert!(!jo.is_empty(), "{out:#?}");
    let challenge = to(&out, LINKED);
    assert_eq!(challenge.len(), 1, "{out:#?}");
    // T0 is Sunday 23 November 2025, 09:00 UTC; the code is valid 48 h.
    let text = &challenge[0].text;
    assert!(
        text.contains("domingo 23 de noviembre de 2025, 09:00 (UTC)"),
        "{text}"
    );
    assert!(
        text.contains("hasta el martes 25 de noviembre de 2025, 09:00 (UTC)"),
        "{text}"
    );
    for mail in out.iter().filter(|m| !m.to.iter().any(|t| t == STAFF)) {
        for english in ["Sunday", "Tuesday", "November"] {
            assert!(!mail.text.contains(english), "{english} in:\n{}", mail.text);
        }
    }
}

/// Jo sends a scan of an ID with the request: staff see it listed in the
/// notification (name, type, size), `cases show --attachments` lists it,
/// and `cases attachment` writes the very bytes Jo sent.
#[test]
fn attachments_are_listed_for_staff_and_can_be_written_out() {
    let mut conv = Conversation::start("");
    let body = "--b\r\nContent-Type: text/plain\r\n\r\nUsername: alice\r\nI lost my phone with the authenticator app. My ID is attached.\r\n--b\r\nContent-Type: image/png; name=\"id-card.png\"\r\nContent-Disposition: attachment; filename=\"id-card.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b--\r\n";
    conv.write(&format!(
        "From: {JO}\r\nTo: support@pypi.example\r\nSubject: Lost my 2FA device\r\nMessage-ID: <jo-att@requester.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n{body}"
    ));
    let out = conv.step(T0);
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    let staff = to(&out, STAFF);
    assert_eq!(staff.len(), 1, "{out:#?}");
    assert!(
        staff[0]
            .text
            .lines()
            .any(|l| l.trim_end() == "  1. id-card.png (image/png, 11 bytes)"),
        "{}",
        staff[0].text
    );
    assert!(
        staff[0].text.contains(&format!(
            "recoverydesk cases attachment {case} NUMBER > FILE"
        )),
        "{}",
        staff[0].text
    );
    let listed = conv.run(T0, &["cases", "show", "--attachments", &case]);
    assert!(
        listed.starts_with("1. id-card.png (image/png, 11 bytes) from <jo-att@requester.example>"),
        "{listed}"
    );
    assert_eq!(
        conv.run(T0, &["cases", "attachment", &case, "1"]),
        "hello world"
    );
    // Jo is not shown the listing.
    assert!(to(&out, JO).iter().all(|m| !m.text.contains("id-card.png")));
}

/// A new request that describes a takeover: staff get one mail that says
/// both things, not "SUSPECTED COMPROMISE" and "New recovery case" apart.
#[test]
fn a_new_case_with_signs_of_compromise_gives_staff_one_mail() {
    let mut conv = Conversation::start("");
    conv.write(&mail(
        JO,
        "support@pypi.example",
        "Someone took my account",
        "jo-1@requester.example",
        "",
        "Hello,\r\n\r\nMy username is alice. My recovery codes were reset without my knowledge and my 2FA was changed.\r\n",
    ));
    let out = conv.step(T0);
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    let staff = to(&out, STAFF);
    let subjects: Vec<&str> = staff.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(staff.len(), 1, "{subjects:#?}");
    assert_eq!(
        staff[0].subject,
        format!("[Case {case}] SUSPECTED COMPROMISE in a new recovery case: alice")
    );
    assert_eq!(
        first_line(staff[0]),
        format!("A new account recovery case has been opened, {case}, and it may involve a")
    );
    assert_eq!(conv.case(T0)["priority"], "high");
}

/// The account `sam` is linked to sam@linked.example and also knows the
/// address Sam writes from; nobody's account knows Kit's address.
const SAM_ACCOUNTS: &str = r#"
[[account]]
username = "sam"
addresses = [
  { address = "sam@linked.example", verified = true, primary = true },
  { address = "sam@home.example", verified = true },
]
"#;

/// What the requester reads, with their own address, the case id and the
/// case's reply-address MAC taken out: the rest must not tell a match
/// from no match.
fn as_read_by(mail: &common::Sent, from: &str, case: &str) -> (String, String) {
    let local = from.split('@').next().unwrap_or(from);
    let mac_free = |s: &str| {
        s.split_whitespace()
            .map(|w| {
                if w.contains("support+") {
                    "<reply address>"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let clean = |s: &str| {
        mac_free(&s.replace(from, "<sender>").replace(case, "<case>")).replace(local, "<who>")
    };
    (clean(&mail.subject), clean(&mail.text))
}

/// One first mail from `from` who forgot the username; returns the mail
/// to them, what went to anyone else, and the case.
fn forgotten_username_request(from: &str) -> (common::Sent, Vec<common::Sent>, serde_json::Value) {
    let mut conv = Conversation::start("");
    std::fs::write(conv.dir.path().join("accounts.toml"), SAM_ACCOUNTS).unwrap();
    conv.write(&mail(
        from,
        "support@pypi.example",
        "Locked out",
        "first@home.example",
        "",
        "Hello,\r\n\r\nI lost my phone with the authenticator app. I don't remember which username I used, I use this email for everything.\r\nI can still read my email. I agree to the Code of Conduct and understand this may take a while.\r\n",
    ));
    let out = conv.step(T0);
    let staff = to(&out, STAFF);
    let expected = if from == "sam@home.example" {
        "Username:        sam (the account the directory found by the requester's own address: they did not remember the username)"
    } else {
        "Username:        (not remembered: looked up by the requester's address)"
    };
    assert!(
        staff[0].text.lines().any(|l| l.trim_end() == expected),
        "staff read which account matched, or why there is no username:\n{}",
        staff[0].text
    );
    // The subject names the account found, so staff can triage by it.
    assert_eq!(
        staff[0].subject.ends_with("New recovery case: sam"),
        from == "sam@home.example",
        "{}",
        staff[0].subject
    );
    let mine: Vec<&common::Sent> = to(&out, from);
    assert_eq!(mine.len(), 1, "one answer: {out:#?}");
    let others = out
        .iter()
        .filter(|m| !m.to.iter().any(|t| t == from) && !m.to.iter().any(|t| t == STAFF))
        .cloned()
        .collect();
    (mine[0].clone(), others, conv.case(T0))
}

/// 13.8: "I don't remember which username I used": the account is looked
/// up by the address Sam writes from, its linked address is challenged,
/// and Sam is not asked for the username. Kit, whose address no account
/// knows, reads the very same mail: nothing tells a match from no match.
#[test]
fn a_forgotten_username_is_looked_up_by_the_senders_address_and_answered_alike_either_way() {
    // 09:00 Sam, whose address the account `sam` knows, writes in.
    let sam = "sam@home.example";
    let (to_sam, others, case) = forgotten_username_request(sam);
    assert_eq!(case["username"], serde_json::Value::Null, "{case}");
    assert_eq!(case["missing"], serde_json::json!([]), "{case}");
    assert_eq!(case["verification"]["state"], "pending", "{case}");
    assert_eq!(others.len(), 1, "only the challenge: {others:#?}");
    assert_eq!(others[0].to, vec!["sam@linked.example".to_string()]);
    assert!(
        others[0]
            .text
            .contains("the account linked to this address"),
        "the owner is not asked about an empty account name:\n{}",
        others[0].text
    );
    assert!(!others[0].subject.contains("\"\""), "{}", others[0].subject);
    eprintln!("to Sam:   {} | {}", to_sam.subject, first_line(&to_sam));
    eprintln!(
        "to owner: {} | {}",
        others[0].subject,
        first_line(&others[0])
    );
    // What Sam reads: the username is not asked for again, and the mail
    // says where we looked.
    assert!(
        !to_sam.text.contains("Your account username"),
        "{}",
        to_sam.text
    );
    assert!(!to_sam.text.to_lowercase().contains("which username"));
    let flowing = to_sam.text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowing.contains(
            "we looked for an account linked to the address you wrote from, sam@home.example."
        ),
        "{}",
        to_sam.text
    );
    // Where we wrote is said once, by the challenge paragraph, not twice.
    assert!(
        !flowing.contains("we write to the email address linked"),
        "{}",
        to_sam.text
    );
    assert!(flowing.contains("we have sent a message to the address linked to it"));

    // 09:00 Kit, whose address no account knows, writes the same.
    let kit = "kit@home.example";
    let (to_kit, others, kit_case) = forgotten_username_request(kit);
    assert!(others.is_empty(), "nothing to challenge: {others:#?}");
    assert_eq!(
        kit_case["verification"]["state"], "pending_no_target",
        "{kit_case}"
    );
    // Identical in shape: subject and every line but the address and id.
    let sam_id = case["id"].as_str().unwrap();
    let kit_id = kit_case["id"].as_str().unwrap();
    assert_eq!(
        as_read_by(&to_sam, sam, sam_id),
        as_read_by(&to_kit, kit, kit_id)
    );
}

/// 13.3 through the binary: Jo, mid-challenge, says the linked mailbox is
/// gone. The challenge and its reminders stop, a person takes over, staff
/// hear at once with the proofs Jo offered, Jo is told what happens next,
/// and the day the reminder would have gone brings nothing.
#[test]
fn losing_the_linked_address_mid_challenge_hands_the_case_to_staff_and_stops_the_reminders() {
    let mut conv = Conversation::start("");
    // 09:00 Jo sends a complete request: the code goes to the linked address.
    let out = jo_writes_in(&mut conv, COMPLETE);
    let ack = to(&out, JO);
    assert_eq!(ack.len(), 1, "{out:#?}");
    assert_eq!(to(&out, LINKED).len(), 1, "the challenge: {out:#?}");
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    assert_eq!(conv.case(T0)["state"], "awaiting_verification");
    // The acknowledgement says the code went out and how to answer it,
    // instead of "we may also write" to an address already written to.
    let said = ack[0].text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("we have sent a message to the address linked to it. If you can read that mailbox, answer \"yes\""),
        "{said}"
    );
    assert!(!said.contains("we may also write"), "{said}");

    // 09:30 Jo finds the linked mailbox was closed long ago, and names a
    // package as proof.
    conv.write(&reply(
        &conv,
        &case,
        &ack[0].message_id,
        "jo-2@requester.example",
        "Sorry, I cannot read the linked address any more, that mailbox was closed.\r\nI maintain the package alice-tools.\r\n",
    ));
    let out = conv.step(T0 + 30 * MIN);
    let jo = to(&out, JO);
    assert_eq!(jo.len(), 1, "one mail to Jo: {out:#?}");
    assert_eq!(
        first_line(jo[0]),
        "A person from our team will review your case"
    );
    let text = jo[0].text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("you will get no more reminders about it"),
        "{text}"
    );
    assert!(!text.contains("check the email address linked"), "{text}");
    let staff = to(&out, STAFF);
    assert_eq!(staff.len(), 1, "staff hear at once, once: {out:#?}");
    assert_eq!(
        staff[0].subject,
        format!("[Case {case}] The requester lost the linked address, please review: alice")
    );
    assert_eq!(
        first_line(staff[0]),
        format!("The requester on case {case} can no longer read the linked address, so")
    );
    assert!(
        staff[0]
            .text
            .lines()
            .any(|l| l.trim_end() == "  - Package: alice-tools"),
        "the proofs are in the mail:\n{}",
        staff[0].text
    );
    assert!(
        to(&out, LINKED).is_empty(),
        "nothing more to the linked address"
    );
    let now = conv.case(T0 + 30 * MIN);
    assert_eq!(now["state"], "awaiting_staff", "{now}");
    let timers: Vec<&str> = now["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(
        !timers.iter().any(|t| t.starts_with("challenge")),
        "{timers:?}"
    );
    for mail in to(&conv.sent(), JO) {
        eprintln!("to Jo:    {} | {}", mail.subject, first_line(mail));
    }
    for mail in to(&conv.sent(), STAFF) {
        eprintln!("to staff: {} | {}", mail.subject, first_line(mail));
    }

    // The next day, past the reminder time (half the 48-hour code life)
    // and the expiry: nobody hears anything.
    assert!(conv.step(T0 + 25 * 3600).is_empty());
    assert!(conv.step(T0 + 49 * 3600).is_empty());
}

/// Opens Jo's complete request and returns the case id and the challenge.
fn challenged(conv: &mut Conversation) -> (String, common::Sent) {
    let out = jo_writes_in(conv, COMPLETE);
    let challenge = to(&out, LINKED);
    assert_eq!(challenge.len(), 1, "{out:#?}");
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    (case, challenge[0].clone())
}

/// The owner of the linked mailbox answers on the challenge thread.
fn owner_writes(
    conv: &mut Conversation,
    case: &str,
    challenge: &common::Sent,
    id: &str,
    body: &str,
) {
    conv.write(&mail(
        LINKED,
        &conv.challenge_address(case),
        &format!("Re: {}", challenge.subject),
        id,
        &format!(
            "In-Reply-To: <{0}>\r\nReferences: <{0}>\r\n",
            challenge.message_id
        ),
        body,
    ));
}

/// Nothing of Jo in a mail to the linked mailbox: not the address (whole
/// or masked), not the subject Jo wrote, not a word of the request.
fn reveals_nothing_of_jo(mail: &common::Sent) {
    for secret in [
        "jo@requester.example",
        "requester.example",
        "j***",
        "Lost my 2FA device",
        "authenticator",
        "Code of Conduct",
    ] {
        assert!(!mail.raw.contains(secret), "{secret} in:\n{}", mail.raw);
    }
}

/// 13.9: the owner of the linked mailbox who answers gets one short
/// receipt under their own mail, saying what their answer did and nothing
/// about who asked; a repeat gets none.
#[test]
fn the_linked_mailboxs_owner_gets_one_receipt_that_reveals_nothing_of_the_requester() {
    // Conversation 1: the owner sends the code back.
    let mut conv = Conversation::start("");
    let (case, challenge) = challenged(&mut conv);
    let code = code_in(&challenge);
    owner_writes(
        &mut conv,
        &case,
        &challenge,
        "alice-1@linked.example",
        &format!("Yes, that was me.\r\n{code}\r\n"),
    );
    let out = conv.step(T0 + 10 * MIN);
    let receipt = to(&out, LINKED);
    assert_eq!(receipt.len(), 1, "{out:#?}");
    eprintln!(
        "to owner: {} | {}",
        receipt[0].subject,
        first_line(receipt[0])
    );
    assert_eq!(receipt[0].subject, format!("Re: {}", challenge.subject));
    assert_eq!(receipt[0].in_reply_to, "alice-1@linked.example");
    assert_eq!(
        first_line(receipt[0]),
        "Thank you: we have your answer, and the request is confirmed. There is"
    );
    assert!(!receipt[0].text.contains(&code), "no code in a receipt");
    reveals_nothing_of_jo(receipt[0]);
    assert_eq!(to(&out, JO).len(), 1, "Jo hears of the verification");
    // The owner says yes again: recorded, not answered.
    owner_writes(
        &mut conv,
        &case,
        &challenge,
        "alice-2@linked.example",
        "Yes.\r\n",
    );
    assert!(to(&conv.step(T0 + 20 * MIN), LINKED).is_empty());

    // Conversation 2: the owner did not ask for this.
    let mut conv = Conversation::start("");
    let (case, challenge) = challenged(&mut conv);
    owner_writes(
        &mut conv,
        &case,
        &challenge,
        "alice-1@linked.example",
        "No, this wasn't me. I did not ask for this.\r\n",
    );
    let out = conv.step(T0 + 10 * MIN);
    let receipt = to(&out, LINKED);
    assert_eq!(receipt.len(), 1, "{out:#?}");
    eprintln!(
        "to owner: {} | {}",
        receipt[0].subject,
        first_line(receipt[0])
    );
    assert_eq!(receipt[0].in_reply_to, "alice-1@linked.example");
    assert_eq!(
        first_line(receipt[0]),
        "Thank you for telling us. Nothing changes on your account because of this"
    );
    reveals_nothing_of_jo(receipt[0]);
    assert_eq!(to(&out, STAFF).len(), 1, "staff are alerted");
    owner_writes(
        &mut conv,
        &case,
        &challenge,
        "alice-2@linked.example",
        "No!\r\n",
    );
    assert!(to(&conv.step(T0 + 20 * MIN), LINKED).is_empty());
}

/// Sam forgot the username and writes in Spanish: every mail Sam and the
/// owner of the linked mailbox read is in Spanish, Sam is not asked for the
/// username, the owner's "sí" gets a Spanish receipt and Sam hears, in
/// Spanish, that the linked address confirmed.
#[test]
fn a_forgotten_username_in_spanish_is_answered_in_spanish_to_the_end() {
    let mut conv = Conversation::start("");
    std::fs::write(conv.dir.path().join("accounts.toml"), SAM_ACCOUNTS).unwrap();
    let sam = "sam@home.example";
    conv.write(&mail(
        sam,
        "support@pypi.example",
        "No puedo entrar",
        "sam-1@home.example",
        "",
        "Hola:\r\n\r\nPerdí mi teléfono con la aplicación de autenticación. No recuerdo qué nombre de usuario usé; uso este correo para todo.\r\nTodavía puedo leer mi correo. Acepto el Código de Conducta y entiendo que la revisión puede tardar.\r\n",
    ));
    let out = conv.step(T0);
    let case = conv.case(T0);
    assert_eq!(case["language"], "es", "{case}");
    assert_eq!(case["missing"], serde_json::json!([]), "{case}");
    let id = case["id"].as_str().unwrap().to_owned();
    let to_sam = to(&out, sam);
    assert_eq!(to_sam.len(), 1, "{out:#?}");
    assert_eq!(
        first_line(to_sam[0]),
        "Hemos recibido tu solicitud de recuperación de cuenta"
    );
    let said = to_sam[0]
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("Nos dices que no recuerdas el nombre de usuario."),
        "{said}"
    );
    assert!(
        said.contains("con la dirección desde la que escribiste, hemos enviado un mensaje"),
        "{said}"
    );
    assert!(
        !said
            .to_lowercase()
            .contains("nombre de usuario de tu cuenta"),
        "not asked again: {said}"
    );
    let owner = to(&out, "sam@linked.example");
    assert_eq!(owner.len(), 1, "{out:#?}");
    assert!(
        owner[0]
            .text
            .contains("la cuenta vinculada a esta dirección"),
        "{}",
        owner[0].text
    );
    assert!(owner[0].text.starts_with("Hola:"), "{}", owner[0].text);

    // 09:20 The owner of the linked mailbox answers "sí".
    conv.write(&mail(
        "sam@linked.example",
        &conv.challenge_address(&id),
        &format!("Re: {}", owner[0].subject),
        "owner-1@linked.example",
        &format!(
            "In-Reply-To: <{0}>\r\nReferences: <{0}>\r\n",
            owner[0].message_id
        ),
        "Sí, fui yo.\r\n",
    ));
    let out = conv.step(T0 + 20 * MIN);
    let receipt = to(&out, "sam@linked.example");
    assert_eq!(receipt.len(), 1, "{out:#?}");
    assert!(
        receipt[0].text.contains("la solicitud queda confirmada"),
        "{}",
        receipt[0].text
    );
    let to_sam = to(&out, sam);
    assert_eq!(to_sam.len(), 1, "{out:#?}");
    assert_eq!(
        first_line(to_sam[0]),
        "Gracias: el correo vinculado ha confirmado tu solicitud"
    );
    assert_eq!(
        conv.case(T0 + 20 * MIN)["verification"]["state"],
        "verified"
    );
    for mail in conv.sent() {
        eprintln!("to {:?}: {} | {}", mail.to, mail.subject, first_line(&mail));
    }
}
