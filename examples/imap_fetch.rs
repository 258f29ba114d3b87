//! A bare IMAP client on the same stack as recoverydesk's source (async-imap
//! on tokio, native-tls), for `scripts/bench-ingest.sh`: it logs in, lists
//! the UIDs of one mailbox, fetches every message with
//! `UID FETCH <100 uids> BODY.PEEK[]` and does nothing else with them. Its
//! rate is the physical limit the worker is compared with.
//!
//! ```text
//! cargo run --release --example imap_fetch -- \
//!     --host 127.0.0.1 --port 14143 --tls plain --user bench --password password
//!     [--mailbox INBOX] [--batch 100] [--ca ca.crt] [--tls-name localhost]
//! ```
//!
//! Prints one line: `fetched N msgs (B bytes) in S s: R msgs/s (login L ms)`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP or TLS over TCP, as in the worker's source.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_native_tls::TlsStream<TcpStream>>),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Conn::Plain",
            Conn::Tls(_) => "Conn::Tls",
        })
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

struct Args {
    host: String,
    port: u16,
    tls: String,
    user: String,
    password: String,
    mailbox: String,
    batch: usize,
    ca: Option<String>,
    tls_name: Option<String>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 14143,
        tls: "plain".into(),
        user: String::new(),
        password: String::new(),
        mailbox: "INBOX".into(),
        batch: 100,
        ca: None,
        tls_name: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => args.port = value()?.parse()?,
            "--tls" => args.tls = value()?,
            "--user" => args.user = value()?,
            "--password" => args.password = value()?,
            "--mailbox" => args.mailbox = value()?,
            "--batch" => args.batch = value()?.parse()?,
            "--ca" => args.ca = Some(value()?),
            "--tls-name" => args.tls_name = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.user.is_empty() {
        return Err("--user is required".into());
    }
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    Ok(args)
}

fn tls_connector(args: &Args) -> Result<tokio_native_tls::TlsConnector, BoxError> {
    let mut builder = native_tls::TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    if let Some(ca) = &args.ca {
        builder.add_root_certificate(native_tls::Certificate::from_pem(&std::fs::read(ca)?)?);
    }
    Ok(builder.build()?.into())
}

async fn greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), BoxError>
where
    T: AsyncRead + AsyncWrite + Unpin + fmt::Debug + Send,
{
    match client.read_response().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.into()),
        None => Err("connection closed before the greeting".into()),
    }
}

async fn connect(args: &Args) -> Result<async_imap::Client<Conn>, BoxError> {
    let tcp = TcpStream::connect((args.host.as_str(), args.port)).await?;
    tcp.set_nodelay(true)?;
    let name = args.tls_name.as_deref().unwrap_or(&args.host);
    match args.tls.as_str() {
        "plain" => {
            let mut client = async_imap::Client::new(Conn::Plain(tcp));
            greeting(&mut client).await?;
            Ok(client)
        }
        "implicit" => {
            let tls = tls_connector(args)?.connect(name, tcp).await?;
            let mut client = async_imap::Client::new(Conn::Tls(Box::new(tls)));
            greeting(&mut client).await?;
            Ok(client)
        }
        "starttls" => {
            let mut client = async_imap::Client::new(tcp);
            greeting(&mut client).await?;
            client.run_command_and_check_ok("STARTTLS", None).await?;
            let tls = tls_connector(args)?
                .connect(name, client.into_inner())
                .await?;
            Ok(async_imap::Client::new(Conn::Tls(Box::new(tls))))
        }
        other => Err(format!("--tls {other}: use plain, implicit or starttls").into()),
    }
}

/// `1:3,7` from sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        while i + 1 < uids.len() && uids[i + 1] == uids[i] + 1 {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == uids[i] {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{}", uids[i]));
        }
        i += 1;
    }
    out
}

async fn bench(args: &Args) -> Result<(), BoxError> {
    let started = Instant::now();
    let client = connect(args).await?;
    let mut session = client
        .login(&args.user, &args.password)
        .await
        .map_err(|(e, _)| e)?;
    session.select(&args.mailbox).await?;
    let login_ms = started.elapsed().as_millis();

    let fetch_started = Instant::now();
    let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
    uids.sort_unstable();
    let mut count = 0usize;
    let mut bytes = 0usize;
    for chunk in uids.chunks(args.batch) {
        let fetches: Vec<_> = session
            .uid_fetch(uid_set(chunk), "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        for f in &fetches {
            if let Some(body) = f.body() {
                count += 1;
                bytes += body.len();
            }
        }
    }
    let secs = fetch_started.elapsed().as_secs_f64();
    let _ = session.logout().await;
    println!(
        "fetched {count} msgs ({bytes} bytes) in {secs:.3} s: {:.0} msgs/s (login {login_ms} ms)",
        count as f64 / secs.max(1e-9)
    );
    if count != uids.len() {
        return Err(format!("{} UIDs listed but {count} bodies fetched", uids.len()).into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = match parse_args() {
        Ok(args) => bench(&args).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("imap_fetch: {e}");
        std::process::exit(1);
    }
}
