//! Opening a session: TCP, implicit TLS or STARTTLS (or plaintext for
//! loopback tests), the greeting, LOGIN or AUTHENTICATE PLAIN, SELECT,
//! and sorting failures into configuration errors and transient ones.

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::error::{Error, Result};
use crate::secret::Secret;

use super::{ImapAuth, ImapSettings, ImapTls};

/// The byte stream under the IMAP client: TCP, or TLS over TCP.
pub(super) enum Conn {
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
pub(super) struct Connector {
    pub(super) settings: ImapSettings,
    password: Secret,
    tls: Option<tokio_native_tls::TlsConnector>,
}

impl Connector {
    pub(super) fn new(settings: &ImapSettings, base_dir: &Path) -> Result<Self> {
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
    pub(super) async fn open(&self) -> Result<(Session<Conn>, (bool, bool))> {
        let settings = &self.settings;
        let place = settings.place();
        let client = timeout(settings.timeout, self.connect_client())
            .await
            .map_err(|_| {
                Error::Transient(format!(
                    "imap {place}: no IMAP greeting within {} s (tls = {:?}; is this the right port?)",
                    settings.timeout.as_secs(),
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
        let mut session = timeout(settings.timeout, login)
            .await
            .map_err(|_| Error::Transient(format!("imap {place}: login timed out")))?
            .map_err(|e| login_error(e, &place))?;
        // Capabilities change after login (RFC 3501 section 6.2.3), so ask now.
        let caps = timeout(settings.timeout, session.capabilities())
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

pub(super) fn op_error(e: async_imap::error::Error, what: &str, place: &str) -> Error {
    use async_imap::error::Error as E;
    match e {
        E::Validate(v) => Error::Config(format!("imap {place}: {what}: invalid input: {v}")),
        other => Error::Transient(format!("imap {place}: {what} failed: {other}")),
    }
}

pub(super) async fn select(
    session: &mut Session<Conn>,
    settings: &ImapSettings,
) -> Result<async_imap::types::Mailbox> {
    let place = settings.place();
    let mailbox = &settings.mailbox;
    let selected = async {
        if settings.read_only {
            session.examine(mailbox).await
        } else {
            session.select(mailbox).await
        }
    };
    match timeout(settings.timeout, selected).await {
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

#[cfg(test)]
mod tests {
    use super::*;

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
