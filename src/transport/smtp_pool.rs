//! The SMTP transport's own connections: a small pool of lettre
//! `AsyncSmtpConnection`s over sockets opened here, so that they carry
//! `TCP_NODELAY`. lettre's pooled transport opens its sockets itself and
//! has no option for it, and lettre writes a message and its final
//! `\r\n.\r\n` as two writes: without `TCP_NODELAY` the dot waits for the
//! server's delayed ACK, about 40 ms a message on Linux.
//!
//! Every network step (connect, TLS, greeting, STARTTLS, AUTH, each send)
//! runs under the configured timeout.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How the connection is protected.
pub(crate) enum Protection {
    /// No TLS (loopback tests only).
    Plain,
    /// `STARTTLS` after the greeting, required.
    Starttls(TlsParameters),
    /// TLS from the first byte, checked against `name`.
    Implicit {
        connector: tokio_native_tls::TlsConnector,
        name: String,
    },
}

/// Why a connection or a send failed.
pub(crate) enum Failure {
    /// lettre's own error (a server reply, or the stream under it).
    Smtp(lettre::transport::smtp::Error),
    /// The socket could not be opened.
    Connect(io::Error),
    /// The implicit-TLS handshake failed.
    Tls(String),
    /// A step took longer than the timeout.
    Timeout(&'static str, Duration),
}

/// Where to connect and how, plus the idle connections.
pub(crate) struct Pool {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) protection: Protection,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) timeout: Duration,
    pub(crate) size: usize,
    pub(crate) hello: ClientId,
    pub(crate) idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl Pool {
    async fn step<T, E>(
        &self,
        what: &'static str,
        future: impl std::future::Future<Output = Result<T, E>>,
        wrap: impl FnOnce(E) -> Failure,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(result) => result.map_err(wrap),
            Err(_) => Err(Failure::Timeout(what, self.timeout)),
        }
    }

    /// Connects, reads the greeting, does TLS and AUTH as configured.
    pub(crate) async fn open(&self) -> Result<AsyncSmtpConnection, Failure> {
        let address = (self.host.as_str(), self.port);
        let tcp = self
            .step("connect", TcpStream::connect(address), Failure::Connect)
            .await?;
        tcp.set_nodelay(true).map_err(Failure::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.protection {
            Protection::Implicit { connector, name } => {
                let tls = self
                    .step("TLS handshake", connector.connect(name, tcp), |e| {
                        Failure::Tls(e.to_string())
                    })
                    .await?;
                Box::new(ImplicitTls(tls))
            }
            _ => Box::new(tcp),
        };
        let connect = AsyncSmtpConnection::connect_with_transport(stream, &self.hello);
        let mut conn = self.step("greeting", connect, Failure::Smtp).await?;
        if let Protection::Starttls(parameters) = &self.protection {
            let upgrade = conn.starttls(parameters.clone(), &self.hello);
            self.step("STARTTLS", upgrade, Failure::Smtp).await?;
        }
        if let Some(credentials) = &self.credentials {
            let auth = conn.auth(DEFAULT_MECHANISMS, credentials);
            self.step("AUTH", auth, Failure::Smtp).await?;
        }
        Ok(conn)
    }

    /// Sends one message on an idle connection or a new one. A pooled
    /// connection that died unseen (a server restart, an idle timeout) is
    /// replaced once, unless the server had answered on it.
    pub(crate) async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), Failure> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut conn) = pooled {
            match self.deliver(&mut conn, envelope, bytes).await {
                Ok(()) => {
                    self.give_back(conn);
                    return Ok(());
                }
                Err(Failure::Smtp(e)) if e.status().is_none() => {
                    tracing::debug!(error.message = %e, "pooled smtp connection gone; opening a new one");
                }
                Err(other) => return Err(other),
            }
        }
        let mut conn = self.open().await?;
        self.deliver(&mut conn, envelope, bytes).await?;
        self.give_back(conn);
        Ok(())
    }

    async fn deliver(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        self.step("send", conn.send(envelope, bytes), Failure::Smtp)
            .await
            .map(|response| {
                tracing::debug!(response = %response.message().collect::<Vec<_>>().join(" "), "smtp accepted");
            })
    }

    fn give_back(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.size {
            idle.push(conn);
        }
    }
}

/// A TLS stream lettre can drive: its trait wants the peer address too.
#[derive(Debug)]
struct ImplicitTls(tokio_native_tls::TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().get_ref().get_ref().peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
