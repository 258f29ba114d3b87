//! The cursor: the live session's UIDVALIDITY and hand-out position, how
//! the committed cursor is resumed at connect, and listing the UIDs above
//! it (RFC 3501 section 2.3.1.1).

use std::collections::VecDeque;

use async_imap::types::{Fetch, UnsolicitedResponse};
use async_imap::Session;
use futures::TryStreamExt;
use tokio::time::timeout;

use crate::error::{Error, Result};

use super::connection::{op_error, select, Conn};
use super::{ImapSettings, ImapSource};

/// An open session with the mailbox selected.
pub(super) struct Live {
    pub(super) session: Session<Conn>,
    pub(super) uidvalidity: u32,
    /// The highest UID handed out (or committed, at connect).
    pub(super) last_uid: u32,
    /// UIDs (with sizes) above `last_uid` that the server has announced.
    pub(super) pending: VecDeque<(u32, u32)>,
    pub(super) can_idle: bool,
    pub(super) can_move: bool,
    /// The configured per-command timeout.
    pub(super) timeout: std::time::Duration,
    /// The server sent an untagged NO/BAD/BYE: our view may be stale, so
    /// the next listing re-selects the mailbox first.
    pub(super) suspect: bool,
}

impl Live {
    /// Drains the unsolicited responses: notes warnings in `suspect` and
    /// says whether any announced new mail (EXISTS or RECENT).
    pub(super) fn drain_notes(&mut self) -> bool {
        use async_imap::imap_proto::{Response, Status};
        let mut news = false;
        while let Ok(note) = self.session.unsolicited_responses.try_recv() {
            match note {
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_) => news = true,
                UnsolicitedResponse::Other(data) => {
                    if let Response::Data {
                        status: Status::No | Status::Bad | Status::Bye,
                        information,
                        ..
                    } = data.parsed()
                    {
                        tracing::info!(
                            warning = information.as_deref().unwrap_or(""),
                            "imap server warning"
                        );
                        self.suspect = true;
                    }
                }
                _ => {}
            }
        }
        news
    }
}

/// Parses a cursor or source id, `<uidvalidity>:<uid>`.
pub(super) fn parse_position(text: &str) -> Option<(u32, u32)> {
    let (validity, uid) = text.split_once(':')?;
    Some((validity.trim().parse().ok()?, uid.trim().parse().ok()?))
}

impl ImapSource {
    pub(super) async fn open_live(&self) -> Result<Live> {
        let settings = &self.connector.settings;
        let (mut session, (can_idle, can_move)) = self.connector.open().await?;
        let mailbox = select(&mut session, settings).await?;
        let uidvalidity = mailbox.uid_validity.ok_or_else(|| {
            Error::Config(format!(
                "imap {}: mailbox {:?} has no UIDVALIDITY; this server cannot be read safely",
                settings.place(),
                settings.mailbox
            ))
        })?;
        let committed = (self.cursor)(&self.key);
        let last_uid = match committed.as_deref().map(|c| (c, parse_position(c))) {
            None => 0,
            Some((_, Some((validity, uid)))) if validity == uidvalidity => uid,
            Some((_, Some((validity, _)))) => {
                tracing::warn!(
                    source = %self.key, old = validity, new = uidvalidity,
                    "UIDVALIDITY changed; rescanning the mailbox from UID 1"
                );
                0
            }
            Some((text, None)) => {
                tracing::warn!(source = %self.key, cursor = text, "unreadable cursor; rescanning from UID 1");
                0
            }
        };
        tracing::info!(
            source = %self.key, uidvalidity, last_uid, idle = can_idle, r#move = can_move,
            "imap connected"
        );
        Ok(Live {
            session,
            uidvalidity,
            last_uid,
            pending: VecDeque::new(),
            can_idle,
            can_move,
            timeout: settings.timeout,
            suspect: false,
        })
    }
}

/// Lists UIDs above the hand-out position with their sizes. When there is
/// nothing new, also checks that the mailbox was not deleted and recreated
/// under us: Dovecot keeps serving the old, stale view to a session that
/// had it selected.
pub(super) async fn refill(live: &mut Live, settings: &ImapSettings) -> Result<()> {
    let place = settings.place();
    // A server updates a session's view of the mailbox only between
    // commands, and Dovecot answers a UID FETCH from the view it had before
    // it: without this NOOP, a poll would not see mail that arrived while
    // we slept.
    live.drain_notes();
    timeout(settings.timeout, live.session.noop())
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: NOOP timed out")))?
        .map_err(|e| op_error(e, "NOOP", &place))?;
    // An untagged NO/BAD/BYE during the NOOP means the server could not
    // bring our view up to date; Dovecot says "Internal error" when the
    // selected mailbox was deleted and recreated by another client, and
    // then keeps serving the stale view (STATUS included). A fresh SELECT
    // sees the truth.
    live.drain_notes();
    if live.suspect {
        tracing::info!(mailbox = %settings.mailbox, "re-selecting after a server warning");
        live.suspect = false;
        let mailbox = select(&mut live.session, settings).await?;
        if mailbox.uid_validity != Some(live.uidvalidity) {
            return Err(Error::Transient(format!(
                "imap {place}: mailbox {:?} was recreated (UIDVALIDITY {} -> {:?}); reconnecting",
                settings.mailbox, live.uidvalidity, mailbox.uid_validity
            )));
        }
    }
    let range = format!("{}:*", live.last_uid.saturating_add(1));
    let list = async {
        let stream = live.session.uid_fetch(&range, "(UID RFC822.SIZE)").await?;
        stream.try_collect::<Vec<Fetch>>().await
    };
    let fetches = timeout(settings.timeout, list)
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: UID FETCH {range} timed out")))?
        .map_err(|e| op_error(e, &format!("UID FETCH {range}"), &place))?;
    let mut found: Vec<(u32, u32)> = fetches
        .iter()
        // `N:*` always includes the highest UID, even below N (RFC 3501
        // section 6.4.8), so filter.
        .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
        .filter(|(uid, _)| *uid > live.last_uid)
        .collect();
    found.sort_unstable();
    found.dedup_by_key(|(uid, _)| *uid);
    if found.is_empty() {
        let status = timeout(
            settings.timeout,
            live.session.status(&settings.mailbox, "(UIDVALIDITY)"),
        )
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: STATUS timed out")))?
        .map_err(|e| op_error(e, "STATUS", &place))?;
        if let Some(now) = status.uid_validity {
            if now != live.uidvalidity {
                return Err(Error::Transient(format!(
                    "imap {place}: mailbox {:?} was recreated (UIDVALIDITY {} -> {now}); reconnecting",
                    settings.mailbox, live.uidvalidity
                )));
            }
        }
    }
    live.pending.extend(found);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_reject_garbage() {
        assert_eq!(parse_position("1795444258:42"), Some((1795444258, 42)));
        assert_eq!(parse_position("x:1"), None);
        assert_eq!(parse_position("12"), None);
    }
}
