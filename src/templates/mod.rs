//! Reply templates (tera): which kinds of mail exist, loading a template set
//! (embedded in the binary or from a folder), per-language fallback,
//! rendering to subject, text and HTML, and hot reload.
//!
//! # Layout of a template set
//! `<lang>/<kind>.subject.tera`, `<lang>/<kind>.txt.tera` and optionally
//! `<lang>/<kind>.html.tera`; files whose name starts with `_` are partials.
//! A template includes a partial by its bare name (`{% include
//! "_signature.txt.tera" %}`); the loader rewrites that name to the partial
//! of the template's own language, or of the default language when the
//! language has none, so operators never write language prefixes.
//!
//! # Fallback
//! Subject and text fall back per file: `es-MX` → `es` → `en`. The HTML part
//! is taken only from the language that supplied the text part: an English
//! HTML part next to a Spanish text part would show English to everyone whose
//! client prefers HTML, so such a mail is sent as text only instead.
//!
//! Rendering is pure; loading reads files; [`watch`] starts a thread.

pub mod check;
mod embedded;
pub mod preview;
pub mod samples;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use once_cell::sync::Lazy;
use regex::Regex;
use serde::Serialize;
use tera::Tera;

use crate::error::{Error, Result};

/// The language every other language falls back to, file by file.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Every kind of mail recoverydesk sends.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// First answer to a new request.
    Acknowledgement,
    /// Asks for the fields still missing.
    RequestInfo,
    /// The request is already in the queue.
    Duplicate,
    /// To the account's linked address: was this you? Carries the code.
    Challenge,
    /// To the linked address again, while the challenge is unanswered.
    ChallengeReminder,
    /// To the requester: if an account matches, its linked address got mail.
    ChallengeSent,
    /// To whoever answered on the challenge thread: a short receipt that
    /// says nothing about the requester.
    OwnerReceipt,
    /// To the requester: control of the linked address is proven.
    Verified,
    /// A reply that reveals nothing (after the owner denied the request).
    Neutral,
    /// Wrapper around staff text relayed to the requester.
    StaffRelay,
    /// Waiting on staff for long: still in the queue, position K.
    StatusNote,
    /// Answer to "any update?".
    StatusReply,
    /// Waiting on the requester: what is still missing.
    Reminder,
    /// Closed for inactivity; a reply reopens the case.
    CloseNotice,
    /// The case was reopened.
    Reopened,
    /// Staff resolved the case.
    Resolved,
    /// Staff closed the case.
    Closed,
    /// The message was too large to process.
    TooLarge,
    /// Two replies did not bring the missing details: a person takes over.
    HandedToStaff,
    /// The requester can no longer read the linked address: staff review instead of the challenge.
    LinkedAddressLost,
    /// Staff: a new case.
    StaffNewCase,
    /// Staff: the requester proved control of the linked address.
    StaffVerified,
    /// Staff: suspected compromise, high priority.
    StaffCompromise,
    /// Staff: the owner of the linked address denied the request.
    StaffDenied,
    /// Staff: the case has waited on staff for long.
    StaffStale,
    /// Staff: a mail we sent bounced.
    StaffDeliveryFailure,
    /// Staff: mail claimed a staff address but failed authentication.
    StaffForged,
    /// Staff: someone who is not a participant used the case's subject tag.
    StaffUnverifiedTag,
    /// Staff: a command in a staff reply could not be applied.
    StaffCommandError,
    /// Staff: a gentle nudge about a case waiting on staff.
    StaffNudge,
    /// Staff: the requester asked for an update.
    StaffStatusChase,
    /// Staff: the requester wrote on a case that waits on staff (or answered `/ask`).
    StaffRequesterReplied,
    /// Staff: the receipt for a staff message, saying what its commands did.
    StaffReceipt,
    /// Staff: one summary for a flood of one kind of alert across cases.
    StaffFlood,
    /// Staff: the periodic list of open cases.
    Digest,
}

/// Who receives a kind of mail; decides which checks apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The person who asked for recovery (the case's requester).
    Requester,
    /// Whoever reads the account's linked mailbox (challenge mail only).
    LinkedAddress,
    /// The support team.
    Staff,
}

impl TemplateKind {
    /// Every kind, in documentation order.
    pub const ALL: &'static [TemplateKind] = &[
        TemplateKind::Acknowledgement,
        TemplateKind::RequestInfo,
        TemplateKind::Duplicate,
        TemplateKind::Challenge,
        TemplateKind::ChallengeReminder,
        TemplateKind::ChallengeSent,
        TemplateKind::OwnerReceipt,
        TemplateKind::Verified,
        TemplateKind::Neutral,
        TemplateKind::StaffRelay,
        TemplateKind::StatusNote,
        TemplateKind::StatusReply,
        TemplateKind::Reminder,
        TemplateKind::CloseNotice,
        TemplateKind::Reopened,
        TemplateKind::Resolved,
        TemplateKind::Closed,
        TemplateKind::TooLarge,
        TemplateKind::HandedToStaff,
        TemplateKind::LinkedAddressLost,
        TemplateKind::StaffNewCase,
        TemplateKind::StaffVerified,
        TemplateKind::StaffCompromise,
        TemplateKind::StaffDenied,
        TemplateKind::StaffStale,
        TemplateKind::StaffDeliveryFailure,
        TemplateKind::StaffForged,
        TemplateKind::StaffUnverifiedTag,
        TemplateKind::StaffCommandError,
        TemplateKind::StaffNudge,
        TemplateKind::StaffStatusChase,
        TemplateKind::StaffRequesterReplied,
        TemplateKind::StaffReceipt,
        TemplateKind::StaffFlood,
        TemplateKind::Digest,
    ];

    /// The file stem, e.g. `acknowledgement`.
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Acknowledgement => "acknowledgement",
            TemplateKind::RequestInfo => "request_info",
            TemplateKind::Duplicate => "duplicate",
            TemplateKind::Challenge => "challenge",
            TemplateKind::ChallengeReminder => "challenge_reminder",
            TemplateKind::ChallengeSent => "challenge_sent",
            TemplateKind::OwnerReceipt => "owner_receipt",
            TemplateKind::Verified => "verified",
            TemplateKind::Neutral => "neutral",
            TemplateKind::StaffRelay => "staff_relay",
            TemplateKind::StatusNote => "status_note",
            TemplateKind::StatusReply => "status_reply",
            TemplateKind::Reminder => "reminder",
            TemplateKind::CloseNotice => "close_notice",
            TemplateKind::Reopened => "reopened",
            TemplateKind::Resolved => "resolved",
            TemplateKind::Closed => "closed",
            TemplateKind::TooLarge => "too_large",
            TemplateKind::HandedToStaff => "handed_to_staff",
            TemplateKind::LinkedAddressLost => "linked_address_lost",
            TemplateKind::StaffNewCase => "staff_new_case",
            TemplateKind::StaffVerified => "staff_verified",
            TemplateKind::StaffCompromise => "staff_compromise",
            TemplateKind::StaffDenied => "staff_denied",
            TemplateKind::StaffStale => "staff_stale",
            TemplateKind::StaffDeliveryFailure => "staff_delivery_failure",
            TemplateKind::StaffForged => "staff_forged",
            TemplateKind::StaffUnverifiedTag => "staff_unverified_tag",
            TemplateKind::StaffCommandError => "staff_command_error",
            TemplateKind::StaffNudge => "staff_nudge",
            TemplateKind::StaffStatusChase => "staff_status_chase",
            TemplateKind::StaffRequesterReplied => "staff_requester_replied",
            TemplateKind::StaffReceipt => "staff_receipt",
            TemplateKind::StaffFlood => "staff_flood",
            TemplateKind::Digest => "digest",
        }
    }

    /// The kind whose file stem is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Who receives this kind of mail.
    pub fn audience(self) -> Audience {
        match self {
            TemplateKind::Challenge
            | TemplateKind::ChallengeReminder
            | TemplateKind::OwnerReceipt => Audience::LinkedAddress,
            TemplateKind::StaffNewCase
            | TemplateKind::StaffVerified
            | TemplateKind::StaffCompromise
            | TemplateKind::StaffDenied
            | TemplateKind::StaffStale
            | TemplateKind::StaffDeliveryFailure
            | TemplateKind::StaffForged
            | TemplateKind::StaffUnverifiedTag
            | TemplateKind::StaffCommandError
            | TemplateKind::StaffNudge
            | TemplateKind::StaffStatusChase
            | TemplateKind::StaffRequesterReplied
            | TemplateKind::StaffReceipt
            | TemplateKind::StaffFlood
            | TemplateKind::Digest => Audience::Staff,
            _ => Audience::Requester,
        }
    }

    /// True for notifications to the support team (never shown to requesters).
    pub fn is_staff_facing(self) -> bool {
        self.audience() == Audience::Staff
    }

    /// True when the context carries a `challenge` object for this kind.
    pub fn has_challenge(self) -> bool {
        matches!(
            self,
            TemplateKind::Challenge
                | TemplateKind::ChallengeReminder
                | TemplateKind::ChallengeSent
                | TemplateKind::OwnerReceipt
                | TemplateKind::Acknowledgement
        )
    }
}

impl std::fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A rendered mail body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// One-line subject.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part, when the template set has one.
    pub html: Option<String>,
}

/// One thing wrong with a template: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateProblem {
    /// The file as the operator knows it (a path, or `embedded:en/x.txt.tera`).
    pub file: String,
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// The variable involved, when the error names one.
    pub variable: Option<String>,
    /// What is wrong, in one line.
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(variable) = &self.variable {
            write!(f, "variable `{variable}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Joins problems into one error message (at most a few, then a count).
fn problems_error(problems: &[TemplateProblem]) -> Error {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = problems.iter().take(SHOWN).map(|p| p.to_string()).collect();
    if problems.len() > SHOWN {
        text.push(format!("and {} more", problems.len() - SHOWN));
    }
    Error::Template(text.join("; "))
}

/// One template file before compilation.
#[derive(Debug, Clone)]
struct SourceFile {
    /// Registered name: `<lang>/<file>`.
    name: String,
    /// Where it came from, for messages.
    origin: String,
    /// The text as written (before include names are rewritten).
    text: String,
}

/// A compiled template set.
#[derive(Debug)]
pub struct TemplateSet {
    tera: Tera,
    default_language: String,
    /// Registered name → (origin, original text), for line look-ups.
    sources: BTreeMap<String, (String, String)>,
    /// Files that were found but are not templates of any language folder.
    ignored: Vec<String>,
}

impl TemplateSet {
    /// The set compiled into the binary (the shipped `templates/` folder).
    pub fn embedded() -> Result<Self> {
        let files = embedded::FILES
            .iter()
            .map(|(name, text)| SourceFile {
                name: (*name).to_string(),
                origin: format!("embedded:{name}"),
                text: (*text).to_string(),
            })
            .collect();
        Self::compile(files, Vec::new()).map_err(|p| problems_error(&p))
    }

    /// Loads every `<dir>/<lang>/*.tera` file. The folder is the whole set:
    /// nothing is taken from the embedded set.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let (files, ignored) = read_dir_sources(dir)?;
        Self::compile(files, ignored).map_err(|p| problems_error(&p))
    }

    /// Compiles sources, reporting every syntax error with file and line.
    fn compile(
        files: Vec<SourceFile>,
        ignored: Vec<String>,
    ) -> std::result::Result<Self, Vec<TemplateProblem>> {
        let names: BTreeSet<String> = files.iter().map(|f| f.name.clone()).collect();
        let mut problems = Vec::new();
        let mut rewritten = Vec::new();
        for file in &files {
            let language = file.name.split('/').next().unwrap_or(DEFAULT_LANGUAGE);
            let text = rewrite_includes(&file.text, language, &names);
            // Parsing each file on its own reports every broken file, not
            // only the first one tera would stop at.
            if let Err(e) = tera::Template::new(&file.name, None, &text) {
                problems.push(parse_problem(&file.origin, &e));
            }
            rewritten.push((file.name.clone(), text));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html.tera"]);
        if let Err(e) = tera.add_raw_templates(rewritten) {
            let chain = error_chain(&e);
            let file = files
                .iter()
                .find(|f| chain.contains(&f.name))
                .map(|f| f.origin.clone())
                .unwrap_or_else(|| "templates".into());
            return Err(vec![TemplateProblem {
                file,
                line: None,
                variable: None,
                message: chain,
            }]);
        }
        let sources = files
            .into_iter()
            .map(|f| (f.name, (f.origin, f.text)))
            .collect();
        Ok(TemplateSet {
            tera,
            default_language: DEFAULT_LANGUAGE.into(),
            sources,
            ignored,
        })
    }

    /// The languages that have at least one template, sorted.
    pub fn languages(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .sources
            .keys()
            .filter_map(|n| n.split('/').next())
            .collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// The language every file falls back to.
    pub fn default_language(&self) -> &str {
        &self.default_language
    }

    /// Registered template names (`<lang>/<file>`), sorted.
    pub fn template_names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// Where a registered template came from (path or `embedded:` name).
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.sources.get(name).map(|(origin, _)| origin.as_str())
    }

    /// Files under the folder that are not in a language folder.
    pub fn ignored_files(&self) -> &[String] {
        &self.ignored
    }

    /// Languages to try for `lang`, best first: `es-MX` → `es` → default.
    fn language_chain(&self, lang: &str) -> Vec<String> {
        let lang = lang.trim().to_ascii_lowercase().replace('_', "-");
        let mut chain = vec![lang.clone()];
        if let Some((base, _)) = lang.split_once('-') {
            chain.push(base.to_string());
        }
        chain.push(self.default_language.clone());
        chain.dedup();
        chain
    }

    /// The registered name of `kind`'s `part` for `lang`, after fallback.
    fn pick(&self, kind: TemplateKind, part: &str, chain: &[String]) -> Option<String> {
        chain
            .iter()
            .map(|l| format!("{l}/{}.{part}.tera", kind.name()))
            .find(|name| self.sources.contains_key(name))
    }

    /// Renders a kind in `lang`, falling back per file (see the module doc).
    /// The subject is made header-safe; the text is tidied (see [`tidy_text`]).
    pub fn render(
        &self,
        kind: TemplateKind,
        lang: &str,
        context: &serde_json::Value,
    ) -> Result<Rendered> {
        let raw = self
            .render_raw(kind, lang, context)
            .map_err(|p| problems_error(&[p]))?;
        Ok(Rendered {
            subject: crate::domain::header_safe(&raw.subject),
            text: tidy_text(&raw.text),
            html: raw.html,
        })
    }

    /// Renders without tidying, so [`check`] can see what the author wrote.
    fn render_raw(
        &self,
        kind: TemplateKind,
        lang: &str,
        context: &serde_json::Value,
    ) -> std::result::Result<RawRendered, TemplateProblem> {
        let ctx = tera::Context::from_value(context.clone()).map_err(|e| TemplateProblem {
            file: format!("{}/{}", lang, kind.name()),
            line: None,
            variable: None,
            message: format!("the context must be a JSON object: {}", error_chain(&e)),
        })?;
        let chain = self.language_chain(lang);
        let missing = |part: &str| TemplateProblem {
            file: format!("{}/{}.{part}.tera", self.default_language, kind.name()),
            line: None,
            variable: None,
            message: format!(
                "no {part} template for `{}` in {}",
                kind.name(),
                chain.join(", ")
            ),
        };
        let subject_name = self
            .pick(kind, "subject", &chain)
            .ok_or_else(|| missing("subject"))?;
        let text_name = self
            .pick(kind, "txt", &chain)
            .ok_or_else(|| missing("txt"))?;
        let text_language = text_name.split('/').next().unwrap_or_default().to_string();
        let html_name = format!("{text_language}/{}.html.tera", kind.name());
        let html_name = self.sources.contains_key(&html_name).then_some(html_name);
        let render = |name: &str| {
            self.tera
                .render(name, &ctx)
                .map_err(|e| self.render_problem(name, &e))
        };
        Ok(RawRendered {
            subject: render(&subject_name)?,
            text: render(&text_name)?,
            html: html_name.as_deref().map(render).transpose()?,
            files: [
                Some(subject_name.clone()),
                Some(text_name.clone()),
                html_name.clone(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        })
    }

    /// Turns a tera render error into a problem naming the file (the partial,
    /// when the error happened inside one), the variable and a best-guess line.
    fn render_problem(&self, top: &str, error: &tera::Error) -> TemplateProblem {
        static ACTIVE: Lazy<Regex> =
            Lazy::new(|| Regex::new(r"while rendering '([^']+)'").unwrap());
        static VARIABLE: Lazy<Regex> = Lazy::new(|| Regex::new(r"Variable `([^`]+)`").unwrap());
        static TICKED: Lazy<Regex> = Lazy::new(|| Regex::new(r"`([^`]+)`").unwrap());
        let chain = error_chain(error);
        // The innermost frame names the template really being rendered.
        let active = ACTIVE
            .captures_iter(&chain)
            .last()
            .map(|c| c[1].to_string())
            .filter(|n| self.sources.contains_key(n))
            .unwrap_or_else(|| top.to_string());
        let variable = VARIABLE.captures(&chain).map(|c| c[1].to_string());
        static MISSING: Lazy<Regex> =
            Lazy::new(|| Regex::new(r"Template '\[?([^'\]]+)\]?' not found").unwrap());
        // A missing partial: point at the include, found by its bare name.
        let missing = MISSING
            .captures(&chain)
            .map(|c| c[1].rsplit('/').next().unwrap_or_default().to_string());
        let needle = variable.clone().or(missing).or_else(|| {
            TICKED
                .captures_iter(&chain)
                .last()
                .map(|c| c[1].to_string())
        });
        let (origin, line) = match self.sources.get(&active) {
            Some((origin, text)) => (
                origin.clone(),
                needle.as_deref().and_then(|n| find_line(text, n)),
            ),
            None => (active.clone(), None),
        };
        // Tera prefixes "Failed to render 'x'": the innermost message is the
        // useful part.
        let message = error_innermost(error);
        TemplateProblem {
            file: origin,
            line,
            variable,
            message,
        }
    }
}

/// What a template produced before tidying, and which files produced it.
#[derive(Debug, Clone)]
struct RawRendered {
    subject: String,
    text: String,
    html: Option<String>,
    files: Vec<String>,
}

/// Reads `<dir>/<lang>/*.tera`; anything else ending in `.tera` is ignored
/// (and reported by the check).
fn read_dir_sources(dir: &Path) -> Result<(Vec<SourceFile>, Vec<String>)> {
    static LANGUAGE: Lazy<Regex> =
        Lazy::new(|| Regex::new(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$").unwrap());
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !path.is_dir() {
            if name.ends_with(".tera") {
                ignored.push(path.display().to_string());
            }
            continue;
        }
        if !LANGUAGE.is_match(&name) {
            ignored.push(path.display().to_string());
            continue;
        }
        let mut inner: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| Error::io(&path, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        inner.sort();
        for file in inner {
            let file_name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            // Editors leave dot files and backups next to templates.
            if file_name.starts_with('.') || !file_name.ends_with(".tera") || !file.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            files.push(SourceFile {
                name: format!("{name}/{file_name}"),
                origin: file.display().to_string(),
                text,
            });
        }
    }
    Ok((files, ignored))
}

/// Rewrites bare names in `include`, `extends` and `import` to the partial of
/// `language`, or of the default language when `language` has none. Only the
/// quoted name changes, so line numbers stay those of the file as written.
fn rewrite_includes(text: &str, language: &str, names: &BTreeSet<String>) -> String {
    static TAG: Lazy<Regex> =
        Lazy::new(|| Regex::new(r#"(\{%-?\s*(?:include|extends|import)\s+")([^"/]+)(")"#).unwrap());
    TAG.replace_all(text, |c: &regex::Captures<'_>| {
        let bare = &c[2];
        let own = format!("{language}/{bare}");
        let fallback = format!("{DEFAULT_LANGUAGE}/{bare}");
        let target = if names.contains(&own) || !names.contains(&fallback) {
            own
        } else {
            fallback
        };
        format!("{}{}{}", &c[1], target, &c[3])
    })
    .into_owned()
}

/// A syntax error as a problem: tera's parser reports ` --> line:col`.
fn parse_problem(origin: &str, error: &tera::Error) -> TemplateProblem {
    static AT: Lazy<Regex> = Lazy::new(|| Regex::new(r"-->\s*(\d+):(\d+)").unwrap());
    let chain = error_chain(error);
    let line = AT.captures(&chain).and_then(|c| c[1].parse().ok());
    // The parser's own summary is the `= expected ...` line.
    let message = chain
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("= "))
        .map(|m| format!("syntax error: {m}"))
        .unwrap_or_else(|| chain.lines().next().unwrap_or_default().to_string());
    TemplateProblem {
        file: origin.to_string(),
        line,
        variable: None,
        message,
    }
}

/// The 1-based line where `needle` first appears as a whole name (for
/// `item.hint`, not inside `item.hints`). Render errors carry no position,
/// so the first use of the variable is the best place to point at.
fn find_line(text: &str, needle: &str) -> Option<usize> {
    let needle = needle.split('[').next().unwrap_or(needle);
    if needle.is_empty() {
        return None;
    }
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    for (number, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find(needle) {
            let start = from + at;
            let end = start + needle.len();
            let before = line[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !is_name(c));
            let after = line[end..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if before && after {
                return Some(number + 1);
            }
            from = end;
        }
    }
    None
}

/// The deepest message in an error's source chain.
fn error_innermost(error: &dyn std::error::Error) -> String {
    let mut last = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        last = inner.to_string();
        source = inner.source();
    }
    last
}

/// Tidies a rendered text part so templates can be written for readability:
/// trailing spaces go (except in the `-- ` signature delimiter), runs of
/// blank lines become one, leading blank lines go, and the text ends with
/// exactly one newline.
pub fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0usize;
    for line in text.lines() {
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if blank_run > 0 && !out.is_empty() {
            out.push('\n');
        }
        blank_run = 0;
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Joins an error and its sources into one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The template set in use, shared between the worker, the sender and the
/// reloader. Cloning is cheap; every clone sees reloads.
#[derive(Debug, Clone)]
pub struct SharedTemplates {
    current: Arc<RwLock<Arc<TemplateSet>>>,
    dir: Option<PathBuf>,
}

impl SharedTemplates {
    /// Wraps a set; `dir` is where [`SharedTemplates::reload`] reads from
    /// (`None`: the embedded set, which never changes).
    pub fn new(set: TemplateSet, dir: Option<PathBuf>) -> Self {
        SharedTemplates {
            current: Arc::new(RwLock::new(Arc::new(set))),
            dir,
        }
    }

    /// The embedded set, not reloadable.
    pub fn embedded() -> Result<Self> {
        Ok(Self::new(TemplateSet::embedded()?, None))
    }

    /// Loads `dir` and checks it like `templates check` does; it is then
    /// what [`SharedTemplates::reload`] reads again.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let set = load_checked(dir)?;
        Ok(Self::new(set, Some(dir.to_path_buf())))
    }

    /// The set to render with now. Hold the `Arc` for one whole mail so its
    /// subject, text and HTML all come from the same set.
    pub fn current(&self) -> Arc<TemplateSet> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            // A panic while swapping cannot leave a half-written Arc behind,
            // so the value inside a poisoned lock is still whole.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the set outright (tests, or a caller that checked it itself).
    pub fn replace(&self, set: TemplateSet) {
        let set = Arc::new(set);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    /// Loads the folder again and swaps it in only if it compiles and passes
    /// the same check as `templates check`; otherwise the old set stays and
    /// the error names file and line. A no-op for the embedded set.
    pub fn reload(&self) -> Result<()> {
        let Some(dir) = &self.dir else {
            tracing::info!("templates are embedded; nothing to reload");
            return Ok(());
        };
        match load_checked(dir) {
            Ok(set) => {
                let languages = set.languages().join(",");
                let files = set.sources.len();
                self.replace(set);
                tracing::info!(dir = %dir.display(), files, languages, "templates reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "template reload failed; keeping the previous templates");
                Err(e)
            }
        }
    }
}

/// Loads a folder and refuses it if the check finds any error.
fn load_checked(dir: &Path) -> Result<TemplateSet> {
    let (files, ignored) = read_dir_sources(dir)?;
    let set = TemplateSet::compile(files, ignored).map_err(|p| {
        for problem in &p {
            tracing::error!(file = %problem.file, line = problem.line, "{}", problem.message);
        }
        problems_error(&p)
    })?;
    let report = check::check_set(&set);
    let errors: Vec<TemplateProblem> = report.errors().map(|f| f.problem.clone()).collect();
    if !errors.is_empty() {
        for problem in &errors {
            tracing::error!(file = %problem.file, line = problem.line, variable = problem.variable, "{}", problem.message);
        }
        return Err(problems_error(&errors));
    }
    Ok(set)
}

/// How long the watcher waits for a burst of file events to end (an editor
/// save is often a write, a rename and a chmod) before reloading once.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(400);

/// Watches `dir` and reloads `shared` shortly after template files change.
/// Keep the returned watcher alive; dropping it stops watching and ends the
/// reload thread.
pub fn watch(shared: SharedTemplates, dir: &Path) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                let relevant = event.paths.is_empty()
                    || event
                        .paths
                        .iter()
                        .any(|p| p.extension().is_some_and(|x| x == "tera") || p.is_dir());
                if relevant && !matches!(event.kind, notify::EventKind::Access(_)) {
                    let _ = tx.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "template watcher error"),
        })
        .map_err(|e| Error::Config(format!("cannot watch {}: {e}", dir.display())))?;
    watcher
        .watch(dir, notify::RecursiveMode::Recursive)
        .map_err(|e| Error::Config(format!("cannot watch {}: {e}", dir.display())))?;
    std::thread::Builder::new()
        .name("template-reload".into())
        .spawn(move || {
            // Ends when the watcher (and with it the sender) is dropped.
            while rx.recv().is_ok() {
                while rx.recv_timeout(RELOAD_DEBOUNCE).is_ok() {}
                // reload() logs file and line itself on failure.
                let _ = shared.reload();
            }
        })
        .map_err(|e| Error::Config(format!("cannot start the template reload thread: {e}")))?;
    tracing::info!(dir = %dir.display(), "watching templates for changes");
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_name_that_parses_back() {
        let names: BTreeSet<&str> = TemplateKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), TemplateKind::ALL.len());
        for kind in TemplateKind::ALL {
            assert_eq!(TemplateKind::from_name(kind.name()), Some(*kind));
        }
        assert!(TemplateKind::Digest.is_staff_facing());
        assert!(!TemplateKind::Challenge.is_staff_facing());
    }

    #[test]
    fn includes_resolve_to_own_language_then_default() {
        let names: BTreeSet<String> = ["en/_a.txt.tera", "en/_b.txt.tera", "es/_a.txt.tera"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let text = "{% include \"_a.txt.tera\" %}\n{%- include \"_b.txt.tera\" %}";
        assert_eq!(
            rewrite_includes(text, "es", &names),
            "{% include \"es/_a.txt.tera\" %}\n{%- include \"en/_b.txt.tera\" %}"
        );
    }

    #[test]
    fn find_line_matches_whole_names() {
        let text = "a\n{{ item.hints }}\n{{ item.hint }}";
        assert_eq!(find_line(text, "item.hint"), Some(3));
        assert_eq!(find_line(text, "nothing"), None);
    }

    #[test]
    fn tidy_text_collapses_blank_runs_and_keeps_signature_delimiter() {
        assert_eq!(
            tidy_text("\n\nHi  \n\n\n\nthere\n-- \nTeam\n\n"),
            "Hi\n\nthere\n-- \nTeam\n"
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let files = vec![SourceFile {
            name: "en/x.txt.tera".into(),
            origin: "dir/en/x.txt.tera".into(),
            text: "ok\nok\n{{ broken ".into(),
        }];
        let problems = TemplateSet::compile(files, Vec::new()).unwrap_err();
        assert_eq!(problems[0].file, "dir/en/x.txt.tera");
        assert_eq!(problems[0].line, Some(3));
    }

    #[test]
    fn embedded_set_renders_every_kind_in_every_language() {
        let set = TemplateSet::embedded().unwrap();
        assert!(set.languages().contains(&"es".to_string()));
        for kind in TemplateKind::ALL {
            for (_, context) in samples::contexts_for(*kind) {
                for lang in set.languages() {
                    let rendered = set.render(*kind, &lang, &context).unwrap();
                    assert!(!rendered.subject.contains('\n'));
                }
            }
        }
    }

    #[test]
    fn unknown_language_falls_back_to_default() {
        let set = TemplateSet::embedded().unwrap();
        let ctx = samples::for_kind(
            &samples::scenario("seed_2fa").unwrap(),
            TemplateKind::Acknowledgement,
        );
        let en = set
            .render(TemplateKind::Acknowledgement, "en", &ctx)
            .unwrap();
        let xx = set
            .render(TemplateKind::Acknowledgement, "xx", &ctx)
            .unwrap();
        let es_mx = set
            .render(TemplateKind::Acknowledgement, "es-MX", &ctx)
            .unwrap();
        let es = set
            .render(TemplateKind::Acknowledgement, "es", &ctx)
            .unwrap();
        assert_eq!(en, xx);
        assert_eq!(es, es_mx);
        assert_ne!(en.text, es.text);
    }
}
