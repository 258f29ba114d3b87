//! The SMTP transport: finished messages out through lettre's async SMTP
//! client (tokio, native-tls) over a small pool of our own connections
//! with `TCP_NODELAY` (see `smtp_pool`).
//!
//! Owns the connection settings (STARTTLS, implicit TLS, or plaintext for
//! loopback tests only), AUTH, and the sorting of failures: a 4xx reply or
//! a connection/TLS problem is [`Error::Transient`] (the outbox keeps the
//! message and retries), a 5xx reply is [`Error::Permanent`] (the outbox
//! records it on the case). Does not own formatting (the outbox hands over
//! finished bytes with a fixed Message-ID, sent as they are with
//! `send_raw`), retries or backoff (the outbox's), or any queue.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use serde::Deserialize;

use super::smtp_pool::{Failure, Pool, Protection};

use crate::error::{Error, Result};
use crate::secret::SecretSource;
use crate::transport::{OutgoingMessage, Transport};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// TLS from the first byte (port 465, "submissions", RFC 8314).
    Implicit,
    /// `STARTTLS` required before anything else (port 587 or 25).
    Starttls,
    /// No TLS at all; refused unless `allow_plaintext = true`.
    Plain,
}

/// The `[smtp]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name (also the name the certificate must carry, unless
    /// `tls_server_name` says otherwise).
    pub host: String,
    /// Server port, e.g. 587 (STARTTLS) or 465 (implicit).
    pub port: u16,
    /// `"implicit"`, `"starttls"` or `"plain"`.
    pub tls: SmtpTls,
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
    /// AUTH user name; no AUTH when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// AUTH password source; required with `username`.
    #[serde(default)]
    pub password: Option<SecretSource>,
    /// Network timeout, e.g. `"30s"` (default 30 s): connecting and the
    /// whole exchange of one message (greeting to the answer to DATA).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    /// How many connections send at once (default 4, 1 to 32).
    #[serde(default = "default_connections")]
    pub connections: usize,
}

fn default_connections() -> usize {
    4
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl SmtpSettings {
    fn place(&self) -> String {
        match &self.username {
            Some(user) => format!("{user}@{}:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    fn tls_name(&self) -> &str {
        self.tls_server_name.as_deref().unwrap_or(&self.host)
    }
}

/// The SMTP transport; build it with [`build`]. Cheap to clone (the
/// connection pool is shared).
#[derive(Clone)]
pub struct SmtpTransport {
    pool: std::sync::Arc<Pool>,
    place: String,
    tls_name: String,
    description: String,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("server", &self.description)
            .finish()
    }
}

/// Validates the settings, resolves the password and CA, and sets up the
/// pooled client. Does not connect: the first send (or [`check`]) does.
pub fn build(settings: &SmtpSettings, base_dir: &Path) -> Result<SmtpTransport> {
    let place = settings.place();
    if settings.host.is_empty() {
        return Err(Error::Config("smtp: host is empty".into()));
    }
    if settings.tls == SmtpTls::Plain && !settings.allow_plaintext {
        return Err(Error::Config(format!(
            "smtp {place}: tls = \"plain\" sends mail (and any password) in clear; \
             set allow_plaintext = true only for a loopback test server"
        )));
    }
    if !(1..=32).contains(&settings.connections) {
        return Err(Error::Config(format!(
            "smtp {place}: connections must be between 1 and 32"
        )));
    }
    if settings.timeout.is_zero() {
        return Err(Error::Config(format!(
            "smtp {place}: timeout must be above 0"
        )));
    }
    let credentials = match (&settings.username, &settings.password) {
        (Some(user), Some(source)) => {
            let secret = source.resolve("transport.smtp.password", base_dir)?;
            Some(Credentials::new(user.clone(), secret.expose().to_string()))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::Config(format!(
                "smtp {place}: username is set but password is not"
            )))
        }
        (None, Some(_)) => {
            return Err(Error::Config(format!(
                "smtp {place}: password is set but username is not"
            )))
        }
    };
    let protection = match settings.tls {
        SmtpTls::Plain => Protection::Plain,
        SmtpTls::Starttls => Protection::Starttls(tls_parameters(settings, base_dir)?),
        SmtpTls::Implicit => Protection::Implicit {
            connector: implicit_connector(settings, base_dir)?,
            name: settings.tls_name().to_string(),
        },
    };
    let mode = match settings.tls {
        SmtpTls::Implicit => "tls",
        SmtpTls::Starttls => "starttls",
        SmtpTls::Plain => "plain",
    };
    let pool = Pool {
        host: settings.host.clone(),
        port: settings.port,
        protection,
        credentials,
        timeout: settings.timeout,
        size: settings.connections,
        hello: ClientId::default(),
        idle: Default::default(),
    };
    Ok(SmtpTransport {
        pool: std::sync::Arc::new(pool),
        place: place.clone(),
        tls_name: settings.tls_name().to_string(),
        description: format!("smtp+{mode}://{place}"),
    })
}

/// Connects, says EHLO, does TLS and AUTH as configured, and reports.
/// Every failure here is [`Error::Config`] or [`Error::Transient`] with
/// what and where.
pub async fn check(settings: &SmtpSettings, base_dir: &Path) -> Result<String> {
    let transport = build(settings, base_dir)?;
    let mut conn = transport.pool.open().await.map_err(|failure| {
        let operator = failure.is_operators();
        match transport.failure(failure) {
            // At check time a refused login or certificate is the
            // operator's to fix, not something to wait out.
            Error::Transient(text) | Error::Unavailable(text) if operator => Error::Config(text),
            other => other,
        }
    })?;
    if !conn.test_connected().await {
        return Err(Error::Unavailable(format!(
            "smtp {}: connected but the server did not answer NOOP",
            transport.place
        )));
    }
    let _ = conn.quit().await;
    Ok(format!(
        "{}: connected{}",
        transport.description,
        if settings.username.is_some() {
            ", AUTH ok"
        } else {
            ""
        }
    ))
}

fn read_ca(settings: &SmtpSettings, base_dir: &Path) -> Result<Option<(PathBuf, Vec<u8>)>> {
    let Some(path) = &settings.ca_file else {
        return Ok(None);
    };
    let path = base_dir.join(path);
    let pem = std::fs::read(&path)
        .map_err(|e| Error::Config(format!("smtp.ca_file: cannot read {}: {e}", path.display())))?;
    Ok(Some((path, pem)))
}

/// The TLS client for implicit TLS, trusting the configured CA as well.
fn implicit_connector(
    settings: &SmtpSettings,
    base_dir: &Path,
) -> Result<tokio_native_tls::TlsConnector> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some((path, pem)) = read_ca(settings, base_dir)? {
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
            Error::Config(format!(
                "smtp.ca_file: {} is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder.add_root_certificate(cert);
    }
    let connector = builder
        .build()
        .map_err(|e| Error::Config(format!("smtp {}: cannot set up TLS: {e}", settings.place())))?;
    Ok(connector.into())
}

fn tls_parameters(settings: &SmtpSettings, base_dir: &Path) -> Result<TlsParameters> {
    let place = settings.place();
    let mut builder = TlsParameters::builder(settings.tls_name().to_string());
    if let Some((path, pem)) = read_ca(settings, base_dir)? {
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            Error::Config(format!(
                "transport.smtp.ca_file: {} is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_native()
        .map_err(|e| Error::Config(format!("smtp {place}: cannot set up TLS: {e}")))
}

/// Auth refused (530/534/535/538) or a TLS failure: retrying does not help.
fn is_config_problem(e: &lettre::transport::smtp::Error) -> bool {
    if is_tls_problem(e) {
        return true;
    }
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    matches!(code.as_str(), "530" | "534" | "535" | "538")
}

/// A certificate or TLS protocol mismatch. lettre reports a failed
/// STARTTLS handshake as a connection error, so the words are checked too.
fn is_tls_problem(e: &lettre::transport::smtp::Error) -> bool {
    let text = error_chain(e).to_ascii_lowercase();
    e.is_tls()
        || [
            "certificate",
            "verify failed",
            "wrong version number",
            "unknown protocol",
            "packet length",
        ]
        .iter()
        .any(|needle| text.contains(needle))
}

/// Parses an envelope address; the empty sender is the null reverse-path.
fn envelope(message: &OutgoingMessage) -> Result<Envelope> {
    let from = match message.envelope_from.trim() {
        "" | "<>" => None,
        text => Some(text.parse::<Address>().map_err(|e| {
            Error::Permanent(format!(
                "message {}: envelope sender {text:?} is not an address: {e}",
                message.message_id
            ))
        })?),
    };
    let to = message
        .envelope_to
        .iter()
        .map(|text| {
            text.trim().parse::<Address>().map_err(|e| {
                Error::Permanent(format!(
                    "message {}: recipient {text:?} is not an address: {e}",
                    message.message_id
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Envelope::new(from, to).map_err(|e| {
        Error::Permanent(format!(
            "message {}: unusable envelope: {e}",
            message.message_id
        ))
    })
}

impl SmtpTransport {
    /// Sorts a lettre error into what the outbox does next, keeping the
    /// server's own words: a 5xx is this message's for good, another 4xx
    /// this message's for now, and everything that would fail any message
    /// (no connection, TLS, login, 421 closing) pauses the queue.
    fn classify(&self, e: &lettre::transport::smtp::Error) -> Error {
        let place = &self.place;
        if e.is_permanent() && !is_config_problem(e) {
            return Error::Permanent(format!("smtp {place}: {e}"));
        }
        if is_tls_problem(e) {
            let text = error_chain(e);
            return Error::Unavailable(format!(
                "smtp {place}: TLS failed for name {:?}: {text} \
                 (check ca_file, tls and port, and that the certificate names {:?})",
                self.tls_name, self.tls_name
            ));
        }
        if is_config_problem(e) {
            return Error::Unavailable(format!(
                "smtp {place}: authentication refused (check username and password): {e}"
            ));
        }
        let closing = e.status().is_some_and(|c| c.to_string() == "421");
        if e.is_transient() && !closing {
            return Error::Transient(format!("smtp {place}: {e}"));
        }
        // Connection refused, reset, timeouts, a dropped pool connection,
        // 421: worth a retry soon, and not this message's fault.
        Error::Unavailable(format!("smtp {place}: {}", error_chain(e)))
    }

    /// Sorts any failure of the pool (see [`SmtpTransport::classify`]).
    fn failure(&self, failure: Failure) -> Error {
        let place = &self.place;
        match failure {
            Failure::Smtp(e) => self.classify(&e),
            Failure::Connect(e) => Error::Unavailable(format!("smtp {place}: cannot connect: {e}")),
            Failure::Tls(text) => Error::Unavailable(format!(
                "smtp {place}: TLS failed for name {:?}: {text} \
                 (check ca_file, tls and port, and that the certificate names {:?})",
                self.tls_name, self.tls_name
            )),
            // Often STARTTLS configured against an implicit-TLS port (or
            // the reverse): both sides wait for the other.
            Failure::Timeout(what, limit) => Error::Unavailable(format!(
                "smtp {place}: {what}: no answer within {} \
                 (is tls right for this port? 587 is starttls, 465 implicit)",
                humantime::format_duration(limit)
            )),
        }
    }
}

impl Failure {
    /// A refused login or a certificate problem: the operator's to fix.
    fn is_operators(&self) -> bool {
        match self {
            Failure::Smtp(e) => is_config_problem(e),
            Failure::Tls(_) => true,
            Failure::Connect(_) | Failure::Timeout(..) => false,
        }
    }
}

/// The error and its sources on one line: lettre's own Display stops at
/// "tls error" or "network error" without saying why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    without_repeats(&text)
}

/// Drops a part said twice in a row: lettre wraps a connection error in
/// another, so its text reads "Connection error: Connection error: …".
fn without_repeats(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, message: &'a OutgoingMessage) -> BoxFuture<'a, Result<()>> {
        async move {
            let envelope = envelope(message)?;
            self.pool
                .send(&envelope, &message.bytes)
                .await
                .map_err(|failure| self.failure(failure))
        }
        .boxed()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn connections(&self) -> usize {
        self.pool.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> std::result::Result<SmtpSettings, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn plaintext_is_refused_without_the_explicit_switch() {
        let s = settings("host = \"127.0.0.1\"\nport = 25\ntls = \"plain\"\n").expect("parses");
        let err = build(&s, Path::new(".")).expect_err("refused");
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("allow_plaintext"));
    }

    #[test]
    fn an_error_text_says_each_part_once() {
        assert_eq!(
            without_repeats("Connection error: Connection error: certificate verify failed"),
            "Connection error: certificate verify failed"
        );
        assert_eq!(without_repeats("a: b: a"), "a: b: a");
    }

    #[test]
    fn username_without_password_is_a_config_error() {
        let s = settings(
            "host = \"h\"\nport = 587\ntls = \"starttls\"\nusername = \"u\"\ntimeout = \"5s\"\n",
        )
        .expect("parses");
        assert_eq!(s.timeout, Duration::from_secs(5));
        let err = build(&s, Path::new(".")).expect_err("refused");
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(settings("host = \"h\"\nport = 1\ntls = \"implicit\"\nextra = 1\n").is_err());
    }

    #[test]
    fn bad_envelope_addresses_are_permanent() {
        let message = OutgoingMessage {
            message_id: "m@x".into(),
            envelope_from: "".into(),
            envelope_to: vec!["not an address".into()],
            bytes: Vec::new(),
        };
        assert!(matches!(envelope(&message), Err(Error::Permanent(_))));
        let ok = OutgoingMessage {
            envelope_to: vec!["a@example.org".into()],
            ..message
        };
        assert!(envelope(&ok).is_ok());
    }
}
