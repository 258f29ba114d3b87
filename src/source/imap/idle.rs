//! Waiting for new mail: IDLE (RFC 2177) when the server offers it and
//! the settings allow it, else sleeping for the poll interval.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use tokio::time::timeout;

use crate::error::{Error, Result};

use super::connection::op_error;
use super::cursor::Live;
use super::ImapSource;

/// RFC 2177 asks clients to re-issue IDLE at least every 29 minutes, since
/// servers may log out an idle client after 30.
const IDLE_MAX: Duration = Duration::from_secs(25 * 60);

impl ImapSource {
    pub(super) async fn wait(&mut self, wait_at_most: Duration) -> Result<()> {
        let settings = self.connector.settings.clone();
        let place = settings.place();
        let live = self.ensure_live().await?;
        if !live.pending.is_empty() {
            return Ok(());
        }
        // The server may already have told us about new mail in an
        // untagged EXISTS during an earlier command.
        if live.drain_notes() || live.suspect {
            return Ok(());
        }
        if !(settings.idle && live.can_idle) {
            tokio::time::sleep(wait_at_most.min(settings.poll_interval)).await;
            return Ok(());
        }
        let Some(live) = self.live.take() else {
            return Err(Error::Transient(format!("imap {place}: not connected")));
        };
        let Live {
            session,
            uidvalidity,
            last_uid,
            pending,
            can_idle,
            can_move,
            timeout: command_timeout,
            suspect,
        } = live;
        // The session moves into the IDLE handle and comes back from DONE;
        // if anything fails in between, `self.live` stays empty and the next
        // call reconnects.
        let mut handle = session.idle();
        timeout(settings.timeout, handle.init())
            .await
            .map_err(|_| Error::Transient(format!("imap {place}: IDLE timed out")))?
            .map_err(|e| op_error(e, "IDLE", &place))?;
        let (idle_wait, stop) = handle.wait_with_timeout(wait_at_most.min(IDLE_MAX));
        let outcome = idle_wait.await;
        drop(stop);
        let outcome = outcome.map_err(|e| op_error(e, "IDLE", &place))?;
        if let IdleResponse::ManualInterrupt = outcome {
            // The response stream ended: the server closed the connection.
            return Err(Error::Transient(format!(
                "imap {place}: connection closed during IDLE"
            )));
        }
        // A NO/BYE pushed during IDLE (rather than new mail) makes the view
        // suspect, as in `drain_notes`.
        let mut suspect = suspect;
        if let IdleResponse::NewData(data) = &outcome {
            use async_imap::imap_proto::{Response, Status};
            if let Response::Data {
                status: Status::No | Status::Bad | Status::Bye,
                ..
            } = data.parsed()
            {
                suspect = true;
            }
        }
        let session = timeout(settings.timeout, handle.done())
            .await
            .map_err(|_| Error::Transient(format!("imap {place}: DONE timed out")))?
            .map_err(|e| op_error(e, "IDLE DONE", &place))?;
        self.live = Some(Live {
            session,
            uidvalidity,
            last_uid,
            pending,
            can_idle,
            can_move,
            timeout: command_timeout,
            suspect,
        });
        Ok(())
    }
}
