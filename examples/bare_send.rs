//! The bare sender for `scripts/bench-outbox.sh`: what a minimal lettre
//! program does to send N finished messages of a reply's size to one relay,
//! one after the other over lettre's default (pooled, plaintext) async
//! transport. No store, no queue, no marks.
//!
//! ```text
//! cargo run --release --example bare_send -- HOST PORT COUNT RECIPIENT_PREFIX DOMAIN
//! ```
//!
//! Message i goes to `RECIPIENT_PREFIX+i@DOMAIN`. Prints one line:
//! `sent N in S s: R msgs/s`.

use std::time::Instant;

use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, count, prefix, domain] = args.as_slice() else {
        return Err("usage: bare_send HOST PORT COUNT RECIPIENT_PREFIX DOMAIN".into());
    };
    let count: usize = count.parse()?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(port.parse()?)
        .build();
    // About the size of an acknowledgement (text and HTML parts).
    let body = "We received your account recovery request. ".repeat(60);
    let started = Instant::now();
    for i in 0..count {
        let to = format!("{prefix}+bare{i}@{domain}");
        let raw = format!(
            "From: support@{domain}\r\nTo: {to}\r\nSubject: bare {i}\r\n\
             Message-ID: <bare-{i}-{}@{domain}>\r\n\r\n{body}\r\n",
            started.elapsed().as_nanos()
        );
        let envelope = Envelope::new(
            Some(format!("support@{domain}").parse::<Address>()?),
            vec![to.parse::<Address>()?],
        )?;
        transport.send_raw(&envelope, raw.as_bytes()).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {count} in {secs:.2} s: {:.0} msgs/s",
        count as f64 / secs
    );
    Ok(())
}
