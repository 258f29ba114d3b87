//! Due timers, quiet hours, and the no-burst rule after downtime: a pass
//! over a case's due timers sends the requester at most one message, the
//! one that fits the case's state now.

use chrono::{Datelike, NaiveTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;

use crate::case::apply::Step;
use crate::case::{Actor, CaseState, LookupOutcome, Mail, Recipient, TimerKind, Verification};
use crate::templates::TemplateKind;
use crate::verify;

/// Times when reminders and status notes wait (in the operator's zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    /// The operator's time zone.
    pub timezone: Tz,
    /// No follow-ups on Saturday and Sunday.
    pub weekends: bool,
    /// Quiet from this local time ...
    pub start: Option<NaiveTime>,
    /// ... until this local time (may wrap past midnight).
    pub end: Option<NaiveTime>,
}

impl QuietHours {
    fn is_quiet(&self, unix: i64) -> bool {
        let Some(local) = self.timezone.timestamp_opt(unix, 0).single() else {
            return false;
        };
        if self.weekends && matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
            return true;
        }
        match (self.start, self.end) {
            (Some(start), Some(end)) => {
                let t = local.time();
                if start <= end {
                    t >= start && t < end
                } else {
                    t >= start || t < end
                }
            }
            _ => false,
        }
    }
}

/// The first moment at or after `unix` outside quiet hours (searched in
/// 15-minute steps for at most 8 days; a config that is always quiet
/// falls back to `unix`).
pub fn next_allowed(quiet: Option<&QuietHours>, unix: i64) -> i64 {
    let Some(quiet) = quiet else {
        return unix;
    };
    let step = 15 * 60;
    let mut t = unix;
    for _ in 0..(8 * 24 * 4) {
        if !quiet.is_quiet(t) {
            return t;
        }
        // Align to the next quarter hour so the answer is stable.
        let local_secs = i64::from(
            quiet
                .timezone
                .timestamp_opt(t, 0)
                .single()
                .map(|d| d.minute() * 60 + d.second())
                .unwrap_or(0)
                % 900,
        );
        t += step - local_secs;
    }
    unix
}

impl Step<'_> {
    /// Handles every timer of this case that is due, oldest first.
    pub(super) fn timers(&mut self, kinds: &[TimerKind], lookup: Option<&LookupOutcome>) {
        let now = self.ctx.now;
        let mut due: Vec<(i64, TimerKind)> = kinds
            .iter()
            .filter_map(|k| self.case.timers.get(k).map(|d| (*d, *k)))
            .filter(|(d, _)| *d <= now)
            .collect();
        due.sort();
        for (at, kind) in due {
            if !self.case.timers.contains_key(&kind) {
                continue; // an earlier timer of this pass cleared it
            }
            self.case.timers.remove(&kind);
            let quiet = self.ctx.policy.quiet_hours.as_ref();
            if kind.respects_quiet_hours() && next_allowed(quiet, now) != now {
                let later = next_allowed(quiet, now);
                // After downtime a reminder whose close moment has passed
                // waits as the close, so it is not sent stale afterwards.
                let waiting = matches!(
                    self.case.state,
                    CaseState::AwaitingInfo | CaseState::AwaitingVerification
                );
                let kind = if kind == TimerKind::Reminder
                    && waiting
                    && now >= at + self.ctx.policy.close_after
                {
                    TimerKind::CloseInactive
                } else {
                    kind
                };
                self.set_timer(kind, later);
                self.log(
                    Actor::System,
                    format!("{} postponed by quiet hours", kind.as_str()),
                );
                continue;
            }
            self.fire(kind, at, lookup);
        }
        self.keep_one_per_recipient();
    }

    fn fire(&mut self, kind: TimerKind, due_at: i64, lookup: Option<&LookupOutcome>) {
        let (now, policy) = (self.ctx.now, self.ctx.policy);
        let waiting_on_requester = matches!(
            self.case.state,
            CaseState::AwaitingInfo | CaseState::AwaitingVerification
        );
        match kind {
            TimerKind::Reminder if waiting_on_requester => {
                if now >= due_at + policy.close_after {
                    // Long downtime: the reminder's moment has passed; only the close fits now.
                    self.close_inactive();
                } else {
                    self.case.reminders_sent += 1;
                    self.send(Mail::new(TemplateKind::Reminder, Recipient::Requester));
                    self.set_timer(TimerKind::CloseInactive, now + policy.close_after);
                    self.log(Actor::System, "reminder sent to the requester");
                }
            }
            TimerKind::CloseInactive if waiting_on_requester => self.close_inactive(),
            TimerKind::ChallengeReminder => self.challenge_reminder(),
            TimerKind::ChallengeExpiry => match &self.case.verification {
                Verification::Pending(_) | Verification::NoTarget { .. } => {
                    self.case.verification = Verification::Expired { at: now };
                    self.case.timers.remove(&TimerKind::ChallengeReminder);
                    self.log(Actor::System, "the challenge expired unanswered");
                }
                _ => {}
            },
            TimerKind::WaitingPeriodEnd if self.case.state == CaseState::WaitingPeriod => {
                self.log(Actor::System, "waiting period over: ready for staff");
                self.notify(
                    TemplateKind::StaffVerified,
                    "the waiting period is over with no objection: ready for review",
                );
                self.queue_for_staff(false);
            }
            TimerKind::StaffStatus if self.case.state == CaseState::AwaitingStaff => {
                if self.case.status_notes_sent < policy.status_cap {
                    self.case.status_notes_sent += 1;
                    self.send(Mail::new(TemplateKind::StatusNote, Recipient::Requester));
                    self.notify(
                        TemplateKind::StaffStale,
                        "no staff action on this case for a while",
                    );
                    self.log(Actor::System, "status note sent; staff nudged");
                    self.set_timer(TimerKind::StaffStatus, now + policy.status_repeat);
                } else {
                    self.log(Actor::System, "status note cap reached");
                }
            }
            TimerKind::ResolvedClose if self.case.state == CaseState::Resolved => {
                self.close(now);
                self.log(Actor::System, "closed after the resolved case stayed quiet");
            }
            TimerKind::DirectoryRetry => {
                if let Some(lookup) = lookup {
                    self.take_lookup(lookup);
                    if !matches!(self.case.verification, Verification::LookupPending { .. })
                        && self.case.missing.is_empty()
                    {
                        self.advance(false);
                    }
                }
            }
            TimerKind::HeldMail => self.release_held(),
            _ => self.log(
                Actor::System,
                format!("{} no longer applies: skipped", kind.as_str()),
            ),
        }
    }

    /// Hands the mail the rate limit held back to the caller again, which
    /// sends it (composed from the case as it stands now) or holds it anew.
    fn release_held(&mut self) {
        for held in std::mem::take(&mut self.case.held) {
            let merged = if held.merged.is_empty() {
                String::new()
            } else {
                format!(
                    " (in place of {})",
                    held.merged
                        .iter()
                        .map(|kind| kind.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.log(
                Actor::System,
                format!("held {} released{merged}", held.mail.template),
            );
            self.send(held.mail);
        }
    }

    fn close_inactive(&mut self) {
        let now = self.ctx.now;
        self.close(now);
        self.send(Mail::new(TemplateKind::CloseNotice, Recipient::Requester));
        self.log(Actor::System, "closed for inactivity; a reply reopens it");
    }

    fn challenge_reminder(&mut self) {
        let now = self.ctx.now;
        let key = self.ctx.key;
        let case_id = self.case.id.as_str().to_owned();
        let code = self.ctx.fresh_code.clone();
        if let Verification::Pending(ch) = &mut self.case.verification {
            if ch.reminded || now >= ch.expires_at {
                return;
            }
            // A fresh code: the first one is never stored, so it cannot be repeated.
            ch.code_mac = verify::code_mac(key, &case_id, &code);
            ch.reminded = true;
            let to = ch.sent_to.clone();
            let mut mail = Mail::new(
                TemplateKind::ChallengeReminder,
                Recipient::Linked(to.clone()),
            );
            mail.role = crate::thread::Role::Challenge;
            mail.code = Some(code);
            self.send(mail);
            self.log(
                Actor::System,
                format!("challenge reminder sent to {}", verify::mask_address(&to)),
            );
        }
    }

    /// After a long outage several timers can be due at once: keep only the
    /// last message per recipient so nobody gets a burst.
    fn keep_one_per_recipient(&mut self) {
        let mut seen: Vec<Recipient> = Vec::new();
        let mut kept: Vec<Mail> = Vec::new();
        for mail in self.mails.drain(..).rev() {
            if seen.contains(&mail.to) {
                continue;
            }
            seen.push(mail.to.clone());
            kept.push(mail);
        }
        kept.reverse();
        self.mails = kept;
    }
}
