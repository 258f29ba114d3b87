//! What the sender newly wrote: quoted history, quote headers and
//! signatures stripped.
//!
//! Owns: finding where a reply's own text ends (attribution lines such as
//! "On … wrote:" in many languages, wrapped over up to four lines;
//! Outlook header blocks, From/Date pairs among them; "Original message"
//! separators; phone footers; `-- ` signatures and signature cards) and
//! which `>`-quoted lines stay; for HTML mail, dropping `blockquote`,
//! `gmail_quote` and the Outlook/Thunderbird/Yahoo quote containers before
//! the text rules run.
//! Does not own: secrets (see [`crate::secrets`]) or what the text means
//! (see [`crate::request`]).
//!
//! A reply is read into three parts ([`Reply`]): the sender's own words;
//! the quotes an inline answer replies to (kept for staff, who read each
//! answer against its question, and counted in the reply corpora's
//! measure, which keep them too); and a message forwarded under a short
//! note or with nothing above it (for staff and the request rules, but not
//! the sender's words, so not in the measure). Codes and the linked
//! owner's answer are read from the own words only. Closing words and a
//! name ("Cheers,\nJo") are the sender's and stay; a card under them
//! (title, phone, links) goes.
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

/// A reply read apart: what the sender wrote, the quotes their inline
/// answers reply to, and a message they forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The sender's own new words: no quoted line, no signature, no
    /// forwarded message. What codes, answers and the measure read.
    pub own: String,
    /// The own words with the quotes an inline answer replies to, when
    /// there are such quotes: what staff read the answers against.
    pub with_quotes: Option<String>,
    /// A forwarded message the sender is showing support (under a short
    /// note, or with nothing written above it), from its separator on with
    /// its own history dropped. Staff see it, and the request rules read it
    /// (a forwarded notice names the account), but it is not the sender's.
    pub forwarded: Option<String>,
}

impl Reply {
    /// The text staff are shown: the own words with their quotes, then
    /// the forward.
    pub fn shown(&self) -> String {
        join(self.reply_text(), self.forwarded.as_deref())
    }

    /// The reply as its sender sent it: the own words with the quotes
    /// they answer, without the forward. What the reading report scores
    /// against the reply corpora.
    pub fn reply_text(&self) -> &str {
        self.with_quotes.as_deref().unwrap_or(&self.own)
    }

    /// The text the request rules read: the own words, then the forward
    /// (no quoted line: it is our, or someone else's, text).
    pub fn for_rules(&self) -> String {
        join(&self.own, self.forwarded.as_deref())
    }
}

fn join(text: &str, forwarded: Option<&str>) -> String {
    match forwarded {
        Some(f) if text.is_empty() => f.to_string(),
        Some(f) => format!("{text}\n\n{f}"),
        None => text.to_string(),
    }
}

/// The newly written part of a message body with any forward under it
/// ([`Reply::shown`]). `html` is the message's HTML body when it has one
/// (used to drop `blockquote`/`gmail_quote` history).
pub fn new_text(plain: &str, html: Option<&str>) -> String {
    reply(plain, html).shown()
}

/// Reads a reply apart into the sender's own words and a forward.
///
/// The HTML is only used when `plain` is empty or is the HTML rendered to
/// text (an HTML-only message): a real text/plain part is what the sender's
/// client chose to show and is read as it is.
pub fn reply(plain: &str, html: Option<&str>) -> Reply {
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

/// A helpdesk's marker over its own mail ("##- Please type your reply
/// above this line -##"): what the sender wrote is above it.
static REPLY_ABOVE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:reply|respond|write|type)\s+(?:\S+\s+){0,3}above\s+this\s+line\b|oberhalb\s+dieser\s+zeile|au-dessus\s+de\s+cette\s+ligne|por\s+encima\s+de\s+esta\s+línea")
        .expect("valid regex")
});

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
fn strip_text(text: &str) -> Reply {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines = split_leads(text.lines().collect());
    let mut forward = None;
    let mut kept = if opens_with_forward(&lines) {
        // Nothing written above the forward: it is all the sender shows.
        forward = Some(lines.clone());
        Vec::new()
    } else {
        new_lines(&lines, 0, &mut forward)
    };
    keep_answered_quotes(&mut kept);
    drop_signature_block(&mut kept);
    tidy(&mut kept);
    let forwarded = forward
        .map(|f| finish_forward(&f))
        .filter(|f| !f.is_empty());
    let with_quotes = kept.join("\n");
    kept.retain(|l| !is_quoted(l));
    tidy(&mut kept);
    let own = kept.join("\n");
    Reply {
        with_quotes: (own != with_quotes).then_some(with_quotes),
        own,
        forwarded,
    }
}

/// The lines of a forward as staff read them: its own header block and
/// text, its own quoted history and signature dropped.
fn finish_forward(lines: &[&str]) -> String {
    let mut inner = None;
    let mut kept = new_lines(lines, 1, &mut inner);
    if let Some(more) = inner {
        kept.push("");
        kept.extend(more);
    }
    kept.retain(|l| !is_quoted(l));
    tidy(&mut kept);
    kept.join("\n")
}

/// True when the first line written is a forward separator.
fn opens_with_forward(lines: &[&str]) -> bool {
    lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| SEPARATOR.is_match(l) && FORWARD.is_match(l))
}

/// Deepest nesting of attributions looked below (a reply to a reply …).
const MAX_DEPTH: usize = 4;

/// The new lines of `lines` (quoted lines still in: [`keep_answered_quotes`]
/// decides which stay), looking again below an attribution when nothing,
/// or only a greeting over a quote, was written above it. A forward under
/// a short note goes to `forward`.
fn new_lines<'a>(
    lines: &[&'a str],
    depth: usize,
    forward: &mut Option<Vec<&'a str>>,
) -> Vec<&'a str> {
    let (end, cut) = find_cut(lines);
    let mut top: Vec<&str> = lines[..end].to_vec();
    let written: Vec<&str> = unquoted(&top)
        .into_iter()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // One short line above the attribution: a salutation ("Hi,", "Dear
    // Desk:") is never a whole reply, so the answer is below, quoted or
    // not; a short reply ("Thanks!") is one, and only an answer under a
    // quote below it (bottom posting) is read too.
    let short = written.len() == 1 && written[0].chars().count() <= 30;
    let salutation = short && written[0].ends_with([',', ':']);
    match cut {
        Some(Cut::Attribution { next }) if depth < MAX_DEPTH => {
            let next = next.min(lines.len());
            let quoted_below = quote_follows(&lines[next..]);
            // Unquoted text right under an attribution with something
            // written above is the earlier mail kept unquoted: history.
            if written.is_empty() || salutation || (short && quoted_below) {
                top.push("");
                top.extend(new_lines(&lines[next..], depth + 1, forward));
            } else if quoted_below {
                top.extend(inline_answer(lines, next, depth, forward));
            }
        }
        Some(Cut::Forward) if depth < MAX_DEPTH && short_note(&written) && forward.is_none() => {
            // Read from the separator on, the forward is a letter of its
            // own, kept as a part of its own.
            *forward = Some(lines[end..].to_vec());
        }
        _ => {}
    }
    top
}

/// True when the first line written in `lines` is quoted.
fn quote_follows(lines: &[&str]) -> bool {
    lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quoted(l))
}

/// Text written above an attribution and again below its quote is an
/// inline answer: the quote and the text below are kept (which quotes
/// stay is for [`keep_answered_quotes`]). Nothing new below the quote
/// leaves the quote out.
fn inline_answer<'a>(
    lines: &[&'a str],
    next: usize,
    depth: usize,
    forward: &mut Option<Vec<&'a str>>,
) -> Vec<&'a str> {
    let quote_end = lines[next..]
        .iter()
        .position(|l| !l.trim().is_empty() && !is_quoted(l))
        .map_or(lines.len(), |p| next + p);
    if quote_end == lines.len() || wrapped_quote(lines[quote_end - 1], lines[quote_end]) {
        return Vec::new();
    }
    let below = new_lines(&lines[quote_end..], depth + 1, forward);
    if below.iter().all(|l| l.trim().is_empty() || is_quoted(l)) {
        return Vec::new();
    }
    let mut out: Vec<&str> = lines[next..quote_end].to_vec();
    out.extend(below);
    out
}

/// A line right under a quoted line that is that line wrapped by a client
/// that did not re-quote it, not an answer: the quoted line stops
/// mid-sentence and the line under it goes on in lower case.
fn wrapped_quote(quoted: &str, under: &str) -> bool {
    let quoted = quoted
        .trim_start()
        .trim_start_matches(['>', ' '])
        .trim_end();
    let goes_on = under
        .trim_start()
        .chars()
        .next()
        .is_some_and(|c| c.is_lowercase());
    !quoted.is_empty() && !quoted.ends_with(['.', '?', '!', ':', ')']) && goes_on
}

/// One run of lines: quoted or written, blank lines going with the run
/// above them.
struct Run {
    quoted: bool,
    start: usize,
    end: usize,
}

fn runs(lines: &[&str]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            if let Some(last) = out.last_mut() {
                last.end = i + 1;
            }
            continue;
        }
        let quoted = is_quoted(line);
        match out.last_mut() {
            Some(last) if last.quoted == quoted => last.end = i + 1,
            _ => out.push(Run {
                quoted,
                start: i,
                end: i + 1,
            }),
        }
    }
    out
}

/// Keeps the quotes an inline answer replies to and drops every other
/// quoted line. Answers interleaved with quotes (two answered quotes, or
/// text above and an answer under a quote) keep each quote that has an
/// answer under it; one answer under the whole quote is bottom posting,
/// and its history goes. A lone greeting ("Hi,") above does not count.
fn keep_answered_quotes(lines: &mut Vec<&str>) {
    let runs = runs(lines);
    let written = |r: &Run| -> bool {
        let text: Vec<&str> = lines[r.start..r.end]
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        !(text.len() == 1 && text[0].chars().count() <= 30 && text[0].ends_with([',', '!']))
    };
    let answered: Vec<bool> = (0..runs.len())
        .map(|k| runs[k].quoted && runs.get(k + 1).is_some_and(|n| !n.quoted))
        .collect();
    let count = answered.iter().filter(|a| **a).count();
    let inline =
        count >= 2 || (count >= 1 && runs.first().is_some_and(|r| !r.quoted && written(r)));
    let mut keep = vec![true; lines.len()];
    for (k, run) in runs.iter().enumerate() {
        if run.quoted && !(inline && answered[k]) {
            keep[run.start..run.end].iter_mut().for_each(|x| *x = false);
        }
    }
    let mut i = 0;
    lines.retain(|_| {
        i += 1;
        keep[i - 1]
    });
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
    cut_in(lines, true)
}

/// [`find_cut`]; `look_below_footers` lets a footer under a greeting look
/// for the letter below it, which the look itself does not do again (a
/// body of nothing but footers would recurse as deep as it is long).
fn cut_in(lines: &[&str], look_below_footers: bool) -> (usize, Option<Cut>) {
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
        if written && (SEPARATOR.is_match(line) || framed_separator_at(lines, i)) {
            let cut = if FORWARD.is_match(line) {
                Cut::Forward
            } else {
                Cut::Rest
            };
            return (i, Some(cut));
        }
        if REPLY_ABOVE.is_match(line)
            || (is_footer(line)
                && !(look_below_footers
                    && greeting_at_most(&lines[..i])
                    && letter_goes_on(&lines[i + 1..])))
        {
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
    }
    (lines.len(), None)
}

/// Words in a line that makes it a sentence of the letter, not a card's
/// or a footer's.
const LETTER_LINE_WORDS: usize = 8;

/// True when at most a greeting ("Hi,") is written in `lines`.
fn greeting_at_most(lines: &[&str]) -> bool {
    let written: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !is_quoted(l))
        .collect();
    written.is_empty() || (written.len() == 1 && written[0].chars().count() <= 30)
}

/// True when the sender's letter goes on under a footer line: before the
/// next history cut there is a written line of [`LETTER_LINE_WORDS`]
/// words or more that is no confidentiality notice. A footer under no
/// more than a greeting and over such text is where the sender's client
/// put it, not the end of what they wrote; under a letter, the text below
/// it is the earlier mail a phone shows unquoted.
fn letter_goes_on(lines: &[&str]) -> bool {
    let (end, _) = cut_in(lines, false);
    let rest: Vec<&str> = lines[..end]
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty() && !is_quoted(l))
        .collect();
    !is_disclaimer(&rest)
        && rest
            .iter()
            .any(|l| l.split_whitespace().count() >= LETTER_LINE_WORDS)
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
