//! Two conversations of `tests/it/conversation.rs` played again on the
//! real stack: `recoverydesk run` reads its support mailbox over IMAPS from
//! the loopback Dovecot and sends through the loopback Postfix; the
//! requester writes over SMTP; staff answer from **mutt** (the
//! `mail_client` set-up: its `$sendmail` stamps the trusted
//! Authentication-Results). What lands in each mailbox is read back over
//! IMAP: subjects, the In-Reply-To/References chain, first lines, and that
//! nothing arrives twice.
//!
//! Needs root (the stack does); `RD_SKIP_MAILSTACK=1` skips with a reason.

use crate::mail_client::{
    config, empty_support_inbox, header, ids, inbox, measure_received_hops, send_raw, stack,
    start_logged_in, text_of, unique, wait_for_mail, Mutt, REQUESTER_USER, SUPPORT,
    SUPPORT_MAILBOX,
};
use crate::stack::Stack;

use std::path::Path;
use std::time::Duration;

/// The linked mailbox: an existing stack user, one tag per run.
const LINKED_USER: &str = "dave";

/// One conversation's participants and the mail they have sent.
struct Talk<'a> {
    stack: &'a Stack,
    requester: String,
    subject: String,
    /// Message-IDs the requester sent, oldest first.
    sent: Vec<String>,
    /// Message-IDs of the mail the requester has received so far.
    seen: Vec<String>,
}

impl Talk<'_> {
    /// The requester writes: a first mail, or a reply under `parent`.
    async fn write(&mut self, parent: Option<&str>, body: &str) {
        let id = format!("{}.{}@example.org", unique("req"), self.sent.len());
        let (subject, threading) = match parent {
            Some(p) => (
                format!("Re: {}", self.subject),
                format!("In-Reply-To: <{p}>\r\nReferences: <{p}>\r\n"),
            ),
            None => (self.subject.clone(), String::new()),
        };
        let raw = format!(
            "From: Pat Requester <{from}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n\
             Message-ID: <{id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n{threading}\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            from = self.requester,
        );
        send_raw(self.stack, &self.requester, &id, raw).await;
        self.sent.push(id);
    }

    /// Waits for the next mail to the requester (one not seen before);
    /// returns it raw.
    async fn next_mail(&mut self, what: &str) -> String {
        let seen = self.seen.clone();
        let requester = self.requester.clone();
        let raw = wait_for_mail(
            self.stack,
            REQUESTER_USER,
            &format!("TO \"{requester}\""),
            what,
            |raw| {
                header(raw, "message-id")
                    .map(|v| ids(&v))
                    .is_some_and(|i| !i.is_empty() && !seen.contains(&i[0]))
                    && header(raw, "x-recoverydesk-case").is_some()
            },
        )
        .await
        .remove(0);
        let id = ids(&header(&raw, "message-id").unwrap()).remove(0);
        // Our reply answers the requester's latest mail and keeps the
        // thread: In-Reply-To is that mail, References reach back to the
        // first one.
        let in_reply_to = header(&raw, "in-reply-to")
            .map(|v| ids(&v))
            .unwrap_or_default();
        assert_eq!(
            in_reply_to.first(),
            self.sent.last(),
            "{what} answers the requester's latest mail:\n{raw}"
        );
        let references = header(&raw, "references")
            .map(|v| ids(&v))
            .unwrap_or_default();
        assert!(
            references.contains(&self.sent[0]),
            "{what}: References lead back to the first mail: {references:?}"
        );
        self.seen.push(id);
        raw
    }

    /// Everything the requester's INBOX holds for `case`.
    async fn all_mail(&self, case: &str) -> Vec<String> {
        inbox(
            self.stack,
            REQUESTER_USER,
            &format!("TO \"{}\"", self.requester),
        )
        .await
        .into_iter()
        .map(|raw| String::from_utf8_lossy(&raw).into_owned())
        .filter(|raw| header(raw, "x-recoverydesk-case").as_deref() == Some(case))
        .collect()
    }
}

/// The first line of a body: what the mail says changed.
fn first_line(raw: &str) -> String {
    text_of(raw)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

fn subject(raw: &str) -> String {
    header(raw, "subject").unwrap_or_default()
}

/// No mail twice: distinct Message-IDs and distinct texts.
fn assert_no_duplicates(mails: &[String]) {
    let mut ids: Vec<String> = mails
        .iter()
        .filter_map(|m| header(m, "message-id"))
        .collect();
    let mut texts: Vec<String> = mails.iter().map(|m| text_of(m)).collect();
    let n = mails.len();
    ids.sort();
    ids.dedup();
    texts.sort();
    texts.dedup();
    assert_eq!((ids.len(), texts.len()), (n, n), "a mail arrived twice");
}

/// The staff notifications of `case` in the staff INBOX.
async fn staff_mail(stack: &Stack, case: &str) -> Vec<String> {
    inbox(
        stack,
        "staff",
        &format!("HEADER X-Recoverydesk-Case \"{case}\""),
    )
    .await
    .into_iter()
    .map(|raw| String::from_utf8_lossy(&raw).into_owned())
    .collect()
}

/// Waits for a staff mail of `case` whose subject contains `needle`.
async fn staff_notice(stack: &Stack, case: &str, needle: &str) -> String {
    wait_for_mail(
        stack,
        "staff",
        &format!("HEADER X-Recoverydesk-Case \"{case}\""),
        needle,
        |raw| subject(raw).contains(needle),
    )
    .await
    .remove(0)
}

fn write_accounts(dir: &Path, username: &str, linked: &str) {
    std::fs::write(
        dir.join("accounts.toml"),
        format!(
            "[[account]]\nusername = \"{username}\"\n\
             addresses = [{{ address = \"{linked}\", verified = true, primary = true }}]\n"
        ),
    )
    .unwrap();
}

/// The tidy 2FA recovery and a staff conversation, replayed against
/// Dovecot and Postfix: every mail arrives once, in one thread per case,
/// under one subject, first lines saying what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tidy_2fa_and_the_staff_conversation_replay_on_the_real_stack() {
    let _gate = crate::stack::GATE.read().await;
    let _mailbox = SUPPORT_MAILBOX.lock().await;
    let Some(stack) = stack() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let mutt = Mutt::new(work.path(), &stack);
    let hops = measure_received_hops(&stack, &mutt).await;
    empty_support_inbox(&stack).await;
    let tag = unique("cr");
    let username = format!("tidy{}", &tag[2..]).replace('x', "y");
    let linked = format!("{LINKED_USER}+{tag}@linked.example");
    let metrics_port = crate::mail_client::free_port();
    let config = config(&stack, work.path(), hops, metrics_port, &username);
    write_accounts(work.path(), &username, &linked);
    let daemon = start_logged_in(&stack, &config, work.path(), metrics_port);

    // --- The tidy 2FA recovery. ---
    let mut pat = Talk {
        stack: &stack,
        requester: format!("{REQUESTER_USER}+{tag}a@example.org"),
        subject: format!("Lost my 2FA device ({tag})"),
        sent: Vec::new(),
        seen: Vec::new(),
    };
    pat.write(
        None,
        &format!("Hello,\r\n\r\nI lost my phone with the authenticator app. My username is {username}.\r\n"),
    )
    .await;
    let ack = pat.next_mail("acknowledgement").await;
    let case = header(&ack, "x-recoverydesk-case").unwrap();
    let ack_id = pat.seen[0].clone();
    pat.write(
        Some(&ack_id),
        "I can still read the email address on the account.\r\n",
    )
    .await;
    let details = pat.next_mail("request for details").await;
    let details_id = pat.seen[1].clone();
    pat.write(
        Some(&details_id),
        "I agree to the Code of Conduct and I understand this may take a while.\r\n",
    )
    .await;
    let sent = pat.next_mail("we wrote to the linked address").await;
    let challenge = wait_for_mail(
        &stack,
        LINKED_USER,
        &format!("TO \"{linked}\""),
        "challenge",
        |raw| header(raw, "x-recoverydesk-case").as_deref() == Some(case.as_str()),
    )
    .await;
    assert_eq!(challenge.len(), 1, "one challenge");
    let code = text_of(&challenge[0])
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 9 && l.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no code in:\n{}", challenge[0]))
        .to_owned();
    let sent_id = pat.seen[2].clone();
    pat.write(Some(&sent_id), &format!("Here is the code: {code}\r\n"))
        .await;
    let verified = pat.next_mail("verified").await;
    let _ = staff_notice(&stack, &case, "Verified").await;

    let firsts: Vec<String> = [&ack, &details, &sent, &verified]
        .iter()
        .map(|m| first_line(m))
        .collect();
    for (mail, first) in [&ack, &details, &sent, &verified].iter().zip(&firsts) {
        eprintln!("to Pat:   {} | {first}", subject(mail));
    }
    assert_eq!(
        firsts,
        [
            "We received your account recovery request",
            "A few more details, please",
            "Please check the email address linked to the account",
            "Thank you, the linked address confirmed your request",
        ]
    );
    let all = pat.all_mail(&case).await;
    assert_eq!(all.len(), 4, "four mails to Pat, no more");
    assert_no_duplicates(&all);
    for mail in &all {
        assert_eq!(subject(mail), format!("Re: [Case {case}] {}", pat.subject));
    }
    let staff = staff_mail(&stack, &case).await;
    for mail in &staff {
        eprintln!("to staff: {} | {}", subject(mail), first_line(mail));
    }
    assert_eq!(staff.len(), 2, "new case and verified");
    assert_no_duplicates(&staff);

    // --- A staff conversation: /ask with text, the answer, /close with text. ---
    let other = format!("lost{}", &tag[2..]).replace('x', "y");
    let mut jo = Talk {
        stack: &stack,
        requester: format!("{REQUESTER_USER}+{tag}b@example.org"),
        subject: format!("Locked out ({tag})"),
        sent: Vec::new(),
        seen: Vec::new(),
    };
    jo.write(
        None,
        &format!("Username: {other}\r\nI lost my phone with the authenticator app.\r\nI no longer have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n"),
    )
    .await;
    let ack = jo.next_mail("acknowledgement").await;
    let case = header(&ack, "x-recoverydesk-case").unwrap();
    let new_case = staff_notice(&stack, &case, "New recovery case").await;
    mutt.load(&new_case);
    mutt.reply("/ask proofs\nHello, could you name a package you maintain on the account?\n\n");
    let asked = jo.next_mail("the /ask with the staff text").await;
    assert!(
        text_of(&asked).contains("could you name a package you maintain"),
        "{}",
        text_of(&asked)
    );
    assert_eq!(header(&asked, "auto-submitted").as_deref(), Some("no"));
    let asked_id = jo.seen[1].clone();
    jo.write(Some(&asked_id), "I maintain the package alice-tools.\r\n")
        .await;
    let thanks = jo.next_mail("what we asked for").await;
    let replied = staff_notice(&stack, &case, "The requester replied").await;
    assert_eq!(
        header(&replied, "in-reply-to").map(|v| ids(&v)),
        Some(vec![jo.sent[1].clone()]),
        "staff read it under the requester's mail"
    );
    assert!(text_of(&replied).contains("alice-tools"));
    mutt.load(&replied);
    mutt.reply("/close\nWe could not confirm the account is yours, so we cannot change it.\n\n");
    let closed = jo.next_mail("the close with the staff text").await;

    let mails = [&ack, &asked, &thanks, &closed];
    for mail in mails {
        eprintln!("to Jo:    {} | {}", subject(mail), first_line(mail));
    }
    let firsts: Vec<String> = mails.iter().map(|m| first_line(m)).collect();
    assert_eq!(
        firsts,
        [
            "We received your account recovery request",
            "A message from the support team",
            "Thank you, we have what we asked for",
            "A message from the support team",
        ]
    );
    assert!(text_of(&closed).contains("We could not confirm"));
    let all = jo.all_mail(&case).await;
    assert_eq!(all.len(), 4, "one mail per step, no more");
    assert_no_duplicates(&all);
    for mail in &all {
        assert_eq!(subject(mail), format!("Re: [Case {case}] {}", jo.subject));
    }
    // Give a late duplicate the chance to show, then look once more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(jo.all_mail(&case).await.len(), 4);
    let staff = staff_mail(&stack, &case).await;
    for mail in &staff {
        eprintln!("to staff: {} | {}", subject(mail), first_line(mail));
    }
    assert_eq!(staff.len(), 2, "new case and the reply");
    assert_no_duplicates(&staff);
    drop(daemon);
}
