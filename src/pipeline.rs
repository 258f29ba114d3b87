//! One inbound message, end to end: parse → classify → thread → read →
//! (look the account up) → case core → compose → one store transaction.
//! Also the timer pass and delivery failures, which end the same way.
//!
//! The pipeline never sends and never marks the source: it commits; the
//! worker flushes, marks and lets the outbox send. The only I/O here is
//! the store and the account directory.

use std::sync::Arc;

// ThreadRng is a CSPRNG (ChaCha, reseeded from the OS): codes and ids come
// from it without a system call per character.
use rand::thread_rng;

use crate::authres;
use crate::case::{
    self, Actor, Case, Ctx, Direction, EarlierCase, Event, LogEntry, LookupOutcome, MessageRef,
    Policy, RefKind, Shared, StoredAttachment,
};
use crate::classify::{self, Bounce, MessageKind};
use crate::compose::Trigger;
use crate::config::Settings;
use crate::directory::{Directory, Lookup};
use crate::domain::{CaseId, HandledKind};
use crate::error::{Error, Result};
use crate::parse::Inbound;
use crate::reading::{self, Reading};
use crate::request;
use crate::signature::{SignatureChecker, SignatureVerdict};
use crate::source::Fetched;
use crate::store::{Commit, InboundRecord, MsgIndex, Store};
use crate::templates::{SharedTemplates, TemplateKind};
use crate::thread::{self, CaseMatch, Role};
use crate::{secrets, verify};

mod gate;
mod queue;
mod route;

use queue::Queueing;

/// What happened to one inbound message (for logs, replay and metrics).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Handled {
    /// Message-ID.
    pub message_id: String,
    /// What it was.
    pub kind: HandledKind,
    /// The case it went to.
    pub case_id: Option<CaseId>,
    /// How it was threaded.
    pub via: String,
    /// Templates queued for sending.
    pub queued: Vec<TemplateKind>,
    /// Notes (why not answered, warnings).
    pub notes: Vec<String>,
    /// True when the message had been handled before (a repeat).
    pub repeat: bool,
}

impl Handled {
    /// A record for work no inbound message caused (timers, the outbox).
    fn internal(kind: HandledKind, via: &str) -> Self {
        Handled {
            message_id: String::new(),
            kind,
            case_id: None,
            via: via.into(),
            queued: Vec::new(),
            notes: Vec::new(),
            repeat: false,
        }
    }
}

/// The pipeline's shared parts.
#[derive(Clone)]
pub struct Pipeline {
    /// Resolved settings.
    pub settings: Arc<Settings>,
    /// The store.
    pub store: Store,
    /// The template set (hot-reloadable).
    pub templates: SharedTemplates,
    /// The account directory.
    pub directory: Arc<dyn Directory>,
    /// The rules in seconds.
    pub policy: Arc<Policy>,
    /// In-process counters for the metrics endpoint.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The DKIM checker, under `staff.verify = "dkim"` only.
    pub signatures: Option<Arc<SignatureChecker>>,
}

impl Pipeline {
    fn key(&self) -> &[u8] {
        self.settings.secret_key.expose().as_bytes()
    }

    fn ctx(&self, now: i64) -> Ctx<'_> {
        Ctx {
            now,
            policy: &self.policy,
            key: self.key(),
            previous_keys: self.settings.previous_keys_at(now),
            fresh_code: verify::generate_code(&mut thread_rng()),
        }
    }

    /// Starts reading a batch on every core (see [`reading::ReadAhead`]).
    pub fn read_ahead(&self, batch: Arc<Vec<Fetched>>) -> reading::ReadAhead {
        reading::ReadAhead::start(batch, self.settings.clone(), reading::default_threads())
    }

    /// Under `staff.verify = "dkim"`, replaces the reading's staff verdict
    /// with one from the message's own signatures (DNS: done here, at the
    /// edge, so that reading stays pure). Only mail from a staff address
    /// costs lookups.
    async fn check_signature(&self, fetched: &Fetched, reading: &mut Reading) {
        let Some(checker) = &self.signatures else {
            return;
        };
        let Some(from) = reading.inbound.from_address() else {
            return;
        };
        if !self.settings.staff.is_staff_address(from.as_str()) {
            return;
        }
        let domain = from.domain().to_ascii_lowercase();
        let verdict = checker.check(&fetched.raw, &domain).await;
        if let SignatureVerdict::DnsFailure { why } = &verdict {
            tracing::warn!(from = %from, "DKIM check of staff mail failed on DNS: {why}");
        }
        reading.staff = authres::staff_trust_by_signature(
            &reading.inbound,
            &self.settings.staff,
            Some(&verdict),
        );
    }

    /// Handles one message already read and commits everything it causes.
    pub async fn ingest_read(
        &self,
        fetched: &Fetched,
        mut reading: Reading,
        now: i64,
    ) -> Result<Handled> {
        self.check_signature(fetched, &mut reading).await;
        let inbound = &reading.inbound;
        let cursor = fetched
            .cursor
            .as_ref()
            .map(|c| (c.key.clone(), c.value.clone()));
        let mut handled = Handled {
            message_id: inbound.message_id.clone(),
            kind: reading.classification.kind.handled_kind(),
            case_id: None,
            via: String::new(),
            queued: Vec::new(),
            notes: inbound.warnings.clone(),
            repeat: false,
        };
        if self.store.seen_content(&inbound.content_hash)? {
            handled.repeat = true;
            handled.kind = HandledKind::Repeat;
            handled.notes.push("already handled (same content)".into());
            self.store.commit(&Commit {
                cursor,
                ..Commit::default()
            })?;
            return Ok(handled);
        }
        let hash = inbound.content_hash.clone();
        let mut commit = Commit {
            raw: Some((hash, reading.take_raw_to_keep(fetched))),
            cursor,
            ..Commit::default()
        };
        let inbound = &reading.inbound;
        let (known, classification) = self.known_message(&reading)?;
        handled.kind = classification.kind.handled_kind();
        if let Some(m) = known.filter(|m| m.direction == Direction::In) {
            handled.repeat = true;
            handled.case_id = Some(m.case_id.clone());
            handled
                .notes
                .push("a second delivery of a message already handled (same Message-ID)".into());
        } else {
            self.thread_and_apply(
                &mut commit,
                &reading,
                fetched,
                &classification,
                now,
                &mut handled,
            )
            .await?;
        }
        self.finish(&mut commit, inbound, fetched, &handled, now);
        self.store.commit(&commit)?;
        Ok(handled)
    }

    /// The index entry of the message's Message-ID, if we know it, and its
    /// class: mail we sent that comes back is our own loop, whatever it
    /// looks like.
    fn known_message(
        &self,
        reading: &Reading,
    ) -> Result<(Option<MsgIndex>, classify::Classification)> {
        let inbound = &reading.inbound;
        let known = if inbound.message_id_synthesized {
            None
        } else {
            self.store.message(&inbound.message_id)?
        };
        let classification = match &known {
            Some(m) if m.direction == Direction::Out => classify::Classification {
                kind: MessageKind::OwnLoop,
                reason: "Message-ID of mail we sent".into(),
            },
            _ => reading.classification.clone(),
        };
        Ok((known, classification))
    }

    /// Finds the message's case (threading rules 1-5) and applies what it
    /// says to it.
    async fn thread_and_apply(
        &self,
        commit: &mut Commit,
        reading: &Reading,
        fetched: &Fetched,
        classification: &classify::Classification,
        now: i64,
        handled: &mut Handled,
    ) -> Result<()> {
        let inbound = &reading.inbound;
        let mut keys = vec![self.key()];
        keys.extend(
            self.settings
                .previous_keys_at(now)
                .iter()
                .map(|k| k.expose().as_bytes()),
        );
        let matched = thread::match_case_with_keys(
            inbound,
            &self.store,
            &self.settings.support_address,
            &keys,
        )?;
        handled.via = matched.via().into();
        let target = self
            .event_for(reading, fetched, classification, &matched, now, handled)
            .await?;
        if let Some(target) = target {
            self.apply_event(commit, target, Some(reading), now, handled)?;
        }
        Ok(())
    }

    fn finish(
        &self,
        commit: &mut Commit,
        inbound: &Inbound,
        fetched: &Fetched,
        handled: &Handled,
        now: i64,
    ) {
        commit.inbound = Some((
            inbound.content_hash.clone(),
            InboundRecord {
                message_id: inbound.message_id.clone(),
                case_id: handled.case_id.clone(),
                kind: handled.kind,
                received_at: now,
                source_id: fetched.source_id.clone(),
                notes: handled.notes.clone(),
            },
        ));
    }
}

/// Most earlier cases a new case lists for staff (the newest).
const MAX_EARLIER_CASES: usize = 10;

/// Longest subject kept on a case's message list (a header of 10,000
/// encoded words decodes to tens of kilobytes; the raw message keeps it all).
const MAX_SUBJECT_CHARS: usize = 998;

/// A case (loaded or fresh) and the event to apply to it.
struct Target {
    case: Case,
    previous: Option<Case>,
    event: Event,
    trigger: Trigger,
}

impl Pipeline {
    fn target(&self, case_id: &CaseId, event: Event, trigger: Trigger) -> Result<Target> {
        let case = self.load(case_id)?;
        Ok(Target {
            previous: Some(case.clone()),
            case,
            event,
            trigger,
        })
    }

    fn load(&self, case_id: &CaseId) -> Result<Case> {
        self.store
            .case(case_id)?
            .ok_or_else(|| Error::Permanent(format!("case {case_id} is indexed but missing")))
    }

    fn new_case_id(&self) -> Result<CaseId> {
        loop {
            let id = CaseId::generate(&mut thread_rng());
            if self.store.case(&id)?.is_none() {
                return Ok(id);
            }
        }
    }

    fn open_case_of_account(&self, fields: &request::RequestFields) -> Result<Option<CaseId>> {
        match &fields.username {
            Some(username) => self.store.open_case_of_username(username),
            None => Ok(None),
        }
    }

    /// The cases of the same requester address or username, newest first
    /// (at most [`MAX_EARLIER_CASES`]), for the staff notification of a new
    /// case, read through the store's history index: a scan of every case
    /// here made a backlog of new requests quadratic.
    fn earlier_cases(&self, from: &str, username: Option<&str>) -> Result<Vec<EarlierCase>> {
        let mut earlier: Vec<EarlierCase> = self
            .store
            .cases_of(from, username)?
            .into_iter()
            .filter_map(|c| {
                let address = c.requesters().any(|r| r.eq_ignore_ascii_case(from));
                let user = match (username, &c.fields.username) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => false,
                };
                let shares = match (user, address) {
                    (true, true) => Shared::Both,
                    (true, false) => Shared::Username,
                    (false, true) => Shared::Address,
                    (false, false) => return None,
                };
                Some(EarlierCase {
                    id: c.id,
                    state: c.state,
                    created_at: c.created_at,
                    closed_at: c.closed_at,
                    shares,
                })
            })
            .collect();
        earlier.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        earlier.truncate(MAX_EARLIER_CASES);
        Ok(earlier)
    }

    fn case_of_bounce(&self, bounce: &Bounce, matched: &CaseMatch) -> Result<Option<CaseId>> {
        if let Some(id) = &bounce.original_message_id {
            if let Some(m) = self.store.message(id)? {
                return Ok(Some(m.case_id));
            }
        }
        if let Some(case) = matched.case() {
            return Ok(Some(case.clone()));
        }
        for recipient in &bounce.failed_recipients {
            if let Some(case) = self.store.open_case_of_sender_id(recipient)? {
                return Ok(Some(case));
            }
        }
        Ok(None)
    }

    fn trust(&self, inbound: &Inbound) -> Vec<(String, String)> {
        let summary = authres::summarize_with(inbound, &self.settings.staff);
        let mut trust = Vec::new();
        for (label, value) in [
            ("DMARC", &summary.dmarc),
            ("DKIM", &summary.dkim),
            ("SPF", &summary.spf),
        ] {
            trust.push((
                label.to_string(),
                value
                    .clone()
                    .unwrap_or_else(|| "none from a trusted server".into()),
            ));
        }
        if !summary.ignored.is_empty() {
            trust.push(("Ignored results from".into(), summary.ignored.join(", ")));
        }
        trust
    }

    /// Looks the account up by username, else by the address given in its
    /// place, else, when they said they forgot the username, by the
    /// `requester`'s own address (13.8). `None` when there is nothing to
    /// look up.
    pub async fn lookup(
        &self,
        fields: &request::RequestFields,
        requester: &str,
    ) -> Option<LookupOutcome> {
        let result = match (&fields.username, &fields.lookup_address) {
            (Some(username), _) => self.directory.by_username(username).await,
            (None, Some(address)) => self.directory.by_address(address).await,
            (None, None) if fields.forgot_username => self.directory.by_address(requester).await,
            (None, None) => return None,
        };
        Some(match result {
            Lookup::Found(account) => LookupOutcome::Found {
                address: account.challenge_address().map(str::to_owned),
                username: account.username.clone(),
            },
            Lookup::NotFound => LookupOutcome::NotFound,
            Lookup::Unavailable { reason } => LookupOutcome::Unavailable { reason },
        })
    }

    fn apply_event(
        &self,
        commit: &mut Commit,
        target: Target,
        message: Option<&Reading>,
        now: i64,
        handled: &mut Handled,
    ) -> Result<()> {
        let Target {
            case,
            previous,
            event,
            mut trigger,
        } = target;
        let ctx = self.ctx(now);
        let outcome = case::apply(&case, &event, &ctx);
        let mut case = outcome.case;
        if let Some(reading) = message {
            if let Some(attachments) =
                self.file_message(commit, &mut case, &event, reading, now, handled)?
            {
                trigger.attachments = attachments;
            }
        }
        let mut log = outcome.log;
        // Staff-written mail is not automatic: the per-recipient limit that
        // protects against loops and floods does not apply to it.
        let automatic = !matches!(event, Event::Staff { .. });
        let mut queueing = Queueing {
            commit,
            log: &mut log,
            handled,
            trigger: &trigger,
            now,
            automatic,
        };
        self.queue(&mut queueing, &mut case, &outcome.mails)?;
        handled.case_id = Some(case.id.clone());
        commit
            .events
            .extend(log.into_iter().map(|l| (case.id.clone(), l)));
        commit.cases.push((case, previous));
        Ok(())
    }

    /// Puts the inbound message on the case's message list, in the
    /// Message-ID index and its attachments on the case; returns the
    /// attachments (numbered) for the staff notification, or `None` for a
    /// message held off the case.
    fn file_message(
        &self,
        commit: &mut Commit,
        case: &mut Case,
        event: &Event,
        reading: &Reading,
        now: i64,
        handled: &Handled,
    ) -> Result<Option<Vec<(usize, StoredAttachment)>>> {
        let inbound = &reading.inbound;
        let role = match event {
            Event::Owner { .. } => Role::Challenge,
            _ => Role::Case,
        };
        // Mail held off the case (a stranger's subject tag, forged staff mail)
        // is only logged: were it indexed, a follow-up naming it in
        // References would join the case (threading rule 2), and it would
        // become the parent of our next reply to the requester.
        // Our own mail looping back is already on the case as sent.
        let held = matches!(
            event,
            Event::UnverifiedTag { .. } | Event::ForgedStaff { .. }
        ) || handled.kind == HandledKind::OwnLoop;
        if held {
            return Ok(None);
        }
        case.messages.push(MessageRef {
            message_id: inbound.message_id.clone(),
            direction: Direction::In,
            from: inbound
                .from_address()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            to: inbound.recipients().map(|a| a.to_string()).collect(),
            // A challenge code typed into a subject stays in the raw mail only,
            // never in the case (store, export, listings).
            subject: verify::redact_codes(&secrets::redact(&inbound.subject).text, "[code]")
                .chars()
                .take(MAX_SUBJECT_CHARS)
                .collect(),
            date: inbound.date.unwrap_or(now),
            kind: RefKind::Read(handled.kind),
            role,
        });
        // Never overwrite an entry: our own mail looping back must stay
        // "out". A second requester's mail is no threading key either.
        let second = matches!(event, Event::SecondRequester { .. });
        if !second && self.store.message(&inbound.message_id)?.is_none() {
            commit.msgids.push((
                inbound.message_id.clone(),
                MsgIndex {
                    case_id: case.id.clone(),
                    role,
                    direction: Direction::In,
                },
            ));
        }
        Ok(Some(keep_attachments(case, commit, reading, now)))
    }

    /// Processes every due timer; returns how many cases were touched.
    pub async fn run_timers(&self, now: i64) -> Result<usize> {
        let due = self.store.due_timers(now)?;
        let count = due.len();
        for (case_id, kinds) in due {
            let case = self.load(&case_id)?;
            let lookup = if kinds.contains(&case::TimerKind::DirectoryRetry) {
                self.lookup(&case.fields, &case.requester).await
            } else {
                None
            };
            let mut commit = Commit::default();
            let mut handled = Handled::internal(HandledKind::Timer, "timer");
            let target = Target {
                previous: Some(case.clone()),
                case,
                event: Event::Timers { kinds, lookup },
                trigger: Trigger::default(),
            };
            self.apply_event(&mut commit, target, None, now, &mut handled)?;
            self.store.commit(&commit)?;
        }
        Ok(count)
    }

    /// Records a permanent delivery failure reported by the transport.
    pub fn record_delivery_failure(
        &self,
        case_id: &CaseId,
        recipient: &str,
        error: &str,
        now: i64,
    ) -> Result<()> {
        let bounce = Bounce {
            failed_recipients: vec![recipient.to_owned()],
            diagnostic: Some(error.to_owned()),
            ..Bounce::default()
        };
        let mut commit = Commit::default();
        let mut handled = Handled::internal(HandledKind::DeliveryFailure, "outbox");
        let target = self.target(
            case_id,
            Event::DeliveryFailed { bounce },
            Trigger::default(),
        )?;
        self.apply_event(&mut commit, target, None, now, &mut handled)?;
        self.store.commit(&commit)
    }
}

/// Lists the attachments of the raw message this commit keeps on the case
/// (numbered case-wide, from 1) and returns them, numbered, for the staff
/// notification of this message. Reading listed them from the parse it
/// made anyway; the kept copy holds the same attachments.
fn keep_attachments(
    case: &mut Case,
    commit: &Commit,
    reading: &Reading,
    now: i64,
) -> Vec<(usize, StoredAttachment)> {
    let Some((hash, _)) = &commit.raw else {
        return Vec::new();
    };
    let first = case.attachments.len() + 1;
    let new: Vec<StoredAttachment> = reading
        .attachments
        .iter()
        .enumerate()
        .map(|(index, listed)| StoredAttachment {
            message_id: reading.inbound.message_id.clone(),
            content_hash: hash.clone(),
            index,
            name: listed.name.clone(),
            content_type: listed.content_type.clone(),
            size: listed.size,
            received_at: now,
        })
        .collect();
    case.attachments.extend(new.iter().cloned());
    new.into_iter()
        .enumerate()
        .map(|(i, a)| (first + i, a))
        .collect()
}

/// Records why a mail was not queued, on the message and in the case log.
fn note_not_sent(handled: &mut Handled, log: &mut Vec<LogEntry>, now: i64, what: String) {
    handled.notes.push(what.clone());
    log.push(LogEntry {
        at: now,
        actor: Actor::System,
        what,
    });
}

/// Where a reply to this message goes: Reply-To if valid, else From.
fn reply_target(inbound: &Inbound) -> Option<String> {
    inbound
        .reply_to
        .as_ref()
        .or(inbound.from.as_ref())
        .map(|m| m.address.to_string())
        // Only what the transport can write to: an address such as
        // `develop!nextmime@ebony@sblab.att.com` is kept, not answered.
        .filter(|a| a.parse::<lettre::Address>().is_ok())
}

/// Ten random base32 characters (50 bits) from the thread's CSPRNG.
fn unguessable() -> String {
    use crate::domain::BASE32_LOWER as B32;
    use rand::Rng;
    let mut rng = thread_rng();
    (0..10).map(|_| B32[rng.gen_range(0..32)] as char).collect()
}
