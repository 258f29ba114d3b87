//! Measured reading: recovery fields on a labelled set of requests of our
//! own writing (`tests/fixtures/requests/`), and reply stripping against the
//! crisp reply-parser corpus when it is present on this machine.

use std::collections::BTreeMap;
use std::path::Path;

use recoverydesk::request::{self, Claim, RequestFields, Tick};
use recoverydesk::{lang, quote, secrets};
use serde::Deserialize;

/// The support addresses the desk itself uses in the fixtures.
const SUPPORT: &str = "support@desk.example";

/// One labelled request; see the header of `requests.toml`.
#[derive(Debug, Deserialize)]
struct Labelled {
    id: String,
    note: String,
    subject: String,
    text: String,
    html: Option<String>,
    username: Option<String>,
    lookup_address: Option<String>,
    reason: Option<String>,
    email_access: String,
    coc: String,
    delay: String,
    #[serde(default)]
    secrets: Vec<String>,
    lang: Option<String>,
    #[serde(default)]
    status_chase: bool,
    #[serde(default)]
    solved: bool,
    /// Only some requests label their proofs; only those are scored.
    proofs: Option<LabelledProofs>,
}

/// Proofs a requester offered; `account_created` is scored as "the
/// extracted date contains this" ("March 2019" contains "2019").
#[derive(Debug, Default, Deserialize)]
struct LabelledProofs {
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    repository_urls: Vec<String>,
    #[serde(default)]
    previous_addresses: Vec<String>,
    account_created: Option<String>,
}

/// True when the extracted proofs are exactly the labelled ones.
fn proofs_match(got: &recoverydesk::request::Proofs, want: &LabelledProofs) -> bool {
    let same = |a: &[String], b: &[String]| {
        let norm = |v: &[String]| {
            let mut v: Vec<String> = v.iter().map(|s| s.to_lowercase()).collect();
            v.sort();
            v
        };
        norm(a) == norm(b)
    };
    let created = match (&got.account_created, &want.account_created) {
        (Some(g), Some(w)) => g.contains(w.as_str()),
        (None, None) => true,
        _ => false,
    };
    same(&got.packages, &want.packages)
        && same(&got.repository_urls, &want.repository_urls)
        && same(&got.previous_addresses, &want.previous_addresses)
        && created
}

#[derive(Debug, Deserialize)]
struct Set {
    request: Vec<Labelled>,
}

#[test]
fn the_labelled_sets_are_large_enough() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/requests");
    let count = |file: &str| {
        let set: Set =
            toml::from_str(&std::fs::read_to_string(dir.join(file)).expect("fixture file"))
                .expect("TOML");
        set.request.len()
    };
    assert!(
        count("requests.toml") >= 60,
        "the development set must hold at least 60 requests"
    );
    assert!(
        count("holdout.toml") >= 20,
        "the held-out set must hold at least 20 requests"
    );
}

/// What the reading pipeline produces for one request, in the order the
/// worker runs it: new text, redaction, fields, language.
struct Read {
    fields: RequestFields,
    secrets: Vec<String>,
    lang: Option<String>,
    text: String,
}

fn read(case: &Labelled) -> Read {
    // As the pipeline reads a request: the own words and any forward.
    let new = quote::reply(&case.text, case.html.as_deref()).for_rules();
    let redacted = secrets::redact(&new);
    let fields = request::extract(&redacted.text, &case.subject, &[SUPPORT.to_string()]);
    let mut kinds: Vec<String> = redacted
        .found
        .iter()
        .map(|k| k.code().to_string())
        .collect();
    kinds.sort();
    Read {
        fields,
        secrets: kinds,
        lang: lang::detect(&redacted.text),
        text: redacted.text,
    }
}

fn claim_code(c: Claim) -> &'static str {
    match c {
        Claim::Unknown => "unknown",
        Claim::Yes => "yes",
        Claim::No => "no",
    }
}

fn tick_code(t: Tick) -> &'static str {
    match t {
        Tick::Unknown => "unknown",
        Tick::Weak => "weak",
        Tick::Stated => "stated",
        Tick::Refused => "refused",
    }
}

/// Field names in report order.
const FIELDS: [&str; 8] = [
    "username",
    "reason",
    "email_access",
    "code_of_conduct",
    "delay_ack",
    "secrets",
    "language",
    "chase_solved",
];

/// Reads every request of a fixture file and returns, per field, the share
/// read right, printing each miss.
fn measure(file: &str) -> BTreeMap<&'static str, f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/requests")
        .join(file);
    let set: Set = toml::from_str(&std::fs::read_to_string(path).expect("fixture file"))
        .expect("fixture TOML");
    let mut right: BTreeMap<&'static str, usize> = FIELDS.iter().map(|f| (*f, 0)).collect();
    let (mut labelled_proofs, mut right_proofs) = (0usize, 0usize);
    for case in &set.request {
        let got = read(case);
        let f = &got.fields;
        let mut check = |field: &'static str, ok: bool, detail: String| {
            if ok {
                *right.entry(field).or_default() += 1;
            } else {
                println!("miss {} {field}: {detail}  [{}]", case.id, case.note);
            }
        };
        check(
            "username",
            f.username == case.username && f.lookup_address == case.lookup_address,
            format!(
                "got {:?}/{:?}, want {:?}/{:?}",
                f.username, f.lookup_address, case.username, case.lookup_address
            ),
        );
        let primary = f.reasons.first().map(|r| r.code().to_string());
        check(
            "reason",
            primary == case.reason,
            format!("got {:?}, want {:?}", f.reasons, case.reason),
        );
        let access = claim_code(f.claims_email_access);
        check(
            "email_access",
            access == case.email_access,
            format!("got {access}, want {}", case.email_access),
        );
        let coc = tick_code(f.agreed_code_of_conduct);
        check(
            "code_of_conduct",
            coc == case.coc,
            format!("got {coc}, want {}", case.coc),
        );
        let delay = tick_code(f.acknowledged_delay);
        check(
            "delay_ack",
            delay == case.delay,
            format!("got {delay}, want {}", case.delay),
        );
        let mut want_secrets = case.secrets.clone();
        want_secrets.sort();
        check(
            "secrets",
            got.secrets == want_secrets,
            format!("got {:?}, want {want_secrets:?}", got.secrets),
        );
        check(
            "language",
            got.lang == case.lang,
            format!("got {:?}, want {:?}", got.lang, case.lang),
        );
        check(
            "chase_solved",
            f.status_chase == case.status_chase && f.solved == case.solved,
            format!("got chase={} solved={}", f.status_chase, f.solved),
        );
        if let Some(want) = &case.proofs {
            labelled_proofs += 1;
            if proofs_match(&f.proofs, want) {
                right_proofs += 1;
            } else {
                println!(
                    "miss {} proofs: got {:?}, want {want:?}  [{}]",
                    case.id, f.proofs, case.note
                );
            }
        }
        // Redaction must hold in the text that goes on: no token survives.
        assert!(
            !got.text.contains("pypi-AgE"),
            "{}: token left in text",
            case.id
        );
    }
    let n = set.request.len();
    println!("{file}: {n} requests");
    let proofs_acc = right_proofs as f64 / labelled_proofs.max(1) as f64;
    println!(
        "  {:16} {:5.1}%  ({right_proofs}/{labelled_proofs} requests that label them)",
        "proofs",
        proofs_acc * 100.0
    );
    let mut acc: BTreeMap<&'static str, f64> = right
        .into_iter()
        .map(|(field, ok)| {
            let acc = ok as f64 / n.max(1) as f64;
            println!("  {field:16} {:5.1}%  ({ok}/{n})", acc * 100.0);
            (field, acc)
        })
        .collect();
    acc.insert("proofs", proofs_acc);
    acc
}

fn assert_floors(file: &str, acc: &BTreeMap<&'static str, f64>, floors: &[(&str, f64)]) {
    let failed: Vec<String> = floors
        .iter()
        .filter(|(field, floor)| acc.get(field).copied().unwrap_or(0.0) < *floor)
        .map(|(field, floor)| {
            format!(
                "{field} {:.3} < {floor}",
                acc.get(field).copied().unwrap_or(0.0)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{file}: fields below their floor: {failed:?}"
    );
}

/// Per-field accuracy over the development set (the rules were tuned on
/// it). The floors sit under what the rules reach today (printed by the
/// test), so a change that costs a request or two is visible but not fatal,
/// and a real regression fails. Username and secrets carry the highest
/// floors: a wrong username sends a challenge to the wrong account's
/// address, and a missed secret is stored in clear.
#[test]
fn fields_are_read_accurately_on_the_labelled_set() {
    let acc = measure("requests.toml");
    let floors = [
        ("username", 0.95),
        ("reason", 0.92),
        ("email_access", 0.92),
        ("code_of_conduct", 0.95),
        ("delay_ack", 0.95),
        ("secrets", 0.97),
        ("language", 0.92),
        ("chase_solved", 0.97),
        ("proofs", 0.75),
    ];
    assert_floors("requests.toml", &acc, &floors);
}

/// The same measure on requests written after the rules were tuned on the
/// development set (holdout.toml was then used for one round of fixes,
/// holdout2.toml never was): the honest estimate for unseen mail, with
/// floors set under their first runs.
#[test]
fn fields_are_read_accurately_on_held_out_requests() {
    let acc = measure("holdout.toml");
    let floors = [
        ("username", 0.80),
        ("reason", 0.70),
        ("email_access", 0.70),
        ("code_of_conduct", 0.80),
        ("delay_ack", 0.80),
        ("secrets", 0.85),
        ("language", 0.80),
        ("chase_solved", 0.85),
    ];
    assert_floors("holdout.toml", &acc, &floors);
    let acc = measure("holdout2.toml");
    assert_floors("holdout2.toml", &acc, &floors);
}

/// The corpus loaders and the whitespace normalisation the reading report
/// uses, so the test and the report read the same cases the same way.
#[path = "../../examples/reading_common/mod.rs"]
mod reading_common;

use reading_common::{
    crisp_cases, crisp_expectations, held_out, normalise, trimmer_cases, ReplyCase,
};

#[test]
fn reply_stripping_matches_most_of_the_crisp_corpus() {
    let Some(cases) = crisp_cases() else {
        println!("crisp corpus not found; skipping");
        return;
    };
    let (mut total, mut exact) = (0usize, 0usize);
    let mut misses = Vec::new();
    for ReplyCase { name, body, want } in &cases {
        total += 1;
        // The reply as sent, without a forward (README, "Reading accuracy").
        let got = quote::reply(body, None).reply_text().to_string();
        if normalise(&got) == normalise(want) {
            exact += 1;
        } else {
            misses.push((name.clone(), got));
        }
    }
    // The held-out part's misses are never shown (README, "Reading accuracy").
    for (name, got) in misses.iter().filter(|(name, _)| !held_out(name)) {
        println!("--- miss {name}:\n{got}\n");
    }
    let rate = exact as f64 / total.max(1) as f64;
    println!(
        "crisp reply stripping: {exact}/{total} exact ({:.1}%)",
        rate * 100.0
    );
    assert!(
        total >= 40,
        "expected at least 40 cases with new_text, found {total}"
    );
    // 49/49 when this floor was set; a few points of slack for rule changes
    // that trade a corpus case for a real-mail case.
    assert!(rate >= 0.95, "exact-match rate {rate:.3} below the floor");
}

/// The crisp corpus also asserts facts without a full expected text: a
/// regex that the first fragment (the new text) must match, or that the
/// quoted part must match (so the new text must not). Each such fact is
/// checked against `quote::new_text`; the rate is printed and floored.
/// Bottom-posted replies are a known difference: crisp's first fragment is
/// only the greeting above the quote, while we keep the answer below it.
#[test]
fn reply_stripping_keeps_the_facts_the_crisp_corpus_asserts() {
    let Some((dir, cases)) = crisp_expectations() else {
        println!("crisp corpus not found; skipping");
        return;
    };
    let (mut total, mut kept) = (0usize, 0usize);
    for (name, case) in &cases {
        let Ok(body) = std::fs::read_to_string(dir.join("fixtures").join(name)) else {
            continue;
        };
        let got = quote::reply(&body, None).reply_text().to_string();
        for test in case["tests"].as_array().into_iter().flatten() {
            for fact in test["facts"].as_array().into_iter().flatten() {
                let target = fact["target"].as_str().unwrap_or("");
                let first =
                    target.starts_with("fragments[0]") || target.starts_with("reply.fragments[0]");
                let first = first && !target.contains("is");
                let ok = match (fact["check"].as_str(), first, target) {
                    (Some("regex_match"), true, _) => {
                        regex_matches(fact["regex"].as_str(), fact["flags"].as_str(), &got)
                    }
                    (Some("equal"), true, _) => fact["expected"]
                        .as_str()
                        .map(|e| normalise(e) == normalise(&got)),
                    (Some("regex_match"), false, "quoted") => {
                        regex_matches(fact["regex"].as_str(), fact["flags"].as_str(), &got)
                            .map(|m| !m)
                    }
                    _ => None,
                };
                if let Some(ok) = ok {
                    total += 1;
                    if ok {
                        kept += 1;
                    } else if !held_out(name) {
                        println!("fact missed in {name}: {target} {}", fact["regex"]);
                    }
                }
            }
        }
    }
    let rate = kept as f64 / total.max(1) as f64;
    println!(
        "crisp first-fragment and quoted facts: {kept}/{total} ({:.1}%)",
        rate * 100.0
    );
    assert!(
        total >= 15,
        "expected at least 15 such facts, found {total}"
    );
    assert!(rate >= 0.85, "fact rate {rate:.3} below the floor");
}

/// The corpus regexes are JavaScript ones; the ones used there are plain
/// enough for the `regex` crate once `\/` is unescaped.
fn regex_matches(pattern: Option<&str>, flags: Option<&str>, text: &str) -> Option<bool> {
    let pattern = pattern?.replace("\\/", "/");
    // JavaScript flags i and m map to inline flags; without m, ^ and $
    // anchor the whole text, as in JavaScript.
    let inline: String = flags
        .unwrap_or("")
        .chars()
        .filter(|c| matches!(c, 'i' | 'm'))
        .collect();
    let pattern = if inline.is_empty() {
        pattern
    } else {
        format!("(?{inline}){pattern}")
    };
    regex::Regex::new(&pattern).ok().map(|re| re.is_match(text))
}

/// Builds odd texts from pieces that trigger every rule (quote headers,
/// ticks, labels, code-shaped runs, multi-byte spaces and letters) with a
/// fixed linear congruential sequence, and runs the whole reading pipeline
/// on each: nothing may panic, and redaction must be idempotent.
#[test]
fn no_input_makes_the_reading_stages_panic() {
    const PIECES: &[&str] = &[
        ">",
        "> ",
        "#",
        "### ",
        "- [x] ",
        "- [ ] ",
        "[X]",
        "`",
        "'",
        "\"",
        "«",
        "»",
        "´",
        "\n",
        "\r\n",
        " ",
        "\u{a0}",
        "\u{3000}",
        "\u{200b}",
        "é",
        "用户名",
        "：",
        ":",
        "=",
        "@",
        "x@y.example",
        "username",
        "Username: ",
        "my username is ",
        "account ",
        "On Mon, 2 Nov 2026 at 10:00, A <a@b.example> wrote:",
        "-- ",
        "__",
        "From: a\nSent: b\nTo: c\n",
        "-----Original Message-----",
        "Sent from my iPhone",
        "<blockquote>",
        "</blockquote>",
        "<div class=\"gmail_quote\">",
        "</div>",
        "<h3>",
        "<li>",
        "pypi-AgE",
        "1a2b3c4d5e6f7a8b",
        "JBSWY3DPEHPK3PXP",
        "otpauth://totp/x?secret=",
        "password: ",
        "Sunfl0wer!88",
        "lost my phone",
        "recovery codes",
        "any update?",
        "solved",
        "Regards,",
        "```",
        "https://",
        "/user/",
        "Subject: ",
        "😀",
        "ß",
        "ё",
        "\u{feff}",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    for _ in 0..600 {
        let len = next() % 40;
        let text: String = (0..len).map(|_| PIECES[next() % PIECES.len()]).collect();
        let html = (next() % 2 == 0).then(|| text.clone());
        let new = quote::new_text(&text, html.as_deref());
        let redacted = secrets::redact(&new);
        assert_eq!(
            secrets::redact(&redacted.text).text,
            redacted.text,
            "redaction not idempotent on {text:?}"
        );
        let _ = request::extract(&redacted.text, &text, std::slice::from_ref(&text));
        let _ = lang::detect(&redacted.text);
    }
}

/// Reply stripping on Discourse's email-reply-trimmer bodies (issue 16):
/// exact matches after whitespace normalisation. Measured 53/64 when this
/// floor was set (48/64 before the attribution and separator shapes of
/// issue 16 Build 3); `scripts/reading-report.sh` prints the dev and
/// held-out parts apart.
#[test]
fn reply_stripping_matches_most_of_the_email_reply_trimmer_corpus() {
    let Some(cases) = trimmer_cases() else {
        println!("email-reply-trimmer corpus not found; skipping");
        return;
    };
    let (mut total, mut exact) = (0usize, 0usize);
    for case in &cases {
        total += 1;
        exact += usize::from(
            normalise(quote::reply(&case.body, None).reply_text()) == normalise(&case.want),
        );
    }
    let rate = exact as f64 / total.max(1) as f64;
    println!(
        "email-reply-trimmer: {exact}/{total} exact ({:.1}%)",
        rate * 100.0
    );
    assert!(total >= 60, "expected the 64 bodies, found {total}");
    assert!(rate >= 0.80, "exact-match rate {rate:.3} below the floor");
}
