//! Trust boundaries for staff mail: which `Authentication-Results` layouts
//! make a staff From count, as a table of layouts with their verdicts, and
//! the forged layouts end to end (no command runs, nothing is relayed).

use crate::common;

use common::*;
use recoverydesk::authres::{staff_trust, StaffPolicy, StaffTrust};
use recoverydesk::case::{Case, CaseState, Flag};
use recoverydesk::parse::parse;

/// What a layout must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Counts as staff.
    Staff,
    /// Not proven: treated as an outsider, flagged.
    Forged,
    /// Not proven, and a header names the trusted MTA below its own stamp.
    AttemptedForgery,
}

/// One layout: the headers above `From`, top first, and the hops setting.
struct Layout {
    name: &'static str,
    from: &'static str,
    headers: &'static str,
    hops: usize,
    verdict: Verdict,
}

const RECEIVED: &str = "Received: from out.pypi.example by mx.pypi.example with ESMTPS; Mon, 23 Nov 2026 12:00:00 +0000\r\n";

const TRUSTED_FAIL: &str = "Authentication-Results: mx.pypi.example; dkim=fail header.d=pypi.example; spf=fail smtp.mailfrom=admin@pypi.example; dmarc=fail header.from=pypi.example\r\n";
const SENDER_PASS: &str = "Authentication-Results: mx.pypi.example; dkim=pass header.d=pypi.example; spf=pass smtp.mailfrom=admin@pypi.example; dmarc=pass header.from=pypi.example\r\n";

/// The layouts, each with its verdict (the list, plus neighbours).
fn layouts() -> Vec<Layout> {
    use Verdict::*;
    let l = |name, from, headers: String, hops, verdict| Layout {
        name,
        from,
        headers: Box::leak(headers.into_boxed_str()),
        hops,
        verdict,
    };
    let staff = "admin@pypi.example";
    vec![
        l("no header", staff, RECEIVED.to_string(), 0, Forged),
        l("trusted fail", staff, format!("{TRUSTED_FAIL}{RECEIVED}"), 0, Forged),
        l(
            "untrusted id claims pass",
            staff,
            format!("Authentication-Results: mx.evil.example; dmarc=pass header.from=pypi.example\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "forged pass right below a trusted fail",
            staff,
            format!("{TRUSTED_FAIL}{SENDER_PASS}{RECEIVED}"),
            0,
            AttemptedForgery,
        ),
        l(
            "forged pass right above a trusted fail",
            staff,
            format!("{SENDER_PASS}{TRUSTED_FAIL}{RECEIVED}"),
            0,
            AttemptedForgery,
        ),
        l(
            "forged pass below a trusted fail and a Received",
            staff,
            format!("{TRUSTED_FAIL}{RECEIVED}{SENDER_PASS}"),
            0,
            AttemptedForgery,
        ),
        l(
            "forged pass in other letter case below a trusted fail",
            staff,
            format!("{TRUSTED_FAIL}Authentication-Results: MX.PYPI.EXAMPLE; dmarc=pass header.from=pypi.example\r\n{RECEIVED}"),
            0,
            AttemptedForgery,
        ),
        l(
            "a genuine pass with a sender's second header below it",
            staff,
            format!("{SENDER_PASS}{RECEIVED}{SENDER_PASS}"),
            0,
            AttemptedForgery,
        ),
        l(
            "hops 1: stamp below a Received, genuine pass",
            staff,
            format!("{RECEIVED}{SENDER_PASS}"),
            1,
            Staff,
        ),
        l(
            "hops 1: stamp below a Received fails, sender's pass below it",
            staff,
            format!("{RECEIVED}{TRUSTED_FAIL}{SENDER_PASS}"),
            1,
            AttemptedForgery,
        ),
        l(
            "hops 1: stamp below a Received fails, sender's pass above it",
            staff,
            format!("{RECEIVED}{SENDER_PASS}{TRUSTED_FAIL}"),
            1,
            AttemptedForgery,
        ),
        l(
            "hops 1: pass below two Received headers",
            staff,
            format!("{RECEIVED}{RECEIVED}{SENDER_PASS}"),
            1,
            Forged,
        ),
        l(
            "hops 0: pass below our Received",
            staff,
            format!("{RECEIVED}{SENDER_PASS}"),
            0,
            Forged,
        ),
        l(
            "dkim pass for an unrelated domain",
            staff,
            format!("Authentication-Results: mx.pypi.example; dkim=pass header.d=mailer.example\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "dkim pass for a look-alike suffix",
            staff,
            format!("Authentication-Results: mx.pypi.example; dkim=pass header.d=evilpypi.example\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "dkim pass for a look-alike prefix",
            staff,
            format!("Authentication-Results: mx.pypi.example; dkim=pass header.d=pypi.example.evil.test\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "dkim pass for a public suffix",
            staff,
            format!("Authentication-Results: mx.pypi.example; dkim=pass header.d=example\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "dkim pass for a child of the From domain",
            staff,
            format!("Authentication-Results: mx.pypi.example; dkim=pass header.d=mail.pypi.example\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "spf pass for a look-alike domain",
            staff,
            format!("Authentication-Results: mx.pypi.example; spf=pass smtp.mailfrom=admin@pypi-example.com\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "dmarc pass for another From domain",
            staff,
            format!("Authentication-Results: mx.pypi.example; dmarc=pass header.from=evil.example\r\n{RECEIVED}"),
            0,
            Forged,
        ),
        l(
            "genuine dmarc pass",
            staff,
            format!("Authentication-Results: mx.pypi.example; dmarc=pass header.from=pypi.example\r\n{RECEIVED}"),
            0,
            Staff,
        ),
        l(
            "genuine aligned dkim pass with an untrusted header below",
            staff,
            format!("Authentication-Results: mx.pypi.example; dkim=pass header.d=pypi.example\r\n{RECEIVED}Authentication-Results: mx.evil.example; dmarc=fail\r\n"),
            0,
            Staff,
        ),
        l(
            "an outsider with forged headers is just not staff",
            "jo@example.org",
            format!("{TRUSTED_FAIL}{SENDER_PASS}{RECEIVED}"),
            0,
            Forged, // checked as NotStaff below
        ),
    ]
}

fn policy(hops: usize) -> StaffPolicy {
    StaffPolicy {
        addresses: vec!["admin@pypi.example".into()],
        trusted_authserv_ids: vec!["mx.pypi.example".into()],
        trusted_received_hops: hops,
        ..StaffPolicy::default()
    }
}

#[test]
fn every_header_layout_gets_its_verdict() {
    let mut wrong = Vec::new();
    for layout in layouts() {
        let raw = format!(
            "{}From: Ada <{}>\r\nTo: support@pypi.example\r\nSubject: Re: case\r\nMessage-ID: <l@pypi.example>\r\n\r\n/close\r\n",
            layout.headers, layout.from
        );
        let got = staff_trust(&parse(raw.as_bytes()), &policy(layout.hops));
        let ok = match (&got, layout.verdict) {
            (StaffTrust::NotStaff, _) => layout.from == "jo@example.org",
            (StaffTrust::Staff { .. }, Verdict::Staff) => true,
            (StaffTrust::Forged { why, .. }, Verdict::Forged) => !why.contains("attempted forgery"),
            (StaffTrust::Forged { why, .. }, Verdict::AttemptedForgery) => {
                why.contains("attempted forgery")
            }
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{} (hops {}): expected {:?}, got {got:?}",
                layout.name, layout.hops, layout.verdict
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

const REQUESTER: &str = "jo@example.org";
const STAFF_LIST: &str = "admins@pypi.example";
const LINKED: &str = "alice@linked.example";

/// An app (with the given hops) holding one case for `alice`, challenge sent.
async fn app_with_case(hops: usize) -> (TestApp, Case) {
    let config = config_text("", FILE_DIRECTORY).replace(
        "trusted_authserv_ids = [\"mx.pypi.example\"]",
        &format!("trusted_authserv_ids = [\"mx.pypi.example\"]\ntrusted_received_hops = {hops}"),
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

/// What the forger writes: two commands and a text to relay.
const FORGED_BODY: &str = "/close\r\n/verify\r\nYour account is now linked to the new address.\r\n";

/// A staff reply in the case thread under the given header block.
fn staff_reply(app: &TestApp, case: &Case, headers: &str, body: &str) -> String {
    format!(
        "{headers}From: Ada Admin <admin@pypi.example>\r\nTo: {}\r\nSubject: Re: [Case {}] New recovery case\r\nMessage-ID: <staff-1@pypi.example>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        app.reply_address(&case.id),
        case.id
    )
}

async fn forged_layout_runs_nothing(hops: usize, headers: &str) {
    let (mut app, case) = app_with_case(hops).await;
    let to_requester = app.sent_to(REQUESTER).len();
    let to_linked = app.sent_to(LINKED).len();
    app.deliver(&staff_reply(&app, &case, headers, FORGED_BODY));
    let report = app.pass(T0 + 3600).await;
    assert_eq!(report.errors, 0);
    let after = app.store().case(&case.id).unwrap().unwrap();
    assert_eq!(
        after.state,
        CaseState::AwaitingVerification,
        "/close did not run"
    );
    assert_eq!(
        after.verification, case.verification,
        "/verify issued no new challenge"
    );
    assert_eq!(
        app.sent_to(LINKED).len(),
        to_linked,
        "no new challenge mail"
    );
    assert_eq!(
        app.sent_to(REQUESTER).len(),
        to_requester,
        "nothing relayed to the requester"
    );
    assert!(
        after.flags.contains(&Flag::ForgedStaff),
        "{:?}",
        after.flags
    );
    let alert = app
        .sent_to(STAFF_LIST)
        .into_iter()
        .find(|s| s.text.contains("attempted forgery"))
        .expect("staff hear of the attempted forgery");
    assert!(alert.subject.contains(&format!("[Case {}]", case.id)));
}

#[tokio::test]
async fn a_forged_pass_below_the_trusted_fail_runs_no_command() {
    forged_layout_runs_nothing(0, &format!("{TRUSTED_FAIL}{SENDER_PASS}{RECEIVED}")).await;
}

#[tokio::test]
async fn a_forged_pass_above_the_trusted_fail_runs_no_command() {
    forged_layout_runs_nothing(0, &format!("{SENDER_PASS}{TRUSTED_FAIL}{RECEIVED}")).await;
}

#[tokio::test]
async fn with_one_hop_a_forged_pass_at_the_stamp_depth_runs_no_command() {
    forged_layout_runs_nothing(1, &format!("{RECEIVED}{TRUSTED_FAIL}{SENDER_PASS}")).await;
}

#[tokio::test]
async fn with_one_hop_the_genuine_stamp_below_a_received_still_counts() {
    // The control: the same setting lets a real staff reply through.
    let (mut app, case) = app_with_case(1).await;
    app.deliver(&staff_reply(
        &app,
        &case,
        &format!("{RECEIVED}{SENDER_PASS}"),
        "/close\r\n",
    ));
    app.pass(T0 + 3600).await;
    let after = app.store().case(&case.id).unwrap().unwrap();
    assert_eq!(after.state, CaseState::Closed);
    assert!(!after.flags.contains(&Flag::ForgedStaff));
}
