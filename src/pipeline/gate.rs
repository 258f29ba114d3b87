//! The gate between the case core's mail and the outbox: which mail goes
//! out now, which waits on the case, and which staff alert folds.
//!
//! Loops and floods are what the limits are for, not conversations
//! (ARCHITECTURE.md, "Never answer a machine"): so only the mail a loop can
//! repeat obeys the ordinary per-address and per-case caps; progress mail
//! has a looser per-case cap of its own, and mail over a cap is held on the
//! case, merged per recipient, and sent when the window allows, never
//! dropped. Staff alerts fold instead: one per kind per case per interval,
//! and a flood of one kind across cases becomes one summary per interval.
//!
//! The histories live in the store's rate-limit tree under these keys:
//! `<address>` and `case:<id>` (every automatic mail to a person),
//! `progress:<id>`, `alert:<id>:<kind>`, `alerts:<kind>` (every alert of a
//! kind, sent or folded into a flood) and `summary:<kind>`.

use crate::case::{Case, HeldMail, Mail, Recipient, TimerKind};
use crate::config::SendLimits;
use crate::error::Result;
use crate::ratelimit::{self, RateLimits};
use crate::store::{Commit, Store};
use crate::templates::TemplateKind;

/// How the limits treat one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// A reply a loop can repeat without the case moving.
    Repeat,
    /// An answer with news or a change of the case's state.
    Progress,
    /// Challenge mail to the linked address: counted, never held.
    Challenge,
    /// An automatic alert to the staff notify list.
    Alert,
    /// Written by or for a staff member: no limit applies.
    Exempt,
}

/// The class of `mail`; `automatic` is false for mail a staff message caused.
pub(crate) fn class(mail: &Mail, automatic: bool) -> Class {
    if !automatic {
        return Class::Exempt;
    }
    match &mail.to {
        // An automatic notice to the assignee folds like one to the list.
        Recipient::Staff | Recipient::StaffMember(_) => return Class::Alert,
        // A receipt answers the linked mailbox's own reply: capped like a
        // repeat (per address and case), and never counted against the
        // requester's progress mail, which it would otherwise delay.
        Recipient::Linked(_) if mail.template == TemplateKind::OwnerReceipt => {
            return Class::Repeat
        }
        Recipient::Linked(_) => return Class::Challenge,
        Recipient::Requester | Recipient::Other(_) => {}
    }
    match mail.template {
        TemplateKind::Duplicate
        | TemplateKind::StatusReply
        | TemplateKind::Neutral
        | TemplateKind::TooLarge => Class::Repeat,
        _ => Class::Progress,
    }
}

/// What to do with one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Queue it now.
    Send,
    /// Keep it on the case until `until`.
    Hold {
        /// When the window that blocked it allows one more.
        until: i64,
        /// Which limit, for the log.
        why: String,
    },
    /// A staff alert not mailed on its own (logged and counted).
    Fold {
        /// Why, for the log.
        why: String,
    },
    /// A staff alert that becomes the summary of a flood of its kind.
    Summary {
        /// Alerts of the kind in the interval, this one included.
        count: usize,
    },
}

/// The limits and the histories, for one commit.
pub(crate) struct Gate<'a> {
    /// Where the histories are kept.
    pub(crate) store: &'a Store,
    /// The limits.
    pub(crate) limits: &'a SendLimits,
    /// The time.
    pub(crate) now: i64,
}

impl Gate<'_> {
    /// Decides what happens to `mail` (to `address`) and records it in the
    /// histories of `commit` when it goes out or counts towards a flood.
    pub(crate) fn check(
        &self,
        commit: &mut Commit,
        case: &Case,
        mail: &Mail,
        address: &str,
        class: Class,
    ) -> Result<Verdict> {
        let address = address.to_lowercase();
        let case_key = format!("case:{}", case.id);
        let progress_key = format!("progress:{}", case.id);
        let caps: Vec<(&str, &RateLimits)> = match class {
            Class::Exempt => return Ok(Verdict::Send),
            Class::Alert => return self.alert(commit, case, mail.template),
            Class::Challenge => Vec::new(),
            Class::Progress => vec![(&progress_key, &self.limits.progress)],
            Class::Repeat => vec![
                (&address, &self.limits.per_address),
                (&case_key, &self.limits.per_case),
            ],
        };
        for (key, limits) in caps {
            if let Err(held) = ratelimit::check(&self.history(commit, key)?, self.now, limits) {
                return Ok(Verdict::Hold {
                    until: held.retry_at,
                    why: held.reason,
                });
            }
        }
        let mut counted = vec![address, case_key];
        if class != Class::Repeat {
            counted.push(progress_key);
        }
        for key in counted {
            self.push(commit, &key)?;
        }
        Ok(Verdict::Send)
    }

    fn alert(&self, commit: &mut Commit, case: &Case, template: TemplateKind) -> Result<Verdict> {
        let interval = self.limits.staff_alert_interval.as_secs() as i64;
        let case_key = format!("alert:{}:{template}", case.id);
        if let Some(last) = self.recent(commit, &case_key, interval)?.last() {
            return Ok(Verdict::Fold {
                why: format!(
                    "{template} alert folded: one went to staff for this case {} min ago",
                    (self.now - last) / 60
                ),
            });
        }
        let kind_key = format!("alerts:{template}");
        let count = self.recent(commit, &kind_key, interval)?.len() + 1;
        self.push(commit, &kind_key)?;
        if count <= self.limits.staff_flood_threshold as usize {
            self.push(commit, &case_key)?;
            return Ok(Verdict::Send);
        }
        let summary_key = format!("summary:{template}");
        if self.recent(commit, &summary_key, interval)?.is_empty() {
            self.push(commit, &summary_key)?;
            self.push(commit, &case_key)?;
            return Ok(Verdict::Summary { count });
        }
        Ok(Verdict::Fold {
            why: format!(
                "{template} alert folded into the flood summary ({count} of this kind in the interval)"
            ),
        })
    }

    /// The entries of a history less than `window` seconds old, oldest first.
    fn recent(&self, commit: &Commit, key: &str, window: i64) -> Result<Vec<i64>> {
        let mut recent: Vec<i64> = self
            .history(commit, key)?
            .into_iter()
            .filter(|&t| self.now.saturating_sub(t) < window)
            .collect();
        recent.sort_unstable();
        Ok(recent)
    }

    /// A history as this commit will leave it (pruned to the last day).
    fn history(&self, commit: &Commit, key: &str) -> Result<Vec<i64>> {
        let history = match commit.ratelimits.iter().find(|(k, _)| k == key) {
            Some((_, h)) => h.clone(),
            None => self.store.ratelimit(key)?,
        };
        Ok(ratelimit::prune(&history, self.now))
    }

    fn push(&self, commit: &mut Commit, key: &str) -> Result<()> {
        let mut history = self.history(commit, key)?;
        history.push(self.now);
        commit.ratelimits.retain(|(k, _)| k != key);
        commit.ratelimits.push((key.to_owned(), history));
        Ok(())
    }
}

/// Keeps `mail` on the case, merged with what is already held for the same
/// recipient: the more important one stays (progress over a repeat; the
/// newer on a tie), the other is named in `merged`. Returns the log line.
pub(crate) fn hold(
    case: &mut Case,
    mail: &Mail,
    class: Class,
    until: i64,
    why: &str,
    now: i64,
) -> String {
    let entry = HeldMail {
        mail: mail.clone(),
        since: now,
        until,
        why: why.to_owned(),
        merged: Vec::new(),
    };
    let line = match case.held.iter_mut().find(|h| h.mail.to == mail.to) {
        None => {
            case.held.push(entry);
            format!(
                "{} held back by the rate limit ({why}); it goes out when the limit allows, merged with any later news",
                mail.template
            )
        }
        Some(old) if class >= class_of_held(old) => {
            let mut merged = std::mem::take(&mut old.merged);
            merged.push(old.mail.template);
            let since = old.since;
            *old = HeldMail {
                since,
                merged,
                ..entry
            };
            format!(
                "{} held back by the rate limit ({why}); it replaces the held {}",
                mail.template,
                old.merged.last().map(|kind| kind.name()).unwrap_or("")
            )
        }
        Some(old) => {
            old.merged.push(mail.template);
            format!(
                "{} merged into the held {} ({why})",
                mail.template, old.mail.template
            )
        }
    };
    schedule(case);
    line
}

/// Drops held mail that a mail now going out to the same recipient makes
/// stale (it tells the case as it stands now); returns the log lines.
pub(crate) fn supersede(case: &mut Case, sent: &Mail, class: Class) -> Vec<String> {
    let mut lines = Vec::new();
    case.held.retain(|h| {
        let stale = h.mail.to == sent.to && class_of_held(h) <= class;
        if stale {
            lines.push(format!(
                "the held {} is replaced by the {} sent now",
                h.mail.template, sent.template
            ));
        }
        !stale
    });
    schedule(case);
    lines
}

fn class_of_held(held: &HeldMail) -> Class {
    class(&held.mail, true)
}

/// The held-mail timer fires when the first held mail may go.
fn schedule(case: &mut Case) {
    match case.held.iter().map(|h| h.until).min() {
        Some(due) => {
            case.timers.insert(TimerKind::HeldMail, due);
        }
        None => {
            case.timers.remove(&TimerKind::HeldMail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(template: &str) -> Mail {
        let kind = TemplateKind::from_name(template).expect("a template name");
        Mail::new(kind, Recipient::Requester)
    }

    #[test]
    fn classes_follow_what_a_loop_can_repeat() {
        assert_eq!(class(&mail("duplicate"), true), Class::Repeat);
        assert_eq!(class(&mail("status_reply"), true), Class::Repeat);
        assert_eq!(class(&mail("verified"), true), Class::Progress);
        assert_eq!(class(&mail("challenge_sent"), true), Class::Progress);
        assert_eq!(class(&mail("verified"), false), Class::Exempt);
        let staff = Mail::new(TemplateKind::StaffForged, Recipient::Staff);
        assert_eq!(class(&staff, true), Class::Alert);
        let linked = Mail::new(
            TemplateKind::Challenge,
            Recipient::Linked("a@b.example".into()),
        );
        assert_eq!(class(&linked, true), Class::Challenge);
        let receipt = Mail::new(
            TemplateKind::OwnerReceipt,
            Recipient::Linked("a@b.example".into()),
        );
        assert_eq!(class(&receipt, true), Class::Repeat);
    }

    #[test]
    fn holding_keeps_one_mail_per_recipient_and_progress_wins() {
        let mut case = Case::new(
            crate::domain::CaseId::parse("RD-ABCDEF").unwrap(),
            "jo@x.example",
            0,
        );
        hold(
            &mut case,
            &mail("duplicate"),
            Class::Repeat,
            100,
            "full",
            10,
        );
        hold(
            &mut case,
            &mail("verified"),
            Class::Progress,
            200,
            "full",
            20,
        );
        hold(
            &mut case,
            &mail("status_reply"),
            Class::Repeat,
            300,
            "full",
            30,
        );
        assert_eq!(case.held.len(), 1);
        let held = &case.held[0];
        assert_eq!(held.mail.template, TemplateKind::Verified);
        assert_eq!(held.since, 10);
        assert_eq!(
            held.merged,
            vec![TemplateKind::Duplicate, TemplateKind::StatusReply]
        );
        assert_eq!(case.timers.get(&TimerKind::HeldMail), Some(&200));

        // A repeat sent now does not make held progress stale; progress does.
        assert!(supersede(&mut case, &mail("duplicate"), Class::Repeat).is_empty());
        assert_eq!(
            supersede(&mut case, &mail("challenge_sent"), Class::Progress).len(),
            1
        );
        assert!(case.held.is_empty());
        assert!(!case.timers.contains_key(&TimerKind::HeldMail));
    }
}
