//! The IMAP source: one mailbox read over IMAP (async-imap on tokio,
//! native-tls).
//!
//! Owns the connection (implicit TLS, STARTTLS, or plaintext for loopback
//! tests only), the login (LOGIN or AUTHENTICATE PLAIN), the cursor
//! (UIDVALIDITY + last UID, RFC 3501 section 2.3.1.1), batched `UID FETCH`
//! of `BODY.PEEK[]` (headers only above `max_message_bytes`), marking done
//! (flag and/or keyword, optional MOVE), waiting (IDLE per RFC 2177, else a
//! poll interval) and reconnecting with capped exponential backoff and
//! jitter.
//!
//! Does not own: storing or deduplicating. After a UIDVALIDITY change the
//! mailbox is rescanned from UID 1 and the store absorbs the repeats by
//! Message-ID and content hash. It never decides on its own that a message
//! is done: the worker calls [`Source::mark_done`] after its commit is
//! flushed. `\Seen` is never used to find new mail (another client may have
//! read it), and nothing is ever expunged.
//!
//! # Layout
//! - `settings.rs`: the `[source.imap]` settings and their validation.
//! - `connection.rs`: TCP, TLS or STARTTLS, login, SELECT and error sorting.
//! - `cursor.rs`: the live session, UIDVALIDITY + last UID, listing new UIDs.
//! - `reconnect.rs`: backoff and the reconnect-once wrapper.
//! - `fetch.rs`: batched `UID FETCH`, marking done, MOVE or COPY.
//! - `idle.rs`: waiting for new mail (IDLE or polling).

mod connection;
mod cursor;
mod fetch;
mod idle;
mod reconnect;
mod settings;

pub use settings::{ImapAuth, ImapSettings, ImapTls};

use std::fmt;
use std::path::Path;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::time::timeout;

use crate::error::{Error, Result};
use crate::source::{CursorReader, Fetched, Source};

use connection::{select, Connector};
use cursor::Live;
use reconnect::Backoff;

/// The IMAP source; build it with [`connect`].
pub struct ImapSource {
    connector: Connector,
    cursor: CursorReader,
    key: String,
    live: Option<Live>,
    backoff: Backoff,
}

impl fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSource")
            .field("key", &self.key)
            .field("connected", &self.live.is_some())
            .finish()
    }
}

/// Validates the settings, resolves the password and CA, connects, logs in
/// and selects the mailbox. The committed cursor is read through `cursor`
/// now and after every reconnect.
pub async fn connect(
    settings: &ImapSettings,
    base_dir: &Path,
    cursor: CursorReader,
) -> Result<ImapSource> {
    let mut source = prepare(settings, base_dir, cursor)?;
    source.ensure_live().await?;
    Ok(source)
}

/// Like [`connect`], but without touching the network: the first
/// `fetch_batch`, `mark_done` or `wait_for_new` connects. For a daemon that
/// must start (and keep retrying with backoff) while the server is down.
pub fn prepare(
    settings: &ImapSettings,
    base_dir: &Path,
    cursor: CursorReader,
) -> Result<ImapSource> {
    let connector = Connector::new(settings, base_dir)?;
    let key = format!(
        "imap:{}@{}:{}/{}",
        settings.username, settings.host, settings.port, settings.mailbox
    );
    Ok(ImapSource {
        connector,
        cursor,
        key,
        live: None,
        backoff: Backoff::default(),
    })
}

/// Logs in and selects the mailbox once, for `doctor`; says what it found.
pub async fn check(settings: &ImapSettings, base_dir: &Path) -> Result<String> {
    let connector = Connector::new(settings, base_dir)?;
    let (mut session, caps) = connector.open().await?;
    let mailbox = select(&mut session, settings).await?;
    let place = settings.place();
    let _ = timeout(settings.timeout, session.logout()).await;
    Ok(format!(
        "imap {place}/{}: login ok ({:?}, {:?} auth), UIDVALIDITY {}, {} messages, IDLE {}, MOVE {}",
        settings.mailbox,
        settings.tls,
        settings.auth,
        mailbox.uid_validity.unwrap_or(0),
        mailbox.exists,
        if caps.0 { "yes" } else { "no" },
        if caps.1 { "yes" } else { "no" },
    ))
}

/// The header block of the message with this Message-ID in the configured
/// mailbox, if it is there (for `doctor --staff-probe`). Read with PEEK, so
/// nothing is flagged: the worker handles the message as it would any.
pub async fn header_of(
    settings: &ImapSettings,
    base_dir: &Path,
    message_id: &str,
) -> Result<Option<Vec<u8>>> {
    use futures::TryStreamExt;
    let connector = Connector::new(settings, base_dir)?;
    let (mut session, _) = connector.open().await?;
    select(&mut session, settings).await?;
    let place = settings.place();
    // Message-IDs we make are plain ASCII without quotes or spaces.
    let query = format!(
        "HEADER Message-ID \"{}\"",
        message_id.replace(['"', '\\'], "")
    );
    let uids = timeout(settings.timeout, session.uid_search(&query))
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: UID SEARCH timed out")))?
        .map_err(|e| connection::op_error(e, "UID SEARCH", &place))?;
    let Some(uid) = uids.into_iter().max() else {
        let _ = timeout(settings.timeout, session.logout()).await;
        return Ok(None);
    };
    let fetch = async {
        let stream = session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])")
            .await?;
        stream.try_collect::<Vec<_>>().await
    };
    let fetches = timeout(settings.timeout, fetch)
        .await
        .map_err(|_| Error::Transient(format!("imap {place}: UID FETCH timed out")))?
        .map_err(|e| connection::op_error(e, "UID FETCH", &place))?;
    let header = fetches.iter().find_map(|f| f.header().map(<[u8]>::to_vec));
    let _ = timeout(settings.timeout, session.logout()).await;
    Ok(header)
}

impl ImapSource {
    /// Forgets what was handed out but not committed: the next
    /// `fetch_batch` starts again after the committed cursor (on a fresh
    /// connection). For a worker whose commit failed; without it, a session
    /// hands each message out once.
    pub fn rewind_to_committed(&mut self) {
        self.live = None;
    }
}

impl Source for ImapSource {
    fn fetch_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Fetched>>> {
        self.fetch(max).boxed()
    }

    fn mark_done<'a>(&'a mut self, source_ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        self.mark(source_ids).boxed()
    }

    fn mark_secret<'a>(&'a mut self, source_ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        self.mark_set_aside(source_ids).boxed()
    }

    fn wait_for_new(&mut self, timeout: Duration) -> BoxFuture<'_, Result<()>> {
        async move {
            let res = self.wait(timeout).await;
            if res.as_ref().is_err_and(Error::is_transient) {
                self.live = None;
            }
            res
        }
        .boxed()
    }

    fn describe(&self) -> String {
        self.key.clone()
    }

    fn set_read_only(&mut self) {
        // EXAMINE instead of SELECT: the server then changes nothing for
        // us, not even \Recent, and refuses any STORE or MOVE.
        self.connector.settings.read_only = true;
        self.live = None;
    }
}
