//! `templates check`: compile a template set, render every kind in every
//! language with every sample scenario, and hold the output to the rules
//! operators cannot see by reading one file: subjects are one line and carry
//! the case id, requesters always get their case id, the challenge carries
//! its code and shows the requester only masked, requester-facing mail never
//! shows staff-only facts, `challenge_sent` reads the same whether or not
//! the account exists, leaked secrets are always pointed out, and HTML is
//! escaped.
//!
//! The same check guards hot reload: a set with any error is never swapped in.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{samples, Audience, TemplateKind, TemplateProblem, TemplateSet};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look; the set is still usable.
    Warning,
    /// The set must not be used (`check` exits 1, reload refuses it).
    Error,
}

/// One finding, with where it showed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// File, line, variable and message.
    pub problem: TemplateProblem,
    /// The kind being rendered, if any.
    pub kind: Option<TemplateKind>,
    /// The language being rendered, if any.
    pub language: Option<String>,
    /// The first sample scenario that showed it, if any.
    pub scenario: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.problem)?;
        let mut context = Vec::new();
        if let Some(kind) = self.kind {
            context.push(format!("kind {kind}"));
        }
        if let Some(language) = &self.language {
            context.push(format!("language {language}"));
        }
        if let Some(scenario) = &self.scenario {
            context.push(format!("sample {scenario}"));
        }
        if !context.is_empty() {
            write!(f, " ({})", context.join(", "))?;
        }
        Ok(())
    }
}

/// What `templates check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Where the set came from (a folder, or `embedded`).
    pub source: String,
    /// Languages found.
    pub languages: Vec<String>,
    /// Template files compiled.
    pub files: usize,
    /// Successful renders (kind × language × scenario).
    pub renders: usize,
    /// Everything found, errors first.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// True when there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// Adds a finding unless the same problem was already reported (a
    /// broken line shows up once, not once per scenario).
    fn push(&mut self, finding: Finding) {
        let duplicate = self.findings.iter().any(|f| {
            f.severity == finding.severity && f.problem == finding.problem && f.kind == finding.kind
        });
        if !duplicate {
            self.findings.push(finding);
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        writeln!(
            f,
            "{}: {} files, languages {}, {} renders; {} error{}, {} warning{}",
            self.source,
            self.files,
            if self.languages.is_empty() {
                "none".to_string()
            } else {
                self.languages.join(", ")
            },
            self.renders,
            errors,
            if errors == 1 { "" } else { "s" },
            warnings,
            if warnings == 1 { "" } else { "s" },
        )
    }
}

/// Checks the set in `dir`, or the embedded set when `dir` is `None`.
pub fn check_dir(dir: Option<&Path>) -> CheckReport {
    let source = dir
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "embedded".into());
    let compiled = match dir {
        Some(dir) => super::read_dir_sources(dir).map(|(files, ignored)| {
            let count = files.len();
            if count == 0 {
                // The embedded set would answer for every kind, so an
                // empty (most likely wrong) folder would pass unnoticed.
                return Err((
                    vec![TemplateProblem {
                        file: dir.display().to_string(),
                        line: None,
                        variable: None,
                        message: "no templates here (expected <lang>/<kind>.txt.tera files; copy templates/ from the release)".into(),
                    }],
                    0,
                ));
            }
            TemplateSet::compile(files, ignored).map_err(|p| (p, count))
        }),
        None => Ok(TemplateSet::embedded().map_err(|e| {
            (
                vec![TemplateProblem {
                    file: "embedded".into(),
                    line: None,
                    variable: None,
                    message: e.to_string(),
                }],
                0,
            )
        })),
    };
    match compiled {
        Ok(Ok(set)) => {
            let mut report = check_set(&set);
            report.source = source;
            report
        }
        Ok(Err((problems, files))) => {
            let mut report = CheckReport {
                source,
                files,
                ..CheckReport::default()
            };
            for problem in problems {
                report.push(error(problem, None, None, None));
            }
            report
        }
        Err(e) => {
            let mut report = CheckReport {
                source: source.clone(),
                ..CheckReport::default()
            };
            report.push(error(
                TemplateProblem {
                    file: source,
                    line: None,
                    variable: None,
                    message: e.to_string(),
                },
                None,
                None,
                None,
            ));
            report
        }
    }
}

/// Checks a compiled set.
pub fn check_set(set: &TemplateSet) -> CheckReport {
    let mut report = CheckReport {
        source: "templates".into(),
        languages: set.languages(),
        files: set.sources.len(),
        ..CheckReport::default()
    };
    check_files(set, &mut report);
    for language in set.languages() {
        for kind in TemplateKind::ALL {
            for (scenario, context) in samples::contexts_for(*kind) {
                let scenario = &scenario;
                match set.render_raw(*kind, &language, &context) {
                    Ok(raw) => {
                        report.renders += 1;
                        let at = Where {
                            set,
                            kind: *kind,
                            language: &language,
                            scenario,
                            files: &raw.files,
                        };
                        check_output(&at, &context, &raw, &mut report);
                    }
                    Err(problem) => {
                        report.push(error(problem, Some(*kind), Some(&language), Some(scenario)));
                    }
                }
            }
        }
        check_no_enumeration(set, &language, &mut report);
    }
    // Errors first; the sort is stable, so each group keeps its order.
    report
        .findings
        .sort_by_key(|f| std::cmp::Reverse(f.severity));
    report
}

/// Which render a finding is about.
struct Where<'a> {
    set: &'a TemplateSet,
    kind: TemplateKind,
    language: &'a str,
    scenario: &'a str,
    files: &'a [String],
}

impl Where<'_> {
    /// The origin of the rendered file with this part (`subject`, `txt`, `html`).
    fn file(&self, part: &str) -> String {
        let suffix = format!(".{part}.tera");
        self.files
            .iter()
            .find(|n| n.ends_with(&suffix))
            .map(|n| self.set.origin(n).unwrap_or(n).to_string())
            .unwrap_or_else(|| format!("{}/{}{suffix}", self.language, self.kind.name()))
    }

    fn finding(
        &self,
        severity: Severity,
        part: &str,
        variable: Option<&str>,
        message: String,
    ) -> Finding {
        Finding {
            severity,
            problem: TemplateProblem {
                file: self.file(part),
                line: None,
                variable: variable.map(str::to_string),
                message,
            },
            kind: Some(self.kind),
            language: Some(self.language.to_string()),
            scenario: Some(self.scenario.to_string()),
        }
    }
}

fn error(
    problem: TemplateProblem,
    kind: Option<TemplateKind>,
    language: Option<&str>,
    scenario: Option<&str>,
) -> Finding {
    Finding {
        severity: Severity::Error,
        problem,
        kind,
        language: language.map(str::to_string),
        scenario: scenario.map(str::to_string),
    }
}

fn warning(file: String, message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        problem: TemplateProblem {
            file,
            line: None,
            variable: None,
            message,
        },
        kind: None,
        language: None,
        scenario: None,
    }
}

/// Missing and unknown files.
fn check_files(set: &TemplateSet, report: &mut CheckReport) {
    let default = set.default_language().to_string();
    let names: BTreeSet<String> = set.template_names().into_iter().collect();
    for language in set.languages() {
        for kind in TemplateKind::ALL {
            for part in ["subject", "txt"] {
                let name = format!("{language}/{}.{part}.tera", kind.name());
                if names.contains(&name) {
                    continue;
                }
                if language == default {
                    report.push(error(
                        TemplateProblem {
                            file: name,
                            line: None,
                            variable: None,
                            message: "missing: every kind needs a subject and a text template in the default language"
                                .into(),
                        },
                        Some(*kind),
                        Some(&language),
                        None,
                    ));
                } else {
                    report.push(warning(name, format!("missing: falls back to {default}")));
                }
            }
        }
    }
    for name in &names {
        let file = name.split_once('/').map(|(_, f)| f).unwrap_or(name);
        if file.starts_with('_') {
            continue;
        }
        let known = file
            .strip_suffix(".tera")
            .and_then(|stem| stem.rsplit_once('.'))
            .is_some_and(|(kind, part)| {
                TemplateKind::from_name(kind).is_some()
                    && ["subject", "txt", "html"].contains(&part)
            });
        if !known {
            let origin = set.origin(name).unwrap_or(name).to_string();
            report.push(warning(
                origin,
                "not a known template (expected <kind>.subject|txt|html.tera or a _partial); never used".into(),
            ));
        }
    }
    for ignored in set.ignored_files() {
        report.push(warning(
            ignored.clone(),
            "not inside a language folder such as en/; ignored".into(),
        ));
    }
}

/// Reads a string at a JSON pointer, if present and non-empty.
fn text_at<'a>(context: &'a Value, pointer: &str) -> Option<&'a str> {
    context
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The rules on one rendered mail.
fn check_output(
    at: &Where<'_>,
    context: &Value,
    raw: &super::RawRendered,
    report: &mut CheckReport,
) {
    let kind = at.kind;
    let subject = raw.subject.trim();
    let text = &raw.text;
    let html = raw.html.as_deref().unwrap_or("");
    if subject.is_empty() {
        report.push(at.finding(
            Severity::Error,
            "subject",
            None,
            "the subject is empty".into(),
        ));
    }
    if subject.contains(['\n', '\r']) {
        report.push(at.finding(
            Severity::Error,
            "subject",
            None,
            "the subject must be one line (use {%- -%} to trim line breaks)".into(),
        ));
    }
    let case_id = text_at(context, "/case/id").unwrap_or_default();
    if kind != TemplateKind::Digest && !subject.contains(case_id) {
        report.push(at.finding(
            Severity::Error,
            "subject",
            Some("case.subject_tag"),
            "the subject must carry the case id".into(),
        ));
    }
    if kind.audience() != Audience::Staff {
        if let Some(tag) = text_at(context, "/case/subject_tag") {
            if !subject.contains(tag) {
                report.push(at.finding(
                    Severity::Warning,
                    "subject",
                    Some("case.subject_tag"),
                    "subjects to requesters should carry the whole case tag".into(),
                ));
            }
        }
    }
    match kind.audience() {
        Audience::Requester => check_requester(at, context, text, html, report),
        Audience::LinkedAddress => check_linked(at, context, text, html, report),
        Audience::Staff => {
            let mentions_case = kind == TemplateKind::Digest || text.contains(case_id);
            if !mentions_case {
                report.push(at.finding(
                    Severity::Error,
                    "txt",
                    Some("case.id"),
                    "staff mail must name the case id".into(),
                ));
            }
        }
    }
    // Requester-controlled text must be escaped in HTML; the hostile sample
    // carries markup in the username, the understood values and the relay.
    if html.contains("<script") || html.contains("<img src=x") || html.contains("<b>bold?</b>") {
        report.push(at.finding(
            Severity::Error,
            "html",
            None,
            "unescaped requester or staff text in HTML (do not use the `safe` filter on it)".into(),
        ));
    }
}

fn check_requester(
    at: &Where<'_>,
    context: &Value,
    text: &str,
    html: &str,
    report: &mut CheckReport,
) {
    let case_id = text_at(context, "/case/id").unwrap_or_default();
    let reply = text_at(context, "/case/reply_address").unwrap_or_default();
    if !text.contains(case_id) && !text.contains(reply) {
        report.push(at.finding(
            Severity::Error,
            "txt",
            Some("case.id"),
            "requester mail must show the case id or the case reply address".into(),
        ));
    }
    // Staff-only facts: the scenario values of `staff` are never in these
    // contexts, but a masked linked address would reveal the account exists.
    for leak in [text_at(context, "/challenge/code")].into_iter().flatten() {
        if text.contains(leak) || html.contains(leak) {
            report.push(at.finding(
                Severity::Error,
                "txt",
                Some("challenge.code"),
                "the challenge code must only go to the linked address".into(),
            ));
        }
    }
    if let Some(secrets) = context
        .pointer("/case/secrets_found")
        .and_then(Value::as_array)
    {
        for secret in secrets {
            let label = secret
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !label.is_empty() && !text.contains(label) {
                report.push(at.finding(
                    Severity::Error,
                    "txt",
                    Some("case.secrets_found"),
                    "requester mail must tell them which posted secrets to revoke (include \"_secrets.txt.tera\")"
                        .into(),
                ));
                break;
            }
        }
    }
    if at.kind == TemplateKind::StaffRelay {
        let first =
            text_at(context, "/relay/text").and_then(|t| t.lines().find(|l| !l.trim().is_empty()));
        if let Some(first) = first {
            if !text.contains(first.trim()) {
                report.push(at.finding(
                    Severity::Error,
                    "txt",
                    Some("relay.text"),
                    "the staff text is not relayed".into(),
                ));
            }
        }
    }
}

fn check_linked(at: &Where<'_>, context: &Value, text: &str, html: &str, report: &mut CheckReport) {
    // The receipt answers a reply: it carries no code, and must not.
    let wants_code = at.kind != TemplateKind::OwnerReceipt;
    match text_at(context, "/challenge/code") {
        _ if !wants_code => {}
        Some(code) if text.contains(code) && (html.is_empty() || html.contains(code)) => {}
        _ => report.push(at.finding(
            Severity::Error,
            "txt",
            Some("challenge.code"),
            "the challenge text (and HTML, if any) must contain the code".into(),
        )),
    }
    if let Some(requester) = text_at(context, "/case/requester") {
        if text.contains(requester) || html.contains(requester) {
            report.push(at.finding(
                Severity::Error,
                "txt",
                Some("case.requester"),
                "the linked address may see the requester only masked (challenge.requester_masked)".into(),
            ));
        }
    }
}

/// `challenge_sent` must not depend on whether the account exists.
fn check_no_enumeration(set: &TemplateSet, language: &str, report: &mut CheckReport) {
    let kind = TemplateKind::ChallengeSent;
    let render = |name: &str| {
        samples::scenario(name)
            .map(|c| samples::for_kind(&c, kind))
            .and_then(|c| set.render(kind, language, &c).ok())
    };
    if let (Some(known), Some(unknown)) = (
        render("challenge_known_account"),
        render("challenge_unknown_account"),
    ) {
        if known != unknown {
            let file = set
                .pick(kind, "txt", &set.language_chain(language))
                .map(|n| set.origin(&n).unwrap_or(&n).to_string())
                .unwrap_or_else(|| format!("{language}/{}.txt.tera", kind.name()));
            report.push(Finding {
                severity: Severity::Error,
                problem: TemplateProblem {
                    file,
                    line: None,
                    variable: Some("case.flags".into()),
                    message: "challenge_sent differs between an existing and an unknown account (account enumeration)"
                        .into(),
                },
                kind: Some(kind),
                language: Some(language.to_string()),
                scenario: Some("challenge_known_account".into()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_folder_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let report = check_dir(Some(dir.path()));
        assert!(!report.is_ok(), "{report}");
        assert!(report.to_string().contains("no templates here"), "{report}");
    }

    #[test]
    fn embedded_set_passes_with_no_errors() {
        let report = check_dir(None);
        assert!(report.is_ok(), "{report}");
        assert_eq!(
            report.renders,
            report.languages.len() * TemplateKind::ALL.len() * (samples::NAMES.len() + 1)
        );
    }

    #[test]
    fn subject_without_case_id_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let en = dir.path().join("en");
        std::fs::create_dir(&en).unwrap();
        std::fs::write(en.join("acknowledgement.subject.tera"), "Hello\nthere").unwrap();
        std::fs::write(en.join("acknowledgement.txt.tera"), "{{ case.id }}").unwrap();
        let report = check_dir(Some(dir.path()));
        let messages: Vec<String> = report.errors().map(|f| f.to_string()).collect();
        assert!(messages.iter().any(|m| m.contains("one line")), "{report}");
        assert!(messages.iter().any(|m| m.contains("case id")), "{report}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("duplicate.subject.tera") && m.contains("missing")),
            "{report}"
        );
    }
}
