//! `staff.verify = "dkim"`: recoverydesk checks staff mail's DKIM signature
//! itself. The mail is signed for real (an Ed25519 key made here) and the
//! keys are served by a dnsmasq on loopback started by each test; nothing
//! asks the internet. Without dnsmasq (`scripts/install-test-deps.sh`
//! installs it) the tests skip and say so.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common;

use base64::Engine;
use common::*;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use recoverydesk::case::{Case, CaseState, Flag};
use recoverydesk::signature::{SignatureChecker, SignatureVerdict};

const SELECTOR: &str = "sel";
const REQUESTER: &str = "jo@example.org";

/// A dnsmasq answering only for `*.example` from the records given.
struct Dns {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One signing key and the TXT record that publishes it.
struct Key {
    pkcs8: Vec<u8>,
}

impl Key {
    fn new() -> Key {
        Key {
            pkcs8: Ed25519Key::generate_pkcs8().expect("ed25519 key"),
        }
    }

    fn record(&self) -> String {
        let key = Ed25519Key::from_pkcs8_der(&self.pkcs8).unwrap();
        let p = base64::engine::general_purpose::STANDARD.encode(key.public_key());
        format!("v=DKIM1; k=ed25519; p={p}")
    }

    /// `raw` with a DKIM-Signature by `domain` on top.
    fn sign(&self, domain: &str, raw: &str) -> String {
        let key = Ed25519Key::from_pkcs8_der(&self.pkcs8).unwrap();
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector(SELECTOR)
            .headers(["From", "To", "Subject", "Message-ID", "Date"])
            .sign(raw.as_bytes())
            .expect("signs");
        format!("{}{raw}", signature.to_header())
    }
}

/// The keys of the three signing domains the tests use.
struct Keys {
    /// The real staff domain's key, published with a DMARC record.
    staff: Key,
    /// Someone else's domain, with its own published key.
    other: Key,
    /// A look-alike domain ending in the staff domain's name.
    lookalike: Key,
}

const STAFF_DOMAIN: &str = "pypi.example";
const OTHER_DOMAIN: &str = "evil.example";
const LOOKALIKE_DOMAIN: &str = "notpypi.example";

/// Starts dnsmasq with the keys' records; `None` (with a reason printed)
/// when dnsmasq is not installed.
fn start_dns(keys: &Keys) -> Option<Dns> {
    let Some(binary) = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipped: dnsmasq is not installed (scripts/install-test-deps.sh installs it)");
        return None;
    };
    // A port the system just handed out, so parallel tests do not collide;
    // another program may still take it (TCP or UDP) before dnsmasq does,
    // so a failed start tries a new port.
    for _ in 0..5 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if let Some(dns) = try_start(binary, port, keys) {
            return Some(dns);
        }
    }
    panic!("dnsmasq did not start on any of 5 ports");
}

/// dnsmasq on `port`, once it listens; `None` when it exited at start.
fn try_start(binary: &str, port: u16, keys: &Keys) -> Option<Dns> {
    let txt = |domain: &str, value: &str| format!("--txt-record={domain},{value}");
    let child = Command::new(binary)
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--pid-file=",
            "--user=",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            // Names under example that have no record are NXDOMAIN, never
            // forwarded anywhere.
            "--local=/example/",
            &format!("--port={port}"),
            &txt(
                &format!("{SELECTOR}._domainkey.{STAFF_DOMAIN}"),
                &keys.staff.record(),
            ),
            &txt(&format!("_dmarc.{STAFF_DOMAIN}"), "v=DMARC1; p=reject"),
            &txt(
                &format!("{SELECTOR}._domainkey.{OTHER_DOMAIN}"),
                &keys.other.record(),
            ),
            &txt(
                &format!("{SELECTOR}._domainkey.{LOOKALIKE_DOMAIN}"),
                &keys.lookalike.record(),
            ),
            &txt(&format!("_dmarc.{LOOKALIKE_DOMAIN}"), "v=DMARC1; p=none"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("dnsmasq starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut dns = Dns { child, addr };
    // Ready once it accepts TCP on the port (it serves UDP from the same start).
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            return Some(dns);
        }
        if let Ok(Some(status)) = dns.child.try_wait() {
            eprintln!("dnsmasq on port {port} exited at start ({status})");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = dns.child.kill();
    panic!("dnsmasq did not listen on {addr}");
}

fn keys() -> Keys {
    Keys {
        staff: Key::new(),
        other: Key::new(),
        lookalike: Key::new(),
    }
}

/// A staff reply (unsigned) in the case thread.
fn reply(app: &TestApp, case: &Case, extra_headers: &str, body: &str) -> String {
    format!(
        "{extra_headers}From: Ada Admin <admin@pypi.example>\r\nTo: {}\r\nSubject: Re: [Case {}] New recovery case\r\nMessage-ID: <staff-1@pypi.example>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        app.reply_address(&case.id),
        case.id
    )
}

/// An app with `staff.verify = "dkim"` on `dns`, holding one case.
async fn app_with_case(dns: SocketAddr) -> (TestApp, Case) {
    app_with_case_timeout(dns, "2s").await
}

async fn app_with_case_timeout(dns: SocketAddr, timeout: &str) -> (TestApp, Case) {
    let config = config_text("", FILE_DIRECTORY).replace(
        "trusted_authserv_ids = [\"mx.pypi.example\"]",
        &format!(
            "trusted_authserv_ids = [\"mx.pypi.example\"]\nverify = \"dkim\"\ndns_server = \"{dns}\"\ndns_timeout = \"{timeout}\""
        ),
    );
    let mut app = TestApp::spawn_with_config(config).await;
    app.deliver(&complete_request(
        "Jo <jo@example.org>",
        "req-1@example.org",
    ));
    app.pass(T0).await;
    let case = app.case_of(REQUESTER);
    assert_eq!(case.state, CaseState::AwaitingVerification);
    (app, case)
}

/// Delivers `raw` (a `/close` from the staff address) and says whether it
/// ran; when it did not, the case must carry the forged-staff flag.
async fn close_runs(app: &mut TestApp, case: &Case, raw: &str) -> bool {
    app.deliver(raw);
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.errors, 0);
    let after = app.store().case(&case.id).unwrap().unwrap();
    let closed = after.state == CaseState::Closed;
    assert_eq!(
        !closed,
        after.flags.contains(&Flag::ForgedStaff),
        "an unproven staff mail is flagged, a proven one is not: {:?}",
        after.flags
    );
    closed
}

/// The checker's own verdict on `raw`, as the pipeline gets it.
async fn verdict(dns: &Dns, raw: &str) -> SignatureVerdict {
    let checker = SignatureChecker::new(Some(dns.addr), Duration::from_secs(2)).unwrap();
    checker.check(raw.as_bytes(), STAFF_DOMAIN).await
}

/// Asserts the verdict is unproven for the reason named.
async fn assert_unproven(dns: &Dns, raw: &str, reason: &str) {
    match verdict(dns, raw).await {
        SignatureVerdict::Unproven { why } => assert!(why.contains(reason), "{why}"),
        other => panic!("expected unproven ({reason}), got {other:?}"),
    }
}

/// A passing `Authentication-Results` from the trusted MTA's id, which the
/// default mode would believe.
const FORGED_PASS: &str = "Authentication-Results: mx.pypi.example; dkim=pass header.d=pypi.example; spf=pass smtp.mailfrom=admin@pypi.example; dmarc=pass header.from=pypi.example\r\n";

#[tokio::test]
async fn a_genuine_signed_staff_mail_counts() {
    let keys = keys();
    let Some(dns) = start_dns(&keys) else { return };
    let (mut app, case) = app_with_case(dns.addr).await;
    let raw = keys
        .staff
        .sign(STAFF_DOMAIN, &reply(&app, &case, "", "/close\r\n"));
    assert_eq!(
        verdict(&dns, &raw).await,
        SignatureVerdict::Aligned {
            proof: "dkim=pass d=pypi.example".into()
        }
    );
    assert!(close_runs(&mut app, &case, &raw).await);
}

#[tokio::test]
async fn a_tampered_body_does_not_count() {
    let keys = keys();
    let Some(dns) = start_dns(&keys) else { return };
    let (mut app, case) = app_with_case(dns.addr).await;
    let raw = keys
        .staff
        .sign(
            STAFF_DOMAIN,
            &reply(&app, &case, "", "Thanks, looking into it.\r\n"),
        )
        .replace("Thanks, looking into it.\r\n", "/close\r\n");
    assert_unproven(&dns, &raw, "body hash does not match").await;
    assert!(!close_runs(&mut app, &case, &raw).await);
}

#[tokio::test]
async fn a_signature_by_another_domain_does_not_count() {
    let keys = keys();
    let Some(dns) = start_dns(&keys) else { return };
    let (mut app, case) = app_with_case(dns.addr).await;
    let raw = keys
        .other
        .sign(OTHER_DOMAIN, &reply(&app, &case, "", "/close\r\n"));
    assert_unproven(&dns, &raw, "dkim=pass d=evil.example (not aligned)").await;
    assert!(!close_runs(&mut app, &case, &raw).await);
}

#[tokio::test]
async fn a_signature_by_a_look_alike_domain_does_not_count() {
    let keys = keys();
    let Some(dns) = start_dns(&keys) else { return };
    let (mut app, case) = app_with_case(dns.addr).await;
    let raw = keys
        .lookalike
        .sign(LOOKALIKE_DOMAIN, &reply(&app, &case, "", "/close\r\n"));
    assert_unproven(&dns, &raw, "dkim=pass d=notpypi.example (not aligned)").await;
    assert!(!close_runs(&mut app, &case, &raw).await);
}

#[tokio::test]
async fn an_unsigned_mail_with_a_forged_dmarc_pass_header_does_not_count() {
    let keys = keys();
    let Some(dns) = start_dns(&keys) else { return };
    let (mut app, case) = app_with_case(dns.addr).await;
    let raw = reply(&app, &case, FORGED_PASS, "/close\r\n");
    assert_unproven(&dns, &raw, "no DKIM signature").await;
    assert!(!close_runs(&mut app, &case, &raw).await);
}

#[tokio::test]
async fn a_genuine_signature_counts_without_any_authentication_results() {
    // Headers are ignored entirely: a trusted fail stamp does not undo a
    // verified signature either.
    let keys = keys();
    let Some(dns) = start_dns(&keys) else { return };
    let (mut app, case) = app_with_case(dns.addr).await;
    let stamp = "Authentication-Results: mx.pypi.example; dkim=fail header.d=pypi.example; dmarc=fail header.from=pypi.example\r\n";
    let signed = keys
        .staff
        .sign(STAFF_DOMAIN, &reply(&app, &case, "", "/close\r\n"));
    assert!(close_runs(&mut app, &case, &format!("{stamp}{signed}")).await);
}

/// A loopback address nothing answers DNS on.
fn dead_dns() -> SocketAddr {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}").parse().unwrap()
}

#[tokio::test]
async fn a_genuine_mail_during_a_dns_failure_runs_nothing_and_staff_hear_why() {
    let key = Key::new();
    let (mut app, case) = app_with_case_timeout(dead_dns(), "300ms").await;
    let raw = key.sign(STAFF_DOMAIN, &reply(&app, &case, "", "/close\r\n"));
    assert!(!close_runs(&mut app, &case, &raw).await);
    assert!(
        app.sent_to("admins@pypi.example")
            .iter()
            .any(|s| s.text.contains("DNS lookup failed")),
        "the staff alert names the DNS failure"
    );
}

#[tokio::test]
async fn a_dns_failure_is_not_staff_for_now_and_no_panic() {
    // A port nothing answers on: every lookup times out.
    let checker = SignatureChecker::new(Some(dead_dns()), Duration::from_millis(300)).unwrap();
    let key = Key::new();
    let raw = key.sign(
        STAFF_DOMAIN,
        "From: admin@pypi.example\r\nTo: support@pypi.example\r\nSubject: hi\r\nMessage-ID: <x@pypi.example>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\n\r\n/close\r\n",
    );
    let verdict = checker.check(raw.as_bytes(), STAFF_DOMAIN).await;
    assert!(
        matches!(verdict, SignatureVerdict::DnsFailure { .. }),
        "{verdict:?}"
    );
}
