//! The Maildir source: messages in `new/` (and unprocessed ones in `cur/`
//! that another client already moved) are handed out oldest first; after
//! the store has flushed them they move to `cur/` with the `S` flag.
//! Nothing is ever deleted.
//!
//! Whether a file was processed is recorded in the store (cursor key
//! `maildir:<unique name>`), so a file another client moved to `cur/`, or
//! one left in `new/` by a crash, is never missed and never doubled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::source::{CursorReader, CursorUpdate, Fetched, Source};

/// Most header bytes kept from an oversize message.
const HEADER_LIMIT: usize = 256 * 1024;

/// A Maildir folder.
pub struct MaildirSource {
    root: PathBuf,
    max_message_bytes: u64,
    cursor: CursorReader,
    read_only: bool,
    batch_bytes: u64,
}

impl MaildirSource {
    /// Opens (and creates, if missing) a Maildir.
    pub fn open(root: &Path, max_message_bytes: u64, cursor: CursorReader) -> Result<Self> {
        for sub in ["new", "cur", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(MaildirSource {
            root: root.to_path_buf(),
            max_message_bytes,
            cursor,
            read_only: false,
            batch_bytes: u64::MAX,
        })
    }

    /// Ends a batch once it reaches `bytes` (a larger file is a batch of
    /// its own); unbounded unless set.
    pub fn with_batch_bytes(mut self, bytes: u64) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// What a file costs in a batch: headers only above the size limit.
    fn cost(&self, rel: &str) -> u64 {
        let size = std::fs::metadata(self.root.join(rel))
            .map(|m| m.len())
            .unwrap_or(0);
        if size > self.max_message_bytes {
            HEADER_LIMIT as u64
        } else {
            size
        }
    }

    fn unique(name: &str) -> &str {
        name.split(':').next().unwrap_or(name)
    }

    fn pending(&self, max: usize) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !entry.file_type().map(|t| t.is_file()).unwrap_or(false)
                {
                    continue;
                }
                if (self.cursor)(&format!("maildir:{}", Self::unique(&name))).is_none() {
                    names.push(format!("{sub}/{name}"));
                } else if !self.read_only
                    && (sub == "new"
                        || !name.split_once(":2,").is_some_and(|(_, f)| f.contains('S')))
                {
                    // Done in the store but never marked (a crash between the
                    // flush and the marking): finish the marking now.
                    if let Err(e) = self.mark(&format!("{sub}/{name}")) {
                        tracing::warn!(file = %name, error.message = %e, "could not move a processed file to cur/");
                    }
                }
            }
        }
        // Maildir unique names start with the delivery time, so this is roughly arrival order.
        names.sort_by(|a, b| a[4..].cmp(&b[4..]));
        names.truncate(max);
        Ok(names)
    }

    fn read(&self, rel: &str) -> Result<Fetched> {
        let path = self.root.join(rel);
        let size = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        let raw = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (raw, oversize) = if size > self.max_message_bytes {
            (headers_only(&raw), Some(size))
        } else {
            (raw, None)
        };
        let name = rel.split_once('/').map(|(_, n)| n).unwrap_or(rel);
        Ok(Fetched {
            source_id: rel.to_owned(),
            raw: std::sync::Arc::new(raw),
            oversize,
            cursor: Some(CursorUpdate {
                key: format!("maildir:{}", Self::unique(name)),
                value: "done".into(),
            }),
        })
    }

    fn mark(&self, rel: &str) -> Result<()> {
        let from = self.root.join(rel);
        let name = rel.split_once('/').map(|(_, n)| n).unwrap_or(rel);
        let (unique, flags) = match name.split_once(":2,") {
            Some((u, f)) => (u, f.to_owned()),
            None => (Self::unique(name), String::new()),
        };
        let mut flags: Vec<char> = flags.chars().collect();
        if !flags.contains(&'S') {
            flags.push('S');
        }
        flags.sort_unstable();
        let to = self.root.join("cur").join(format!(
            "{unique}:2,{}",
            flags.into_iter().collect::<String>()
        ));
        if from != to {
            std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
        }
        Ok(())
    }
}

fn headers_only(raw: &[u8]) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len())
        .min(HEADER_LIMIT);
    raw[..end].to_vec()
}

impl Source for MaildirSource {
    fn fetch_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Fetched>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut names = self.pending(max)?;
            let take = crate::source::batch_len(
                names.iter().map(|rel| self.cost(rel)),
                max,
                self.batch_bytes,
            );
            names.truncate(take);
            for rel in names {
                match self.read(&rel) {
                    Ok(f) => out.push(f),
                    // Another client may have moved the file meanwhile; it shows up again next pass.
                    Err(e) => {
                        tracing::warn!(file = %rel, error.message = %e, "maildir file vanished or unreadable")
                    }
                }
            }
            Ok(out)
        })
    }

    fn mark_done<'a>(&'a mut self, source_ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for rel in source_ids {
                if let Err(e) = self.mark(rel) {
                    // Marking is cosmetic for Maildir: the store already knows it is done.
                    tracing::warn!(file = %rel, error.message = %e, "could not move processed file to cur/");
                }
            }
            Ok(())
        })
    }

    fn wait_for_new(&mut self, timeout: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            tokio::time::sleep(timeout).await;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("maildir:{}", self.root.display())
    }

    fn set_read_only(&mut self) {
        self.read_only = true;
    }
}

/// Writes a message into a Maildir's `new/` the way a delivery agent does
/// (via `tmp/`, then rename), for the demo and tests.
pub fn deliver(root: &Path, raw: &[u8], unique: &str) -> Result<PathBuf> {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).map_err(|e| Error::io(root.join(sub), e))?;
    }
    let tmp = root.join("tmp").join(unique);
    std::fs::write(&tmp, raw).map_err(|e| Error::io(&tmp, e))?;
    let dest = root.join("new").join(unique);
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    Ok(dest)
}
