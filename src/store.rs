//! The sled store: the only module that knows the key layout.
//!
//! Trees: `raw` (content hash → bytes), `raw_chunks` (content hash, `/`,
//! piece number → a piece of a raw message over 4 KiB), `raw_files`
//! (content hash → length of a raw message kept as a file, see
//! `store/raw_files.rs`), `inbound` (content hash → record of
//! how the message was handled), `msgid` (Message-ID → case and thread),
//! `cases`, `events` (case id + sequence → log entry), `outbox` /
//! `outbox_body` / `outbox_pending`, `cursor`, `timers` (due time + case +
//! kind), `ratelimit`, `by_sender` and `by_username` (open cases), `open`
//! (creation time + case, for queue positions), `meta` (schema version),
//! `tombstones` and `audit` (what retention and erasure removed, see
//! `store/retention.rs`).
//! Everything one inbound message causes is written by [`Store::commit`]
//! in one transaction; durability comes from [`Store::flush`], called once
//! per batch (group commit) before the source is marked.
//!
//! sled 0.34's own flush writes its log with `sync_file_range` on Linux,
//! which leaves the drive's write cache and the file's metadata unsynced,
//! and writes large values ("blobs", one file each) with no sync at all.
//! [`Store::flush`] therefore follows sled's flush with `fsync` on the log
//! file, on every blob file not synced before, and on both folders.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, IVec, Transactional, Tree};

use crate::case::{Case, Direction, LogEntry, TimerKind};
use crate::domain::{CaseId, HandledKind};
use crate::error::{Error, Result};
use crate::templates::TemplateKind;
use crate::thread::{Role, ThreadLookup};

mod lifecycle;
mod raw_files;
mod retention;
mod staged;
pub use lifecycle::Moved;
pub use retention::{AuditEntry, EraseTarget, Removal, Removed, Tombstone};

/// sled's page cache unless `[store] cache_bytes` says otherwise: what
/// the worker reads again and again (open cases, indexes, the newest
/// outbox rows) fits, and the daemon stays small. sled's own default is
/// 1 GiB, and sled fills what it is given.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Meta key of the open-case counter.
const OPEN_COUNT: &str = "open_count";

/// Version of the key layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 3;

/// Raw messages larger than this are kept in pieces of this size (the
/// `raw_chunks` tree). sled splits a tree's leaf only past 16 entries,
/// whatever their size, and rewrites and caches a leaf whole: sixteen
/// 10 MB messages in one leaf meant a 160 MB leaf in memory and rewritten
/// on disk. A leaf over 128 KiB (a quarter of sled's 512 KiB segment)
/// goes to a file of its own, and sled's cache then counts it at the size
/// of its pointer, so it is never evicted: 17 pieces of 4 KiB stay under
/// that, and the cache's 16 MiB bound holds.
const RAW_CHUNK: usize = 4 * 1024;

const TREES: [&str; 20] = [
    "raw",
    "raw_chunks",
    "raw_files",
    "inbound",
    "msgid",
    "cases",
    "events",
    "outbox",
    "outbox_body",
    "outbox_pending",
    "cursor",
    "timers",
    "ratelimit",
    "by_sender",
    "by_username",
    "open",
    "meta",
    "tombstones",
    "audit",
    "history",
];

/// Meta key set once every case is in the `history` tree.
const HISTORY_INDEXED: &str = "history_indexed";

/// How an inbound message was handled (the processed marker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRecord {
    /// Message-ID.
    pub message_id: String,
    /// The case it went to, if any.
    pub case_id: Option<CaseId>,
    /// What it was.
    pub kind: HandledKind,
    /// Unix seconds.
    pub received_at: i64,
    /// The source's id for it.
    pub source_id: String,
    /// Anything noteworthy (parse warnings, why it was not answered).
    pub notes: Vec<String>,
}

/// Which case and thread a Message-ID belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgIndex {
    /// The case.
    pub case_id: CaseId,
    /// The thread.
    pub role: Role,
    /// To us or from us.
    pub direction: Direction,
}

/// A queued outgoing message (the body is kept apart and dropped once sent,
/// so a challenge code does not stay in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Queue sequence number.
    pub seq: u64,
    /// The case.
    pub case_id: CaseId,
    /// Message-ID, fixed before sending.
    pub message_id: String,
    /// Template it was rendered from.
    pub template: TemplateKind,
    /// Envelope sender.
    pub envelope_from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Subject (for listings).
    pub subject: String,
    /// Unix seconds when queued.
    pub queued_at: i64,
    /// Unix seconds when sent.
    pub sent_at: Option<i64>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time (backoff).
    pub next_attempt_at: i64,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Gave up (permanent failure).
    pub failed: bool,
}

/// Everything one step writes, in one transaction.
#[derive(Debug, Default)]
pub struct Commit {
    /// Raw message to keep, by content hash (shared with the fetched
    /// message: a 10 MB message is not copied to be kept).
    pub raw: Option<(String, std::sync::Arc<Vec<u8>>)>,
    /// The processed marker of the inbound message.
    pub inbound: Option<(String, InboundRecord)>,
    /// Cases to write, each with its previous version (for index upkeep).
    pub cases: Vec<(Case, Option<Case>)>,
    /// Event log lines.
    pub events: Vec<(CaseId, LogEntry)>,
    /// Message-ID index entries.
    pub msgids: Vec<(String, MsgIndex)>,
    /// Outgoing messages with their bodies.
    pub outbox: Vec<(OutboxItem, Vec<u8>)>,
    /// Rate-limit histories to replace.
    pub ratelimits: Vec<(String, Vec<i64>)>,
    /// Source cursor to advance.
    pub cursor: Option<(String, String)>,
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// The on-disk files to fsync; `None` for a temporary store.
    files: Option<Arc<DurableFiles>>,
    /// How many times [`Store::flush`] completed its fsyncs (the worker
    /// tests prove the source is marked only after one).
    syncs: Arc<AtomicU64>,
    trees: Arc<Vec<Tree>>,
    /// The keys of the open tree, sorted, loaded on first use and kept in
    /// step by [`Store::commit`]: a queue position is then a binary search
    /// instead of a walk over every case ahead (sled has no ranks). About
    /// 50 bytes an open case.
    open_order: OpenOrder,
    /// The batch being staged on this handle (see `store/staged.rs`).
    staged: Option<staged::Shared>,
}

/// The sorted keys of the open tree, once loaded.
type OpenOrder = Arc<Mutex<Option<Vec<Vec<u8>>>>>;

/// One change to the open order: the key that left, the key that came.
type OpenChange = (Option<Vec<u8>>, Option<Vec<u8>>);

fn tree_index(name: &str) -> usize {
    TREES.iter().position(|t| *t == name).expect("known tree")
}

impl Store {
    /// Opens (or creates) the store; refuses a newer schema.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Like [`Store::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let db = open_db(path, cache_bytes)?;
        let files = DurableFiles::open(path)?;
        let mut store = Self::with_db(db)?;
        store.files = Some(Arc::new(files));
        let swept = store.sweep_raw_files()?;
        if swept > 0 {
            tracing::info!(files = swept, "removed raw-message files no commit names");
        }
        // The schema version and counters written on first open.
        store.flush()?;
        Ok(store)
    }

    /// A throwaway store in memory/temp (replay, tests).
    pub fn temporary() -> Result<Self> {
        Self::with_db(
            sled::Config::new()
                .temporary(true)
                .cache_capacity(DEFAULT_CACHE_BYTES)
                .open()?,
        )
    }

    fn with_db(db: Db) -> Result<Self> {
        let trees = TREES
            .iter()
            .map(|t| db.open_tree(t))
            .collect::<sled::Result<Vec<_>>>()?;
        let store = Store {
            db,
            files: None,
            syncs: Arc::default(),
            trees: Arc::new(trees),
            open_order: Default::default(),
            staged: None,
        };
        let meta = store.tree("meta");
        match meta.get("schema_version")? {
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4]));
                if found > SCHEMA_VERSION {
                    return Err(Error::Config(format!(
                        "the store has schema version {found}; this build understands up to {SCHEMA_VERSION}"
                    )));
                }
                // 2 keeps large raw messages in pieces, 3 the largest in
                // files of their own, which older builds cannot read:
                // marking the store keeps such a build from opening it. An
                // older store needs no rewrite.
                if found < SCHEMA_VERSION {
                    meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                }
            }
        }
        if meta.get(OPEN_COUNT)?.is_none() {
            // A store from before the counter existed: count once.
            let n = store.tree("open").len() as u64;
            meta.insert(OPEN_COUNT, &n.to_be_bytes())?;
        }
        if meta.get(HISTORY_INDEXED)?.is_none() {
            // A store from before the history index: index every case once.
            let history = store.tree("history");
            for case in store.cases()? {
                for key in history_keys(&case) {
                    history.insert(key, &[])?;
                }
            }
            meta.insert(HISTORY_INDEXED, &[1])?;
        }
        Ok(store)
    }

    /// Every case, open or closed, that a requester address or a username
    /// was on, newest id last: read from the `history` index, so a new
    /// case does not decode every case in the store.
    pub fn cases_of(&self, address: &str, username: Option<&str>) -> Result<Vec<Case>> {
        let mut ids = BTreeSet::new();
        let mut prefixes = vec![history_prefix(b'a', address)];
        prefixes.extend(username.map(|u| history_prefix(b'u', u)));
        for prefix in prefixes {
            for (key, _) in self.scan("history", &prefix)? {
                ids.insert(key[prefix.len()..].to_vec());
            }
        }
        let mut cases = Vec::new();
        for id in ids {
            let id = String::from_utf8_lossy(&id);
            // An erased case leaves no record; its entries went with it.
            if let Some(case) = CaseId::parse(&id)
                .map(|id| self.case(&id))
                .transpose()?
                .flatten()
            {
                cases.push(case);
            }
        }
        Ok(cases)
    }

    fn tree(&self, name: &str) -> &Tree {
        &self.trees[tree_index(name)]
    }

    /// A small value kept under the meta tree (e.g. the last digest date).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .get("meta", key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets a meta value and makes it durable.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tree("meta").insert(key, value.as_bytes())?;
        self.flush()
    }

    /// Makes everything committed so far durable, across a power loss
    /// too: sled's flush, then fsync of its files (see the module doc).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        if let Some(files) = &self.files {
            files.sync()?;
            self.syncs.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// How many flushes have fsynced the store's files since opening (a
    /// temporary store has none to sync and counts none).
    pub fn durable_flushes(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// A fresh unique number (Message-IDs, sequences).
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Whether a raw message with this hash was already handled.
    pub fn seen_content(&self, hash: &str) -> Result<bool> {
        Ok(self.get("inbound", hash.as_bytes())?.is_some())
    }

    /// How an inbound message was handled.
    pub fn inbound_record(&self, hash: &str) -> Result<Option<InboundRecord>> {
        self.get_json("inbound", hash.as_bytes())
    }

    /// A raw message by content hash (put back together if it was kept
    /// in pieces).
    pub fn raw(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.get("raw", hash.as_bytes())? {
            return Ok(Some(v.to_vec()));
        }
        if let Some(bytes) = self.read_raw_file(hash)? {
            return Ok(Some(bytes));
        }
        let mut whole: Option<Vec<u8>> = None;
        for (_, piece) in self.scan("raw_chunks", &chunk_prefix(hash))? {
            whole.get_or_insert_with(Vec::new).extend_from_slice(&piece);
        }
        Ok(whole)
    }

    /// The keys of a large raw message's pieces (none for a small one).
    pub(crate) fn raw_piece_keys(&self, hash: &[u8]) -> Result<Vec<sled::IVec>> {
        let pieces = self.scan("raw_chunks", &chunk_prefix(hash))?;
        Ok(pieces.into_iter().map(|(k, _)| k).collect())
    }

    /// The Message-ID index entry, if any.
    pub fn message(&self, message_id: &str) -> Result<Option<MsgIndex>> {
        self.get_json("msgid", message_id.as_bytes())
    }

    /// A case.
    pub fn case(&self, id: &CaseId) -> Result<Option<Case>> {
        self.get_json("cases", id.as_str().as_bytes())
    }

    /// Every case, in id order.
    pub fn cases(&self) -> Result<Vec<Case>> {
        self.scan("cases", b"")?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| Error::Permanent(format!("corrupt case record: {e}")))
            })
            .collect()
    }

    /// The event log of a case, oldest first.
    pub fn events(&self, id: &CaseId) -> Result<Vec<LogEntry>> {
        let prefix = format!("{}/", id.as_str());
        self.scan("events", prefix.as_bytes())?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| Error::Permanent(format!("corrupt event: {e}")))
            })
            .collect()
    }

    /// The open case of a sender.
    pub fn open_case_of_sender_id(&self, address: &str) -> Result<Option<CaseId>> {
        Ok(self
            .get("by_sender", address.to_lowercase().as_bytes())?
            .and_then(|v| CaseId::parse(&String::from_utf8_lossy(&v))))
    }

    /// The open case of an account username.
    pub fn open_case_of_username(&self, username: &str) -> Result<Option<CaseId>> {
        Ok(self
            .get("by_username", username.to_lowercase().as_bytes())?
            .and_then(|v| CaseId::parse(&String::from_utf8_lossy(&v))))
    }

    /// How many open cases were created before this one.
    pub fn queue_position(&self, case: &Case) -> Result<usize> {
        // Only cases opened strictly earlier are ahead: cases opened in the
        // same second (one batch) would otherwise be ordered by id, and a
        // requester told "none ahead" could later read "1 ahead".
        let opened = (case.created_at.max(0) as u64).to_be_bytes();
        let mut order = self.open_order.lock().unwrap_or_else(|e| e.into_inner());
        let order = match &mut *order {
            Some(order) => order,
            empty => empty.insert(
                self.scan("open", b"")?
                    .into_iter()
                    .map(|(k, _)| k.to_vec())
                    .collect(),
            ),
        };
        Ok(order.partition_point(|key| key[..8] < opened[..]))
    }

    /// Keeps the in-memory open order in step with a committed case change.
    fn note_open_change(&self, case: &Case, previous: Option<&Case>) {
        apply_open_changes(&self.open_order, &[open_change(case, previous)]);
    }

    /// Number of open cases (a counter kept by [`Store::commit`]).
    pub fn open_count(&self) -> usize {
        self.get("meta", OPEN_COUNT.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0) as usize
    }

    /// A committed cursor value.
    pub fn cursor(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .get("cursor", key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The rate-limit history of an address.
    pub fn ratelimit(&self, address: &str) -> Result<Vec<i64>> {
        Ok(self
            .get_json("ratelimit", address.as_bytes())?
            .unwrap_or_default())
    }

    /// Timers due at or before `now`, grouped per case in due order.
    pub fn due_timers(&self, now: i64) -> Result<Vec<(CaseId, Vec<TimerKind>)>> {
        let mut grouped: Vec<(CaseId, Vec<TimerKind>)> = Vec::new();
        let end = (now.max(0) as u64 + 1).to_be_bytes();
        for key in self.tree("timers").range(..end.as_slice()).keys() {
            let key = key?;
            let Some((case, kind)) = parse_timer_key(&key) else {
                continue;
            };
            match grouped.iter_mut().find(|(c, _)| *c == case) {
                Some((_, kinds)) => kinds.push(kind),
                None => grouped.push((case, vec![kind])),
            }
        }
        Ok(grouped)
    }

    /// Every pending timer as (due, case, kind), soonest first.
    pub fn all_timers(&self) -> Result<Vec<(i64, CaseId, TimerKind)>> {
        let mut out = Vec::new();
        for key in self.tree("timers").iter().keys() {
            let key = key?;
            if key.len() < 8 {
                continue;
            }
            let due = u64::from_be_bytes(key[..8].try_into().unwrap_or([0; 8])) as i64;
            if let Some((case, kind)) = parse_timer_key(&key) {
                out.push((due, case, kind));
            }
        }
        Ok(out)
    }

    /// Outbox items waiting to be sent, in queue order.
    pub fn pending_outbox(&self) -> Result<Vec<OutboxItem>> {
        let mut items = Vec::new();
        for key in self.tree("outbox_pending").iter().keys() {
            if let Some(item) = self.get_json::<OutboxItem>("outbox", &key?)? {
                items.push(item);
            }
        }
        Ok(items)
    }

    /// Every outbox item of a case (sent or not).
    pub fn outbox_of(&self, case: &CaseId) -> Result<Vec<OutboxItem>> {
        Ok(self
            .outbox()?
            .into_iter()
            .filter(|i| &i.case_id == case)
            .collect())
    }

    /// Every outbox item (sent or not), in queue order.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>> {
        self.tree("outbox")
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(|e| Error::Permanent(e.to_string())))
            .collect()
    }

    /// The body of a queued message (gone once sent).
    pub fn outbox_body(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree("outbox_body")
            .get(seq.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Records a send attempt's result; a sent or failed item leaves the
    /// queue and its body is dropped.
    pub fn update_outbox(&self, item: &OutboxItem, log: Option<LogEntry>) -> Result<()> {
        let names = ["outbox", "outbox_body", "outbox_pending", "events"];
        let trees: Vec<&Tree> = names.iter().map(|n| self.tree(n)).collect();
        let value = serde_json::to_vec(item).map_err(|e| Error::Permanent(e.to_string()))?;
        let event_key = match &log {
            Some(_) => Some(event_key(&item.case_id, self.next_id()?)),
            None => None,
        };
        let log_value = log
            .map(|l| serde_json::to_vec(&l))
            .transpose()
            .map_err(|e| Error::Permanent(e.to_string()))?;
        trees
            .as_slice()
            .transaction(|t| {
                let key = item.seq.to_be_bytes();
                t[0].insert(&key, value.as_slice())?;
                if item.sent_at.is_some() || item.failed {
                    t[1].remove(&key)?;
                    t[2].remove(&key)?;
                }
                if let (Some(k), Some(v)) = (&event_key, &log_value) {
                    t[3].insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)?;
        Ok(())
    }

    /// Inbound messages handled, in total and by kind.
    pub fn inbound_counts(
        &self,
    ) -> Result<(usize, std::collections::BTreeMap<HandledKind, usize>)> {
        let mut by_kind = std::collections::BTreeMap::new();
        let mut total = 0;
        for value in self.tree("inbound").iter().values() {
            let record: InboundRecord =
                serde_json::from_slice(&value?).map_err(|e| Error::Permanent(e.to_string()))?;
            *by_kind.entry(record.kind).or_insert(0) += 1;
            total += 1;
        }
        Ok((total, by_kind))
    }

    /// Outgoing mail: (sent, failed, pending).
    pub fn outbox_counts(&self) -> Result<(usize, usize, usize)> {
        let (mut sent, mut failed) = (0, 0);
        for value in self.tree("outbox").iter().values() {
            let item: OutboxItem =
                serde_json::from_slice(&value?).map_err(|e| Error::Permanent(e.to_string()))?;
            sent += usize::from(item.sent_at.is_some());
            failed += usize::from(item.failed);
        }
        Ok((sent, failed, self.tree("outbox_pending").len()))
    }

    /// Writes one step atomically.
    pub fn commit(&self, commit: &Commit) -> Result<()> {
        self.commit_all(std::slice::from_ref(commit))
    }

    /// Writes several steps as one atomic step, in order (so the last
    /// cursor wins): a batch's commits then cost one transaction. On a
    /// staged handle the steps join its batch instead.
    pub fn commit_all(&self, commits: &[Commit]) -> Result<()> {
        let mut encoded = Vec::with_capacity(commits.len());
        for commit in commits {
            let mut event_keys = Vec::with_capacity(commit.events.len());
            for (case, _) in &commit.events {
                event_keys.push(event_key(case, self.next_id()?));
            }
            let mut values = Encoded::new(commit)?;
            if let Some((hash, bytes)) = &commit.raw {
                if let Some(path) = self.raw_file_for(hash, bytes.len()) {
                    self.write_raw_file(&path, bytes)?;
                    values.raw_in_file = true;
                }
            }
            encoded.push((event_keys, values));
        }
        let changes: Vec<OpenChange> = commits
            .iter()
            .flat_map(|c| &c.cases)
            .map(|(case, previous)| open_change(case, previous.as_ref()))
            .collect();
        match &self.staged {
            Some(shared) => {
                let mut overlay = shared.lock().unwrap_or_else(|e| e.into_inner());
                let mut batch = InBatch {
                    overlay: &mut overlay,
                    trees: &self.trees,
                };
                for (commit, (event_keys, encoded)) in commits.iter().zip(&encoded) {
                    write_commit(&mut batch, commit, event_keys, encoded)?;
                }
                for (removed, added) in &changes {
                    overlay.note_open(removed.clone(), added.clone());
                }
            }
            None => self.commit_now(commits, &encoded)?,
        }
        apply_open_changes(&self.open_order, &changes);
        Ok(())
    }

    /// The unstaged commit: one transaction over every tree.
    fn commit_now(&self, commits: &[Commit], encoded: &[(Vec<Vec<u8>>, Encoded)]) -> Result<()> {
        let trees: Vec<&Tree> = TREES.iter().map(|n| self.tree(n)).collect();
        trees
            .as_slice()
            .transaction(|t| {
                let mut tx = InTransaction(t);
                for (commit, (event_keys, encoded)) in commits.iter().zip(encoded) {
                    write_commit(&mut tx, commit, event_keys, encoded)?;
                }
                Ok::<(), ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        tree: &str,
        key: &[u8],
    ) -> Result<Option<T>> {
        match self.get(tree, key)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| Error::Permanent(format!("corrupt {tree} record: {e}"))),
            None => Ok(None),
        }
    }
}

/// The files sled keeps under the store's folder, for fsync after its
/// flush: the log (`db`), the large values (`blobs/<lsn>`) and the two
/// folders whose entries (new blob files, snapshots) must survive too.
struct DurableFiles {
    dir: PathBuf,
    log: File,
    /// Blob files already synced: a blob is written once and never
    /// changed, so each needs one fsync.
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl DurableFiles {
    fn open(dir: &Path) -> Result<Self> {
        let log_path = dir.join("db");
        // fsync works on a read-only descriptor; sled keeps the writable one.
        let log = File::open(&log_path).map_err(|e| Error::io(&log_path, e))?;
        Ok(DurableFiles {
            dir: dir.to_path_buf(),
            log,
            synced_blobs: Mutex::default(),
        })
    }

    fn sync(&self) -> Result<()> {
        let blob_dir = self.dir.join("blobs");
        {
            let mut synced = self.synced_blobs.lock().unwrap_or_else(|e| e.into_inner());
            let mut present = HashSet::new();
            if let Ok(entries) = std::fs::read_dir(&blob_dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    if !synced.contains(&name) {
                        let path = entry.path();
                        match File::open(&path) {
                            Ok(f) => f.sync_all().map_err(|e| Error::io(&path, e))?,
                            // Collected by sled since the listing: nothing to keep.
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(Error::io(&path, e)),
                        }
                    }
                    present.insert(name);
                }
            }
            // Forget blobs sled has collected, so the set stays small.
            *synced = present;
        }
        self.log
            .sync_all()
            .map_err(|e| Error::io(self.dir.join("db"), e))?;
        sync_dir(&blob_dir)?;
        sync_dir(&self.dir)
    }
}

/// fsync on a folder makes its entries (file creations, renames) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir) {
        Ok(f) => f.sync_all().map_err(|e| Error::io(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Pre-serialised values, so the transaction closure (which sled may retry)
/// does no fallible encoding.
struct Encoded {
    /// The raw message went to a file: only its marker goes to sled.
    raw_in_file: bool,
    inbound: Vec<u8>,
    cases: Vec<Vec<u8>>,
    events: Vec<(CaseId, Vec<u8>)>,
    msgids: Vec<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
    ratelimits: Vec<Vec<u8>>,
}

impl Encoded {
    fn new(c: &Commit) -> Result<Self> {
        let enc = |v: &dyn erased::Ser| v.to_json();
        Ok(Encoded {
            raw_in_file: false,
            inbound: c
                .inbound
                .as_ref()
                .map(|(_, r)| enc(r))
                .transpose()?
                .unwrap_or_default(),
            cases: c
                .cases
                .iter()
                .map(|(case, _)| enc(case))
                .collect::<Result<_>>()?,
            events: c
                .events
                .iter()
                .map(|(id, e)| Ok((id.clone(), enc(e)?)))
                .collect::<Result<_>>()?,
            msgids: c
                .msgids
                .iter()
                .map(|(_, m)| enc(m))
                .collect::<Result<_>>()?,
            outbox: c
                .outbox
                .iter()
                .map(|(i, _)| enc(i))
                .collect::<Result<_>>()?,
            ratelimits: c
                .ratelimits
                .iter()
                .map(|(_, h)| enc(h))
                .collect::<Result<_>>()?,
        })
    }
}

mod erased {
    use crate::error::{Error, Result};

    /// Object-safe JSON encoding for the few record types.
    pub trait Ser {
        fn to_json(&self) -> Result<Vec<u8>>;
    }

    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> Result<Vec<u8>> {
            serde_json::to_vec(self)
                .map_err(|e| Error::Permanent(format!("cannot encode record: {e}")))
        }
    }
}

/// Where a commit's writes go: a sled transaction, or a staged batch
/// (which reads through to the store for what it did not write).
trait Writes {
    type Error;
    fn get(&mut self, tree: &str, key: &[u8]) -> std::result::Result<Option<IVec>, Self::Error>;
    fn insert(
        &mut self,
        tree: &str,
        key: &[u8],
        value: &[u8],
    ) -> std::result::Result<(), Self::Error>;
    fn remove(&mut self, tree: &str, key: &[u8]) -> std::result::Result<(), Self::Error>;
}

/// Writes into one transaction over every tree (in [`TREES`] order).
struct InTransaction<'a>(&'a [TransactionalTree]);

impl Writes for InTransaction<'_> {
    type Error = ConflictableTransactionError<String>;

    fn get(&mut self, tree: &str, key: &[u8]) -> std::result::Result<Option<IVec>, Self::Error> {
        Ok(self.0[tree_index(tree)].get(key)?)
    }

    fn insert(
        &mut self,
        tree: &str,
        key: &[u8],
        value: &[u8],
    ) -> std::result::Result<(), Self::Error> {
        self.0[tree_index(tree)].insert(key, value)?;
        Ok(())
    }

    fn remove(&mut self, tree: &str, key: &[u8]) -> std::result::Result<(), Self::Error> {
        self.0[tree_index(tree)].remove(key)?;
        Ok(())
    }
}

/// Writes into a staged batch, read before the trees.
struct InBatch<'a> {
    overlay: &'a mut staged::Overlay,
    trees: &'a [Tree],
}

impl Writes for InBatch<'_> {
    type Error = Error;

    fn get(&mut self, tree: &str, key: &[u8]) -> Result<Option<IVec>> {
        match self.overlay.get(tree, key) {
            Some(value) => Ok(value),
            None => Ok(self.trees[tree_index(tree)].get(key)?),
        }
    }

    fn insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.overlay.put(tree, key, Some(IVec::from(value)));
        Ok(())
    }

    fn remove(&mut self, tree: &str, key: &[u8]) -> Result<()> {
        self.overlay.put(tree, key, None);
        Ok(())
    }
}

/// One step's writes, in a transaction or a staged batch.
fn write_commit<W: Writes>(
    w: &mut W,
    commit: &Commit,
    event_keys: &[Vec<u8>],
    encoded: &Encoded,
) -> std::result::Result<(), W::Error> {
    if let Some((hash, bytes)) = &commit.raw {
        if encoded.raw_in_file {
            let len = (bytes.len() as u64).to_be_bytes();
            w.insert("raw_files", hash.as_bytes(), &len)?;
        } else if bytes.len() > RAW_CHUNK {
            for (n, piece) in bytes.chunks(RAW_CHUNK).enumerate() {
                w.insert("raw_chunks", &chunk_key(hash, n), piece)?;
            }
        } else {
            w.insert("raw", hash.as_bytes(), bytes.as_slice())?;
        }
    }
    if let Some((hash, _)) = &commit.inbound {
        w.insert("inbound", hash.as_bytes(), encoded.inbound.as_slice())?;
    }
    for ((case, previous), value) in commit.cases.iter().zip(&encoded.cases) {
        write_case(w, case, previous.as_ref(), value)?;
    }
    for (key, (_, value)) in event_keys.iter().zip(encoded.events.iter()) {
        w.insert("events", key.as_slice(), value.as_slice())?;
    }
    for ((id, _), value) in commit.msgids.iter().zip(&encoded.msgids) {
        w.insert("msgid", id.as_bytes(), value.as_slice())?;
    }
    for ((item, body), value) in commit.outbox.iter().zip(&encoded.outbox) {
        let key = item.seq.to_be_bytes();
        w.insert("outbox", &key, value.as_slice())?;
        w.insert("outbox_body", &key, body.as_slice())?;
        w.insert("outbox_pending", &key, &[])?;
    }
    for ((address, _), value) in commit.ratelimits.iter().zip(&encoded.ratelimits) {
        w.insert("ratelimit", address.as_bytes(), value.as_slice())?;
    }
    if let Some((key, value)) = &commit.cursor {
        w.insert("cursor", key.as_bytes(), value.as_bytes())?;
    }
    Ok(())
}

fn write_case<W: Writes>(
    w: &mut W,
    case: &Case,
    previous: Option<&Case>,
    value: &[u8],
) -> std::result::Result<(), W::Error> {
    let id = case.id.as_str();
    w.insert("cases", id.as_bytes(), value)?;
    // The index holds a case's current addresses and username only, so
    // erasing a case (which removes these keys) leaves none of them behind.
    let keys = history_keys(case);
    for old in previous.map(history_keys).unwrap_or_default() {
        if !keys.contains(&old) {
            w.remove("history", &old)?;
        }
    }
    for key in &keys {
        w.insert("history", key, &[])?;
    }
    let was_open = previous.is_some_and(|p| p.state.is_open());
    if was_open != case.state.is_open() {
        let current = w
            .get("meta", OPEN_COUNT.as_bytes())?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let next = if case.state.is_open() {
            current + 1
        } else {
            current.saturating_sub(1)
        };
        w.insert("meta", OPEN_COUNT.as_bytes(), &next.to_be_bytes())?;
    }
    if let Some(prev) = previous {
        for (kind, due) in &prev.timers {
            w.remove("timers", &timer_key(*due, &prev.id, *kind))?;
        }
        for address in prev.requesters() {
            if w.get("by_sender", address.as_bytes())?.as_deref() == Some(id.as_bytes()) {
                w.remove("by_sender", address.as_bytes())?;
            }
        }
        if let Some(username) = &prev.fields.username {
            let key = username.to_lowercase();
            if w.get("by_username", key.as_bytes())?.as_deref() == Some(id.as_bytes()) {
                w.remove("by_username", key.as_bytes())?;
            }
        }
        w.remove("open", &open_key(prev))?;
    }
    for (kind, due) in &case.timers {
        w.insert("timers", &timer_key(*due, &case.id, *kind), &[])?;
    }
    if case.state.is_open() {
        for address in case.requesters() {
            w.insert("by_sender", address.as_bytes(), id.as_bytes())?;
        }
        if let Some(username) = &case.fields.username {
            w.insert(
                "by_username",
                username.to_lowercase().as_bytes(),
                id.as_bytes(),
            )?;
        }
        w.insert("open", &open_key(case), &[])?;
    }
    Ok(())
}

/// How long an open waits for a store that another handle is letting go of.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled at `path`, waiting out a lock that is being released.
///
/// sled gives its file lock back only when its background threads let go
/// of the file, a moment after the last handle was dropped: `run` right
/// after a probe of the store, or a restart, would otherwise fail with
/// "could not acquire lock" now and then (seen under load). A lock held
/// for longer (a running daemon) is still refused after [`LOCK_WAIT`].
fn open_db(path: &Path, cache_bytes: u64) -> Result<Db> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open();
        match opened {
            Err(e) if lock_held(&e) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return Ok(other?),
        }
    }
}

/// True when sled could not take the store's file lock: another handle
/// (usually a running daemon) has it. sled reports it as an `Other` I/O
/// error whose text carries the `WouldBlock` of the lock call.
pub(crate) fn lock_held(error: &sled::Error) -> bool {
    match error {
        sled::Error::Io(e) => {
            e.kind() == std::io::ErrorKind::WouldBlock
                || e.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

fn chunk_prefix(hash: impl AsRef<[u8]>) -> Vec<u8> {
    let mut key = hash.as_ref().to_vec();
    key.push(b'/');
    key
}

/// Pieces sort in order: the number is big-endian.
fn chunk_key(hash: &str, n: usize) -> Vec<u8> {
    let mut key = chunk_prefix(hash);
    key.extend_from_slice(&(n as u32).to_be_bytes());
    key
}

/// `history` keys: a kind byte (`a` address, `u` username), the value
/// lower-cased, then the case id, NUL-separated (neither contains NUL).
fn history_prefix(kind: u8, value: &str) -> Vec<u8> {
    let mut key = vec![kind, 0];
    key.extend_from_slice(value.to_lowercase().as_bytes());
    key.push(0);
    key
}

/// Every `history` key of a case: one per requester address and username.
pub(crate) fn history_keys(case: &Case) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = case
        .requesters()
        .map(|a| history_prefix(b'a', a))
        .chain(case.fields.username.iter().map(|u| history_prefix(b'u', u)))
        .collect();
    for key in &mut keys {
        key.extend_from_slice(case.id.as_str().as_bytes());
    }
    keys
}

/// How a case change moves it in the open order.
fn open_change(case: &Case, previous: Option<&Case>) -> OpenChange {
    (
        previous.map(open_key),
        case.state.is_open().then(|| open_key(case)),
    )
}

/// Applies open-order changes to a loaded order (an order not loaded yet
/// is read from the tree when first needed).
fn apply_open_changes(order: &OpenOrder, changes: &[OpenChange]) {
    let mut order = order.lock().unwrap_or_else(|e| e.into_inner());
    let Some(order) = order.as_mut() else {
        return;
    };
    for (removed, added) in changes {
        if let Some(key) = removed {
            if let Ok(at) = order.binary_search(key) {
                order.remove(at);
            }
        }
        if let Some(key) = added {
            if let Err(at) = order.binary_search(key) {
                order.insert(at, key.clone());
            }
        }
    }
}

fn open_key(case: &Case) -> Vec<u8> {
    let mut key = (case.created_at.max(0) as u64).to_be_bytes().to_vec();
    key.extend_from_slice(case.id.as_str().as_bytes());
    key
}

fn timer_key(due: i64, case: &CaseId, kind: TimerKind) -> Vec<u8> {
    let mut key = (due.max(0) as u64).to_be_bytes().to_vec();
    key.extend_from_slice(case.as_str().as_bytes());
    key.push(b'/');
    key.extend_from_slice(kind.as_str().as_bytes());
    key
}

fn parse_timer_key(key: &[u8]) -> Option<(CaseId, TimerKind)> {
    let rest = std::str::from_utf8(key.get(8..)?).ok()?;
    let (case, kind) = rest.split_once('/')?;
    Some((CaseId::parse(case)?, TimerKind::parse(kind)?))
}

fn event_key(case: &CaseId, seq: u64) -> Vec<u8> {
    let mut key = format!("{}/", case.as_str()).into_bytes();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn tx_error(e: TransactionError<String>) -> Error {
    match e {
        TransactionError::Abort(msg) => Error::Permanent(msg),
        TransactionError::Storage(e) => Error::Store(e),
    }
}

impl ThreadLookup for Store {
    fn case_of_message(&self, message_id: &str) -> Result<Option<(CaseId, Role)>> {
        Ok(self.message(message_id)?.map(|m| (m.case_id, m.role)))
    }

    fn is_our_message(&self, message_id: &str) -> Result<bool> {
        Ok(self
            .message(message_id)?
            .is_some_and(|m| m.direction == Direction::Out))
    }

    fn case_exists(&self, case: &CaseId) -> Result<bool> {
        Ok(self.get("cases", case.as_str().as_bytes())?.is_some())
    }

    fn is_participant(&self, case: &CaseId, address: &str) -> Result<bool> {
        Ok(self
            .case(case)?
            .is_some_and(|c| c.requesters().any(|r| r.eq_ignore_ascii_case(address))))
    }

    fn open_case_of_sender(&self, address: &str) -> Result<Option<CaseId>> {
        self.open_case_of_sender_id(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::CaseState;

    fn case(id: &str, created: i64) -> Case {
        let mut c = Case::new(CaseId::parse(id).unwrap(), "jo@example.org", created);
        c.state = CaseState::AwaitingStaff;
        c
    }

    fn save(store: &Store, case: &Case, previous: Option<&Case>) {
        let commit = Commit {
            cases: vec![(case.clone(), previous.cloned())],
            ..Commit::default()
        };
        store.commit(&commit).unwrap();
    }

    #[test]
    fn a_flush_fsyncs_every_large_value_file_sled_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store.durable_flushes();
        // Large enough for sled to keep it as a blob file of its own (a
        // raw message no longer is one: it is kept in small pieces; a
        // large outbox body still is).
        let big = vec![b'x'; 2 * 1024 * 1024];
        store
            .tree("outbox_body")
            .insert(0u64.to_be_bytes(), big)
            .unwrap();
        store.flush().unwrap();
        assert_eq!(store.durable_flushes(), before + 1);
        let blobs: HashSet<OsString> = std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(!blobs.is_empty(), "the value went to a blob file");
        let files = store.files.as_ref().unwrap();
        let synced = files.synced_blobs.lock().unwrap();
        assert!(blobs.is_subset(&synced), "{blobs:?} not all in {synced:?}");
    }

    #[test]
    fn a_batch_commits_every_step_with_the_last_cursor() {
        let store = Store::temporary().unwrap();
        let step = |n: u8| Commit {
            raw: Some((format!("h{n}"), vec![n].into())),
            cursor: Some(("imap".into(), format!("uid {n}"))),
            ..Commit::default()
        };
        store.commit_all(&[step(1), step(2), step(3)]).unwrap();
        for n in 1..=3u8 {
            assert_eq!(store.raw(&format!("h{n}")).unwrap(), Some(vec![n]));
        }
        assert_eq!(store.cursor("imap").unwrap().as_deref(), Some("uid 3"));
    }

    #[test]
    fn an_open_waits_for_a_lock_being_let_go_and_refuses_one_held_on() {
        let dir = tempfile::tempdir().unwrap();
        let held = Store::open(dir.path()).unwrap();
        let path = dir.path().to_path_buf();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            drop(held);
        });
        // Opened while the other handle still holds the lock.
        let store = Store::open(&path).expect("the open waits for the lock");
        release.join().unwrap();
        let started = std::time::Instant::now();
        let err = Store::open(&path).err().expect("a lock held on is refused");
        assert!(err.to_string().contains("lock"), "{err}");
        assert!(started.elapsed() >= LOCK_WAIT, "{:?}", started.elapsed());
        drop(store);
    }

    #[test]
    fn a_schema_1_store_is_marked_3_on_open_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let version = |v: u32| {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("schema_version", &v.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        };
        version(1);
        {
            let store = Store::open(dir.path()).unwrap();
            let found = store.tree("meta").get("schema_version").unwrap().unwrap();
            assert_eq!(found.as_ref(), &3u32.to_be_bytes());
        }
        version(4);
        let err = Store::open(dir.path())
            .err()
            .expect("a newer schema is refused");
        assert!(err.to_string().contains("schema version 4"), "{err}");
    }

    #[test]
    fn a_large_raw_message_is_kept_in_small_pieces_and_read_back_whole() {
        let store = Store::temporary().unwrap();
        let large: Vec<u8> = (0..(3 * RAW_CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let small = b"From: a@b\r\n\r\nhi\r\n".to_vec();
        store
            .commit_all(&[
                Commit {
                    raw: Some(("large".into(), large.clone().into())),
                    ..Commit::default()
                },
                Commit {
                    raw: Some(("small".into(), small.clone().into())),
                    ..Commit::default()
                },
            ])
            .unwrap();
        assert_eq!(store.raw("large").unwrap(), Some(large));
        assert_eq!(store.raw("small").unwrap(), Some(small));
        assert_eq!(store.raw("absent").unwrap(), None);
        for name in ["raw", "raw_chunks"] {
            for value in store.tree(name).iter().values() {
                let len = value.unwrap().len();
                assert!(len <= RAW_CHUNK, "a {len}-byte value in {name}");
            }
        }
        assert_eq!(store.tree("raw_chunks").len(), 4);
    }

    #[test]
    fn a_large_raw_message_makes_no_blob_file_that_the_cache_would_keep() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let large: Vec<u8> = (0..10_000_000u32).map(|i| (i % 253) as u8).collect();
        store
            .commit(&Commit {
                raw: Some(("large".into(), large.clone().into())),
                ..Commit::default()
            })
            .unwrap();
        store.flush().unwrap();
        let blobs = std::fs::read_dir(dir.path().join("blobs"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        // A message this large is now a file of its own (raw_files.rs).
        assert_eq!(blobs, 0, "leaves of pieces stay inline in sled's log");
        assert_eq!(store.raw("large").unwrap(), Some(large));
    }

    #[test]
    fn a_temporary_store_has_nothing_to_fsync() {
        let store = Store::temporary().unwrap();
        store.flush().unwrap();
        assert_eq!(store.durable_flushes(), 0);
    }

    #[test]
    fn queue_positions_count_the_open_cases_created_earlier() {
        let store = Store::temporary().unwrap();
        let (a, b, c) = (
            case("RD-AAAAAA", 10),
            case("RD-BBBBBB", 20),
            case("RD-CCCCCC", 30),
        );
        for x in [&a, &b] {
            save(&store, x, None);
        }
        // Not yet saved, newest: everything open is ahead of it.
        assert_eq!(store.queue_position(&c).unwrap(), 2);
        save(&store, &c, None);
        assert_eq!(store.open_count(), 3);
        assert_eq!(store.queue_position(&a).unwrap(), 0);
        assert_eq!(store.queue_position(&b).unwrap(), 1);
        assert_eq!(store.queue_position(&c).unwrap(), 2);
        let mut closed = b.clone();
        closed.state = CaseState::Closed;
        save(&store, &closed, Some(&b));
        assert_eq!(store.open_count(), 2);
        assert_eq!(store.queue_position(&c).unwrap(), 1);
        // Saving an open case again does not count it twice.
        save(&store, &c, Some(&c));
        assert_eq!(store.open_count(), 2);
    }

    #[test]
    fn a_case_opened_in_the_same_second_is_never_ahead() {
        let store = Store::temporary().unwrap();
        let (later, earlier_id) = (case("RD-9PYDHQ", 10), case("RD-6QCYEX", 10));
        save(&store, &later, None);
        assert_eq!(store.queue_position(&later).unwrap(), 0);
        // Opened in the same pass, with an id that sorts first.
        save(&store, &earlier_id, None);
        assert_eq!(store.queue_position(&later).unwrap(), 0);
        assert_eq!(store.queue_position(&earlier_id).unwrap(), 0);
    }

    #[test]
    fn the_history_index_finds_closed_cases_by_address_and_username_and_follows_changes() {
        let store = Store::temporary().unwrap();
        let ids = |cases: Vec<Case>| cases.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
        let mut closed = case("RD-AAAAAA", 10);
        closed.fields.username = Some("Alice".into());
        closed.state = CaseState::Closed;
        save(&store, &closed, None);
        let other = case("RD-BBBBBB", 20);
        let mut other = Case::new(other.id, "sam@example.org", 20);
        other.fields.username = Some("bob".into());
        save(&store, &other, None);
        assert_eq!(
            ids(store.cases_of("JO@example.org", None).unwrap()),
            ["RD-AAAAAA"]
        );
        assert_eq!(
            ids(store.cases_of("x@example.org", Some("alice")).unwrap()),
            ["RD-AAAAAA"]
        );
        assert_eq!(
            ids(store.cases_of("jo@example.org", Some("bob")).unwrap()),
            ["RD-AAAAAA", "RD-BBBBBB"]
        );
        // A corrected username replaces the old one in the index.
        let mut renamed = other.clone();
        renamed.fields.username = Some("robert".into());
        save(&store, &renamed, Some(&other));
        assert!(store
            .cases_of("x@example.org", Some("bob"))
            .unwrap()
            .is_empty());
        assert_eq!(
            ids(store.cases_of("x@example.org", Some("robert")).unwrap()),
            ["RD-BBBBBB"]
        );
    }

    #[test]
    fn a_store_from_before_the_history_index_is_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            save(&store, &case("RD-AAAAAA", 10), None);
            // As an older build left it: no index, no marker.
            store.tree("history").clear().unwrap();
            store.tree("meta").remove(HISTORY_INDEXED).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.cases_of("jo@example.org", None).unwrap().len(), 1);
    }
}
