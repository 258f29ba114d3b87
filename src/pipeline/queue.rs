//! The queue step: the case core's mail, through the rate-limit gate, into
//! outbox rows with their Message-IDs fixed, all in the caller's commit.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use super::gate::{self, Class, Gate, Verdict};
use super::{note_not_sent, unguessable, Handled, Pipeline};
use crate::case::{Actor, Case, Direction, LogEntry, Mail, MessageRef, Recipient, RefKind};
use crate::compose::{Composer, Trigger};
use crate::error::Result;
use crate::store::{Commit, MsgIndex, OutboxItem};
use crate::templates::TemplateKind;

/// What one queue step writes to, besides the case.
pub(super) struct Queueing<'a> {
    /// The commit the rows go into.
    pub(super) commit: &'a mut Commit,
    /// The case log.
    pub(super) log: &'a mut Vec<LogEntry>,
    /// The inbound message's record.
    pub(super) handled: &'a mut Handled,
    /// Facts about the message that caused the mail.
    pub(super) trigger: &'a Trigger,
    /// The time.
    pub(super) now: i64,
    /// False when a staff message caused the mail: no limit applies then.
    pub(super) automatic: bool,
}

impl Queueing<'_> {
    fn note(&mut self, what: String) {
        note_not_sent(self.handled, self.log, self.now, what);
    }
}

impl Pipeline {
    /// Puts each mail through the gate and queues what may go now.
    pub(super) fn queue(
        &self,
        q: &mut Queueing<'_>,
        case: &mut Case,
        mails: &[Mail],
    ) -> Result<()> {
        let templates = self.templates.current();
        let composer = Composer {
            settings: &self.settings,
            templates: &templates,
        };
        let gate = Gate {
            store: &self.store,
            limits: &self.settings.send_limits,
            now: q.now,
        };
        // Counted on the first mail composed: most events send nothing.
        let mut position = None;
        for mail in mails {
            let recipients = composer.recipients(case, &mail.to);
            let Some(address) = recipients.first() else {
                q.log.push(LogEntry {
                    at: q.now,
                    actor: Actor::System,
                    what: format!(
                        "{} not sent: no staff notify address configured",
                        mail.template
                    ),
                });
                continue;
            };
            let class = gate::class(mail, q.automatic);
            let Some(mail) = self.pass_gate(q, &gate, case, mail, address, class)? else {
                continue;
            };
            if matches!(class, Class::Progress | Class::Repeat) {
                for what in gate::supersede(case, &mail, class) {
                    q.log.push(LogEntry {
                        at: q.now,
                        actor: Actor::System,
                        what,
                    });
                }
            }
            self.queue_one(q, case, &composer, &mail, &mut position)?;
        }
        Ok(())
    }

    /// The mail to queue now (a flood turns an alert into its summary), or
    /// `None` when it is held on the case or folded.
    fn pass_gate<'m>(
        &self,
        q: &mut Queueing<'_>,
        gate: &Gate<'_>,
        case: &mut Case,
        mail: &'m Mail,
        address: &str,
        class: Class,
    ) -> Result<Option<Cow<'m, Mail>>> {
        Ok(match gate.check(q.commit, case, mail, address, class)? {
            Verdict::Send => Some(Cow::Borrowed(mail)),
            Verdict::Hold { until, why } => {
                self.metrics
                    .replies_suppressed
                    .fetch_add(1, Ordering::Relaxed);
                let line = gate::hold(case, mail, class, until, &why, q.now);
                q.note(format!("{line} (to {address})"));
                None
            }
            Verdict::Fold { why } => {
                self.metrics.fold_alert(mail.template);
                q.note(why);
                None
            }
            Verdict::Summary { count } => {
                self.metrics.fold_alert(mail.template);
                self.metrics
                    .staff_flood_summaries
                    .fetch_add(1, Ordering::Relaxed);
                let interval = gate.limits.staff_alert_interval.as_secs() / 60;
                let summary = Mail::new(TemplateKind::StaffFlood, Recipient::Staff)
                    .with("flood_kind", mail.template.name())
                    .with("flood_count", count.to_string())
                    .with("interval_minutes", interval.to_string())
                    .with(
                        "reason",
                        mail.extra.get("reason").cloned().unwrap_or_default(),
                    );
                q.log.push(LogEntry {
                    at: q.now,
                    actor: Actor::System,
                    what: format!(
                        "{} alert sent as a flood summary ({count} of this kind in {interval} min)",
                        mail.template
                    ),
                });
                Some(Cow::Owned(summary))
            }
        })
    }

    /// Composes one mail and adds its outbox row, Message-ID and thread entry.
    fn queue_one(
        &self,
        q: &mut Queueing<'_>,
        case: &mut Case,
        composer: &Composer<'_>,
        mail: &Mail,
        position: &mut Option<usize>,
    ) -> Result<()> {
        let now = q.now;
        // The random part keeps our Message-IDs unguessable: naming one in
        // References joins a case (threading rule 2), and the case id is
        // in every subject. Mail to a second requester names no case.
        let domain = self.settings.support_address.domain();
        let message_id = match mail.to {
            Recipient::Other(_) => format!("{}.{}@{domain}", self.store.next_id()?, unguessable()),
            _ => format!(
                "{}.{}.{}@{domain}",
                case.id.as_str().to_ascii_lowercase(),
                self.store.next_id()?,
                unguessable(),
            ),
        };
        let position = match *position {
            Some(p) => p,
            None => *position.insert(self.store.queue_position(case)?),
        };
        let composed = match composer.compose(case, mail, &message_id, position, now, q.trigger) {
            Ok(c) => c,
            Err(e) => {
                // A broken template must not lose the inbound message: log and go on.
                tracing::error!(case_id = %case.id, error.message = %e, "template failure");
                q.note(format!("{} could not be composed: {e}", mail.template));
                return Ok(());
            }
        };
        let seq = self.store.next_id()?;
        case.messages.push(MessageRef {
            message_id: message_id.clone(),
            direction: Direction::Out,
            from: composed.envelope_from.clone(),
            to: composed.to.clone(),
            subject: composed.subject.clone(),
            date: now,
            kind: RefKind::Sent(mail.template),
            role: mail.role,
        });
        // A reply to a neutral note names it; it must not thread into the
        // case as if the second requester were the first.
        if !matches!(mail.to, Recipient::Other(_)) {
            q.commit.msgids.push((
                message_id.clone(),
                MsgIndex {
                    case_id: case.id.clone(),
                    role: mail.role,
                    direction: Direction::Out,
                },
            ));
        }
        q.commit.outbox.push((
            OutboxItem {
                seq,
                case_id: case.id.clone(),
                message_id,
                template: mail.template,
                envelope_from: composed.envelope_from,
                to: composed.to,
                subject: composed.subject,
                queued_at: now,
                sent_at: None,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                failed: false,
            },
            composed.bytes,
        ));
        q.handled.queued.push(mail.template);
        Ok(())
    }
}
