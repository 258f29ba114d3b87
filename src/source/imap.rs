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

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::{Fetch, UnsolicitedResponse};
use async_imap::{Client, Session};
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use rand::Rng;
use serde::{Deserialize, Deserializer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::error::{Error, Result};
use crate::secret::{Secret, SecretSource};
use crate::source::{CursorReader, CursorUpdate, Fetched, Source};

/// How long a TCP connect, TLS handshake and greeting may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one command (a batch fetch included) may take before the
/// connection is considered dead.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// RFC 2177 asks clients to re-issue IDLE at least every 29 minutes, since
/// servers may log out an idle client after 30.
const IDLE_MAX: Duration = Duration::from_secs(25 * 60);
/// Upper bound on the bytes asked for in one `UID FETCH`, so one command
/// never has to carry hundreds of megabytes.
const FETCH_BYTES_PER_COMMAND: u64 = 32 * 1024 * 1024;
/// Reconnect backoff: first delay and cap.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plaintext greeting, then `STARTTLS` before login (port 143).
    Starttls,
    /// No TLS at all; refused unless `allow_plaintext = true`.
    Plain,
}

/// How the source logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapAuth {
    /// The `LOGIN` command.
    Login,
    /// `AUTHENTICATE PLAIN` (RFC 4616).
    Plain,
}

/// The `[source.imap]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    /// Server host name (also the name the certificate must carry, unless
    /// `tls_server_name` says otherwise).
    pub host: String,
    /// Server port, e.g. 993 (implicit) or 143 (STARTTLS).
    pub port: u16,
    /// `"implicit"`, `"starttls"` or `"plain"`.
    pub tls: ImapTls,
    /// Must be true for `tls = "plain"`; meant for loopback tests only.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// An extra root CA (PEM) to trust, e.g. a test CA. Relative paths
    /// resolve against the config's directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name to verify the server certificate against when it differs
    /// from `host` (e.g. connecting by IP address). Defaults to `host`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Login name.
    pub username: String,
    /// Where the password comes from (`{ env = "..." }` or `{ file = "..." }`).
    pub password: SecretSource,
    /// `"login"` (default) or `"plain"`.
    #[serde(default = "default_auth")]
    pub auth: ImapAuth,
    /// The mailbox to read (default `INBOX`).
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    /// System flag set on processed mail (default `\Seen`; empty for none).
    #[serde(default = "default_processed_flag")]
    pub processed_flag: String,
    /// Keyword also set on processed mail, e.g. `$RecoverydeskDone`.
    #[serde(default)]
    pub processed_keyword: Option<String>,
    /// Folder processed mail is moved to (MOVE if advertised, else COPY;
    /// never expunged by us).
    #[serde(default)]
    pub move_to: Option<String>,
    /// Messages per `UID FETCH` command (default 100).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Use IDLE when the server offers it (default true).
    #[serde(default = "default_true")]
    pub idle: bool,
    /// How long to sleep between polls without IDLE, e.g. `"60s"`.
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "deserialize_duration"
    )]
    pub poll_interval: Duration,
    /// Messages larger than this are fetched headers-only and marked
    /// oversize (default 25 MiB).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
}

fn default_auth() -> ImapAuth {
    ImapAuth::Login
}
fn default_mailbox() -> String {
    "INBOX".to_string()
}
fn default_processed_flag() -> String {
    "\\Seen".to_string()
}
fn default_batch_size() -> usize {
    100
}
fn default_true() -> bool {
    true
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_message_bytes() -> u64 {
    25 * 1024 * 1024
}

fn deserialize_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
}

impl ImapSettings {
    /// `user@host:port`, for messages.
    fn place(&self) -> String {
        format!("{}@{}:{}", self.username, self.host, self.port)
    }

    /// Checks what can be checked without a server.
    fn validate(&self) -> Result<()> {
        let place = self.place();
        if self.tls == ImapTls::Plain && !self.allow_plaintext {
            return Err(Error::Config(format!(
                "imap {place}: tls = \"plain\" sends the password in clear; \
                 set allow_plaintext = true only for a loopback test server"
            )));
        }
        if self.host.is_empty() {
            return Err(Error::Config("imap: host is empty".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Config(format!(
                "imap {place}: batch_size must be at least 1"
            )));
        }
        if self.poll_interval.is_zero() {
            return Err(Error::Config(format!(
                "imap {place}: poll_interval must be above 0"
            )));
        }
        for (key, name) in [
            ("mailbox", Some(&self.mailbox)),
            ("move_to", self.move_to.as_ref()),
        ] {
            if let Some(name) = name {
                if name.is_empty() || name.chars().any(|c| c.is_control()) {
                    return Err(Error::Config(format!(
                        "imap {place}: {key} {name:?} is not a usable mailbox name"
                    )));
                }
                // IMAP4rev1 names are modified UTF-7 (RFC 3501 section
                // 5.1.3); we send names as written, so they must be ASCII.
                if !name.is_ascii() {
                    return Err(Error::Config(format!(
                        "imap {place}: {key} {name:?} is not ASCII; write it in IMAP's modified \
                         UTF-7 form (e.g. \"Entw&APw-rfe\" for \"Entwürfe\")"
                    )));
                }
            }
        }
        if self.move_to.as_deref() == Some(self.mailbox.as_str()) {
            return Err(Error::Config(format!(
                "imap {place}: move_to is the mailbox being read ({})",
                self.mailbox
            )));
        }
        if !self.processed_flag.is_empty() && !is_system_flag(&self.processed_flag) {
            return Err(Error::Config(format!(
                "imap {place}: processed_flag {:?} is not a system flag such as \\Seen \
                 (use processed_keyword for a keyword)",
                self.processed_flag
            )));
        }
        if let Some(keyword) = &self.processed_keyword {
            if !is_atom(keyword) {
                return Err(Error::Config(format!(
                    "imap {place}: processed_keyword {keyword:?} is not an IMAP atom"
                )));
            }
        }
        Ok(())
    }

    /// The flags `mark_done` sets, as an IMAP list, or `None` for none.
    fn done_flags(&self) -> Option<String> {
        let mut flags: Vec<&str> = Vec::new();
        if !self.processed_flag.is_empty() {
            flags.push(&self.processed_flag);
        }
        if let Some(keyword) = &self.processed_keyword {
            flags.push(keyword);
        }
        (!flags.is_empty()).then(|| format!("({})", flags.join(" ")))
    }
}

fn is_system_flag(flag: &str) -> bool {
    ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
        .iter()
        .any(|known| known.eq_ignore_ascii_case(flag))
        // \Deleted would invite someone else's EXPUNGE; we never delete.
        && !flag.eq_ignore_ascii_case("\\Deleted")
}

/// RFC 3501 `atom`: no specials, no controls, no spaces.
fn is_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c))
}

/// The byte stream under the IMAP client: TCP, or TLS over TCP.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_native_tls::TlsStream<TcpStream>>),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conn::Plain(_) => f.write_str("Conn::Plain"),
            Conn::Tls(_) => f.write_str("Conn::Tls"),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `AUTHENTICATE PLAIN` (RFC 4616): one response, no authorization id.
struct PlainAuth<'a> {
    username: &'a str,
    password: &'a str,
}

impl async_imap::Authenticator for PlainAuth<'_> {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        format!("\0{}\0{}", self.username, self.password).into_bytes()
    }
}

/// Everything needed to open a session, resolved once.
struct Connector {
    settings: ImapSettings,
    password: Secret,
    tls: Option<tokio_native_tls::TlsConnector>,
}

/// An open session with the mailbox selected.
struct Live {
    session: Session<Conn>,
    uidvalidity: u32,
    /// The highest UID handed out (or committed, at connect).
    last_uid: u32,
    /// UIDs (with sizes) above `last_uid` that the server has announced.
    pending: VecDeque<(u32, u32)>,
    can_idle: bool,
    can_move: bool,
    /// The server sent an untagged NO/BAD/BYE: our view may be stale, so
    /// the next listing re-selects the mailbox first.
    suspect: bool,
}

impl Live {
    /// Drains the unsolicited responses: notes warnings in `suspect` and
    /// says whether any announced new mail (EXISTS or RECENT).
    fn drain_notes(&mut self) -> bool {
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

/// Capped exponential backoff with jitter for reconnects.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn delay(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let exp = BACKOFF_BASE.saturating_mul(1u32 << self.failures.saturating_sub(1).min(16));
        let capped = exp.min(BACKOFF_CAP);
        // Half fixed, half random, so that many workers restarted together
        // do not reconnect in lockstep.
        let half = capped / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

/// Runs an operation on the live session; if a session that was open turns
/// out to be dead (e.g. the server restarted), runs it once more on a fresh
/// connection. A transient failure always drops the session, so the next
/// call reconnects. (A macro because the operation borrows `self` mutably
/// and its arguments separately, which a closure taking `&mut Self` cannot.)
macro_rules! once_more_on_a_fresh_session {
    ($source:ident, $op:expr) => {{
        let had_session = $source.live.is_some();
        match $op.await {
            Err(e) if e.is_transient() && had_session => {
                tracing::warn!(source = %$source.key, error.message = %e, "imap session lost; reconnecting");
                $source.live = None;
                let res = $op.await;
                if res.as_ref().is_err_and(Error::is_transient) {
                    $source.live = None;
                }
                res
            }
            Err(e) => {
                if e.is_transient() {
                    $source.live = None;
                }
                Err(e)
            }
            ok => ok,
        }
    }};
}

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
    let _ = timeout(COMMAND_TIMEOUT, session.logout()).await;
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

impl Connector {
    fn new(settings: &ImapSettings, base_dir: &Path) -> Result<Self> {
        settings.validate()?;
        let password = settings
            .password
            .resolve("source.imap.password", base_dir)?;
        let tls = match settings.tls {
            ImapTls::Plain => None,
            ImapTls::Implicit | ImapTls::Starttls => Some(tls_connector(
                settings.ca_file.as_deref(),
                base_dir,
                "source.imap.ca_file",
            )?),
        };
        Ok(Connector {
            settings: settings.clone(),
            password,
            tls,
        })
    }

    /// Connects and logs in; returns the session and (IDLE, MOVE) support.
    async fn open(&self) -> Result<(Session<Conn>, (bool, bool))> {
        let settings = &self.settings;
        let place = settings.place();
        let client = timeout(CONNECT_TIMEOUT, self.connect_client())
            .await
            .map_err(|_| {
                Error::Transient(format!(
                    "imap {place}: no IMAP greeting within {} s (tls = {:?}; is this the right port?)",
                    CONNECT_TIMEOUT.as_secs(),
                    settings.tls
                ))
            })??;
        let login = async {
            match settings.auth {
                ImapAuth::Login => client
                    .login(&settings.username, self.password.expose())
                    .await
                    .map_err(|(e, _)| e),
                ImapAuth::Plain => {
                    let auth = PlainAuth {
                        username: &settings.username,
                        password: self.password.expose(),
                    };
                    client.authenticate("PLAIN", auth).await.map_err(|(e, _)| e)
                }
            }
        };
        let mut session = timeout(COMMAND_TIMEOUT, login)
            .await
            .map_err(|_| Error::Transient(format!("imap {place}: login timed out")))?
            .map_err(|e| login_error(e, &place))?;
        // Capabilities change after login (RFC 3501 section 6.2.3), so ask now.
        let caps = timeout(COMMAND_TIMEOUT, session.capabilities())
            .await
            .map_err(|_| Error::Transient(format!("imap {place}: CAPABILITY timed out")))?
            .map_err(|e| op_error(e, "CAPABILITY", &place))?;
        Ok((session, (caps.has_str("IDLE"), caps.has_str("MOVE"))))
    }

    /// TCP, TLS or STARTTLS, and the greeting: a client ready to log in.
    async fn connect_client(&self) -> Result<Client<Conn>> {
        let settings = &self.settings;
        let place = settings.place();
        let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
            .await
            .map_err(|e| Error::Transient(format!("imap {place}: cannot connect: {e}")))?;
        // Commands are small and answered one at a time; do not let Nagle
        // hold them back.
        let _ = tcp.set_nodelay(true);
        match settings.tls {
            ImapTls::Plain => {
                let mut client = Client::new(Conn::Plain(tcp));
                read_greeting(&mut client, &place).await?;
                Ok(client)
            }
            ImapTls::Implicit => {
                let tls = self.handshake(tcp).await?;
                let mut client = Client::new(Conn::Tls(Box::new(tls)));
                read_greeting(&mut client, &place).await?;
                Ok(client)
            }
            ImapTls::Starttls => {
                let mut client = Client::new(tcp);
                read_greeting(&mut client, &place).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| match e {
                        async_imap::error::Error::No(text)
                        | async_imap::error::Error::Bad(text) => Error::Config(format!(
                            "imap {place}: server refused STARTTLS ({text}); \
                                 is tls = \"starttls\" right for this port?"
                        )),
                        other => {
                            Error::Transient(format!("imap {place}: STARTTLS failed: {other}"))
                        }
                    })?;
                // No greeting follows STARTTLS (RFC 3501 section 6.2.1).
                let tls = self.handshake(client.into_inner()).await?;
                Ok(Client::new(Conn::Tls(Box::new(tls))))
            }
        }
    }

    async fn handshake(&self, tcp: TcpStream) -> Result<tokio_native_tls::TlsStream<TcpStream>> {
        let settings = &self.settings;
        let place = settings.place();
        let name = settings
            .tls_server_name
            .as_deref()
            .unwrap_or(&settings.host);
        let Some(tls) = &self.tls else {
            return Err(Error::Config(format!(
                "imap {place}: TLS requested but not configured"
            )));
        };
        tls.connect(name, tcp)
            .await
            .map_err(|e| tls_error(&e.to_string(), "imap", &place, name))
    }
}

/// Builds a TLS connector trusting the system roots plus `ca_file`.
fn tls_connector(
    ca_file: Option<&Path>,
    base_dir: &Path,
    key: &str,
) -> Result<tokio_native_tls::TlsConnector> {
    let mut builder = native_tls::TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    if let Some(path) = ca_file {
        let path = base_dir.join(path);
        let pem = std::fs::read(&path)
            .map_err(|e| Error::Config(format!("{key}: cannot read {}: {e}", path.display())))?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
            Error::Config(format!(
                "{key}: {} is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder.add_root_certificate(cert);
    }
    let connector = builder
        .build()
        .map_err(|e| Error::Config(format!("{key}: cannot set up TLS: {e}")))?;
    Ok(connector.into())
}

/// Sorts a TLS handshake failure: a certificate or protocol mismatch is a
/// configuration problem that retrying will not fix; anything else (the
/// peer vanished mid-handshake) is transient.
fn tls_error(text: &str, proto: &str, place: &str, name: &str) -> Error {
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("verify") {
        Error::Config(format!(
            "{proto} {place}: TLS certificate not accepted for name {name:?}: {text} \
             (check ca_file, and that the certificate names {name:?})"
        ))
    } else if lower.contains("wrong version number")
        || lower.contains("unknown protocol")
        || lower.contains("packet length")
        || lower.contains("record layer")
        || lower.contains("http request")
    {
        Error::Config(format!(
            "{proto} {place}: TLS handshake failed: {text} \
             (is this port for implicit TLS? check tls and port)"
        ))
    } else {
        Error::Transient(format!("{proto} {place}: TLS handshake failed: {text}"))
    }
}

async fn read_greeting<T>(client: &mut Client<T>, place: &str) -> Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + fmt::Debug + Send,
{
    match client.read_response().await {
        Some(Ok(response)) => {
            if let async_imap::imap_proto::Response::Data {
                status: async_imap::imap_proto::Status::Bye,
                information,
                ..
            } = response.parsed()
            {
                return Err(Error::Transient(format!(
                    "imap {place}: server said BYE at connect: {}",
                    information.as_deref().unwrap_or("")
                )));
            }
            Ok(())
        }
        Some(Err(e)) => Err(Error::Transient(format!(
            "imap {place}: reading greeting: {e}"
        ))),
        None => Err(Error::Transient(format!(
            "imap {place}: connection closed before the greeting"
        ))),
    }
}

fn login_error(e: async_imap::error::Error, place: &str) -> Error {
    use async_imap::error::Error as E;
    match e {
        // The text carries the response code; UNAVAILABLE (RFC 5530) means
        // the server's auth backend is down, which is worth a retry.
        E::No(text) if text.contains("Unavailable") => {
            Error::Transient(format!("imap {place}: login temporarily unavailable: {text}"))
        }
        E::No(text) => Error::Config(format!(
            "imap {place}: login refused (wrong username or password?): {text}"
        )),
        E::Bad(text) => Error::Config(format!(
            "imap {place}: login command rejected (does the server allow this auth method here?): {text}"
        )),
        other => Error::Transient(format!("imap {place}: login failed: {other}")),
    }
}

fn op_error(e: async_imap::error::Error, what: &str, place: &str) -> Error {
    use async_imap::error::Error as E;
    match e {
        E::Validate(v) => Error::Config(format!("imap {place}: {what}: invalid input: {v}")),
        other => Error::Transient(format!("imap {place}: {what} failed: {other}")),
    }
}

async fn select(
    session: &mut Session<Conn>,
    settings: &ImapSettings,
) -> Result<async_imap::types::Mailbox> {
    let place = settings.place();
    let mailbox = &settings.mailbox;
    match timeout(COMMAND_TIMEOUT, session.select(mailbox)).await {
        Err(_) => Err(Error::Transient(format!(
            "imap {place}: SELECT {mailbox:?} timed out"
        ))),
        Ok(Ok(selected)) => Ok(selected),
        Ok(Err(async_imap::error::Error::No(text))) => Err(Error::Config(format!(
            "imap {place}: cannot select mailbox {mailbox:?} (does it exist?): {text}"
        ))),
        Ok(Err(e)) => Err(op_error(e, &format!("SELECT {mailbox:?}"), &place)),
    }
}

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

/// Parses a cursor or source id, `<uidvalidity>:<uid>`.
fn parse_position(text: &str) -> Option<(u32, u32)> {
    let (validity, uid) = text.split_once(':')?;
    Some((validity.trim().parse().ok()?, uid.trim().parse().ok()?))
}

impl ImapSource {
    /// Forgets what was handed out but not committed: the next
    /// `fetch_batch` starts again after the committed cursor (on a fresh
    /// connection). For a worker whose commit failed; without it, a session
    /// hands each message out once.
    pub fn rewind_to_committed(&mut self) {
        self.live = None;
    }

    /// The open session, opening one if needed. After failures, waits out
    /// the backoff first so that a caller looping on errors cannot hammer
    /// the server.
    async fn ensure_live(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            let delay = self.backoff.delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match self.open_live().await {
                Ok(live) => {
                    self.backoff = Backoff::default();
                    self.live = Some(live);
                }
                Err(e) => {
                    self.backoff.failures = self.backoff.failures.saturating_add(1);
                    tracing::warn!(source = %self.key, error.message = %e, "imap connect failed");
                    return Err(e);
                }
            }
        }
        match self.live.as_mut() {
            Some(live) => Ok(live),
            None => Err(Error::Transient(format!("{}: not connected", self.key))),
        }
    }

    async fn open_live(&self) -> Result<Live> {
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
            suspect: false,
        })
    }

    /// Runs `fetch_once`, and once more on a fresh connection if an open
    /// session turned out to be dead (e.g. the server restarted).
    async fn fetch(&mut self, max: usize) -> Result<Vec<Fetched>> {
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
        let take = max.min(live.pending.len());
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

    async fn mark(&mut self, source_ids: &[String]) -> Result<()> {
        once_more_on_a_fresh_session!(self, self.mark_once(source_ids))
    }

    async fn mark_once(&mut self, source_ids: &[String]) -> Result<()> {
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
                timeout(COMMAND_TIMEOUT, store)
                    .await
                    .map_err(|_| Error::Transient(format!("imap {place}: UID STORE timed out")))?
                    .map_err(|e| op_error(e, "UID STORE", &place))?;
            }
            if let Some(folder) = &settings.move_to {
                move_or_copy(live, &set, folder, &place).await?;
            }
        }
        Ok(())
    }

    async fn wait(&mut self, wait_at_most: Duration) -> Result<()> {
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
            suspect,
        } = live;
        // The session moves into the IDLE handle and comes back from DONE;
        // if anything fails in between, `self.live` stays empty and the next
        // call reconnects.
        let mut handle = session.idle();
        timeout(COMMAND_TIMEOUT, handle.init())
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
        let session = timeout(COMMAND_TIMEOUT, handle.done())
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
            suspect,
        });
        Ok(())
    }
}

/// Lists UIDs above the hand-out position with their sizes. When there is
/// nothing new, also checks that the mailbox was not deleted and recreated
/// under us: Dovecot keeps serving the old, stale view to a session that
/// had it selected.
async fn refill(live: &mut Live, settings: &ImapSettings) -> Result<()> {
    let place = settings.place();
    // A server updates a session's view of the mailbox only between
    // commands, and Dovecot answers a UID FETCH from the view it had before
    // it: without this NOOP, a poll would not see mail that arrived while
    // we slept.
    live.drain_notes();
    timeout(COMMAND_TIMEOUT, live.session.noop())
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
    let fetches = timeout(COMMAND_TIMEOUT, list)
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
            COMMAND_TIMEOUT,
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
    let fetches = timeout(COMMAND_TIMEOUT, fetch)
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
                raw: bytes.to_vec(),
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
            COMMAND_TIMEOUT,
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
                timeout(COMMAND_TIMEOUT, live.session.create(folder))
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

impl Source for ImapSource {
    fn fetch_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Fetched>>> {
        self.fetch(max).boxed()
    }

    fn mark_done<'a>(&'a mut self, source_ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        self.mark(source_ids).boxed()
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
    fn positions_parse_and_reject_garbage() {
        assert_eq!(parse_position("1795444258:42"), Some((1795444258, 42)));
        assert_eq!(parse_position("x:1"), None);
        assert_eq!(parse_position("12"), None);
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

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.delay(), Duration::ZERO);
        backoff.failures = 1;
        let d = backoff.delay();
        assert!(d >= BACKOFF_BASE / 2 && d <= BACKOFF_BASE);
        backoff.failures = 40;
        let d = backoff.delay();
        assert!(d >= BACKOFF_CAP / 2 && d <= BACKOFF_CAP);
    }

    fn settings(toml_text: &str) -> std::result::Result<ImapSettings, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn plaintext_is_refused_without_the_explicit_switch() {
        let s = settings(
            "host = \"127.0.0.1\"\nport = 143\ntls = \"plain\"\nusername = \"u\"\npassword = { env = \"P\" }\n",
        )
        .expect("parses");
        let err = s.validate().expect_err("refused");
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("allow_plaintext"));
    }

    #[test]
    fn defaults_and_durations_parse() {
        let s = settings(
            "host = \"h\"\nport = 993\ntls = \"implicit\"\nusername = \"u\"\npassword = { env = \"P\" }\npoll_interval = \"90s\"\nprocessed_keyword = \"$RecoverydeskDone\"\n",
        )
        .expect("parses");
        assert_eq!(s.mailbox, "INBOX");
        assert_eq!(s.poll_interval, Duration::from_secs(90));
        assert!(s.idle);
        assert_eq!(
            s.done_flags().as_deref(),
            Some("(\\Seen $RecoverydeskDone)")
        );
        assert!(s.validate().is_ok());
    }

    #[test]
    fn unknown_keys_and_deleted_flag_are_refused() {
        assert!(settings(
            "host = \"h\"\nport = 993\ntls = \"implicit\"\nusername = \"u\"\npassword = { env = \"P\" }\nbogus = 1\n"
        )
        .is_err());
        let s = settings(
            "host = \"h\"\nport = 993\ntls = \"implicit\"\nusername = \"u\"\npassword = { env = \"P\" }\nprocessed_flag = \"\\\\Deleted\"\n",
        )
        .expect("parses");
        assert!(s.validate().is_err());
    }

    #[test]
    fn tls_failures_are_sorted() {
        let cert = tls_error(
            "certificate verify failed (hostname mismatch)",
            "imap",
            "u@h:1",
            "h",
        );
        assert!(matches!(cert, Error::Config(_)));
        let proto = tls_error("wrong version number", "imap", "u@h:1", "h");
        assert!(matches!(proto, Error::Config(_)));
        let io = tls_error("connection reset by peer", "imap", "u@h:1", "h");
        assert!(matches!(io, Error::Transient(_)));
    }
}
