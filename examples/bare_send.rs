//! The bare sender for `scripts/bench-outbox.sh`: what a minimal lettre
//! program does to send N finished messages of a reply's size to one
//! relay, one after the other. No store, no queue, no marks.
//!
//! ```text
//! cargo run --release --example bare_send -- MODE HOST PORT COUNT RECIPIENT_PREFIX DOMAIN
//! ```
//!
//! MODE `transport`: lettre's pooled async transport as it comes (its own
//! sockets, no `TCP_NODELAY`). MODE `nodelay`: one lettre connection over a
//! socket with `TCP_NODELAY`, the fastest one connection can go.
//! Message i goes to `RECIPIENT_PREFIX+i@DOMAIN`. Prints one line:
//! `sent N in S s: R msgs/s`.

use std::time::Instant;

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, host, port, count, prefix, domain] = args.as_slice() else {
        return Err("usage: bare_send transport|nodelay HOST PORT COUNT PREFIX DOMAIN".into());
    };
    let count: usize = count.parse()?;
    let port: u16 = port.parse()?;
    // About the size of an acknowledgement (text and HTML parts).
    let body = "We received your account recovery request. ".repeat(60);
    let message =
        |i: usize, stamp: u128| -> Result<(Envelope, String), Box<dyn std::error::Error>> {
            let to = format!("{prefix}+bare{i}@{domain}");
            let raw = format!(
                "From: support@{domain}\r\nTo: {to}\r\nSubject: bare {i}\r\n\
             Message-ID: <bare-{i}-{stamp}@{domain}>\r\n\r\n{body}\r\n"
            );
            let envelope = Envelope::new(
                Some(format!("support@{domain}").parse::<Address>()?),
                vec![to.parse::<Address>()?],
            )?;
            Ok((envelope, raw))
        };
    let started = Instant::now();
    match mode.as_str() {
        "transport" => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(port)
                .build();
            for i in 0..count {
                let (envelope, raw) = message(i, started.elapsed().as_nanos())?;
                transport.send_raw(&envelope, raw.as_bytes()).await?;
            }
        }
        "nodelay" => {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
                    .await?;
            for i in 0..count {
                let (envelope, raw) = message(i, started.elapsed().as_nanos())?;
                conn.send(&envelope, raw.as_bytes()).await?;
            }
            conn.quit().await?;
        }
        other => return Err(format!("unknown mode {other:?}").into()),
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {count} in {secs:.2} s: {:.0} msgs/s",
        count as f64 / secs
    );
    Ok(())
}
