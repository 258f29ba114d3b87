//! Retention and erasure: removing a case's personal data from the store
//! while keeping a tombstone (id, dates, outcome) and an audit entry that
//! says what was removed, when, why and by whom, never what it held.
//!
//! The invariant (ARCHITECTURE.md, "Retention and erasure"): nothing is
//! deleted before it is processed and kept. Retention only touches closed
//! cases with nothing left to send; the content-hash marker of every
//! removed message stays (scrubbed), so the same mail fetched again is
//! still recognised as handled instead of opening a case anew. An erasure
//! goes further on purpose: it also drops the case's pending mail and
//! timers, because the person asked for everything to go.
//!
//! Each case is removed in one sled transaction and then flushed, so a
//! crash leaves either the whole case or its tombstone.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::{open_key, timer_key, tree_index, tx_error, InboundRecord, OutboxItem, Store, TREES};
use super::{MsgIndex, OPEN_COUNT};
use crate::case::{Case, CaseState};
use crate::domain::CaseId;
use crate::error::{Error, Result};

/// Meta key: when the timer pass last ran retention (unix seconds).
const LAST_PURGE: &str = "retention_last_run";

/// How often the timer pass looks for expired cases.
const PURGE_EVERY: i64 = 3600;

/// Why data left the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// `[retention] closed_after` expired on a closed case.
    Retention,
    /// A data-subject request (`cases erase`).
    Erasure,
}

impl Removal {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Removal::Retention => "retention",
            Removal::Erasure => "erasure",
        }
    }
}

/// What is left of a removed case: enough to answer "what happened to
/// RD-…?" and to count outcomes, nothing about the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The case id.
    pub case_id: CaseId,
    /// Unix seconds when the case was opened.
    pub created_at: i64,
    /// Unix seconds when staff resolved it, if they did.
    pub resolved_at: Option<i64>,
    /// Unix seconds when it was closed, if it was.
    pub closed_at: Option<i64>,
    /// The state it had when it was removed (the outcome).
    pub outcome: CaseState,
    /// Unix seconds of the removal.
    pub removed_at: i64,
    /// Retention or erasure.
    pub why: Removal,
}

/// Counts of what one removal took out of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Raw messages (their processed markers stay, scrubbed).
    pub raw_messages: u64,
    /// Event-log lines.
    pub events: u64,
    /// Message-ID index entries.
    pub message_ids: u64,
    /// Outgoing mail records (sent or failed) with any body left.
    pub outbox_rows: u64,
    /// Outgoing mail that was still waiting to be sent.
    pub pending_outbox_rows: u64,
    /// Pending timers.
    pub timers: u64,
    /// Rate-limit histories (keyed by the case or an address).
    pub rate_limit_histories: u64,
}

/// One line of the audit trail. It names the case and counts what went,
/// never the addresses, names or text that were removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// Retention or erasure.
    pub action: Removal,
    /// Who asked: `retention` for the daemon's own pass, else the operator.
    pub by: String,
    /// Why, as given (`data-subject request`, a ticket number, …).
    pub reason: String,
    /// The case removed; none for mail that belonged to no case.
    pub case_id: Option<CaseId>,
    /// What was removed.
    pub removed: Removed,
}

/// What an erasure is asked to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum EraseTarget {
    /// One case.
    Case(CaseId),
    /// Every case this address wrote as a requester or asked about, its
    /// mail that reached no case, and its rate-limit history.
    Address(String),
}

/// The keys outside the case record that belong to one case.
#[derive(Debug, Default)]
struct Holdings {
    events: Vec<Vec<u8>>,
    message_ids: Vec<Vec<u8>>,
    /// Content hash and the scrubbed marker to write in its place.
    inbound: Vec<(Vec<u8>, Vec<u8>)>,
    outbox: Vec<([u8; 8], bool)>,
    rate_limits: Vec<Vec<u8>>,
}

/// Who removes and why, carried into the audit entry.
struct Request<'a> {
    why: Removal,
    by: &'a str,
    reason: &'a str,
    now: i64,
}

impl Store {
    /// Closed cases whose retention has run out at `now` and that have
    /// nothing left to send, oldest id first.
    pub fn expired_cases(&self, now: i64, keep_for: i64) -> Result<Vec<CaseId>> {
        let pending: std::collections::HashSet<CaseId> = self
            .pending_outbox()?
            .into_iter()
            .map(|item| item.case_id)
            .collect();
        Ok(self
            .cases()?
            .into_iter()
            .filter(|c| c.state == CaseState::Closed && !pending.contains(&c.id))
            .filter(|c| c.closed_at.unwrap_or(c.updated_at).saturating_add(keep_for) <= now)
            .map(|c| c.id)
            .collect())
    }

    /// Removes every case [`Store::expired_cases`] names; returns the audit
    /// entries written.
    pub fn purge_expired(&self, now: i64, keep_for: i64, by: &str) -> Result<Vec<AuditEntry>> {
        let ids = self.expired_cases(now, keep_for)?;
        let request = Request {
            why: Removal::Retention,
            by,
            reason: "retention period ended",
            now,
        };
        self.remove_cases(&ids, &[], &request)
    }

    /// [`Store::purge_expired`] at most once an hour (the daemon's timer
    /// pass calls it every pass); the time of the last run is kept in meta.
    pub fn purge_if_due(&self, now: i64, keep_for: i64) -> Result<Vec<AuditEntry>> {
        let last: i64 = self
            .meta(LAST_PURGE)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MIN);
        if now.saturating_sub(last) < PURGE_EVERY {
            return Ok(Vec::new());
        }
        let entries = self.purge_expired(now, keep_for, "retention")?;
        self.set_meta(LAST_PURGE, &now.to_string())?;
        Ok(entries)
    }

    /// The cases an erasure of `target` would remove.
    pub fn erasure_cases(&self, target: &EraseTarget) -> Result<Vec<CaseId>> {
        match target {
            EraseTarget::Case(id) => Ok(self.case(id)?.map(|c| c.id).into_iter().collect()),
            EraseTarget::Address(address) => Ok(self
                .cases()?
                .into_iter()
                .filter(|c| names_address(c, address))
                .map(|c| c.id)
                .collect()),
        }
    }

    /// Erases what `target` names (see [`EraseTarget`]); returns the audit
    /// entries written, one per case and one for mail outside any case.
    pub fn erase(
        &self,
        target: &EraseTarget,
        now: i64,
        by: &str,
        reason: &str,
    ) -> Result<Vec<AuditEntry>> {
        let ids = self.erasure_cases(target)?;
        let request = Request {
            why: Removal::Erasure,
            by,
            reason,
            now,
        };
        let addresses = match target {
            EraseTarget::Address(a) => vec![a.to_lowercase()],
            EraseTarget::Case(_) => Vec::new(),
        };
        let mut entries = self.remove_cases(&ids, &addresses, &request)?;
        if let Some(address) = addresses.first() {
            if let Some(entry) = self.erase_uncased(address, &request)? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// The tombstone of a removed case.
    pub fn tombstone(&self, id: &CaseId) -> Result<Option<Tombstone>> {
        self.get_json("tombstones", id.as_str().as_bytes())
    }

    /// The audit trail, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditEntry>> {
        self.tree("audit")
            .iter()
            .values()
            .map(|v| {
                serde_json::from_slice(&v?)
                    .map_err(|e| Error::Permanent(format!("corrupt audit entry: {e}")))
            })
            .collect()
    }

    fn remove_cases(
        &self,
        ids: &[CaseId],
        addresses: &[String],
        request: &Request<'_>,
    ) -> Result<Vec<AuditEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut holdings = self.holdings(ids, request)?;
        let mut entries = Vec::new();
        for id in ids {
            let Some(case) = self.case(id)? else { continue };
            let mut held = holdings.remove(id).unwrap_or_default();
            self.rate_limit_keys(&case, addresses, request, &mut held)?;
            entries.push(self.remove_case(&case, &held, request)?);
            self.flush()?;
            self.remove_raw_files(held.inbound.iter().map(|(hash, _)| hash.as_slice()));
        }
        Ok(entries)
    }

    /// One walk over the shared trees for all the cases at once.
    fn holdings(&self, ids: &[CaseId], request: &Request<'_>) -> Result<HashMap<CaseId, Holdings>> {
        let mut out: HashMap<CaseId, Holdings> = ids
            .iter()
            .map(|id| (id.clone(), Holdings::default()))
            .collect();
        for (id, held) in out.iter_mut() {
            for key in self
                .tree("events")
                .scan_prefix(format!("{}/", id.as_str()))
                .keys()
            {
                held.events.push(key?.to_vec());
            }
        }
        for entry in self.tree("msgid").iter() {
            let (key, value) = entry?;
            if let Ok(index) = serde_json::from_slice::<MsgIndex>(&value) {
                if let Some(held) = out.get_mut(&index.case_id) {
                    held.message_ids.push(key.to_vec());
                }
            }
        }
        for entry in self.tree("inbound").iter() {
            let (key, value) = entry?;
            let Ok(record) = serde_json::from_slice::<InboundRecord>(&value) else {
                continue;
            };
            if let Some(held) = record.case_id.as_ref().and_then(|c| out.get_mut(c)) {
                held.inbound
                    .push((key.to_vec(), scrubbed(record, request)?));
            }
        }
        let pending = self.tree("outbox_pending");
        for entry in self.tree("outbox").iter() {
            let (key, value) = entry?;
            let Ok(item) = serde_json::from_slice::<OutboxItem>(&value) else {
                continue;
            };
            if let (Some(held), Ok(seq)) = (out.get_mut(&item.case_id), key.as_ref().try_into()) {
                held.outbox.push((seq, pending.contains_key(&key)?));
            }
        }
        Ok(out)
    }

    /// The rate-limit histories a removal takes: the case's own, and the
    /// requesters' when erasing (or, for retention, when they are stale).
    fn rate_limit_keys(
        &self,
        case: &Case,
        addresses: &[String],
        request: &Request<'_>,
        held: &mut Holdings,
    ) -> Result<()> {
        let id = case.id.as_str();
        let mut keys = vec![format!("case:{id}"), format!("progress:{id}")];
        for key in self
            .tree("ratelimit")
            .scan_prefix(format!("alert:{id}:"))
            .keys()
        {
            keys.push(String::from_utf8_lossy(&key?).into_owned());
        }
        let day_ago = request.now.saturating_sub(86_400);
        for address in case
            .requesters()
            .map(str::to_lowercase)
            .chain(addresses.iter().cloned())
        {
            let take = match request.why {
                Removal::Erasure => true,
                // Someone with a newer case keeps the limits on it.
                Removal::Retention => self.ratelimit(&address)?.iter().all(|&t| t < day_ago),
            };
            if take && !keys.contains(&address) {
                keys.push(address);
            }
        }
        for key in keys {
            if self.tree("ratelimit").contains_key(key.as_bytes())? {
                held.rate_limits.push(key.into_bytes());
            }
        }
        Ok(())
    }

    /// Removes one case and what it holds, writes its tombstone and the
    /// audit entry, all in one transaction.
    fn remove_case(
        &self,
        case: &Case,
        held: &Holdings,
        request: &Request<'_>,
    ) -> Result<AuditEntry> {
        let entry = AuditEntry {
            at: request.now,
            action: request.why,
            by: request.by.to_owned(),
            reason: request.reason.to_owned(),
            case_id: Some(case.id.clone()),
            removed: Removed {
                raw_messages: held.inbound.len() as u64,
                events: held.events.len() as u64,
                message_ids: held.message_ids.len() as u64,
                outbox_rows: held.outbox.iter().filter(|(_, p)| !p).count() as u64,
                pending_outbox_rows: held.outbox.iter().filter(|(_, p)| *p).count() as u64,
                timers: case.timers.len() as u64,
                rate_limit_histories: held.rate_limits.len() as u64,
            },
        };
        let tombstone = Tombstone {
            case_id: case.id.clone(),
            created_at: case.created_at,
            resolved_at: case.resolved_at,
            closed_at: case.closed_at,
            outcome: case.state,
            removed_at: request.now,
            why: request.why,
        };
        let tombstone = encode(&tombstone)?;
        let audit_value = encode(&entry)?;
        let audit_key = self.audit_key(request.now)?;
        // A large message is kept in pieces: every piece goes with it.
        let mut pieces = Vec::new();
        for (hash, _) in &held.inbound {
            pieces.extend(self.raw_piece_keys(hash)?);
        }
        let trees: Vec<&Tree> = TREES.iter().map(|n| self.tree(n)).collect();
        trees
            .as_slice()
            .transaction(|t| {
                let tx = |name: &str| -> &TransactionalTree { &t[tree_index(name)] };
                for key in &pieces {
                    tx("raw_chunks").remove(key)?;
                }
                for (hash, marker) in &held.inbound {
                    tx("raw").remove(hash.as_slice())?;
                    tx("raw_files").remove(hash.as_slice())?;
                    tx("inbound").insert(hash.as_slice(), marker.as_slice())?;
                }
                for key in &held.events {
                    tx("events").remove(key.as_slice())?;
                }
                for key in &held.message_ids {
                    tx("msgid").remove(key.as_slice())?;
                }
                for (seq, _) in &held.outbox {
                    for tree in ["outbox", "outbox_body", "outbox_pending"] {
                        tx(tree).remove(seq)?;
                    }
                }
                for key in &held.rate_limits {
                    tx("ratelimit").remove(key.as_slice())?;
                }
                remove_indexes(&tx, case)?;
                tx("tombstones").insert(case.id.as_str().as_bytes(), tombstone.as_slice())?;
                tx("audit").insert(audit_key.as_slice(), audit_value.as_slice())?;
                Ok::<(), ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)?;
        let mut gone = case.clone();
        gone.state = CaseState::Closed;
        self.note_open_change(&gone, Some(case));
        Ok(entry)
    }

    /// Mail from `address` that reached no case (machine mail, a message
    /// that failed): its raw bytes go, its marker stays, scrubbed.
    fn erase_uncased(&self, address: &str, request: &Request<'_>) -> Result<Option<AuditEntry>> {
        let mut removed = Removed::default();
        let mut markers = Vec::new();
        for entry in self.tree("inbound").iter() {
            let (key, value) = entry?;
            let Ok(record) = serde_json::from_slice::<InboundRecord>(&value) else {
                continue;
            };
            if record.case_id.is_some() {
                continue;
            }
            let Some(raw) = self.raw(&String::from_utf8_lossy(&key))? else {
                continue;
            };
            let from = crate::parse::parse(&raw)
                .from_address()
                .map(|a| a.as_str().to_lowercase());
            if from.as_deref() == Some(address) {
                markers.push((key.to_vec(), scrubbed(record, request)?));
            }
        }
        if self.tree("ratelimit").contains_key(address.as_bytes())? {
            removed.rate_limit_histories = 1;
        }
        if markers.is_empty() && removed.rate_limit_histories == 0 {
            return Ok(None);
        }
        removed.raw_messages = markers.len() as u64;
        let entry = AuditEntry {
            at: request.now,
            action: request.why,
            by: request.by.to_owned(),
            reason: request.reason.to_owned(),
            case_id: None,
            removed,
        };
        let audit_value = encode(&entry)?;
        let audit_key = self.audit_key(request.now)?;
        let mut pieces = Vec::new();
        for (hash, _) in &markers {
            pieces.extend(self.raw_piece_keys(hash)?);
        }
        let trees: Vec<&Tree> = [
            "raw",
            "inbound",
            "ratelimit",
            "audit",
            "raw_chunks",
            "raw_files",
        ]
        .iter()
        .map(|n| self.tree(n))
        .collect();
        trees
            .as_slice()
            .transaction(|t| {
                for (hash, marker) in &markers {
                    t[0].remove(hash.as_slice())?;
                    t[1].insert(hash.as_slice(), marker.as_slice())?;
                    t[5].remove(hash.as_slice())?;
                }
                for key in &pieces {
                    t[4].remove(key)?;
                }
                t[2].remove(address.as_bytes())?;
                t[3].insert(audit_key.as_slice(), audit_value.as_slice())?;
                Ok::<(), ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)?;
        self.flush()?;
        self.remove_raw_files(markers.iter().map(|(hash, _)| hash.as_slice()));
        Ok(Some(entry))
    }

    /// Audit keys sort by time, then by a fresh number for entries of the
    /// same second.
    fn audit_key(&self, now: i64) -> Result<Vec<u8>> {
        let mut key = (now.max(0) as u64).to_be_bytes().to_vec();
        key.extend_from_slice(&self.next_id()?.to_be_bytes());
        Ok(key)
    }
}

/// Whether `address` is one of the case's requesters or the address the
/// requester asked about.
fn names_address(case: &Case, address: &str) -> bool {
    case.requesters().any(|r| r.eq_ignore_ascii_case(address))
        || case
            .fields
            .lookup_address
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(address))
}

/// The processed marker as it stays after removal: still the content
/// hash's proof that the mail was handled, without its Message-ID or notes.
fn scrubbed(record: InboundRecord, request: &Request<'_>) -> Result<Vec<u8>> {
    encode(&InboundRecord {
        message_id: String::new(),
        notes: vec![format!("removed by {}", request.why.as_str())],
        ..record
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Permanent(format!("cannot encode record: {e}")))
}

/// The case record and every index that points at it.
fn remove_indexes<'a>(
    tx: &impl Fn(&str) -> &'a TransactionalTree,
    case: &Case,
) -> std::result::Result<(), ConflictableTransactionError<String>> {
    let id = case.id.as_str();
    tx("cases").remove(id.as_bytes())?;
    for key in super::history_keys(case) {
        tx("history").remove(key)?;
    }
    for (kind, due) in &case.timers {
        tx("timers").remove(timer_key(*due, &case.id, *kind))?;
    }
    for address in case.requesters() {
        // Written as the case spells it, looked up lower-cased: take both.
        for key in [address.to_owned(), address.to_lowercase()] {
            if tx("by_sender").get(key.as_bytes())?.as_deref() == Some(id.as_bytes()) {
                tx("by_sender").remove(key.as_bytes())?;
            }
        }
    }
    if let Some(username) = &case.fields.username {
        let key = username.to_lowercase();
        if tx("by_username").get(key.as_bytes())?.as_deref() == Some(id.as_bytes()) {
            tx("by_username").remove(key.as_bytes())?;
        }
    }
    if case.state.is_open() {
        tx("open").remove(open_key(case))?;
        let meta = tx("meta");
        let current = meta
            .get(OPEN_COUNT)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        meta.insert(OPEN_COUNT, &current.saturating_sub(1).to_be_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{LogEntry, TimerKind};
    use crate::store::Commit;
    use crate::thread::Role;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    /// A case of `jo@example.org` with one message in, one reply sent and,
    /// when `pending`, one reply still queued.
    fn keep(store: &Store, id: &str, state: CaseState, closed_at: i64, pending: bool) -> CaseId {
        let id = CaseId::parse(id).unwrap();
        let mut case = Case::new(id.clone(), "jo@example.org", closed_at - 10 * DAY);
        case.state = state;
        case.closed_at = (state == CaseState::Closed).then_some(closed_at);
        case.fields.username = Some("jo-user".into());
        if state.is_open() {
            case.timers.insert(TimerKind::Reminder, closed_at + DAY);
        }
        let hash = format!("hash-{id}");
        let item = |seq: u64, sent: bool| {
            (
                OutboxItem {
                    seq,
                    case_id: id.clone(),
                    message_id: format!("out{seq}@us"),
                    template: crate::templates::TemplateKind::Acknowledgement,
                    envelope_from: "support@us".into(),
                    to: vec!["jo@example.org".into()],
                    subject: "Lost my phone".into(),
                    queued_at: closed_at,
                    sent_at: sent.then_some(closed_at),
                    attempts: 0,
                    next_attempt_at: 0,
                    last_error: None,
                    failed: false,
                },
                b"body with jo@example.org".to_vec(),
            )
        };
        let base = store.next_id().unwrap() * 10;
        // Queued unsent, as the pipeline does; the first one is sent below.
        let mut outbox = vec![item(base, false)];
        if pending {
            outbox.push(item(base + 1, false));
        }
        store
            .commit(&Commit {
                raw: Some((
                    hash.clone(),
                    b"From: jo@example.org\r\n\r\nhi".to_vec().into(),
                )),
                inbound: Some((
                    hash,
                    InboundRecord {
                        message_id: format!("in-{id}@example.org"),
                        case_id: Some(id.clone()),
                        kind: crate::domain::HandledKind::Human,
                        received_at: closed_at - 10 * DAY,
                        source_id: "1".into(),
                        notes: vec!["jo wrote".into()],
                    },
                )),
                cases: vec![(case, None)],
                events: vec![(
                    id.clone(),
                    LogEntry {
                        at: closed_at,
                        actor: crate::case::Actor::System,
                        what: "note about jo@example.org".into(),
                    },
                )],
                msgids: vec![(
                    format!("in-{id}@example.org"),
                    MsgIndex {
                        case_id: id.clone(),
                        role: Role::Case,
                        direction: crate::case::Direction::In,
                    },
                )],
                outbox,
                ratelimits: vec![
                    (format!("case:{id}"), vec![closed_at]),
                    ("jo@example.org".into(), vec![closed_at]),
                ],
                ..Commit::default()
            })
            .unwrap();
        store.update_outbox(&item(base, true).0, None).unwrap();
        id
    }

    #[test]
    fn retention_removes_an_expired_closed_case_and_keeps_its_tombstone_and_marker() {
        let store = Store::temporary().unwrap();
        let id = keep(
            &store,
            "RD-AAAAAA",
            CaseState::Closed,
            NOW - 200 * DAY,
            false,
        );
        let entries = store.purge_expired(NOW, 180 * DAY, "retention").unwrap();
        assert_eq!(entries.len(), 1);
        assert!(store.case(&id).unwrap().is_none());
        assert!(store.events(&id).unwrap().is_empty());
        assert!(store.raw(&format!("hash-{id}")).unwrap().is_none());
        assert!(store
            .message(&format!("in-{id}@example.org"))
            .unwrap()
            .is_none());
        assert!(store.outbox().unwrap().is_empty());
        assert!(store.ratelimit(&format!("case:{id}")).unwrap().is_empty());
        // Fetched again, the same mail is still known as handled.
        assert!(store.seen_content(&format!("hash-{id}")).unwrap());
        let marker = store
            .inbound_record(&format!("hash-{id}"))
            .unwrap()
            .unwrap();
        assert_eq!(marker.message_id, "");
        let tomb = store.tombstone(&id).unwrap().unwrap();
        assert_eq!(tomb.outcome, CaseState::Closed);
        assert_eq!(tomb.closed_at, Some(NOW - 200 * DAY));
        assert_eq!(tomb.why, Removal::Retention);
        let audit = store.audit().unwrap();
        assert_eq!(audit, entries);
        assert_eq!(audit[0].removed.raw_messages, 1);
        assert_eq!(audit[0].removed.events, 1);
        assert_eq!(audit[0].removed.outbox_rows, 1);
        assert_eq!(audit[0].removed.rate_limit_histories, 2);
        let text = serde_json::to_string(&audit).unwrap();
        assert!(
            !text.contains("jo@example.org") && !text.contains("jo-user"),
            "{text}"
        );
    }

    #[test]
    fn the_timer_pass_purges_at_most_once_an_hour() {
        let store = Store::temporary().unwrap();
        assert!(store.purge_if_due(NOW, 180 * DAY).unwrap().is_empty());
        keep(
            &store,
            "RD-FFFFFF",
            CaseState::Closed,
            NOW - 200 * DAY,
            false,
        );
        assert!(store.purge_if_due(NOW + 60, 180 * DAY).unwrap().is_empty());
        assert_eq!(store.purge_if_due(NOW + 3600, 180 * DAY).unwrap().len(), 1);
    }

    #[test]
    fn retention_keeps_open_recent_and_unsent_cases() {
        let store = Store::temporary().unwrap();
        let open = keep(
            &store,
            "RD-BBBBBB",
            CaseState::AwaitingStaff,
            NOW - 400 * DAY,
            false,
        );
        let recent = keep(
            &store,
            "RD-CCCCCC",
            CaseState::Closed,
            NOW - 100 * DAY,
            false,
        );
        let unsent = keep(
            &store,
            "RD-DDDDDD",
            CaseState::Closed,
            NOW - 400 * DAY,
            true,
        );
        assert!(store
            .purge_expired(NOW, 180 * DAY, "retention")
            .unwrap()
            .is_empty());
        for id in [open, recent, unsent] {
            assert!(store.case(&id).unwrap().is_some(), "{id} kept");
            assert!(
                store.raw(&format!("hash-{id}")).unwrap().is_some(),
                "{id} raw kept"
            );
        }
        assert!(store.audit().unwrap().is_empty());
    }

    #[test]
    fn erasing_an_address_takes_its_open_case_with_pending_mail_and_timers() {
        let store = Store::temporary().unwrap();
        let id = keep(
            &store,
            "RD-EEEEEE",
            CaseState::AwaitingStaff,
            NOW - DAY,
            true,
        );
        assert_eq!(store.open_count(), 1);
        let target = EraseTarget::Address("Jo@Example.org".into());
        assert_eq!(store.erasure_cases(&target).unwrap(), vec![id.clone()]);
        let entries = store
            .erase(&target, NOW, "operator root", "ticket 42")
            .unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].removed.pending_outbox_rows, 1);
        assert_eq!(entries[0].removed.timers, 1);
        assert!(store.case(&id).unwrap().is_none());
        assert!(store.pending_outbox().unwrap().is_empty());
        assert!(store.all_timers().unwrap().is_empty());
        assert_eq!(store.open_count(), 0);
        assert_eq!(
            store.open_case_of_sender_id("jo@example.org").unwrap(),
            None
        );
        assert_eq!(store.open_case_of_username("jo-user").unwrap(), None);
        assert!(
            store.tree("history").is_empty(),
            "the history index keeps the address"
        );
        assert!(store.ratelimit("jo@example.org").unwrap().is_empty());
        let tomb = store.tombstone(&id).unwrap().unwrap();
        assert_eq!(
            (tomb.outcome, tomb.why),
            (CaseState::AwaitingStaff, Removal::Erasure)
        );
        let audit = store.audit().unwrap();
        assert_eq!(audit[0].by, "operator root");
        assert_eq!(audit[0].reason, "ticket 42");
        let text = serde_json::to_string(&audit).unwrap().to_lowercase();
        assert!(!text.contains("jo@example.org"), "{text}");
    }

    #[test]
    fn erasing_an_address_takes_its_mail_that_reached_no_case() {
        let store = Store::temporary().unwrap();
        store
            .commit(&Commit {
                raw: Some((
                    "h".into(),
                    b"From: jo@example.org\r\n\r\nauto".to_vec().into(),
                )),
                inbound: Some((
                    "h".into(),
                    InboundRecord {
                        message_id: "m@example.org".into(),
                        case_id: None,
                        kind: crate::domain::HandledKind::AutoReply,
                        received_at: NOW,
                        source_id: "9".into(),
                        notes: vec![],
                    },
                )),
                ..Commit::default()
            })
            .unwrap();
        let target = EraseTarget::Address("jo@example.org".into());
        let entries = store.erase(&target, NOW, "op", "request").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].case_id, None);
        assert_eq!(entries[0].removed.raw_messages, 1);
        assert!(store.raw("h").unwrap().is_none());
        assert!(store.seen_content("h").unwrap());
    }

    /// A message large enough to be kept in pieces, with `case_id`.
    fn keep_large(store: &Store, hash: &str, case_id: Option<CaseId>) {
        let mut raw = b"From: jo@example.org\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 40 * 1024));
        store
            .commit(&Commit {
                raw: Some((hash.into(), raw.into())),
                inbound: Some((
                    hash.into(),
                    InboundRecord {
                        message_id: format!("{hash}@example.org"),
                        case_id,
                        kind: crate::domain::HandledKind::Human,
                        received_at: NOW,
                        source_id: "7".into(),
                        notes: vec![],
                    },
                )),
                ..Commit::default()
            })
            .unwrap();
        assert!(!store.raw_piece_keys(hash.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn erasing_takes_every_piece_of_a_large_message_on_a_case_or_on_none() {
        let store = Store::temporary().unwrap();
        let id = keep(
            &store,
            "RD-CCCCCC",
            CaseState::AwaitingStaff,
            NOW - DAY,
            false,
        );
        keep_large(&store, "big-on-case", Some(id.clone()));
        keep_large(&store, "big-on-none", None);
        let target = EraseTarget::Address("jo@example.org".into());
        let entries = store.erase(&target, NOW, "op", "request").unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        for hash in ["big-on-case", "big-on-none"] {
            assert!(store.raw(hash).unwrap().is_none(), "{hash} still readable");
            assert!(store.raw_piece_keys(hash.as_bytes()).unwrap().is_empty());
            assert!(store.seen_content(hash).unwrap(), "{hash} marker kept");
        }
    }
}
