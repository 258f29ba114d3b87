//! The reading report: how well recoverydesk reads real mail, per corpus in
//! `../shared/corpus`, on the development part and on the held-out part of
//! each labelled set (see `reading_common` for the split).
//!
//! Run with `scripts/reading-report.sh` (or `cargo run --example
//! reading_report`). `--misses` lists the development part's misses; the
//! held-out part's misses are never printed, so nobody tunes on them.

mod reading_common;

use std::collections::BTreeMap;
use std::path::Path;

use reading_common::{
    corpus, crisp_cases, held_out, normalise, pypi_records, training, trimmer_cases, PypiRecord,
    ReplyCase, HOLDOUT_PERCENT,
};
use recoverydesk::classify::classify;
use recoverydesk::parse::parse;
use recoverydesk::request::{self, Claim, RequestFields};
use recoverydesk::{quote, secrets};

/// The desk's own address in the report's messages.
const SUPPORT: &str = "support@desk.example";
/// The instance id classify compares loop headers with.
const INSTANCE: &str = "reading-report";

/// Which part of a labelled set a record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Dev,
    HeldOut,
}

impl Part {
    fn of(id: &str) -> Part {
        if held_out(id) {
            Part::HeldOut
        } else {
            Part::Dev
        }
    }
}

/// Right answers out of scored ones, per part.
#[derive(Default)]
struct Score {
    right: BTreeMap<Part, (usize, usize)>,
}

impl Score {
    fn add(&mut self, part: Part, ok: bool) {
        let e = self.right.entry(part).or_default();
        e.0 += usize::from(ok);
        e.1 += 1;
    }

    fn line(&self) -> String {
        let fmt = |(r, n): (usize, usize)| {
            if n == 0 {
                "   -".to_string()
            } else {
                format!("{r:>3}/{n:<3} {:5.1}%", 100.0 * r as f64 / n as f64)
            }
        };
        let get = |p| self.right.get(&p).copied().unwrap_or((0, 0));
        let (dev, held) = (get(Part::Dev), get(Part::HeldOut));
        let all = (dev.0 + held.0, dev.1 + held.1);
        format!(
            "dev {}   held-out {}   all {}",
            fmt(dev),
            fmt(held),
            fmt(all)
        )
    }
}

fn main() {
    let misses = std::env::args().any(|a| a == "--misses");
    let Some(root) = corpus() else {
        println!("../shared/corpus is not on this machine: nothing to report");
        return;
    };
    println!("reading report; held out: FNV-1a(id) % 100 < {HOLDOUT_PERCENT} (ids: record id, file name or path)\n");
    pypi(&pypi_records(), misses);
    replies(misses);
    machine(&root, misses);
}

/// The pipeline's reading of one request body: new text, redaction, fields.
fn read_request(body: &str, subject: &str) -> RequestFields {
    let new = quote::reply(body, None).for_rules();
    let redacted = secrets::redact(&new);
    request::extract(&redacted.text, subject, &[SUPPORT.to_string()])
}

fn claim_label(v: &serde_json::Value) -> Claim {
    match v {
        serde_json::Value::Bool(true) => Claim::Yes,
        serde_json::Value::Bool(false) => Claim::No,
        _ => Claim::Unknown,
    }
}

/// A tick label as "given" (true), "refused" (false) or not said (None).
fn tick_label(v: &serde_json::Value) -> Option<bool> {
    v.as_bool()
}

fn tick_got(t: request::Tick) -> Option<bool> {
    match t {
        request::Tick::Weak | request::Tick::Stated => Some(true),
        request::Tick::Refused => Some(false),
        request::Tick::Unknown => None,
    }
}

fn pypi(records: &[PypiRecord], misses: bool) {
    if records.is_empty() {
        println!("pypi-support-requests: absent\n");
        return;
    }
    let names = [
        "username",
        "primary reason",
        "email access",
        "Code of Conduct",
        "acknowledgement",
    ];
    let mut scores: Vec<Score> = names.iter().map(|_| Score::default()).collect();
    let mut invented = Score::default();
    let mut miss_lines = Vec::new();
    for r in records {
        let part = Part::of(&r.id);
        let f = read_request(&r.body, &r.title);
        let want_reason = match r.labels.reason_category.as_str() {
            "unknown" => None,
            code => Some(code.to_string()),
        };
        let got_reason = f.reasons.first().map(|x| x.code().to_string());
        let checks = [
            (
                f.username == r.labels.username,
                format!("{:?} want {:?}", f.username, r.labels.username),
            ),
            (
                got_reason == want_reason,
                format!("{:?} want {:?}", f.reasons, want_reason),
            ),
            (
                f.claims_email_access == claim_label(&r.labels.claims_linked_email_access),
                format!(
                    "{:?} want {}",
                    f.claims_email_access, r.labels.claims_linked_email_access
                ),
            ),
            (
                tick_got(f.agreed_code_of_conduct) == tick_label(&r.labels.agreed_code_of_conduct),
                format!(
                    "{:?} want {}",
                    f.agreed_code_of_conduct, r.labels.agreed_code_of_conduct
                ),
            ),
            (
                tick_got(f.acknowledged_delay)
                    == tick_label(&r.labels.acknowledged_processing_time),
                format!(
                    "{:?} want {}",
                    f.acknowledged_delay, r.labels.acknowledged_processing_time
                ),
            ),
        ];
        for (i, (ok, detail)) in checks.into_iter().enumerate() {
            scores[i].add(part, ok);
            if !ok && part == Part::Dev {
                miss_lines.push(format!("  {} {}: {detail}", r.id, names[i]));
            }
        }
        if r.labels.username.is_none() {
            invented.add(part, f.username.is_some());
        }
    }
    println!("pypi-support-requests ({} requests)", records.len());
    for (name, score) in names.iter().zip(&scores) {
        println!("  {name:44} {}", score.line());
    }
    println!("  {:44} {}", "username invented (of null)", invented.line());
    cross_validated(records);
    if misses {
        println!("  development misses:");
        for line in &miss_lines {
            println!("{line}");
        }
    }
    println!();
}

/// The primary reason cross-validated inside the development part: the
/// figure to tune on, as the held-out one must stay unseen. Printed for
/// the phrase rules alone, the learnt model alone and the reader (both).
fn cross_validated(records: &[PypiRecord]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dev: Vec<&PypiRecord> = records.iter().filter(|r| !held_out(&r.id)).collect();
    let (base, _, _) = training::base_examples(root);
    let (cfg, opts) = training::settings();
    let cv = &training::cross_validate(
        &dev,
        &base,
        &cfg,
        &opts,
        &[recoverydesk::request_rules::reason_model::TRUST],
    )[0];
    let pct = |n: usize| 100.0 * n as f64 / cv.total.max(1) as f64;
    println!(
        "  {:44} dev {:>3}/{:<3} {:5.1}%   rules alone {:5.1}%   model alone {:5.1}%",
        format!("primary reason, {}-fold CV in dev", training::FOLDS),
        cv.right,
        cv.total,
        pct(cv.right),
        pct(cv.rules_right),
        pct(cv.model_right)
    );
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lenient: nothing the sender wrote is lost (the expected text, with
/// whitespace collapsed, is inside ours) and what we show beyond it is at
/// most a fifth of its length (a name line, a phone footer).
fn lenient(got: &str, want: &str) -> bool {
    let (g, w) = (squash(got), squash(want));
    g == w || (g.contains(&w) && g.len() <= w.len() + w.len() / 5 + 20)
}

/// Scores reply stripping on (id, body, expected) triples.
fn score_replies(name: &str, cases: &[ReplyCase], misses: bool) {
    let (mut exact, mut loose, mut lost) = (Score::default(), Score::default(), Score::default());
    let mut exact_without_forward = Score::default();
    let mut miss_lines = Vec::new();
    for ReplyCase {
        name: id,
        body,
        want,
    } in cases
    {
        let part = Part::of(id);
        // What `quote::new_text` gives: the own words with the quotes an
        // inline answer replies to, then a forward kept for staff. The
        // reply without its forward (`Reply::reply_text`) is scored too
        // (README, "Reading accuracy").
        let reply = quote::reply(body, None);
        let got = reply.shown();
        let is_exact = normalise(&got) == normalise(want);
        exact_without_forward.add(part, normalise(reply.reply_text()) == normalise(want));
        exact.add(part, is_exact);
        loose.add(part, is_exact || lenient(&got, want));
        let kept_all = squash(&got).contains(&squash(want));
        lost.add(part, !kept_all);
        if !is_exact && part == Part::Dev {
            miss_lines.push(format!("--- {id}\n{got}\n--- want\n{}\n", normalise(want)));
        }
    }
    println!("{name} ({} bodies)", cases.len());
    println!("  {:44} {}", "exact", exact.line());
    println!("  {:44} {}", "lenient", loose.line());
    println!("  {:44} {}", "new text lost (share)", lost.line());
    println!(
        "  {:44} {}",
        "exact, forwards left out",
        exact_without_forward.line()
    );
    if misses {
        for line in &miss_lines {
            println!("{line}");
        }
    }
    println!();
}

fn replies(misses: bool) {
    let trimmer = trimmer_cases().unwrap_or_default();
    score_replies("email-reply-trimmer", &trimmer, misses);
    let crisp = crisp_cases().unwrap_or_default();
    score_replies("crisp-email-reply-parser", &crisp, misses);
}

/// A message to classify: its id (the split key) and raw bytes.
type Message = (String, Vec<u8>);

/// A body as a person's plain mail to support.
fn wrap(subject: &str, body: &str) -> Vec<u8> {
    let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
    format!(
        "From: Jo Example <jo@example.org>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <r@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

/// Recall over one set of machine mail: how many are read as machine.
fn machine_recall(set: &str, rows: &[Message], misses: bool) {
    let mut recall = Score::default();
    let mut miss_lines = Vec::new();
    for (id, raw) in rows {
        let verdict = classify(&parse(raw), INSTANCE);
        let part = Part::of(id);
        recall.add(part, verdict.kind.is_machine());
        if !verdict.kind.is_machine() && part == Part::Dev {
            miss_lines.push(format!("    {id}: {}", verdict.reason));
        }
    }
    println!("  {:44} {}", format!("recall: {set}"), recall.line());
    if misses {
        for line in &miss_lines {
            println!("{line}");
        }
    }
}

/// The sisimai rows labelled machine mail (the mbox rows hold many
/// messages each, the same as maildir/err, and are left out).
fn sisimai_rows(root: &Path) -> Vec<Message> {
    let base = root.join("sisimai-set-of-emails");
    let Ok(labels) = std::fs::read_to_string(base.join("labels.dev.csv")) else {
        return Vec::new();
    };
    labels
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            let [path, class, ..] = cols[..] else {
                return None;
            };
            if class.starts_with("mbox") {
                return None;
            }
            let raw = std::fs::read(base.join(path)).ok()?;
            Some((path.to_string(), raw))
        })
        .collect()
}

/// Every file under `dir` that may be mail (not a licence, a source note
/// or an expected output).
fn mail_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            mail_files(&path, out);
        } else if !(name.starts_with("LICENSE")
            || ["SOURCE.md", "README", "dir"].contains(&name.as_str())
            || name.ends_with(".json")
            || name.ends_with("-summary.txt")
            || name.ends_with(".csv"))
        {
            out.push(path);
        }
    }
}

/// The helpdesk folders (RT, django-helpdesk, CPython's tests): people's
/// mail in the main, with a few real bounces and list posts among them, so
/// not labelled; the count read as machine is printed to watch.
fn helpdesk_folders(root: &Path) {
    for folder in [
        "rt-request-tracker",
        "django-helpdesk",
        "cpython-test-email",
    ] {
        let mut files = Vec::new();
        mail_files(&root.join(folder), &mut files);
        let machine = files
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter(|raw| classify(&parse(raw), INSTANCE).kind.is_machine())
            .count();
        println!(
            "  {:44} {machine}/{} (unlabelled; some are real bounces and list posts)",
            format!("read as machine: {folder}"),
            files.len()
        );
    }
}

/// MimeKit's report messages, machine mail by their file names: delivery
/// status (DSN), disposition (MDN, a read receipt), feedback (ARF) and a
/// bounce. The other messages there are MIME edge cases, not labelled.
fn mimekit_reports(root: &Path) -> (Vec<Message>, Vec<Message>) {
    let dir = root.join("mimekit/messages");
    let (mut reports, mut others) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (reports, others);
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let Ok(raw) = std::fs::read(dir.join(&name)) else {
            continue;
        };
        let report = [
            "delivery-status",
            "disposition-notification",
            "feedback-report",
            "bounce",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        let id = format!("mimekit/messages/{name}");
        if report {
            reports.push((id, raw));
        } else {
            others.push((id, raw));
        }
    }
    (reports, others)
}

fn machine(root: &Path, misses: bool) {
    println!("machine mail");
    let sisimai = sisimai_rows(root);
    machine_recall("sisimai (labels.dev.csv)", &sisimai, misses);
    let (reports, others) = mimekit_reports(root);
    machine_recall("mimekit DSN/MDN/ARF/bounce messages", &reports, misses);
    println!("  (no flufl-style bounce set is in ../shared/corpus)");
    // Header-less human sets: every body as a person's mail; none may be
    // silenced.
    let mut sets: Vec<(&str, Vec<Message>)> = Vec::new();
    let mut pypi = Vec::new();
    for r in pypi_records() {
        pypi.push((r.id.clone(), wrap(&r.title, &r.body)));
    }
    sets.push(("pypi-support-requests", pypi));
    for (set, dir) in [
        (
            "email-reply-trimmer",
            root.join("email-reply-trimmer/emails"),
        ),
        (
            "crisp-email-reply-parser",
            root.join("crisp-email-reply-parser/fixtures"),
        ),
    ] {
        let mut bodies = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if let Ok(body) = std::fs::read_to_string(e.path()) {
                    let id = e.file_name().to_string_lossy().into_owned();
                    bodies.push((id, wrap("Re: your request", &body)));
                }
            }
        }
        sets.push((set, bodies));
    }
    for (set, bodies) in &sets {
        let mut silenced = Score::default();
        let mut lines = Vec::new();
        for (id, raw) in bodies {
            let verdict = classify(&parse(raw), INSTANCE);
            let part = Part::of(id);
            silenced.add(part, verdict.kind.is_machine());
            if verdict.kind.is_machine() && part == Part::Dev {
                lines.push(format!("    {id}: {}", verdict.reason));
            }
        }
        println!(
            "  {:44} {}",
            format!("humans silenced: {set}"),
            silenced.line()
        );
        if misses {
            for line in &lines {
                println!("{line}");
            }
        }
    }
    helpdesk_folders(root);
    let read_as_machine = others
        .iter()
        .filter(|(_, raw)| classify(&parse(raw), INSTANCE).kind.is_machine())
        .count();
    println!(
        "  {:44} {read_as_machine}/{} (unlabelled MIME edge cases)",
        "read as machine: other mimekit messages",
        others.len()
    );
    println!();
}
