//! Group commit: a batch's writes held in memory, read before the store,
//! and written to sled in one transaction at the end of the batch.
//!
//! The worker handles a batch on a staged handle ([`Store::staged`]):
//! each message's [`Store::commit`] runs the same write logic as an
//! unstaged commit, but against this overlay, so a later message of the
//! batch sees everything an earlier one did (a case it opened, its
//! Message-ID, its rate-limit count, its content-hash marker). The other
//! handles on the store see none of it until [`Store::commit_staged`];
//! a staged handle dropped without that (a store error mid-batch) leaves
//! the store as it was, and the batch is fetched again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sled::transaction::ConflictableTransactionError;
use sled::{IVec, Transactional, Tree};

use super::{tree_index, tx_error, OpenChange, OpenOrder, Store, TREES};
use crate::error::Result;

/// The writes of the commits staged so far.
pub(super) struct Overlay {
    /// Per tree (in [`TREES`] order): key → value, or `None` for removed.
    writes: Vec<BTreeMap<Vec<u8>, Option<IVec>>>,
    /// Open-order changes (key removed, key added), replayed on the base
    /// handle's order once committed.
    open_changes: Vec<OpenChange>,
    /// The open order of the handle that staged, kept in step on commit.
    base_order: OpenOrder,
    /// Raw-message files written for the batch, fsynced before its commit.
    files: Vec<PathBuf>,
}

impl Overlay {
    pub(super) fn new(base_order: OpenOrder) -> Self {
        Overlay {
            writes: vec![BTreeMap::new(); TREES.len()],
            open_changes: Vec::new(),
            base_order,
            files: Vec::new(),
        }
    }

    /// What the batch wrote under `key`: `Some(None)` for a removal,
    /// `None` when the batch did not touch it.
    pub(super) fn get(&self, tree: &str, key: &[u8]) -> Option<Option<IVec>> {
        self.writes[tree_index(tree)].get(key).cloned()
    }

    pub(super) fn put(&mut self, tree: &str, key: &[u8], value: Option<IVec>) {
        self.writes[tree_index(tree)].insert(key.to_vec(), value);
    }

    pub(super) fn note_file(&mut self, path: PathBuf) {
        self.files.push(path);
    }

    pub(super) fn note_open(&mut self, removed: Option<Vec<u8>>, added: Option<Vec<u8>>) {
        self.open_changes.push((removed, added));
    }

    /// The batch's writes under `prefix` laid over the store's entries.
    fn merge_prefix(&self, tree: &str, prefix: &[u8], base: &mut BTreeMap<IVec, IVec>) {
        let writes = &self.writes[tree_index(tree)];
        for (key, value) in writes.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            match value {
                Some(v) => base.insert(IVec::from(key.as_slice()), v.clone()),
                None => base.remove(key.as_slice()),
            };
        }
    }

    /// Whether the batch wrote anything under `prefix`.
    fn touches(&self, tree: &str, prefix: &[u8]) -> bool {
        let writes = &self.writes[tree_index(tree)];
        writes
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|(key, _)| key.starts_with(prefix))
    }

    fn is_empty(&self) -> bool {
        self.writes.iter().all(BTreeMap::is_empty) && self.files.is_empty()
    }
}

/// A shared overlay (the staged handle's clones share one batch).
pub(super) type Shared = Arc<Mutex<Overlay>>;

impl Store {
    /// A handle whose commits are held back and read before the store
    /// until [`Store::commit_staged`] writes them in one transaction. The
    /// handle this is called on sees none of them before that. Staging a
    /// staged handle returns the same batch.
    pub fn staged(&self) -> Store {
        if self.staged.is_some() {
            return self.clone();
        }
        let order = self.open_order.lock().unwrap_or_else(|e| e.into_inner());
        let copy = order.clone();
        drop(order);
        Store {
            staged: Some(Arc::new(Mutex::new(Overlay::new(self.open_order.clone())))),
            open_order: Arc::new(Mutex::new(copy)),
            ..self.clone()
        }
    }

    /// Writes everything staged on this handle in one sled transaction
    /// (not yet durable: [`Store::flush`] is) and starts a fresh batch.
    /// Returns how many keys were written or removed; an unstaged handle
    /// has nothing to write.
    pub fn commit_staged(&self) -> Result<usize> {
        let Some(shared) = &self.staged else {
            return Ok(0);
        };
        let mut overlay = shared.lock().unwrap_or_else(|e| e.into_inner());
        if overlay.is_empty() {
            return Ok(0);
        }
        // The files the batch's markers name are durable before the markers.
        super::raw_files::sync_files(&overlay.files)?;
        overlay.files.clear();
        let trees: Vec<&Tree> = TREES.iter().map(|n| self.tree(n)).collect();
        trees
            .as_slice()
            .transaction(|t| {
                for (tx, writes) in t.iter().zip(&overlay.writes) {
                    for (key, value) in writes {
                        match value {
                            Some(v) => tx.insert(key.as_slice(), v.clone())?,
                            None => tx.remove(key.as_slice())?,
                        };
                    }
                }
                Ok::<(), ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)?;
        let written = overlay.writes.iter().map(BTreeMap::len).sum();
        let changes = std::mem::take(&mut overlay.open_changes);
        super::apply_open_changes(&overlay.base_order, &changes);
        for writes in &mut overlay.writes {
            writes.clear();
        }
        Ok(written)
    }

    /// One value, as this handle sees it (the batch first).
    pub(super) fn get(&self, tree: &str, key: &[u8]) -> Result<Option<IVec>> {
        if let Some(shared) = &self.staged {
            let overlay = shared.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(value) = overlay.get(tree, key) {
                return Ok(value);
            }
        }
        Ok(self.tree(tree).get(key)?)
    }

    /// The entries under `prefix`, in key order, as this handle sees them.
    pub(super) fn scan(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(IVec, IVec)>> {
        let entries = self.tree(tree).scan_prefix(prefix);
        // Without batch writes under the prefix, no merge (and no second
        // copy of every case for `cases()`).
        let Some(shared) = self.staged.as_ref().filter(|s| {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .touches(tree, prefix)
        }) else {
            return entries.map(|e| e.map_err(Into::into)).collect();
        };
        let mut merged = BTreeMap::new();
        for entry in entries {
            let (k, v) = entry?;
            merged.insert(k, v);
        }
        let overlay = shared.lock().unwrap_or_else(|e| e.into_inner());
        overlay.merge_prefix(tree, prefix, &mut merged);
        Ok(merged.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Case, CaseState};
    use crate::domain::CaseId;
    use crate::domain::HandledKind;
    use crate::store::{Commit, InboundRecord};

    fn open_case(id: &str, from: &str, created: i64) -> Case {
        let mut c = Case::new(CaseId::parse(id).unwrap(), from, created);
        c.state = CaseState::AwaitingStaff;
        c
    }

    fn step(hash: &str, case: Option<(&Case, Option<&Case>)>, cursor: &str) -> Commit {
        Commit {
            raw: Some((hash.into(), hash.as_bytes().to_vec().into())),
            inbound: Some((
                hash.into(),
                InboundRecord {
                    message_id: format!("<{hash}@example.org>"),
                    case_id: case.map(|(c, _)| c.id.clone()),
                    kind: HandledKind::Human,
                    received_at: 10,
                    source_id: hash.into(),
                    notes: Vec::new(),
                },
            )),
            cases: case
                .map(|(c, p)| vec![(c.clone(), p.cloned())])
                .unwrap_or_default(),
            cursor: Some(("src".into(), cursor.into())),
            ..Commit::default()
        }
    }

    #[test]
    fn a_staged_batch_is_seen_by_its_own_handle_only_until_committed() {
        let store = Store::temporary().unwrap();
        let first = open_case("RD-AAAAAA", "jo@example.org", 10);
        let staged = store.staged();
        let mut first_step = step("h1", Some((&first, None)), "1");
        first_step.ratelimits = vec![("jo@example.org".into(), vec![5])];
        staged.commit(&first_step).unwrap();
        // A later message of the batch sees what the first one did.
        assert!(staged.seen_content("h1").unwrap());
        assert_eq!(staged.ratelimit("jo@example.org").unwrap(), vec![5]);
        assert!(store.ratelimit("jo@example.org").unwrap().is_empty());
        assert_eq!(staged.raw("h1").unwrap(), Some(b"h1".to_vec()));
        assert_eq!(
            staged.open_case_of_sender_id("JO@example.org").unwrap(),
            Some(first.id.clone())
        );
        assert_eq!(staged.open_count(), 1);
        assert_eq!(staged.cases().unwrap().len(), 1);
        let second = open_case("RD-BBBBBB", "al@example.org", 20);
        assert_eq!(staged.queue_position(&second).unwrap(), 1);
        // The store itself sees nothing yet.
        assert!(!store.seen_content("h1").unwrap());
        assert_eq!(
            store.open_case_of_sender_id("jo@example.org").unwrap(),
            None
        );
        assert_eq!(store.open_count(), 0);
        assert_eq!(store.queue_position(&second).unwrap(), 0);
        assert_eq!(store.cursor("src").unwrap(), None);
        assert!(staged.commit_staged().unwrap() > 0);
        assert!(store.seen_content("h1").unwrap());
        assert_eq!(store.cursor("src").unwrap().as_deref(), Some("1"));
        assert_eq!(store.open_count(), 1);
        assert_eq!(store.queue_position(&second).unwrap(), 1);
        assert_eq!(
            staged.commit_staged().unwrap(),
            0,
            "the batch starts afresh"
        );
    }

    #[test]
    fn a_later_step_of_a_batch_changes_what_an_earlier_one_wrote() {
        let store = Store::temporary().unwrap();
        let staged = store.staged();
        let opened = open_case("RD-AAAAAA", "jo@example.org", 10);
        let mut closed = opened.clone();
        closed.state = CaseState::Closed;
        staged
            .commit(&step("h1", Some((&opened, None)), "1"))
            .unwrap();
        staged
            .commit(&step("h2", Some((&closed, Some(&opened))), "2"))
            .unwrap();
        // The index entry the first step wrote is gone again.
        assert_eq!(
            staged.open_case_of_sender_id("jo@example.org").unwrap(),
            None
        );
        assert_eq!(staged.open_count(), 0);
        staged.commit_staged().unwrap();
        assert_eq!(
            store.open_case_of_sender_id("jo@example.org").unwrap(),
            None
        );
        assert_eq!(store.open_count(), 0);
        assert_eq!(
            store.case(&opened.id).unwrap().unwrap().state,
            CaseState::Closed
        );
        assert_eq!(
            store.cursor("src").unwrap().as_deref(),
            Some("2"),
            "the last cursor wins"
        );
    }

    #[test]
    fn a_staged_batch_dropped_before_its_commit_leaves_the_store_as_it_was() {
        let store = Store::temporary().unwrap();
        let kept = open_case("RD-AAAAAA", "jo@example.org", 10);
        store.commit(&step("h0", Some((&kept, None)), "0")).unwrap();
        assert_eq!(
            store
                .queue_position(&open_case("RD-ZZZZZZ", "z@x", 99))
                .unwrap(),
            1
        );
        {
            let staged = store.staged();
            let other = open_case("RD-BBBBBB", "al@example.org", 20);
            staged
                .commit(&step("h1", Some((&other, None)), "1"))
                .unwrap();
            assert_eq!(staged.open_count(), 2);
        }
        assert!(!store.seen_content("h1").unwrap());
        assert_eq!(store.cursor("src").unwrap().as_deref(), Some("0"));
        assert_eq!(store.open_count(), 1);
        assert_eq!(
            store
                .queue_position(&open_case("RD-ZZZZZZ", "z@x", 99))
                .unwrap(),
            1
        );
    }
}
