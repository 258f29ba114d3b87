//! The transitions: one function per event, all pure.

use crate::case::answer::{self, YesNo};
use crate::case::{
    Actor, Case, CaseState, Challenge, Ctx, Event, Flag, LogEntry, LookupOutcome, Mail, Outcome,
    OwnerAnswerKind, Recipient, RequesterMessage, TimerKind, Verification,
};
use crate::domain::Priority;
use crate::request::{Claim, Field, Reason};
use crate::staff_cmd::{Command, StaffMessage};
use crate::templates::TemplateKind;
use crate::thread::Role;
use crate::verify;

/// Replies in a row without progress after which a person takes over.
pub const ROUNDS_BEFORE_STAFF: u32 = 2;

/// Failed directory lookups of one case after which staff are told.
pub const DIRECTORY_TRIES_BEFORE_ALERT: u32 = 4;

/// Applies one event to a case. Never fails: every input leads somewhere.
pub fn apply(case: &Case, event: &Event, ctx: &Ctx<'_>) -> Outcome {
    let mut step = Step {
        case: case.clone(),
        mails: Vec::new(),
        log: Vec::new(),
        ctx,
        target: None,
    };
    step.case.updated_at = ctx.now;
    match event {
        Event::Requester(message) => step.requester(message),
        Event::SecondRequester { from } => step.second_requester(from),
        Event::UnverifiedTag { from } => {
            step.case.flag(Flag::UnverifiedSubjectTag);
            step.log(Actor::System, format!("{from} used this case's subject tag but is not a participant: held, not merged"));
            step.notify(
                TemplateKind::StaffUnverifiedTag,
                format!("{from} used the case tag without being a participant"),
            );
        }
        Event::Owner {
            from,
            answer,
            codes,
        } => step.owner(from, *answer, codes),
        Event::Staff {
            from,
            name,
            message,
            direct,
            lookup,
        } => step.staff(from, name.as_deref(), message, *direct, lookup.as_ref()),
        Event::ForgedStaff { from, why } => {
            step.case.flag(Flag::ForgedStaff);
            step.log(Actor::System, format!("mail claiming to be staff ({from}) was not trusted: {why}; nothing relayed or executed"));
            step.notify(TemplateKind::StaffForged, format!("{from}: {why}"));
        }
        Event::DeliveryFailed { bounce } => {
            step.case.flag(Flag::DeliveryFailure);
            let who = bounce.failed_recipients.join(", ");
            step.log(
                Actor::System,
                format!(
                    "delivery failed to {who}: {}",
                    bounce.diagnostic.clone().unwrap_or_default()
                ),
            );
            step.notify(
                TemplateKind::StaffDeliveryFailure,
                format!("delivery failed to {who}"),
            );
        }
        Event::Machine { kind, reason } => {
            step.log(
                Actor::System,
                format!("{kind} mail recorded, not answered ({reason})"),
            );
        }
        Event::Timers { kinds, lookup } => step.timers(kinds, lookup.as_ref()),
    }
    Outcome {
        case: step.case,
        mails: step.mails,
        log: step.log,
    }
}

pub(super) struct Step<'a> {
    pub(super) case: Case,
    pub(super) mails: Vec<Mail>,
    pub(super) log: Vec<LogEntry>,
    pub(super) ctx: &'a Ctx<'a>,
    /// The directory's answer in this step: `Ok(address)` to challenge, or
    /// `Err(why)` when there is nothing to challenge.
    pub(super) target: Option<Result<String, String>>,
}

impl Step<'_> {
    pub(super) fn log(&mut self, actor: Actor, what: impl Into<String>) {
        self.log.push(LogEntry {
            at: self.ctx.now,
            actor,
            what: what.into(),
        });
    }

    pub(super) fn send(&mut self, mail: Mail) {
        self.mails.push(mail);
    }

    pub(super) fn notify(&mut self, template: TemplateKind, reason: impl Into<String>) {
        self.mails
            .push(Mail::new(template, Recipient::Staff).with("reason", reason));
    }

    pub(super) fn set_timer(&mut self, kind: TimerKind, due: i64) {
        self.case.timers.insert(kind, due);
    }

    pub(super) fn clear_timers(&mut self, kinds: &[TimerKind]) {
        for kind in kinds {
            self.case.timers.remove(kind);
        }
    }

    /// A person wrote on the case: the case moves, and staff hear of it when
    /// the case was waiting on them (13.10).
    fn requester(&mut self, msg: &RequesterMessage) {
        let before = self.case.clone();
        self.requester_moves(msg);
        self.say_what_was_received(&before);
        self.tell_staff_of_answer(&before, msg);
    }

    /// The request for details (or "we have what we asked for"), and the
    /// "we wrote to the linked address" mail a completing reply brings,
    /// name what this reply told us, so the requester sees they were
    /// understood.
    fn say_what_was_received(&mut self, before: &Case) {
        let changed = answer::changed_fields(&before.fields, &self.case.fields);
        if changed.is_empty() {
            return;
        }
        let codes: Vec<&str> = changed.iter().map(|f| f.code()).collect();
        let codes = codes.join(",");
        for mail in self.mails.iter_mut().filter(|m| {
            matches!(
                m.template,
                TemplateKind::RequestInfo | TemplateKind::ChallengeSent
            ) && m.to == Recipient::Requester
        }) {
            mail.extra.insert("received".into(), codes.clone());
        }
    }

    /// One notification when the requester writes on a case that waits on
    /// staff, or answers staff's `/ask`: their new text (the trigger's
    /// excerpt) and the fields it changed, to the assignee alone if there is
    /// one. Nothing when this step already tells staff (one mail carries
    /// the same excerpt), nor for a bare "any update?" or repeat that
    /// changes nothing: those the digest and the status reply cover.
    fn tell_staff_of_answer(&mut self, before: &Case, msg: &RequesterMessage) {
        let waited_on_staff = before.state == CaseState::AwaitingStaff
            || (before.state == CaseState::AwaitingInfo && before.staff_asked);
        if !waited_on_staff {
            return;
        }
        self.case.staff_asked = false;
        let changed = answer::changed_fields(&before.fields, &self.case.fields);
        let bare = msg.fields.status_chase || msg.duplicate || msg.oversize.is_some();
        let told = self
            .mails
            .iter()
            .any(|m| matches!(m.to, Recipient::Staff | Recipient::StaffMember(_)));
        if told || (bare && changed.is_empty()) {
            return;
        }
        let to = match &self.case.assignee {
            Some(assignee) => Recipient::StaffMember(assignee.clone()),
            None => Recipient::Staff,
        };
        let codes: Vec<&str> = changed.iter().map(|f| f.code()).collect();
        let mut reason = if before.staff_asked {
            "the requester answered your /ask".to_owned()
        } else {
            "the requester wrote on a case that waits on staff".to_owned()
        };
        if !msg.proven() {
            reason.push_str(" (tied to the case only by the sender's address)");
        }
        self.log(
            Actor::System,
            format!(
                "staff told of the requester's reply{}",
                if codes.is_empty() {
                    String::new()
                } else {
                    format!(" (now known: {})", codes.join(", "))
                }
            ),
        );
        self.send(
            Mail::new(TemplateKind::StaffRequesterReplied, to)
                .with("reason", reason)
                .with("changed", codes.join(","))
                .with("received", codes.join(",")),
        );
    }

    /// What the requester's message does to the case, in order: take in
    /// what it says, then answer it as the case's state calls for.
    fn requester_moves(&mut self, msg: &RequesterMessage) {
        let was_new = self.case.state == CaseState::New;
        let had_compromise = self
            .case
            .fields
            .reasons
            .contains(&Reason::SuspectedCompromise);
        let missing_before = self.case.missing.clone();
        self.take_in(msg, was_new);
        if let Some(size) = msg.oversize {
            self.case.flag(Flag::Oversize);
            self.log(
                Actor::System,
                format!("message of {size} bytes kept headers-only"),
            );
            self.send(
                Mail::new(TemplateKind::TooLarge, Recipient::Requester)
                    .with("size_bytes", size.to_string()),
            );
            if !was_new {
                return;
            }
        }
        self.notice_compromise(had_compromise);
        if self.case.state == CaseState::Closed {
            self.reopen_by_reply(msg);
            return;
        }
        if self.case.state == CaseState::Resolved {
            self.reply_to_resolved(msg);
            return;
        }
        // A new message that is really "any update?" is a status chase, not
        // a duplicate: it gets the once-per-interval status reply below. One
        // carrying a code answers the challenge (people write afresh rather
        // than reply): it is checked below like a reply.
        let answers_challenge = !msg.codes.is_empty()
            && msg.proven()
            && matches!(
                self.case.verification,
                Verification::Pending(_) | Verification::NoTarget { .. }
            );
        if msg.duplicate && !msg.fields.status_chase && !answers_challenge {
            self.log(
                Actor::System,
                "a repeat of a request already in the queue: merged",
            );
            self.send(Mail::new(TemplateKind::Duplicate, Recipient::Requester));
            self.advance(false);
            return;
        }
        if was_new {
            self.open_the_case(msg);
            return;
        }
        self.answer_reply(msg, &missing_before);
    }

    /// Language, fields, secrets and what is still missing, from one message.
    fn take_in(&mut self, msg: &RequesterMessage, was_new: bool) {
        if let Some(lang) = msg.language.as_ref().filter(|_| msg.proven()) {
            if was_new || self.case.language == "en" {
                self.case.language = lang.clone();
            }
        }
        if !msg.proven() {
            self.log(
                Actor::System,
                "mail tied to the case only by the sender's address (no reply address, no reference to our mail): it may fill in missing details, but counts no code, keeps the language and changes nothing the case holds",
            );
        }
        self.answer_in_context(msg);
        self.case.fields.merge(&msg.fields_for(&self.case.fields));
        for secret in &msg.secrets {
            if !self.case.secrets_found.contains(secret) {
                self.case.secrets_found.push(*secret);
            }
        }
        if !msg.secrets.is_empty() {
            self.case.flag(Flag::SecretsPosted);
            self.log(
                Actor::System,
                "secrets found in the message were redacted; the requester is told to revoke them",
            );
        }
        if msg.malformed {
            self.case.flag(Flag::MalformedMail);
        }
        self.case.missing = self
            .ctx
            .policy
            .required
            .iter()
            .copied()
            .filter(|f| !self.case.fields.has(*f))
            .collect();
        self.log(Actor::Requester, format!("message from {}", msg.from));
    }

    /// Signs of compromise seen for the first time: high priority, staff at once.
    fn notice_compromise(&mut self, had_compromise: bool) {
        let has = self
            .case
            .fields
            .reasons
            .contains(&Reason::SuspectedCompromise);
        if had_compromise || !has {
            return;
        }
        self.case.priority = Priority::High;
        self.case.flag(Flag::SuspectedCompromise);
        self.notify(
            TemplateKind::StaffCompromise,
            "the requester describes signs that someone else changed the account",
        );
    }

    /// A reply to a closed case within the reopen window.
    fn reopen_by_reply(&mut self, msg: &RequesterMessage) {
        self.case.closed_at = None;
        // Staff by default (with its status timer), unless `advance`
        // below finds the requester owes us something.
        self.queue_for_staff(false);
        self.log(Actor::System, "reopened by a reply from the requester");
        self.send(Mail::new(TemplateKind::Reopened, Recipient::Requester));
        if let Some(lookup) = &msg.lookup {
            self.take_lookup(lookup);
        }
        // A challenge left over from before the close is stale (its
        // timers were cleared): replace it rather than wait on it forever.
        self.expire_challenge();
        self.advance(false);
    }

    /// The message that opened the case: the acknowledgement, and one
    /// staff mail.
    fn open_the_case(&mut self, msg: &RequesterMessage) {
        if let Some(lookup) = &msg.lookup {
            self.take_lookup(lookup);
        }
        self.advance(true);
        // One mail for one event: a new case that suspects compromise is
        // announced by the compromise alert, marked as a new case.
        match self
            .mails
            .iter_mut()
            .find(|m| m.template == TemplateKind::StaffCompromise)
        {
            Some(alert) => {
                alert.extra.insert("new_case".into(), "true".into());
            }
            None => self.notify(TemplateKind::StaffNewCase, "a new recovery request"),
        }
    }

    /// A reply on an open case: a lost linked address, a code, a chase,
    /// or new details.
    fn answer_reply(&mut self, msg: &RequesterMessage, missing_before: &[Field]) {
        let now = self.ctx.now;
        if self.withdraw_challenge_for_a_lost_address(msg) {
            return;
        }
        if let Verification::Pending(_) | Verification::NoTarget { .. } = self.case.verification {
            if !msg.codes.is_empty() && msg.proven() {
                self.try_codes(&msg.codes, Actor::Requester);
                return;
            }
            if !msg.quoted_codes.is_empty() {
                self.log(
                    Actor::System,
                    "a code appears only in quoted text: not a confirmation",
                );
            }
        }
        if let Some(lookup) = &msg.lookup {
            self.take_lookup(lookup);
        }
        let before = self.case.state;
        if msg.fields.status_chase {
            // Staff see chases in the digest (from this log line), not as mail.
            self.log(Actor::Requester, "asked for an update");
            self.advance(false);
            if self.mails.iter().all(|m| m.to != Recipient::Requester) {
                self.status_reply(now);
            }
            return;
        }
        self.advance(false);
        if self.mails.iter().all(|m| m.to != Recipient::Requester) {
            if before == CaseState::AwaitingInfo || !self.case.missing.is_empty() {
                self.ask_again_or_hand_over(before, missing_before);
            } else {
                self.status_reply(now);
            }
        }
    }

    /// "I cannot read the linked address any more" while a challenge waits
    /// (or a pretend one, for an unknown account: the same path, so the
    /// requester learns nothing): the challenge and its reminders stop and
    /// staff review the case now, as the challenge mail promises. Only a
    /// proven thread may do this: a forged From must not cancel a challenge.
    fn withdraw_challenge_for_a_lost_address(&mut self, msg: &RequesterMessage) -> bool {
        let waiting = matches!(
            self.case.verification,
            Verification::Pending(_) | Verification::NoTarget { .. }
        );
        // A message with codes answers the challenge: those are tried first.
        let answers_with_codes = !msg.codes.is_empty();
        if !waiting
            || !msg.proven()
            || answers_with_codes
            || msg.fields.claims_email_access != Claim::No
        {
            return false;
        }
        self.case.fields.claims_email_access = Claim::No;
        self.case.verification = Verification::Skipped {
            why: "the requester can no longer read the linked address".into(),
        };
        self.clear_timers(&[TimerKind::ChallengeReminder, TimerKind::ChallengeExpiry]);
        self.log(
            Actor::Requester,
            "can no longer read the linked address: the challenge is withdrawn; manual review by staff",
        );
        self.queue_for_staff(false);
        self.send(Mail::new(
            TemplateKind::LinkedAddressLost,
            Recipient::Requester,
        ));
        let mut nudge = Mail::new(TemplateKind::StaffNudge, Recipient::Staff).with(
            "reason",
            "the requester can no longer read the linked address: the challenge was withdrawn; please review the proofs they offered",
        );
        // Says what happened in the subject and first line, not "still waiting".
        nudge = nudge.with("nudge", "linked_address_lost");
        self.send(nudge);
        true
    }

    /// A short "yes"/"no" answers the one yes/no question the case asked;
    /// with several open it is ambiguous and the field rules decide.
    fn answer_in_context(&mut self, msg: &RequesterMessage) {
        if self.case.state != CaseState::AwaitingInfo {
            return;
        }
        let (Some(field), Some(yes_no)) = (
            answer::single_open_question(&self.case.missing),
            msg.short_answer,
        ) else {
            return;
        };
        if msg.fields.has(field) {
            return;
        }
        answer::answer(&mut self.case.fields, field, yes_no);
        self.log(
            Actor::System,
            format!(
                "a short {} answered the one open question ({})",
                match yes_no {
                    YesNo::Yes => "yes",
                    YesNo::No => "no",
                },
                field.code()
            ),
        );
    }

    /// Asks for what is still missing, unless two replies in a row left the
    /// same details missing: then a person takes over, and staff are told
    /// why, instead of a third identical request.
    fn ask_again_or_hand_over(&mut self, before: CaseState, missing_before: &[Field]) {
        let stuck = before == CaseState::AwaitingInfo && self.case.missing == missing_before;
        self.case.rounds_without_progress = if stuck {
            self.case.rounds_without_progress + 1
        } else {
            0
        };
        if self.case.rounds_without_progress < ROUNDS_BEFORE_STAFF {
            self.send(Mail::new(TemplateKind::RequestInfo, Recipient::Requester));
            return;
        }
        let codes: Vec<&str> = self.case.missing.iter().map(|f| f.code()).collect();
        let words: Vec<&str> = self
            .case
            .missing
            .iter()
            .map(|f| crate::labels::staff_field(*f))
            .collect();
        self.queue_for_staff(false);
        self.log(
            Actor::System,
            format!(
                "two replies did not bring {}: handed to staff instead of asking a third time",
                codes.join(", ")
            ),
        );
        self.send(Mail::new(TemplateKind::HandedToStaff, Recipient::Requester));
        let nudge = Mail::new(TemplateKind::StaffNudge, Recipient::Staff)
            .with(
                "reason",
                format!(
                    "the requester answered twice without giving {}; asking again would not help",
                    words.join(" or ")
                ),
            )
            // Says what happened in the subject and first line, not "still waiting".
            .with("nudge", "requester_stuck");
        self.send(nudge);
    }

    /// A reply to a resolved case: "it works, thanks" restarts the quiet
    /// period before the close; anything else puts the case back in front
    /// of staff, who resolved it thinking it was done.
    fn reply_to_resolved(&mut self, msg: &RequesterMessage) {
        let now = self.ctx.now;
        if msg.fields.solved {
            self.set_timer(
                TimerKind::ResolvedClose,
                now + self.ctx.policy.resolved_close_after,
            );
            self.log(Actor::System, "the requester confirmed the resolution: no answer needed; the quiet period starts again");
            return;
        }
        self.case.timers.remove(&TimerKind::ResolvedClose);
        self.log(Actor::System, "reopened by a reply to the resolved case");
        self.queue_for_staff(false);
        self.send(Mail::new(TemplateKind::Reopened, Recipient::Requester));
        self.notify(
            TemplateKind::StaffNudge,
            "the requester replied to a resolved case",
        );
    }

    fn status_reply(&mut self, now: i64) {
        let interval = self.ctx.policy.status_reply_interval;
        match self.case.last_status_reply_at {
            Some(at) if now - at < interval => {
                self.log(
                    Actor::System,
                    "no reply: a status reply was sent within the configured interval",
                );
            }
            _ => {
                self.case.last_status_reply_at = Some(now);
                self.send(Mail::new(TemplateKind::StatusReply, Recipient::Requester));
            }
        }
    }

    fn second_requester(&mut self, from: &str) {
        if from != self.case.requester && !self.case.other_requesters.iter().any(|r| r == from) {
            self.case.other_requesters.push(from.to_owned());
        }
        self.case.flag(Flag::MultipleRequesters);
        self.log(
            Actor::System,
            format!("{from} asked about the same account; joined to this case"),
        );
        // Neutral: never confirm to a second address that a case exists.
        self.send(Mail::new(
            TemplateKind::Neutral,
            Recipient::Other(from.to_owned()),
        ));
        self.notify(
            TemplateKind::StaffNewCase,
            format!("a second address ({from}) asked about the same account"),
        );
    }

    /// Records a directory answer in the verification state.
    pub(super) fn take_lookup(&mut self, lookup: &LookupOutcome) {
        match lookup {
            LookupOutcome::Unavailable { reason } => {
                let tries = match self.case.verification {
                    Verification::LookupPending { tries } => tries + 1,
                    _ => 1,
                };
                self.case.verification = Verification::LookupPending { tries };
                self.log(
                    Actor::System,
                    format!("account directory unavailable ({reason}); retrying later"),
                );
                let due = self.ctx.now + self.ctx.policy.directory_retry;
                self.set_timer(TimerKind::DirectoryRetry, due);
                // Keep retrying (an outage is never "no account"), but tell
                // staff once when it lasts: they may check by hand.
                if tries == DIRECTORY_TRIES_BEFORE_ALERT {
                    self.notify(
                        TemplateKind::StaffNudge,
                        format!("the account directory has not answered for this case after {tries} tries: {reason}"),
                    );
                }
            }
            LookupOutcome::Found {
                address: Some(address),
                username,
            } => {
                self.case.account_username = Some(username.clone());
                self.case.linked_address_masked = Some(verify::mask_address(address));
                self.case.timers.remove(&TimerKind::DirectoryRetry);
                if matches!(self.case.verification, Verification::LookupPending { .. }) {
                    self.case.verification = Verification::NotStarted;
                }
                self.target = Some(Ok(address.clone()));
            }
            LookupOutcome::Found { address: None, .. } | LookupOutcome::NotFound => {
                // A later lookup (a corrected username) replaces what an
                // earlier one found.
                self.case.linked_address_masked = None;
                self.case.account_username = match lookup {
                    LookupOutcome::Found { username, .. } => Some(username.clone()),
                    _ => None,
                };
                self.case.timers.remove(&TimerKind::DirectoryRetry);
                if matches!(self.case.verification, Verification::LookupPending { .. }) {
                    self.case.verification = Verification::NotStarted;
                }
                self.target = Some(Err(match lookup {
                    LookupOutcome::NotFound => "no account matches".into(),
                    _ => "the account has no linked address".into(),
                }));
            }
        }
    }
}

/// Which receipt the challenge thread's reply earns, if any: only an
/// answer that changed something (the verification, or a first objection)
/// gets one, so a repeat, or mail after the challenge ended, is recorded
/// and never answered: two mailboxes cannot keep each other busy.
fn owner_receipt_outcome(
    before: &Verification,
    after: &Verification,
    answer: OwnerAnswerKind,
    with_codes: bool,
    flagged_before: bool,
) -> Option<&'static str> {
    if answer == OwnerAnswerKind::Denied {
        let first = !flagged_before && !matches!(before, Verification::Denied { .. });
        return first.then_some("denied");
    }
    if before == after || (answer != OwnerAnswerKind::Confirmed && !with_codes) {
        return None;
    }
    Some(match after {
        Verification::Verified { .. } => "confirmed",
        Verification::Pending(_) => "not_matched",
        _ => "too_late",
    })
}

impl Step<'_> {
    /// Moves the case to the state its fields and verification call for.
    /// `first` is true for the message that opened the case: it gets the
    /// acknowledgement, which already says what happens next.
    pub(super) fn advance(&mut self, first: bool) {
        let now = self.ctx.now;
        if !self.case.missing.is_empty() {
            self.case.state = CaseState::AwaitingInfo;
            if first {
                self.send(Mail::new(
                    TemplateKind::Acknowledgement,
                    Recipient::Requester,
                ));
            }
            self.wait_on_requester(now);
            return;
        }
        match self.case.verification.clone() {
            Verification::NotStarted | Verification::Expired { .. } => {
                self.start_verification(first)
            }
            Verification::LookupPending { .. } => {
                self.case.state = CaseState::AwaitingVerification;
                if first {
                    self.send(Mail::new(
                        TemplateKind::Acknowledgement,
                        Recipient::Requester,
                    ));
                }
            }
            Verification::Pending(_) | Verification::NoTarget { .. } => {
                self.case.state = CaseState::AwaitingVerification;
                if first {
                    self.send(Mail::new(
                        TemplateKind::Acknowledgement,
                        Recipient::Requester,
                    ));
                }
            }
            Verification::Verified { .. } => {
                if self.case.timers.contains_key(&TimerKind::WaitingPeriodEnd) {
                    self.case.state = CaseState::WaitingPeriod;
                } else {
                    self.queue_for_staff(first);
                }
            }
            Verification::Denied { .. }
            | Verification::Locked { .. }
            | Verification::Skipped { .. } => self.queue_for_staff(first),
        }
    }

    /// Nothing is being verified yet: no challenge for a lost linked
    /// address, a challenge to the directory's address, the same words
    /// and timers when there is none (no enumeration), or, with no answer
    /// from the directory yet, staff.
    fn start_verification(&mut self, first: bool) {
        let now = self.ctx.now;
        if self.case.fields.claims_email_access == Claim::No {
            self.case.verification = Verification::Skipped {
                why: "the requester lost access to the linked address".into(),
            };
            self.log(
                Actor::System,
                "no challenge: the requester lost the linked address; manual review by staff",
            );
            self.queue_for_staff(first);
            return;
        }
        match self.target.clone() {
            Some(Ok(address)) => {
                if self.issue_challenge(&address) {
                    self.case.state = CaseState::AwaitingVerification;
                    self.announce_challenge(first);
                    self.wait_on_requester(now);
                } else {
                    self.queue_for_staff(first);
                }
            }
            Some(Err(why)) => {
                let ctx = self.ctx;
                // The same per-day limit as a real challenge: reaching
                // it must not tell an existing account from a missing one.
                if self.challenge_limit_reached() {
                    self.queue_for_staff(first);
                    return;
                }
                self.case.challenges_issued.push(now);
                let expires_at = now + ctx.policy.challenge_ttl;
                self.log(
                    Actor::System,
                    format!("no challenge sent ({why}); the requester is told the same as always"),
                );
                self.case.verification = Verification::NoTarget {
                    expires_at,
                    why,
                    attempts_left: ctx.policy.challenge_attempts,
                };
                self.set_timer(TimerKind::ChallengeExpiry, expires_at);
                self.case.state = CaseState::AwaitingVerification;
                self.announce_challenge(first);
                self.wait_on_requester(now);
            }
            None => {
                if first {
                    self.send(Mail::new(
                        TemplateKind::Acknowledgement,
                        Recipient::Requester,
                    ));
                }
                if !matches!(self.case.verification, Verification::Expired { .. }) {
                    self.queue_for_staff(false);
                }
            }
        }
    }

    fn announce_challenge(&mut self, first: bool) {
        let template = if first {
            TemplateKind::Acknowledgement
        } else {
            TemplateKind::ChallengeSent
        };
        self.send(Mail::new(template, Recipient::Requester));
    }

    fn wait_on_requester(&mut self, now: i64) {
        self.case.timers.remove(&TimerKind::CloseInactive);
        self.case.timers.remove(&TimerKind::StaffStatus);
        self.set_timer(TimerKind::Reminder, now + self.ctx.policy.reminder_after);
    }

    pub(super) fn queue_for_staff(&mut self, first: bool) {
        self.case.state = CaseState::AwaitingStaff;
        if first {
            self.send(Mail::new(
                TemplateKind::Acknowledgement,
                Recipient::Requester,
            ));
        }
        self.clear_timers(&[
            TimerKind::Reminder,
            TimerKind::CloseInactive,
            TimerKind::ResolvedClose,
        ]);
        if !self.case.timers.contains_key(&TimerKind::StaffStatus) {
            let due = self.ctx.now + self.ctx.policy.staff_status_after;
            self.set_timer(TimerKind::StaffStatus, due);
        }
    }

    /// Forgets issue times older than a day, then tells (and logs) whether
    /// the per-day challenge limit is reached: the one place for that rule.
    fn challenge_limit_reached(&mut self) -> bool {
        let now = self.ctx.now;
        self.case.challenges_issued.retain(|t| now - t < 86_400);
        let reached =
            self.case.challenges_issued.len() as u32 >= self.ctx.policy.challenges_per_day;
        if reached {
            self.log(
                Actor::System,
                "no new challenge: the per-day limit for this case is reached",
            );
        }
        reached
    }

    /// Issues a challenge to the linked address, within the per-day limit.
    pub(super) fn issue_challenge(&mut self, address: &str) -> bool {
        let (now, policy) = (self.ctx.now, self.ctx.policy);
        if self.challenge_limit_reached() {
            return false;
        }
        self.case.challenges_issued.push(now);
        let code = self.ctx.fresh_code.clone();
        self.case.verification = Verification::Pending(Challenge {
            code_mac: verify::code_mac(self.ctx.key, self.case.id.as_str(), &code),
            issued_at: now,
            expires_at: now + policy.challenge_ttl,
            attempts_left: policy.challenge_attempts,
            sent_to: address.to_owned(),
            reminded: false,
        });
        self.set_timer(TimerKind::ChallengeReminder, now + policy.challenge_ttl / 2);
        self.set_timer(TimerKind::ChallengeExpiry, now + policy.challenge_ttl);
        self.log(
            Actor::System,
            format!("challenge sent to {}", verify::mask_address(address)),
        );
        let mut mail = Mail::new(
            TemplateKind::Challenge,
            Recipient::Linked(address.to_owned()),
        );
        mail.role = Role::Challenge;
        mail.code = Some(code);
        self.send(mail);
        true
    }

    /// Checks code candidates against the pending challenge; one message
    /// is one attempt however many candidates it holds.
    pub(super) fn try_codes(&mut self, codes: &[String], actor: Actor) {
        let (now, key, previous) = (self.ctx.now, self.ctx.key, self.ctx.previous_keys);
        let case_id = self.case.id.as_str().to_owned();
        let (matched, expired, attempts_left) = match &mut self.case.verification {
            // Each distinct candidate checked is one attempt, and no more are
            // checked than attempts remain (verify.rs "What counts as an
            // attempt"): packing guesses into one message buys nothing.
            Verification::Pending(ch) => {
                let expired = now >= ch.expires_at;
                let left = if expired { 0 } else { ch.attempts_left };
                // Challenge MACs are bound to serial 0: one challenge is
                // pending per case at a time, and a new one replaces it.
                // A code sent before a key rotation was MACed under a
                // previous key, still accepted for a while.
                let mut keys = vec![key];
                keys.extend(previous.iter().map(|k| k.expose().as_bytes()));
                let check = verify::check_codes_any(&keys, &case_id, 0, &ch.code_mac, codes, left);
                let matched = matches!(check, verify::CodeCheck::Matched { .. });
                if let verify::CodeCheck::Wrong { attempts } = check {
                    ch.attempts_left = ch.attempts_left.saturating_sub(attempts);
                }
                (matched, expired, ch.attempts_left)
            }
            Verification::NoTarget {
                expires_at,
                attempts_left,
                ..
            } => {
                let expired = now >= *expires_at;
                if !expired {
                    // The same count as a pending challenge with every candidate wrong.
                    let wrong = u32::try_from(codes.len()).unwrap_or(u32::MAX);
                    *attempts_left = attempts_left.saturating_sub(wrong);
                }
                (false, expired, *attempts_left)
            }
            _ => return,
        };
        if expired {
            self.log(Actor::System, "a code arrived after the challenge expired");
            if actor == Actor::Requester {
                // The requester is still there: a fresh challenge to the same
                // place (or the same pretend one) is the useful answer.
                self.expire_challenge();
                self.advance(false);
            } else {
                self.case.verification = Verification::Expired { at: now };
            }
            return;
        }
        if matched {
            let how = if actor == Actor::Owner {
                "the code was sent back on the challenge thread"
            } else {
                "the requester sent the code on the case"
            };
            self.verified(how);
            return;
        }
        self.wrong_code(actor, attempts_left);
    }

    /// A code that did not match: the attempt is counted; the challenge
    /// locks when none are left.
    fn wrong_code(&mut self, actor: Actor, attempts_left: u32) {
        let now = self.ctx.now;
        // Only the person who sent a code hears about it: a wrong code on
        // the challenge thread must not tell the requester that the linked
        // mailbox exists and answered.
        let tell_requester = actor == Actor::Requester;
        self.log(actor.clone(), "a wrong code was sent");
        if attempts_left == 0 {
            self.case.verification = Verification::Locked { at: now };
            self.case.flag(Flag::ChallengeLocked);
            self.clear_timers(&[TimerKind::ChallengeReminder, TimerKind::ChallengeExpiry]);
            self.log(Actor::System, "challenge locked after too many wrong codes");
            if tell_requester {
                self.send(Mail::new(TemplateKind::Neutral, Recipient::Requester));
            }
            self.notify(
                TemplateKind::StaffNudge,
                "the challenge locked after too many wrong codes",
            );
            self.queue_for_staff(false);
        } else if !tell_requester {
            self.log(
                Actor::System,
                format!("{attempts_left} attempt(s) left; the requester is not told"),
            );
        } else {
            self.send(
                Mail::new(TemplateKind::ChallengeSent, Recipient::Requester)
                    .with("wrong_code", "true")
                    .with("attempts_left", attempts_left.to_string()),
            );
        }
    }

    pub(super) fn verified(&mut self, how: &str) {
        let now = self.ctx.now;
        self.case.verification = Verification::Verified {
            at: now,
            how: how.into(),
        };
        self.clear_timers(&[
            TimerKind::ChallengeReminder,
            TimerKind::ChallengeExpiry,
            TimerKind::Reminder,
            TimerKind::CloseInactive,
        ]);
        self.log(Actor::System, format!("verified: {how}"));
        self.send(Mail::new(TemplateKind::Verified, Recipient::Requester));
        self.notify(TemplateKind::StaffVerified, how.to_owned());
        let wait = self.ctx.policy.waiting_period;
        if wait > 0 {
            self.case.state = CaseState::WaitingPeriod;
            self.set_timer(TimerKind::WaitingPeriodEnd, now + wait);
        } else {
            self.queue_for_staff(false);
        }
    }

    /// A reply on the challenge thread, and the receipt it earns (13.9).
    fn owner(&mut self, from: &str, answer: OwnerAnswerKind, codes: &[String]) {
        let before = self.case.verification.clone();
        let flagged_before = self.case.flags.contains(&Flag::TakeoverAttempt);
        self.owner_answers(from, answer, codes);
        let outcome = owner_receipt_outcome(
            &before,
            &self.case.verification,
            answer,
            !codes.is_empty(),
            flagged_before,
        );
        if let Some(outcome) = outcome {
            let mut mail = Mail::new(
                TemplateKind::OwnerReceipt,
                Recipient::Linked(from.to_owned()),
            )
            .with("outcome", outcome);
            mail.role = Role::Challenge;
            self.send(mail);
        }
    }

    fn owner_answers(&mut self, from: &str, answer: OwnerAnswerKind, codes: &[String]) {
        let now = self.ctx.now;
        self.log(
            Actor::Owner,
            format!("reply on the challenge thread from {from}"),
        );
        // An objection still counts after the challenge expired or locked:
        // the owner may read their mail late, and a lock is itself a sign.
        let objection_allowed = matches!(self.case.verification, Verification::Pending(_))
            || (matches!(
                self.case.verification,
                Verification::Verified { .. }
                    | Verification::Expired { .. }
                    | Verification::Locked { .. }
            ) && !matches!(self.case.state, CaseState::Resolved | CaseState::Closed));
        match answer {
            OwnerAnswerKind::Denied if objection_allowed => {
                self.case.verification = Verification::Denied { at: now };
                self.case.flag(Flag::TakeoverAttempt);
                self.case.priority = Priority::High;
                self.clear_timers(&[
                    TimerKind::ChallengeReminder,
                    TimerKind::ChallengeExpiry,
                    TimerKind::WaitingPeriodEnd,
                    TimerKind::Reminder,
                    TimerKind::CloseInactive,
                ]);
                self.log(
                    Actor::System,
                    "the owner of the linked address did not ask for this: likely takeover attempt",
                );
                self.notify(
                    TemplateKind::StaffDenied,
                    "the owner of the linked address says they did not ask for this",
                );
                self.queue_for_staff(false);
            }
            OwnerAnswerKind::Denied => {
                // Too late to cancel anything on the case, never too late to warn staff.
                self.case.flag(Flag::TakeoverAttempt);
                self.case.priority = Priority::High;
                self.log(Actor::System, "the owner of the linked address did not ask for this (after the challenge ended)");
                if !matches!(self.case.verification, Verification::Denied { .. }) {
                    self.notify(
                        TemplateKind::StaffDenied,
                        "the owner of the linked address says they did not ask for this",
                    );
                }
            }
            OwnerAnswerKind::Confirmed
                if matches!(self.case.verification, Verification::Pending(_)) =>
            {
                let expired = matches!(&self.case.verification, Verification::Pending(ch) if now >= ch.expires_at);
                if expired {
                    self.case.verification = Verification::Expired { at: now };
                    self.log(
                        Actor::System,
                        "the owner confirmed after the challenge expired",
                    );
                } else {
                    self.verified(
                        "the owner of the linked address confirmed on the challenge thread",
                    );
                }
            }
            _ if !codes.is_empty()
                && matches!(self.case.verification, Verification::Pending(_)) =>
            {
                self.try_codes(codes, Actor::Owner)
            }
            _ => self.log(
                Actor::System,
                "challenge-thread reply with no clear answer: recorded",
            ),
        }
    }

    fn staff(
        &mut self,
        from: &str,
        name: Option<&str>,
        message: &StaffMessage,
        direct: bool,
        lookup: Option<&LookupOutcome>,
    ) {
        let now = self.ctx.now;
        let actor = Actor::Staff(from.to_owned());
        self.case.last_staff_action_at = Some(now);
        // The status-note cap bounds notes over one stretch of staff
        // silence; a staff action starts a new stretch (even after the cap).
        self.case.status_notes_sent = 0;
        if self.case.state == CaseState::AwaitingStaff
            || self.case.timers.contains_key(&TimerKind::StaffStatus)
        {
            self.set_timer(
                TimerKind::StaffStatus,
                now + self.ctx.policy.staff_status_after,
            );
        }
        if direct {
            self.log(
                actor.clone(),
                "wrote to the requester directly with support in Cc: recorded, not relayed",
            );
            return;
        }
        if !message.errors.is_empty() {
            self.command_error(&actor, from, &message.errors);
            return;
        }
        // All or nothing: a command that cannot run undoes the ones before
        // it, so the writer never has to work out a half-done message.
        let (case_before, mails_before, log_before, target_before) = (
            self.case.clone(),
            self.mails.len(),
            self.log.len(),
            self.target.clone(),
        );
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for command in &message.commands {
            match self.command(&actor, from, command, lookup) {
                Ok(what) => done.push(what),
                Err(why) => failed.push(why),
            }
        }
        if !failed.is_empty() {
            self.case = case_before;
            self.mails.truncate(mails_before);
            self.log.truncate(log_before);
            self.target = target_before;
            self.command_error(&actor, from, &failed);
            return;
        }
        if !message.internal && !message.relay_text.trim().is_empty() {
            self.relay(&actor, name, &message.relay_text, mails_before);
            done.push("relayed your text to the requester".into());
        }
        let silent = message.commands.iter().any(|c| {
            matches!(
                c,
                Command::Note { .. }
                    | Command::Priority { .. }
                    | Command::AssignMe
                    | Command::Verify
            )
        });
        if silent {
            self.receipt(from, &done);
        }
    }

    /// The staff text to the requester, as one mail with what the
    /// message's commands queued for them since `mails_before`.
    fn relay(&mut self, actor: &Actor, name: Option<&str>, text: &str, mails_before: usize) {
        let mut mail = Mail::new(TemplateKind::StaffRelay, Recipient::Requester).with("text", text);
        if let Some(name) = name {
            mail = mail.with("staff_name", name);
        }
        // One mail per staff message: the person's words first, then
        // what their commands changed (`/ask` + text, `/close` + text).
        if let Some(structured) = self.take_requester_mails(mails_before).pop() {
            mail = mail.with("with", structured.template.name());
        }
        self.send(mail);
        self.log(actor.clone(), "reply relayed to the requester");
    }

    /// The command-error mail to the writer; nothing of their message ran.
    fn command_error(&mut self, actor: &Actor, from: &str, errors: &[String]) {
        let error = errors.join("; ");
        self.log(
            actor.clone(),
            format!("command error: {error}; nothing was done or relayed"),
        );
        self.send(
            Mail::new(
                TemplateKind::StaffCommandError,
                Recipient::StaffMember(from.to_owned()),
            )
            .with("error", error),
        );
    }

    /// One short receipt for a staff message whose commands show nothing
    /// to anyone (`/assign me`, `/priority`, `/note`, `/verify`): what was
    /// done, every command of the message included, in one list.
    fn receipt(&mut self, from: &str, done: &[String]) {
        self.send(
            Mail::new(
                TemplateKind::StaffReceipt,
                Recipient::StaffMember(from.to_owned()),
            )
            .with("done", done.join("\n")),
        );
    }

    /// Removes the requester's mails queued since `from` and returns them.
    fn take_requester_mails(&mut self, from: usize) -> Vec<Mail> {
        let later = self.mails.split_off(from);
        let (theirs, others): (Vec<Mail>, Vec<Mail>) = later
            .into_iter()
            .partition(|m| m.to == Recipient::Requester);
        self.mails.extend(others);
        theirs
    }

    /// Runs one command: `Ok` says what was done (for the receipt), `Err`
    /// why it could not run (then the whole message is undone).
    fn command(
        &mut self,
        actor: &Actor,
        from: &str,
        command: &Command,
        lookup: Option<&LookupOutcome>,
    ) -> Result<String, String> {
        let now = self.ctx.now;
        match command {
            Command::Note { text } => {
                self.log(actor.clone(), format!("note: {text}"));
                // Not echoed: the note stays in the case log, not in mail.
                Ok("added your internal note to the case log".into())
            }
            Command::Close { reason } => {
                self.close(now);
                let reason = reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                self.log(actor.clone(), format!("closed{reason}"));
                self.send(Mail::new(TemplateKind::Closed, Recipient::Requester));
                Ok("closed the case; the requester is told".into())
            }
            Command::Resolve => Ok(self.staff_resolve(actor)),
            Command::Verify => self.staff_verify(actor, lookup),
            Command::Ask { fields } => Ok(self.staff_ask(actor, fields)),
            Command::Reopen => Ok(self.staff_reopen(actor)),
            Command::Priority { priority } => {
                self.case.priority = *priority;
                self.log(
                    actor.clone(),
                    format!("priority set to {}", priority.as_str()),
                );
                Ok(format!("set the priority to {}", priority.as_str()))
            }
            Command::AssignMe => {
                self.case.assignee = Some(from.to_owned());
                self.log(actor.clone(), "assigned to themself");
                Ok(format!(
                    "assigned the case to you ({from}): the requester's replies now come to you only"
                ))
            }
        }
    }

    /// `/resolve`: the requester is told; the case closes after a quiet period.
    fn staff_resolve(&mut self, actor: &Actor) -> String {
        let now = self.ctx.now;
        self.case.timers.clear();
        self.case.state = CaseState::Resolved;
        self.case.resolved_at = Some(now);
        self.set_timer(
            TimerKind::ResolvedClose,
            now + self.ctx.policy.resolved_close_after,
        );
        self.log(actor.clone(), "resolved");
        self.send(Mail::new(TemplateKind::Resolved, Recipient::Requester));
        "resolved the case; the requester is told".into()
    }

    /// `/ask <fields>`: exactly those fields are asked for; staff hear the answer.
    fn staff_ask(&mut self, actor: &Actor, fields: &[Field]) -> String {
        self.case.missing = fields.to_vec();
        self.case.state = CaseState::AwaitingInfo;
        self.case.staff_asked = true;
        self.wait_on_requester(self.ctx.now);
        let codes: Vec<&str> = fields.iter().map(|f| f.code()).collect();
        self.log(actor.clone(), format!("asked for {}", codes.join(", ")));
        self.send(Mail::new(TemplateKind::RequestInfo, Recipient::Requester));
        format!(
            "asked the requester for {}; you will hear when they answer",
            codes.join(", ")
        )
    }

    /// `/reopen`: a closed or resolved case goes back to staff.
    fn staff_reopen(&mut self, actor: &Actor) -> String {
        let closed = matches!(self.case.state, CaseState::Closed | CaseState::Resolved);
        if closed {
            self.case.closed_at = None;
            self.case.timers.clear();
            self.queue_for_staff(false);
            self.send(Mail::new(TemplateKind::Reopened, Recipient::Requester));
        }
        self.log(actor.clone(), "reopened");
        if closed {
            "reopened the case; the requester is told".into()
        } else {
            "reopen: the case was open already".into()
        }
    }

    /// `/verify`: a fresh challenge to the linked address, or why not.
    fn staff_verify(
        &mut self,
        actor: &Actor,
        lookup: Option<&LookupOutcome>,
    ) -> Result<String, String> {
        if let Some(lookup) = lookup {
            self.take_lookup(lookup);
        }
        match self.target.clone() {
            Some(Ok(address)) if self.issue_challenge(&address) => {
                self.case.state = CaseState::AwaitingVerification;
                self.send(Mail::new(TemplateKind::ChallengeSent, Recipient::Requester));
                self.wait_on_requester(self.ctx.now);
                self.log(actor.clone(), "challenge issued on staff request");
                Ok(format!(
                    "sent a verification code to the linked address ({}); the requester is told",
                    verify::mask_address(&address)
                ))
            }
            _ => Err("/verify: no challenge could be sent: no linked address, the directory is unavailable, or the daily limit is reached".into()),
        }
    }

    pub(super) fn close(&mut self, now: i64) {
        self.case.state = CaseState::Closed;
        self.case.closed_at = Some(now);
        self.case.timers.clear();
        // Its expiry timer is gone with the others: a challenge must not
        // outlive the case, or a reopened case would wait on it forever.
        self.expire_challenge();
    }

    /// Ends a pending (or pretend) challenge and remembers where it went,
    /// so `advance` can issue a fresh one there without a new lookup.
    pub(super) fn expire_challenge(&mut self) {
        let target = match &self.case.verification {
            Verification::Pending(ch) => Ok(ch.sent_to.clone()),
            Verification::NoTarget { why, .. } => Err(why.clone()),
            _ => return,
        };
        self.case.verification = Verification::Expired { at: self.ctx.now };
        self.case.timers.remove(&TimerKind::ChallengeReminder);
        self.case.timers.remove(&TimerKind::ChallengeExpiry);
        if self.target.is_none() {
            self.target = Some(target);
        }
    }
}
