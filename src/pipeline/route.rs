//! Which case and event a message is: one step per kind of message, tried
//! in order (machine mail, staff, outsiders on a case's thread, the owner
//! of the linked address, the requester). Each step either decides or
//! passes the message on; none writes anything.

use super::{reply_target, Handled, Pipeline, Target};
use crate::authres::StaffTrust;
use crate::case::{self, Case, Event, OwnerAnswerKind, RequesterMessage, Verification};
use crate::classify::{self, Bounce, MessageKind};
use crate::compose::Trigger;
use crate::error::{Error, Result};
use crate::reading::Reading;
use crate::request::Claim;
use crate::source::Fetched;
use crate::thread::{CaseMatch, Role};
use crate::{staff_cmd, verify};

/// What one routing step found.
enum Routed {
    /// It decided: this target, or `None` to record the message only
    /// (boxed: a target holds a whole case).
    Done(Option<Box<Target>>),
    /// Not this kind of message: the next step decides.
    Next,
}

impl Pipeline {
    /// Decides which case and event a message is. `None` means: record only.
    pub(super) async fn event_for(
        &self,
        reading: &Reading,
        fetched: &Fetched,
        classification: &classify::Classification,
        matched: &CaseMatch,
        now: i64,
        handled: &mut Handled,
    ) -> Result<Option<Target>> {
        let trigger = Trigger {
            excerpt: Some(reading.excerpt.clone()),
            trust: self.trust(&reading.inbound),
            attachments: Vec::new(),
        };
        let reason = classification.reason.as_str();
        if let MessageKind::Bounce(bounce) = &classification.kind {
            return self.bounce_event(bounce, reason, matched, trigger, handled);
        }
        if classification.kind.is_machine() {
            handled
                .notes
                .push(format!("machine mail, not answered: {reason}"));
            let event = Event::Machine {
                kind: classification.kind.code().into(),
                reason: reason.into(),
            };
            return matched
                .case()
                .map(|c| self.target(c, event, trigger))
                .transpose();
        }
        let Some(from) = reply_target(&reading.inbound) else {
            handled
                .notes
                .push("no usable From or Reply-To address: kept, not answered".into());
            return Ok(None);
        };
        if let Routed::Done(target) = self
            .staff_event(reading, matched, &trigger, handled)
            .await?
        {
            return Ok(target.map(|t| *t));
        }
        if let Routed::Done(target) = self.outsider_event(matched, &from, &trigger, handled)? {
            return Ok(target.map(|t| *t));
        }
        if matched.role() == Role::Challenge {
            return self.owner_event(reading, matched, from, trigger).map(Some);
        }
        let message = self.requester_message(reading, fetched, matched, from);
        self.requester_event(message, matched, now, trigger).await
    }

    /// A delivery report: a delay is only noted; a failure goes to the case
    /// of the mail that bounced.
    fn bounce_event(
        &self,
        bounce: &Bounce,
        reason: &str,
        matched: &CaseMatch,
        trigger: Trigger,
        handled: &mut Handled,
    ) -> Result<Option<Target>> {
        if !bounce.is_permanent_failure() {
            // A delay warning: the MTA is still trying; nothing failed yet.
            handled
                .notes
                .push(format!("delivery delayed, not failed: {reason}"));
            return Ok(None);
        }
        let Some(case) = self.case_of_bounce(bounce, matched)? else {
            handled
                .notes
                .push(format!("bounce not matched to a case ({reason})"));
            return Ok(None);
        };
        let event = Event::DeliveryFailed {
            bounce: bounce.clone(),
        };
        Ok(Some(self.target(&case, event, trigger)?))
    }

    /// Mail from a staff address: trusted staff act on the case they name;
    /// a forged staff From on a case is reported, elsewhere it is an outsider.
    async fn staff_event(
        &self,
        reading: &Reading,
        matched: &CaseMatch,
        trigger: &Trigger,
        handled: &mut Handled,
    ) -> Result<Routed> {
        let inbound = &reading.inbound;
        match reading.staff.clone() {
            StaffTrust::Staff { address } => {
                let Some(case_id) = matched.case().cloned() else {
                    handled
                        .notes
                        .push("staff mail that names no case: recorded".into());
                    return Ok(Routed::Done(None));
                };
                let case = self.load(&case_id)?;
                let message = staff_cmd::parse(&reading.redacted.text);
                let direct = inbound
                    .to
                    .iter()
                    .any(|m| case.requesters().any(|r| r == m.address.as_str()));
                let wants_lookup = message
                    .commands
                    .iter()
                    .any(|c| matches!(c, staff_cmd::Command::Verify));
                let lookup = if wants_lookup {
                    self.lookup(&case.fields, &case.requester).await
                } else {
                    None
                };
                let event = Event::Staff {
                    from: address,
                    name: inbound.from.as_ref().and_then(|m| m.name.clone()),
                    message,
                    direct,
                    lookup,
                };
                Ok(Routed::Done(Some(Box::new(Target {
                    previous: Some(case.clone()),
                    case,
                    event,
                    trigger: trigger.clone(),
                }))))
            }
            StaffTrust::Forged { address, why } => {
                if let Some(case_id) = matched.case() {
                    let event = Event::ForgedStaff { from: address, why };
                    let target = self.target(case_id, event, trigger.clone())?;
                    return Ok(Routed::Done(Some(Box::new(target))));
                }
                handled.notes.push(format!(
                    "unauthenticated mail from a staff address ({why}): treated as an outsider"
                ));
                Ok(Routed::Next)
            }
            StaffTrust::NotStaff => Ok(Routed::Next),
        }
    }

    /// Someone who is not the case's requester, on its thread: a stranger
    /// using the subject tag is held; a second requester gets a neutral note.
    fn outsider_event(
        &self,
        matched: &CaseMatch,
        from: &str,
        trigger: &Trigger,
        handled: &mut Handled,
    ) -> Result<Routed> {
        if let CaseMatch::UnverifiedTag { case } = matched {
            handled
                .notes
                .push("subject tag from a non-participant: held on the case, not merged".into());
            let event = Event::UnverifiedTag { from: from.into() };
            let target = self.target(case, event, trigger.clone())?;
            return Ok(Routed::Done(Some(Box::new(target))));
        }
        if let CaseMatch::OpenCaseOfSender { case } = matched {
            // A secondary requester writing again as if new: still neutral,
            // never a "duplicate" note (which goes to the first requester).
            if !self.load(case)?.requester.eq_ignore_ascii_case(from) {
                handled
                    .notes
                    .push("a second requester of an open case wrote again: neutral reply".into());
                let event = Event::SecondRequester { from: from.into() };
                let target = self.target(case, event, trigger.clone())?;
                return Ok(Routed::Done(Some(Box::new(target))));
            }
        }
        Ok(Routed::Next)
    }

    /// A reply on the challenge thread: the linked address's owner answers.
    fn owner_event(
        &self,
        reading: &Reading,
        matched: &CaseMatch,
        from: String,
        trigger: Trigger,
    ) -> Result<Target> {
        let case_id = matched
            .case()
            .cloned()
            .ok_or_else(|| Error::Permanent("challenge match without case".into()))?;
        let answer = match verify::owner_answer(&reading.own_text_raw) {
            verify::OwnerAnswer::Confirmed => OwnerAnswerKind::Confirmed,
            verify::OwnerAnswer::Denied => OwnerAnswerKind::Denied,
            verify::OwnerAnswer::Unclear => OwnerAnswerKind::Unclear,
        };
        let event = Event::Owner {
            from,
            answer,
            codes: reading.new_codes.clone(),
        };
        self.target(&case_id, event, trigger)
    }

    /// What the requester's message says, as the case core needs it.
    fn requester_message(
        &self,
        reading: &Reading,
        fetched: &Fetched,
        matched: &CaseMatch,
        from: String,
    ) -> RequesterMessage {
        let inbound = &reading.inbound;
        RequesterMessage {
            from,
            fields: reading.fields.clone(),
            quoted_codes: reading.quoted_codes.clone(),
            codes: reading.new_codes.clone(),
            secrets: reading.secrets_found(),
            language: reading.language.clone(),
            opens_case: false,
            duplicate: matches!(matched, CaseMatch::OpenCaseOfSender { .. }),
            lookup: None,
            oversize: fetched.oversize,
            malformed: !inbound.warnings.is_empty() && inbound.from.is_none(),
            short_answer: case::short_answer(&reading.redacted.text),
            thread: matched.strength(),
        }
    }

    /// The requester's message: on their case (reopened if allowed), as a
    /// second requester of the account's open case, or on a new case; the
    /// directory is asked when the case still needs an address to challenge.
    async fn requester_event(
        &self,
        mut message: RequesterMessage,
        matched: &CaseMatch,
        now: i64,
        trigger: Trigger,
    ) -> Result<Option<Target>> {
        let existing = match matched.case() {
            Some(id) => Some(self.load(id)?).filter(|c| c.accepts_reopen(now, &self.policy)),
            None => None,
        };
        let (case, previous) = match existing {
            Some(case) => (case.clone(), Some(case)),
            None => {
                if let Some(other) = self.open_case_of_account(&message.fields)? {
                    let event = Event::SecondRequester { from: message.from };
                    return Ok(Some(self.target(&other, event, trigger)?));
                }
                let mut case = Case::new(self.new_case_id()?, &message.from, now);
                case.continues = matched.case().cloned();
                case.earlier_cases =
                    self.earlier_cases(&message.from, message.fields.username.as_deref())?;
                message.opens_case = true;
                message.duplicate = false;
                (case, None)
            }
        };
        let mut merged = case.fields.clone();
        merged.merge(&message.fields_for(&case.fields));
        let needs_lookup = matches!(
            case.verification,
            Verification::NotStarted
                | Verification::LookupPending { .. }
                | Verification::Expired { .. }
        ) && merged.claims_email_access != Claim::No;
        if needs_lookup {
            message.lookup = self.lookup(&merged, &case.requester).await;
        }
        Ok(Some(Target {
            case,
            previous,
            event: Event::Requester(message),
            trigger,
        }))
    }
}
