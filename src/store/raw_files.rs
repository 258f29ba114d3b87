//! Large raw messages as files of their own in the store's folder
//! (`raw/<content hash>`), named in sled by a marker (`raw_files`: hash →
//! length) that is committed only once the file and the folder are
//! fsynced.
//!
//! sled copies a value through its transaction, its write buffers and its
//! log, and a batch staged for group commit would hold it until the batch
//! ends: a 10 MB message cost several copies of itself in memory. A file
//! is written straight from the bytes in hand and read back in pieces.
//!
//! A file whose marker never committed (a crash mid-batch) or whose marker
//! was removed (retention, erasure) before the file was deleted is removed
//! when the store is next opened. A temporary store (replay, tests) has no
//! folder and keeps every message in sled.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use super::{chunk_key, Store, RAW_CHUNK};
use crate::error::{Error, Result};

/// Raw messages from this size on are kept as files. Smaller ones stay in
/// sled (in 4 KiB pieces above 4 KiB), where a batch of them costs no
/// file creation.
pub(super) const RAW_FILE_MIN: usize = 64 * 1024;

/// The folder of raw files inside the store's folder.
const DIR: &str = "raw";

impl Store {
    /// The raw-file folder; `None` for a temporary store.
    fn raw_dir(&self) -> Option<PathBuf> {
        self.files.as_ref().map(|f| f.dir.join(DIR))
    }

    /// The file a raw message is kept in, when it is large enough and the
    /// store has a folder. Only a hash that is a plain file name (content
    /// hashes are hex) qualifies.
    pub(super) fn raw_file_for(&self, hash: &str, len: usize) -> Option<PathBuf> {
        let plain = !hash.is_empty()
            && hash.len() <= 128
            && hash.bytes().all(|b| b.is_ascii_alphanumeric());
        if len < RAW_FILE_MIN || !plain {
            return None;
        }
        Some(self.raw_dir()?.join(hash))
    }

    /// Writes a raw message's file (beside it first, then renamed, so a
    /// reader never sees half of it). It is fsynced, with its folder,
    /// before the commit that names it: at once on an unstaged handle, by
    /// [`Store::commit_staged`] on a staged one (one folder fsync a batch).
    pub(super) fn write_raw_file(&self, path: &std::path::Path, bytes: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(path);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let partial = path.with_extension("partial");
        let mut file = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&partial, e))?;
        std::fs::rename(&partial, path).map_err(|e| Error::io(path, e))?;
        match &self.staged {
            Some(shared) => {
                let mut overlay = shared.lock().unwrap_or_else(|e| e.into_inner());
                overlay.note_file(path.to_path_buf());
            }
            None => sync_files(std::slice::from_ref(&path.to_path_buf()))?,
        }
        Ok(())
    }

    /// A raw message kept as a file, whole; `None` when it has no file.
    pub(super) fn read_raw_file(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let Some(mut file) = self.open_raw_file(hash)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(self.raw_path(hash), e))?;
        Ok(Some(bytes))
    }

    /// The open file of a raw message that has a committed marker, to
    /// read it in pieces; `None` when it has no file.
    pub(crate) fn open_raw_file(&self, hash: &str) -> Result<Option<File>> {
        if self.get("raw_files", hash.as_bytes())?.is_none() {
            return Ok(None);
        }
        let path = self.raw_path(hash);
        match File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Every file-kept raw message as the `raw_chunks` entries it would
    /// be in sled (key, 4 KiB piece), read a piece at a time: a backup or
    /// a shadow copy carries them so, and needs no files of its own.
    pub(super) fn each_raw_file_piece(
        &self,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut piece = vec![0u8; RAW_CHUNK];
        for entry in self.tree("raw_files").iter() {
            let (hash, _) = entry?;
            let hash = String::from_utf8_lossy(&hash).into_owned();
            let Some(file) = self.open_raw_file(&hash)? else {
                continue;
            };
            let mut reader = std::io::BufReader::new(file);
            for n in 0.. {
                let got = fill(&mut reader, &mut piece)
                    .map_err(|e| Error::io(self.raw_path(&hash), e))?;
                if got == 0 {
                    break;
                }
                each(&chunk_key(&hash, n), &piece[..got])?;
                if got < RAW_CHUNK {
                    break;
                }
            }
        }
        Ok(())
    }

    fn raw_path(&self, hash: &str) -> PathBuf {
        self.raw_dir().unwrap_or_default().join(hash)
    }

    /// Deletes the files of raw messages whose markers are gone (call
    /// after the removal is flushed: a crash before then keeps the file
    /// its marker still names).
    pub(crate) fn remove_raw_files<'a>(&self, hashes: impl IntoIterator<Item = &'a [u8]>) {
        let Some(dir) = self.raw_dir() else { return };
        for hash in hashes {
            let name = String::from_utf8_lossy(hash);
            if self.raw_file_for(&name, RAW_FILE_MIN).is_none() {
                continue;
            }
            let path = dir.join(name.as_ref());
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error.message = %e, "a removed message's file is left; it goes when the store is next opened");
                }
            }
        }
    }

    /// Removes files no committed marker names (see the module doc).
    pub(super) fn sweep_raw_files(&self) -> Result<usize> {
        let Some(dir) = self.raw_dir() else {
            return Ok(0);
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.tree("raw_files").contains_key(name.as_bytes())? {
                continue;
            }
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// fsync on each file, then on their folders.
pub(super) fn sync_files(paths: &[PathBuf]) -> Result<()> {
    let mut dirs: Vec<&std::path::Path> = Vec::new();
    for path in paths {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(path, e))?;
        if let Some(dir) = path.parent() {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    for dir in dirs {
        super::sync_dir(dir)?;
    }
    Ok(())
}

/// Reads until `buf` is full or the end; returns how much was read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Case, CaseState};
    use crate::domain::{CaseId, HandledKind};
    use crate::store::{Commit, EraseTarget, InboundRecord};

    const NOW: i64 = 1_800_000_000;

    fn large(seed: u8) -> Vec<u8> {
        let mut raw = b"From: jo@example.org\r\nSubject: scan\r\n\r\n".to_vec();
        raw.extend((0..200_000u32).map(|i| b'a' + ((i as u8).wrapping_add(seed) % 26)));
        raw
    }

    fn keep(hash: &str, raw: Vec<u8>, case: Option<&Case>) -> Commit {
        Commit {
            raw: Some((hash.into(), raw.into())),
            inbound: Some((
                hash.into(),
                InboundRecord {
                    message_id: format!("<{hash}@example.org>"),
                    case_id: case.map(|c| c.id.clone()),
                    kind: HandledKind::Human,
                    received_at: NOW,
                    source_id: hash.into(),
                    notes: Vec::new(),
                },
            )),
            cases: case.map(|c| vec![(c.clone(), None)]).unwrap_or_default(),
            ..Commit::default()
        }
    }

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join(DIR))
            .map(|e| e.count())
            .unwrap_or(0)
    }

    #[test]
    fn a_large_message_is_a_file_named_in_sled_only_by_the_batch_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let staged = store.staged();
        let raw = large(0);
        staged.commit(&keep("abc1", raw.clone(), None)).unwrap();
        assert_eq!(files(dir.path()), 1, "written while the batch runs");
        assert_eq!(staged.raw("abc1").unwrap().as_ref(), Some(&raw));
        assert_eq!(
            store.raw("abc1").unwrap(),
            None,
            "not named before the commit"
        );
        staged.commit_staged().unwrap();
        store.flush().unwrap();
        assert_eq!(store.raw("abc1").unwrap(), Some(raw));
        for tree in ["raw", "raw_chunks"] {
            assert!(store.tree(tree).is_empty(), "no copy in {tree}");
        }
        // A small message stays in sled.
        store
            .commit(&keep("small", b"From: a@b\r\n\r\nhi\r\n".to_vec(), None))
            .unwrap();
        assert_eq!(files(dir.path()), 1);
    }

    #[test]
    fn a_file_no_commit_names_is_removed_when_the_store_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.commit(&keep("kept1", large(1), None)).unwrap();
            store.flush().unwrap();
            // A crash mid-batch: the file is written, its marker never committed.
            let staged = store.staged();
            staged.commit(&keep("lost1", large(2), None)).unwrap();
            assert_eq!(files(dir.path()), 2);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(files(dir.path()), 1);
        assert_eq!(store.raw("kept1").unwrap(), Some(large(1)));
        assert_eq!(store.raw("lost1").unwrap(), None);
    }

    #[test]
    fn a_backup_and_a_shadow_copy_carry_a_message_kept_as_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a")).unwrap();
        store.commit(&keep("abc2", large(3), None)).unwrap();
        let mut backup = Vec::new();
        store.write_backup(&mut backup).unwrap();
        let restored_at = dir.path().join("b");
        Store::restore_backup(&restored_at, &mut backup.as_slice()).unwrap();
        let restored = Store::open(&restored_at).unwrap();
        assert_eq!(restored.raw("abc2").unwrap(), Some(large(3)));
        let copy = Store::temporary().unwrap();
        store.copy_into(&copy).unwrap();
        assert_eq!(copy.raw("abc2").unwrap(), Some(large(3)));
    }

    #[test]
    fn erasure_and_retention_delete_the_file_and_keep_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut closed = Case::new(CaseId::parse("RD-AAAAAA").unwrap(), "al@example.org", 0);
        closed.state = CaseState::Closed;
        closed.closed_at = Some(NOW - 400 * 86_400);
        let mut open = Case::new(CaseId::parse("RD-BBBBBB").unwrap(), "jo@example.org", NOW);
        open.state = CaseState::AwaitingStaff;
        store
            .commit(&keep("old1", large(4), Some(&closed)))
            .unwrap();
        store.commit(&keep("new1", large(5), Some(&open))).unwrap();
        store.commit(&keep("none1", large(6), None)).unwrap();
        assert_eq!(files(dir.path()), 3);
        let purged = store.purge_expired(NOW, 30 * 86_400, "test").unwrap();
        assert_eq!(purged.len(), 1, "{purged:?}");
        assert_eq!(files(dir.path()), 2);
        let target = EraseTarget::Address("jo@example.org".into());
        store.erase(&target, NOW, "op", "request").unwrap();
        assert_eq!(files(dir.path()), 0, "the case's file and the uncased one");
        for hash in ["old1", "new1", "none1"] {
            assert_eq!(store.raw(hash).unwrap(), None);
            assert!(store.seen_content(hash).unwrap(), "{hash} marker kept");
        }
    }
}
