//! The store's life cycle beside the commit path: copying a store whole
//! (shadow mode), and writing and reading a backup file.
//!
//! A backup is a small framed format rather than a copy of sled's files,
//! so it can be taken from a live store and read by a later build: a
//! header line with the schema version, then for every tree its name and
//! its entries as length-prefixed keys and values, then an end marker with
//! a SHA-256 of everything before it, so a truncated file is refused
//! instead of restored half-way.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Store, SCHEMA_VERSION, TREES};
use crate::error::{Error, Result};

/// First bytes of a backup file.
const MAGIC: &[u8] = b"recoverydesk-backup\n";

/// What a backup or restore moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Entries over all trees.
    pub entries: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

impl Store {
    /// Opens a shadow store for `run --dry-run`: a fresh copy of the real
    /// store at `real` when it exists and is free, else an empty one. The
    /// real store is only read; an earlier shadow at `shadow` is replaced,
    /// so each shadow run starts from what the real one would see next.
    pub fn open_shadow(real: &Path, shadow: &Path) -> Result<Store> {
        if shadow.exists() {
            std::fs::remove_dir_all(shadow).map_err(|e| Error::io(shadow, e))?;
        }
        let copy = Store::open(shadow)?;
        if real.join("db").exists() {
            match Store::open(real) {
                Ok(real_store) => {
                    real_store.copy_into(&copy)?;
                    copy.flush()?;
                }
                // Held by a running daemon: a copy cannot be read safely,
                // and shadow mode must not wait for or disturb it.
                Err(e) => tracing::warn!(
                    error.message = %e,
                    "the real store is in use; the shadow run starts from an empty store"
                ),
            }
        }
        Ok(copy)
    }

    /// Copies every entry of every tree into `dest` (which should be empty).
    pub fn copy_into(&self, dest: &Store) -> Result<Moved> {
        let mut moved = Moved::default();
        for name in TREES.into_iter().filter(|n| *n != "raw_files") {
            let to = dest.tree(name);
            let mut put = |k: &[u8], v: &[u8]| -> Result<()> {
                moved.entries += 1;
                moved.bytes += (k.len() + v.len()) as u64;
                to.insert(k, v)?;
                Ok(())
            };
            for entry in self.tree(name).iter() {
                let (k, v) = entry?;
                put(&k, &v)?;
            }
            // Messages kept as files go into the copy as pieces.
            if name == "raw_chunks" {
                self.each_raw_file_piece(&mut put)?;
            }
        }
        Ok(moved)
    }

    /// Writes a backup of every tree to `out`.
    pub fn write_backup(&self, out: &mut dyn Write) -> Result<Moved> {
        let mut w = Hashing::new(out);
        let mut moved = Moved::default();
        w.put(MAGIC)?;
        w.put(format!("schema {SCHEMA_VERSION}\n").as_bytes())?;
        for name in TREES {
            w.frame(name.as_bytes())?;
            let mut put = |k: &[u8], v: &[u8]| -> Result<()> {
                moved.entries += 1;
                moved.bytes += (k.len() + v.len()) as u64;
                w.put(&[1])?;
                w.frame(k)?;
                w.frame(v)
            };
            // Messages kept as files are backed up as the pieces they
            // would be in sled (restored so, they need no files); their
            // markers stay out.
            if name != "raw_files" {
                for entry in self.tree(name).iter() {
                    let (k, v) = entry?;
                    put(&k, &v)?;
                }
            }
            if name == "raw_chunks" {
                self.each_raw_file_piece(&mut put)?;
            }
            w.put(&[0])?;
        }
        w.put(b"end ")?;
        let digest = w.hasher.clone().finalize();
        w.inner.write_all(&digest).map_err(backup_io)?;
        w.inner.flush().map_err(backup_io)?;
        Ok(moved)
    }

    /// Restores a backup into the store at `path`, which must be empty or
    /// absent. Refuses a backup from a newer schema or one that does not
    /// end with a matching checksum (nothing is kept then).
    pub fn restore_backup(path: &Path, input: &mut dyn Read) -> Result<Moved> {
        if path.join("db").exists() {
            let existing = Store::open(path)?;
            if !existing.tree("cases").is_empty() || !existing.tree("inbound").is_empty() {
                return Err(Error::Config(format!(
                    "{}: the store is not empty; restore only into a new folder",
                    path.display()
                )));
            }
        }
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).map_err(backup_io)?;
        let entries = parse_backup(&bytes)?;
        let store = Store::open(path)?;
        let mut moved = Moved::default();
        for (tree, key, value) in entries {
            moved.entries += 1;
            moved.bytes += (key.len() + value.len()) as u64;
            store.tree(tree).insert(key, value)?;
        }
        store.flush()?;
        Ok(moved)
    }
}

/// One backup entry: tree, key, value.
type Entry<'a> = (&'static str, &'a [u8], &'a [u8]);

/// The entries of a backup, checked end to end.
fn parse_backup(bytes: &[u8]) -> Result<Vec<Entry<'_>>> {
    let bad = |why: &str| Error::Permanent(format!("not a usable recoverydesk backup: {why}"));
    if bytes.len() < MAGIC.len() + 36 || !bytes.starts_with(MAGIC) {
        return Err(bad("wrong header"));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    let body = body
        .strip_suffix(b"end ".as_slice())
        .ok_or_else(|| bad("truncated (no end marker)"))?;
    let mut hasher = Sha256::new();
    hasher.update(body);
    hasher.update(b"end ");
    if hasher.finalize().as_slice() != digest {
        return Err(bad("checksum mismatch (damaged or truncated)"));
    }
    let mut r = Reader {
        rest: &body[MAGIC.len()..],
    };
    let line = r.line().ok_or_else(|| bad("no schema line"))?;
    let version: u32 = line
        .strip_prefix("schema ")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad("no schema line"))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Config(format!(
            "the backup has schema version {version}; this build understands up to {SCHEMA_VERSION}: restore with a newer recoverydesk"
        )));
    }
    let mut out = Vec::new();
    while !r.rest.is_empty() {
        let name = r.frame().ok_or_else(|| bad("truncated tree name"))?;
        let tree = TREES
            .iter()
            .find(|t| t.as_bytes() == name)
            .ok_or_else(|| bad("unknown tree"))?;
        loop {
            match r.byte().ok_or_else(|| bad("truncated entry"))? {
                0 => break,
                1 => {
                    let key = r.frame().ok_or_else(|| bad("truncated key"))?;
                    let value = r.frame().ok_or_else(|| bad("truncated value"))?;
                    out.push((*tree, key, value));
                }
                _ => return Err(bad("bad entry marker")),
            }
        }
    }
    Ok(out)
}

fn backup_io(e: std::io::Error) -> Error {
    Error::io("backup", e)
}

/// A writer that hashes what it writes.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
}

impl<'a> Hashing<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes).map_err(backup_io)
    }

    fn frame(&mut self, bytes: &[u8]) -> Result<()> {
        self.put(&(bytes.len() as u64).to_be_bytes())?;
        self.put(bytes)
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(*first)
    }

    fn line(&mut self) -> Option<&'a str> {
        let end = self.rest.iter().position(|b| *b == b'\n')?;
        let line = std::str::from_utf8(&self.rest[..end]).ok()?;
        self.rest = &self.rest[end + 1..];
        Some(line)
    }

    fn frame(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < 8 {
            return None;
        }
        let (len, rest) = self.rest.split_at(8);
        let len = usize::try_from(u64::from_be_bytes(len.try_into().ok()?)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (frame, rest) = rest.split_at(len);
        self.rest = rest;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> Store {
        let store = Store::temporary().unwrap();
        store.tree("cases").insert("RD-AAAAAA", "{}").unwrap();
        store.tree("raw").insert("h1", vec![0u8, 1, 2]).unwrap();
        store.tree("cursor").insert("k", "v").unwrap();
        store
    }

    #[test]
    fn a_backup_restores_every_entry_into_a_new_folder() {
        let mut file = Vec::new();
        let written = filled().write_backup(&mut file).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let restored = Store::restore_backup(&dir.path().join("s"), &mut file.as_slice()).unwrap();
        assert_eq!(written, restored);
        let store = Store::open(&dir.path().join("s")).unwrap();
        assert_eq!(store.cursor("k").unwrap().as_deref(), Some("v"));
        assert_eq!(store.raw("h1").unwrap(), Some(vec![0, 1, 2]));
    }

    #[test]
    fn a_truncated_backup_is_refused_and_nothing_is_written() {
        let mut file = Vec::new();
        filled().write_backup(&mut file).unwrap();
        file.truncate(file.len() - 5);
        let dir = tempfile::tempdir().unwrap();
        let err = Store::restore_backup(&dir.path().join("s"), &mut file.as_slice()).unwrap_err();
        assert!(err.to_string().contains("backup"), "{err}");
        assert!(!dir.path().join("s").exists());
    }

    #[test]
    fn restore_refuses_a_store_that_has_cases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        Store::open(&path)
            .unwrap()
            .tree("cases")
            .insert("x", "{}")
            .unwrap();
        let mut file = Vec::new();
        filled().write_backup(&mut file).unwrap();
        let err = Store::restore_backup(&path, &mut file.as_slice()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn the_shadow_copy_has_the_real_entries_and_leaves_the_real_store_alone() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        {
            let store = Store::open(&real).unwrap();
            store.tree("cursor").insert("k", "v").unwrap();
            store.flush().unwrap();
        }
        let shadow = Store::open_shadow(&real, &dir.path().join("shadow")).unwrap();
        assert_eq!(shadow.cursor("k").unwrap().as_deref(), Some("v"));
        shadow.tree("cursor").insert("k", "moved").unwrap();
        drop(shadow);
        let store = Store::open(&real).unwrap();
        assert_eq!(store.cursor("k").unwrap().as_deref(), Some("v"));
    }
}
