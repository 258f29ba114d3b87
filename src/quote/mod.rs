//! What the sender newly wrote: quoted history, quote headers and
//! signatures stripped.
//!
//! Owns: finding where a reply's own text ends (attribution lines such as
//! "On … wrote:" in many languages, Outlook header blocks, "Original
//! message" separators, phone footers, `-- ` signatures, closing
//! valedictions) and dropping `>`-quoted lines; for HTML mail, dropping
//! `blockquote`, `gmail_quote` and the Outlook/Thunderbird/Yahoo quote
//! containers before the text rules run.
//! Does not own: secrets (see [`crate::secrets`]) or what the text means
//! (see [`crate::request`]).
//!
//! Pure; never panics. When in doubt it keeps text: losing a requester's
//! sentence costs more than showing staff a line of history.

use once_cell::sync::Lazy;
use regex::Regex;

mod header;
mod html;
mod signature;

use header::*;
use html::*;
use signature::*;

/// The newly written part of a message body. `html` is the message's HTML
/// body when it has one (used to drop `blockquote`/`gmail_quote` history).
///
/// The HTML is only used when `plain` is empty or is the HTML rendered to
/// text (an HTML-only message): a real text/plain part is what the sender's
/// client chose to show and is read as it is.
pub fn new_text(plain: &str, html: Option<&str>) -> String {
    let source = match html {
        Some(h) if plain_is_rendered_html(plain, h) => {
            let stripped = strip_html_quotes(h);
            mail_parser::decoders::html::html_to_text(&mark_blocks(&stripped))
        }
        _ => plain.to_string(),
    };
    strip_text(&source)
}

/// True when `plain` carries nothing the HTML does not: empty, or the same
/// text as the HTML rendered (compared without whitespace differences).
fn plain_is_rendered_html(plain: &str, html: &str) -> bool {
    if plain.trim().is_empty() {
        return true;
    }
    let rendered = mail_parser::decoders::html::html_to_text(html);
    squash(plain) == squash(&rendered)
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Most lines of a note above a forward that is kept with it: "FYI",
/// "See below, this is the mail I got."
const MAX_FORWARD_NOTE_LINES: usize = 3;

/// True when the text above a forward is a short covering note.
fn short_note(top: &[&str]) -> bool {
    let lines: Vec<&str> = top
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    lines.len() <= MAX_FORWARD_NOTE_LINES && lines.iter().all(|l| l.chars().count() <= 120)
}

/// Markdown code fences: nothing inside them is a header or signature.
static FENCE: Lazy<Regex> = Lazy::new(|| Regex::new(r"^\s*(?:```|~~~)").expect("valid regex"));

/// What ended the new text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// "On … wrote:"; the history below is `>`-quoted, so unquoted text
    /// after it may be an inline or bottom-posted answer.
    Attribution { next: usize },
    /// Anything after which the rest is history or boilerplate.
    Rest,
    /// A forwarded message's separator: under a short note ("FYI") the
    /// forward is what the sender is showing support, and is kept.
    Forward,
}

/// Applies the text rules to a plain body.
fn strip_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines = split_leads(text.lines().collect());
    let mut kept = new_lines(&lines, 0);
    drop_signature_block(&mut kept);
    tidy(&mut kept);
    kept.join("\n")
}

/// The new lines of `lines`, looking again below an attribution when
/// nothing was written above it (bottom posting, inline answers).
fn new_lines<'a>(lines: &[&'a str], depth: usize) -> Vec<&'a str> {
    let (end, cut) = find_cut(lines);
    let mut top: Vec<&str> = unquoted(&lines[..end]);
    // Only a greeting above the attribution ("Hi,"): the answer is below.
    let words: Vec<&str> = top
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let trivial = words.len() <= 1 && words.iter().all(|l| l.chars().count() <= 30);
    match (trivial, cut, depth < 4) {
        (true, Some(Cut::Attribution { next }), true) => {
            top.push("");
            top.extend(new_lines(
                &unquoted(&lines[next.min(lines.len())..]),
                depth + 1,
            ));
        }
        (false, Some(Cut::Attribution { next }), true) => {
            top.extend(inline_answer(lines, next, depth));
        }
        (_, Some(Cut::Forward), true) if short_note(&top) => {
            // Read from the separator on, the forward is a letter of its
            // own: its header block is kept, its own history dropped.
            top.push("");
            top.extend(new_lines(&lines[end..], depth + 1));
        }
        _ => {}
    }
    top
}

/// Text written above an attribution and again below its quote is an
/// inline answer: the quote it answers is kept, as is, for staff to read
/// the answer against, and so is the answer. Nothing new below the quote
/// leaves the quote out.
fn inline_answer<'a>(lines: &[&'a str], next: usize, depth: usize) -> Vec<&'a str> {
    let next = next.min(lines.len());
    let quote_end = lines[next..]
        .iter()
        .position(|l| !l.trim().is_empty() && !is_quoted(l))
        .map_or(lines.len(), |p| next + p);
    if !lines[next..quote_end].iter().any(|l| is_quoted(l)) {
        return Vec::new();
    }
    // A line right under a quoted line with text is that line wrapped by a
    // client that did not re-quote it, not an answer.
    let wrapped_quote = lines[quote_end - 1]
        .trim_start()
        .trim_start_matches(['>', ' '])
        .chars()
        .any(char::is_alphanumeric);
    if wrapped_quote {
        return Vec::new();
    }
    let below = new_lines(&lines[quote_end..], depth + 1);
    if below.iter().all(|l| l.trim().is_empty()) {
        return Vec::new();
    }
    let mut out: Vec<&str> = lines[next..quote_end]
        .iter()
        .map(|l| l.trim_end())
        .collect();
    out.extend(below);
    out
}

/// A quoted line: `>`, or the initials some clients put before it
/// (`C>`, `JD>`).
fn is_quoted(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with('>') || QUOTE_INITIALS.is_match(line)
}

static QUOTE_INITIALS: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^[A-Z]{1,3}>").expect("valid regex"));

fn unquoted<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines.iter().copied().filter(|l| !is_quoted(l)).collect()
}

/// Index of the first line that is not new text, and why.
fn find_cut(lines: &[&str]) -> (usize, Option<Cut>) {
    let mut in_fence = false;
    // Nothing written yet: a header block or a forward separator here is
    // the sender's own letter heading ("From: me / Subject: …") or a
    // deliberate forward of a notice, not history under new text.
    let mut written = false;
    for i in 0..lines.len() {
        let line = lines[i].trim_end();
        if FENCE.is_match(line) {
            in_fence = !in_fence;
            written = true;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some(next) = attribution_at(lines, i) {
            return (i, Some(Cut::Attribution { next }));
        }
        if written && outlook_block_at(lines, i) {
            return (block_start(lines, i), Some(Cut::Rest));
        }
        if written && SEPARATOR.is_match(line) {
            let cut = if FORWARD.is_match(line) {
                Cut::Forward
            } else {
                Cut::Rest
            };
            return (i, Some(cut));
        }
        if SENT_FROM.is_match(line) {
            return (i, Some(Cut::Rest));
        }
        // A leading forward separator is not writing: the header block
        // under it belongs to the forwarded notice too.
        if !line.trim().is_empty() && !SEPARATOR.is_match(line) && !outlook_block_at(lines, i) {
            written = true;
        }
        if SIG_DELIM.is_match(line) {
            // An underline right above an Outlook block, or a plain
            // signature delimiter: either way the rest is not new text.
            return (i, Some(Cut::Rest));
        }
        if VALEDICTION.is_match(line) && short_tail(&lines[i + 1..]) {
            return (i, Some(Cut::Rest));
        }
    }
    (lines.len(), None)
}

/// Trims trailing spaces on each line, collapses runs of blank lines, and
/// drops blank lines at both ends.
fn tidy(lines: &mut Vec<&str>) {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines.iter() {
        let line = line.trim_end();
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    *lines = out;
}

#[cfg(test)]
mod tests;
