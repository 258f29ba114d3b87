//! Reading and marking: batched `UID FETCH` of `BODY.PEEK[]` (headers
//! only above `max_message_bytes`), and marking done with a flag and/or
//! keyword and an optional MOVE (or COPY).

use std::collections::BTreeMap;

use async_imap::types::Fetch;
use futures::TryStreamExt;
use tokio::time::timeout;

use crate::error::{Error, Result};
use crate::source::{CursorUpdate, Fetched};

use super::connection::op_error;
use super::cursor::{parse_position, refill, Live};
use super::reconnect::once_more_on_a_fresh_session;
use super::ImapSource;

/// Upper bound on the bytes asked for in one `UID FETCH`, so one command
/// never has to carry hundreds of megabytes.
const FETCH_BYTES_PER_COMMAND: u64 = 32 * 1024 * 1024;

/// What the headers of an oversize message are counted as in a batch's
/// byte budget (only they are fetched).
const HEADER_ESTIMATE: u64 = 64 * 1024;

/// Formats sorted UIDs as an IMAP sequence set, runs collapsed: `1:3,7`.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut idx = 0;
    while idx < uids.len() {
        let start = uids[idx];
        let mut end = start;
        while idx + 1 < uids.len() && uids[idx + 1] == end.wrapping_add(1) {
            idx += 1;
            end = uids[idx];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        idx += 1;
    }
    out
}

/// Quotes a mailbox name as an IMAP quoted string.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

impl ImapSource {
    /// Runs `fetch_once`, and once more on a fresh connection if an open
    /// session turned out to be dead (e.g. the server restarted).
    pub(super) async fn fetch(&mut self, max: usize) -> Result<Vec<Fetched>> {
        once_more_on_a_fresh_session!(self, self.fetch_once(max))
    }

    async fn fetch_once(&mut self, max: usize) -> Result<Vec<Fetched>> {
        let key = self.key.clone();
        let settings = self.connector.settings.clone();
        let place = settings.place();
        let live = self.ensure_live().await?;
        if max == 0 {
            return Ok(Vec::new());
        }
        if live.pending.is_empty() {
            refill(live, &settings).await?;
        }
        // Oversize messages are fetched headers-only: count them small.
        let sizes = live.pending.iter().map(|&(_, size)| {
            let size = u64::from(size);
            if size > settings.max_message_bytes {
                HEADER_ESTIMATE
            } else {
                size
            }
        });
        let take = crate::source::batch_len(sizes, max, settings.batch_bytes);
        let batch: Vec<(u32, u32)> = live.pending.drain(..take).collect();
        let Some(&(highest, _)) = batch.last() else {
            return Ok(Vec::new());
        };
        let (normal, oversize): (Vec<_>, Vec<_>) = batch
            .iter()
            .partition(|(_, size)| u64::from(*size) <= settings.max_message_bytes);

        let mut out: BTreeMap<u32, Fetched> = BTreeMap::new();
        for chunk in chunks(&normal, settings.batch_size) {
            fetch_chunk(
                live,
                &chunk,
                "BODY.PEEK[]",
                &place,
                &mut out,
                Fetch::body,
                false,
            )
            .await?;
        }
        for chunk in chunks(&oversize, settings.batch_size) {
            fetch_chunk(
                live,
                &chunk,
                "BODY.PEEK[HEADER]",
                &place,
                &mut out,
                Fetch::header,
                true,
            )
            .await?;
        }
        let uidvalidity = live.uidvalidity;
        // Hand-out position moves only after the whole batch arrived, so a
        // failure half-way re-fetches the batch on the next call.
        live.last_uid = live.last_uid.max(highest);
        let fetched = out
            .into_iter()
            .map(|(uid, mut f)| {
                f.source_id = format!("{uidvalidity}:{uid}");
                f.cursor = Some(CursorUpdate {
                    key: key.clone(),
                    value: format!("{uidvalidity}:{uid}"),
                });
                f
            })
            .collect::<Vec<_>>();
        let missing = batch.len() - fetched.len();
        if missing > 0 {
            tracing::info!(source = %key, missing, "messages vanished between listing and fetch");
        }
        Ok(fetched)
    }

    pub(super) async fn mark(&mut self, source_ids: &[String]) -> Result<()> {
        let folder = self.connector.settings.move_to.clone();
        once_more_on_a_fresh_session!(self, self.mark_once(source_ids, folder.as_deref()))
    }

    /// Marks messages that held a secret: moved to `secrets_move_to` when
    /// it is set, else like any other.
    pub(super) async fn mark_set_aside(&mut self, source_ids: &[String]) -> Result<()> {
        let settings = &self.connector.settings;
        let folder = settings
            .secrets_move_to
            .clone()
            .or_else(|| settings.move_to.clone());
        once_more_on_a_fresh_session!(self, self.mark_once(source_ids, folder.as_deref()))
    }

    async fn mark_once(&mut self, source_ids: &[String], folder: Option<&str>) -> Result<()> {
        if source_ids.is_empty() {
            return Ok(());
        }
        let key = self.key.clone();
        let settings = self.connector.settings.clone();
        let place = settings.place();
        let live = self.ensure_live().await?;
        let mut uids = Vec::with_capacity(source_ids.len());
        for id in source_ids {
            match parse_position(id) {
                Some((validity, uid)) if validity == live.uidvalidity => uids.push(uid),
                Some(_) => tracing::warn!(
                    source = %key, id = %id,
                    "not marking a message of an older UIDVALIDITY; the rescan sees it again"
                ),
                None => tracing::warn!(source = %key, id = %id, "not an IMAP source id; ignored"),
            }
        }
        uids.sort_unstable();
        uids.dedup();
        if uids.is_empty() {
            return Ok(());
        }
        for chunk in uids.chunks(settings.batch_size.max(1) * 10) {
            let set = uid_set(chunk);
            if let Some(flags) = settings.done_flags() {
                let query = format!("+FLAGS.SILENT {flags}");
                let store = async {
                    let stream = live.session.uid_store(&set, &query).await?;
                    stream.try_collect::<Vec<_>>().await
                };
                timeout(settings.timeout, store)
                    .await
                    .map_err(|_| Error::Transient(format!("imap {place}: UID STORE timed out")))?
                    .map_err(|e| op_error(e, "UID STORE", &place))?;
            }
            if let Some(folder) = folder {
                move_or_copy(live, &set, folder, &place).await?;
            }
        }
        Ok(())
    }
}

/// Splits `(uid, size)` pairs into fetch commands bounded by count and bytes.
fn chunks(items: &[&(u32, u32)], per_command: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for (uid, size) in items.iter().copied() {
        let size = u64::from(*size);
        if !current.is_empty()
            && (current.len() >= per_command || bytes + size > FETCH_BYTES_PER_COMMAND)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(*uid);
        bytes += size;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

async fn fetch_chunk(
    live: &mut Live,
    uids: &[u32],
    item: &str,
    place: &str,
    out: &mut BTreeMap<u32, Fetched>,
    bytes_of: fn(&Fetch) -> Option<&[u8]>,
    headers_only: bool,
) -> Result<()> {
    let set = uid_set(uids);
    let query = format!("(UID RFC822.SIZE {item})");
    let fetch = async {
        let stream = live.session.uid_fetch(&set, &query).await?;
        stream.try_collect::<Vec<Fetch>>().await
    };
    let fetches = timeout(live.timeout, fetch)
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: UID FETCH timed out")))?
        .map_err(|e| op_error(e, "UID FETCH", place))?;
    for f in &fetches {
        // Unsolicited FETCH responses (flag changes by other clients) may
        // be mixed in; keep only the ones that answer this command.
        let Some(uid) = f.uid else { continue };
        if uids.binary_search(&uid).is_err() {
            continue;
        }
        let Some(bytes) = bytes_of(f) else { continue };
        out.insert(
            uid,
            Fetched {
                source_id: String::new(),
                raw: std::sync::Arc::new(bytes.to_vec()),
                oversize: headers_only.then(|| u64::from(f.size.unwrap_or(0))),
                cursor: None,
            },
        );
    }
    Ok(())
}

/// MOVE when the server has it (RFC 6851); else COPY, leaving the original
/// flagged in place: we never set `\Deleted` or EXPUNGE. A missing folder
/// (`[TRYCREATE]`) is created once.
async fn move_or_copy(live: &mut Live, set: &str, folder: &str, place: &str) -> Result<()> {
    let verb = if live.can_move {
        "UID MOVE"
    } else {
        "UID COPY"
    };
    let command = format!("{verb} {set} {}", quote(folder));
    for attempt in 0..2 {
        let res = timeout(
            live.timeout,
            live.session.run_command_and_check_ok(&command),
        )
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: {verb} timed out")))?;
        match res {
            Ok(()) => return Ok(()),
            Err(async_imap::error::Error::No(text))
                if attempt == 0 && text.contains("TryCreate") =>
            {
                tracing::info!(folder, "creating the processed folder");
                timeout(live.timeout, live.session.create(folder))
                    .await
                    .map_err(|_| Error::Transient(format!("imap {place}: CREATE timed out")))?
                    .map_err(|e| match e {
                        async_imap::error::Error::No(text) => Error::Config(format!(
                            "imap {place}: cannot create move_to folder {folder:?}: {text}"
                        )),
                        other => op_error(other, "CREATE", place),
                    })?;
            }
            Err(async_imap::error::Error::No(text)) => {
                return Err(Error::Config(format!(
                    "imap {place}: {verb} to {folder:?} refused: {text}"
                )))
            }
            Err(e) => return Err(op_error(e, verb, place)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let items = [(1, 10), (2, 10), (3, 10)];
        let refs: Vec<&(u32, u32)> = items.iter().collect();
        assert_eq!(chunks(&refs, 2), vec![vec![1, 2], vec![3]]);
        let big = [(1, 20 * 1024 * 1024), (2, 20 * 1024 * 1024)];
        let refs: Vec<&(u32, u32)> = big.iter().collect();
        assert_eq!(chunks(&refs, 100), vec![vec![1], vec![2]]);
    }
}
