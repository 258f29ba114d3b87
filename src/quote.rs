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

/// How many lines a split attribution header ("On …\n… wrote:") may span.
const MAX_HEADER_LINES: usize = 3;
/// Attribution headers longer than this are sentences, not headers.
const MAX_HEADER_CHARS: usize = 400;
/// A valediction only ends the text when at most this many short lines follow.
const MAX_SIGNATURE_LINES: usize = 4;

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

// ---------------------------------------------------------------- HTML ----

/// Block boundaries the text renderer would run together
/// ("PyPI Usernamejodoe"): closing block tags become line breaks, list
/// items become `- ` lines and headings markdown headings, so a rendered
/// HTML form reads like the pasted markdown one.
static BLOCK_END: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)</(?:h[1-6]|p|div|li|tr|ul|ol|table|pre|blockquote|section|article|header|footer|dd|dt)\s*>")
        .expect("valid regex")
});
static LIST_ITEM: Lazy<Regex> = Lazy::new(|| Regex::new(r"(?i)<li\b[^>]*>").expect("valid regex"));
static HEADING_START: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?i)<h[1-6]\b[^>]*>").expect("valid regex"));

fn mark_blocks(html: &str) -> String {
    let html = BLOCK_END.replace_all(html, "$0<br>");
    let html = LIST_ITEM.replace_all(&html, "<br>- ");
    HEADING_START.replace_all(&html, "<br>### ").into_owned()
}

/// Quote containers whose whole element is history.
static HTML_QUOTE_OPEN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"(?is)<(blockquote)\b[^>]*>|<(div)\b[^>]*class\s*=\s*["']?[^"'>]*\b(?:gmail_quote|gmail_signature|yahoo_quoted|moz-cite-prefix|moz-signature|protonmail_quote|zmail_extra)\b[^>]*>"#,
    )
    .expect("valid regex")
});

/// Markers after which everything is history (Outlook puts the quoted
/// message after these, not inside them).
static HTML_CUT_REST: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"(?is)<div\b[^>]*id\s*=\s*["']?(?:divRplyFwdMsg|appendonsend|mail-editor-reference-message-container)\b|<hr\b[^>]*id\s*=\s*["']?stopSpelling"#,
    )
    .expect("valid regex")
});

/// A horizontal rule directly above a header block's From field.
static HR_HEADER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?is)<hr\b[^>]*>(?:\s|&nbsp;|<[^>]*>)*(?:from|von|de|da|van|fra|från|od|от|від|lähettäjä|feladó|gönderen|发件人|寄件者|差出人)(?:\s|&nbsp;|<[^>]*>)*[:：]")
        .expect("valid regex")
});

static HTML_TAG: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?is)<(/?)([a-z][a-z0-9]*)\b[^>]*?(/?)>").expect("valid regex"));

/// Removes quote containers from HTML. Works on tags only (no DOM): finds
/// an opening container and skips to its balanced closing tag, so nested
/// quotes go with their parent. Unbalanced markup drops the rest, which is
/// the safe side for a quote that was never closed.
fn strip_html_quotes(html: &str) -> String {
    let html = match HTML_CUT_REST.find(html) {
        Some(m) => &html[..m.start()],
        None => html,
    };
    // Outlook on the web draws a plain `<hr>` above the quoted message's
    // From line; it ends the new text only under something written.
    let html = match HR_HEADER.find(html) {
        Some(m)
            if !mail_parser::decoders::html::html_to_text(&html[..m.start()])
                .trim()
                .is_empty() =>
        {
            &html[..m.start()]
        }
        _ => html,
    };
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    while let Some(open) = HTML_QUOTE_OPEN.find_at(html, pos) {
        out.push_str(&html[pos..open.start()]);
        let tag = if open
            .as_str()
            .to_ascii_lowercase()
            .starts_with("<blockquote")
        {
            "blockquote"
        } else {
            "div"
        };
        pos = match balanced_end(html, open.end(), tag) {
            Some(end) => end,
            None => html.len(),
        };
    }
    out.push_str(&html[pos..]);
    out
}

/// Byte offset just after the closing tag that balances an opening `tag`
/// whose start tag ended at `from`.
fn balanced_end(html: &str, from: usize, tag: &str) -> Option<usize> {
    let mut depth = 1usize;
    for caps in HTML_TAG.captures_iter(&html[from..]) {
        let name = caps.get(2).map_or("", |m| m.as_str());
        if !name.eq_ignore_ascii_case(tag) {
            continue;
        }
        let closing = caps.get(1).is_some_and(|m| !m.as_str().is_empty());
        let self_closing = caps.get(3).is_some_and(|m| !m.as_str().is_empty());
        if closing {
            depth -= 1;
            if depth == 0 {
                return caps.get(0).map(|m| from + m.end());
            }
        } else if !self_closing {
            depth += 1;
        }
    }
    None
}

// ---------------------------------------------------------------- text ----

/// Verbs of attribution lines ("X wrote:") in the languages we meet.
const WROTE: &str = r"wrote|writes|a\s+écrit|a\s+ecrit|escribió|escribio|escreveu|schrieb|ha\s+scritto|schreef|het\s+volgende\s+geschreven|skrev|kirjoitti|napisał(?:\(a\))?|napisala|napisal|napsal(?:\(a\))?|pisze|написал|написала|написав(?:\(ла\))?|пишет|пише|đã\s+viết|scrisse|yazdı|írta|έγραψε|写道|寫道|が書きました|님이\s*작성";

/// An attribution line: a verb of writing, ending the (joined) header with
/// an optional colon or a run of dashes (Zoho "---- On … wrote ----"), or
/// followed by the quoted author and a colon (German, Scandinavian).
static ATTRIBUTION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)^(?:>\s*)*(?:-{{2,}}\s*)?\S.{{0,{MAX_HEADER_CHARS}}}?(?:\b|\s|^)(?:{WROTE})(?:\s*[:：]|\s*-{{2,}}|\s*$|\s.{{0,200}}[:：]\s*$)\s*(?:-{{2,}})?\s*$"
    ))
    .expect("valid regex")
});

/// Gmail in languages with no verb (Russian, Ukrainian): a date, an
/// address in angle brackets, then a colon ends the line.
static ADDRESS_COLON: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"<\s*[^<>\s]+@[^<>\s]+\s*>\s*\)?\s*[:：]\s*$").expect("valid regex"));

/// Gmail's numeric-date attribution without a verb or colon
/// ("2013/7/20 Name <addr>", "2016-03-03 17:21 GMT+01:00 Name <addr>").
static NUMERIC_DATE_ADDRESS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\b.{0,120}<\s*[^<>\s]+@[^<>\s]+\s*>\s*[:：]?\s*$")
        .expect("valid regex")
});

/// Something that dates a header, so "On the other hand …" never counts.
static DATE_HINT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\d{1,2}[:.h]\d{2}|\b(?:19|20)\d{2}\b|\d{4}年|@").expect("valid regex")
});

/// Separators that open forwarded or original messages.
static SEPARATOR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"(?i)^\s*\*?\s*(?:-{2,}|_{2,}|={2,}|\*{2,})\s*(?:original\s+message|reply\s+message|oprindelig\s+meddelelse|original\s+meddelelse|opprinnelig\s+melding|forwarded\s+message|message\s+d'origine|message\s+original|message\s+transféré|ursprüngliche\s+nachricht|weitergeleitete\s+nachricht|oprindelig\s+besked|videresendt\s+meddelelse|opprinnelig\s+melding|ursprungligt\s+meddelande|alkuperäinen\s+viesti|oorspronkelijk\s+bericht|doorgestuurd\s+bericht|messaggio\s+originale|messaggio\s+inoltrato|mensaje\s+original|mensaje\s+reenviado|mensagem\s+original|mensagem\s+encaminhada|wiadomość\s+oryginalna|původní\s+zpráva|исходное\s+сообщение|оригинално\s+писмо|пересылаемое\s+сообщение|переслане\s+повідомлення|原始邮件|原始郵件|转发的邮件|元のメッセージ)\s*(?:-{2,}|_{2,}|={2,}|\*{2,})?\s*\*?\s*$|^\s*(?:begin\s+forwarded\s+message|début\s+du\s+message\s+réexpédié|anfang\s+der\s+weitergeleiteten\s+nachricht|inicio\s+del\s+mensaje\s+reenviado)\s*:\s*$",
    )
    .expect("valid regex")
});

/// The separators among [`SEPARATOR`] that open a forward, not a reply.
static FORWARD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)forward|transféré|réexpédié|weitergeleitet|reenviado|encaminhada|inoltrato|doorgestuurd|videresendt|пересылаемое|переслане|转发")
        .expect("valid regex")
});

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

/// First line of an Outlook-style header block, in many languages.
static FROM_FIELD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:from|von|de|da|van|fra|från|od|от|від|lähettäjä|feladó|gönderen|发件人|寄件者|差出人|보낸\s*사람)\*?\s*[:：]")
        .expect("valid regex")
});

/// Other fields of such a block; two of them under a From line make it a
/// header, which keeps "from: our database" in a sentence safe.
static OTHER_FIELD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:sent|date|to|cc|subject|message\s+du|sujet|copie\s+à|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|fecha|para|asunto|assunto|data|inviato|oggetto|a|verzonden|aan|onderwerp|sendt|dato|til|emne|skickat|till|ämne|wysłano|do|temat|отправлено|дата|кому|тема|lähetetty|päivämäärä|vastaanottaja|aihe|发送时间|时间|收件人|主题|傳送時間|收件者|主旨|送信日時|宛先|件名)\*?\s*[:：]")
        .expect("valid regex")
});

/// Footers that phones and webmail append under the new text.
static SENT_FROM: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:sent\s+(?:from|via|with|using)\s+\S|get\s+outlook\s+for\s|envoyé\s+(?:de|depuis|à\s+partir\s+de)\s|von\s+meinem\s|gesendet\s+von\s|enviado\s+(?:desde|do|de)\s|inviato\s+da\s|(?:verzonden|verstuurd)\s+(?:met|vanaf|van)\s|inviato\s+dal\s|lähetetty\s|odesláno\s+z\s|sendt\s+fra\s|skickat\s+från\s|wysłane\s+z\s|отправлено\s+(?:с|из)\s|надіслано\s+з\s|发自我的|從我的|iPhoneから送信)")
        .expect("valid regex")
});

/// Signature delimiters: RFC 3676 `-- `, its trimmed form, and underscores.
static SIG_DELIM: Lazy<Regex> = Lazy::new(|| Regex::new(r"^(?:--|__+)\s*$").expect("valid regex"));

/// A horizontal rule some clients draw above a quoted header block.
static RULE: Lazy<Regex> = Lazy::new(|| Regex::new(r"^[=_*-]{3,}$").expect("valid regex"));

/// Closing words that start a signature block.
static VALEDICTION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:best|kind|warm|warmest|many)\s+regards|regards|cheers|sincerely|yours\s+sincerely|yours\s+truly|best\s+wishes|thanks\s+(?:and|&)\s+regards|cordialement|bien\s+à\s+vous|mit\s+freundlichen\s+grüßen|viele\s+grüße|beste\s+grüße|saludos(?:\s+cordiales)?|atentamente|atenciosamente|abraços|cordiali\s+saluti|met\s+vriendelijke\s+groet|с\s+уважением|此致|敬礼)\s*[,.!]?\s*$")
        .expect("valid regex")
});

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

/// A sentence break inside a line.
static SENTENCE_BREAK: Lazy<Regex> = Lazy::new(|| Regex::new(r"[.!?]\s+").expect("valid regex"));

/// Text written on the same line before an attribution ("Sounds good. On
/// Tue … wrote:") is new text: such a line is read as two lines.
fn split_leads(lines: Vec<&str>) -> Vec<&str> {
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match lead_before_attribution(&lines, i) {
            Some(p) => {
                out.push(&line[..p]);
                out.push(&line[p..]);
            }
            None => out.push(line),
        }
    }
    out
}

/// Where the attribution starts on line `i` when a sentence comes first.
/// The sentence must end as prose does and hold no digit, and the header
/// must start as one does (capital, digit or CJK), so a date's own
/// abbreviations ("Le 15 janv. 2024 à …") never split a header.
fn lead_before_attribution(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i];
    if !SENTENCE_BREAK.is_match(line)
        || !DATE_HINT.is_match(&lines[i..lines.len().min(i + MAX_HEADER_LINES)].join(" "))
    {
        return None;
    }
    for m in SENTENCE_BREAK.find_iter(line) {
        let lead = line[..m.start() + 1].trim();
        let rest = &line[m.end()..];
        let starts_header = rest
            .chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit() || is_cjk(c));
        if lead.chars().any(|c| c.is_ascii_digit()) || !ends_sentence(lead) || !starts_header {
            continue;
        }
        let mut probe = vec![rest];
        probe.extend(lines.iter().skip(i + 1).take(MAX_HEADER_LINES - 1));
        if attribution_at(&probe, 0).is_some() {
            return Some(m.end());
        }
    }
    None
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff)
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

/// If an attribution header starts at line `i` (possibly split over a few
/// lines), the index of the first line after it.
fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    if undated_attribution(lines, i) {
        return Some(i + 1);
    }
    let mut joined = String::new();
    let first_dated = lines
        .get(i)
        .is_some_and(|l| l.chars().any(|c| c.is_ascii_digit()));
    for (n, line) in lines.iter().enumerate().skip(i).take(MAX_HEADER_LINES) {
        let line = line.trim();
        if line.is_empty() || joined.len() > MAX_HEADER_CHARS {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line);
        // A split header dates itself on its first line; prose above a
        // header usually does not, and must not be joined into it.
        if is_header(&joined) && (n == i || first_dated) {
            return Some(n + 1);
        }
        // Only a first line that carries a date may continue onto the next
        // lines; otherwise nothing further can match, so stop early (this
        // loop runs for every line of every message).
        if !first_dated {
            return None;
        }
        // A full sentence means this is prose, not a header's first part;
        // "28." or "Apr." ending a wrapped date is no sentence end.
        if ends_sentence(line) {
            return None;
        }
    }
    None
}

/// "Jo Example wrote:" with no date: a header only when a quote follows.
fn undated_attribution(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    line.ends_with([':', '：'])
        && line.chars().count() <= 100
        && lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| is_quoted(l))
        && ATTRIBUTION.is_match(line)
}

static INNER_SENTENCE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"\p{Ll}{4,}[.!?] +\p{Lu}\p{Ll}* \p{Ll}").expect("valid regex"));

/// True when a line ends a sentence: `!`, `?`, or a `.` after a word of
/// more than three letters.
fn ends_sentence(line: &str) -> bool {
    // An ellipsis ends a thought ("I will let you know then..."), and a
    // sentence break inside the line ("weeks. I will") makes it prose.
    if line.ends_with(['!', '?', '…']) || line.ends_with("...") || INNER_SENTENCE.is_match(line) {
        return true;
    }
    let Some(rest) = line.strip_suffix('.') else {
        return false;
    };
    let word = rest.rsplit(char::is_whitespace).next().unwrap_or("");
    word.chars().count() > 3 && word.chars().all(char::is_alphabetic)
}

/// One attribution header, already joined onto one line.
fn is_header(text: &str) -> bool {
    text.len() <= MAX_HEADER_CHARS * 4
        && text.chars().count() <= MAX_HEADER_CHARS
        && DATE_HINT.is_match(text)
        && (ATTRIBUTION.is_match(text)
            || ADDRESS_COLON.is_match(text)
            || NUMERIC_DATE_ADDRESS.is_match(text))
}

/// A From-like line followed closely by at least two other header fields
/// (Sent/To/Subject or their translations).
/// A From line with an address and a dated Sent/Date line right under it
/// is a header block of its own (some clients quote only those two).
fn outlook_block_at(lines: &[&str], i: usize) -> bool {
    if !FROM_FIELD.is_match(lines[i]) {
        return false;
    }
    let fields = lines
        .iter()
        .skip(i + 1)
        .take(6)
        .filter(|l| OTHER_FIELD.is_match(l))
        .count();
    fields >= 2
        || (lines[i].contains('@')
            && lines
                .iter()
                .skip(i + 1)
                .take(2)
                .any(|l| DATE_FIELD.is_match(l)))
}

/// A dated Sent/Date field of a header block.
static DATE_FIELD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:sent|date|datum|gesendet|envoyé|enviado|fecha|data|inviato|verzonden|sendt|dato|skickat|wysłano|отправлено|дата|lähetetty|päivämäärä|发送时间|时间|傳送時間|送信日時)\*?\s*[:：].*\d")
        .expect("valid regex")
});

/// Walks back from a header block's From line over rules (`====`,
/// `____`) and fields some clients put above it ("Message du : …").
fn block_start(lines: &[&str], from: usize) -> usize {
    let mut start = from;
    for j in (0..from).rev() {
        let above = lines[j].trim();
        if RULE.is_match(above) || OTHER_FIELD.is_match(above) {
            start = j;
        } else if !above.is_empty() {
            break;
        }
    }
    start
}

/// True when what follows a valediction looks like a name and a title, not
/// more message.
fn short_tail(rest: &[&str]) -> bool {
    // Stop one past the limit: a long body below must not be scanned once
    // per "Regards," line.
    let non_empty: Vec<&str> = rest
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .take(MAX_SIGNATURE_LINES + 1)
        .collect();
    non_empty.len() <= MAX_SIGNATURE_LINES && non_empty.iter().all(|l| l.chars().count() <= 60)
}

/// A line that is a telephone number, with or without its label.
static PHONE_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^(?:(?:tel|phone|mobile|mob|cell|fax|office|direct|[tmpfo])\.?\s*[:.]?\s*)?\+?\(?\d[\d\s().\-/]{6,}\d$")
        .expect("valid regex")
});

/// A name line: two to four capitalised words, optionally with a title
/// after a bar or a comma ("Jo Example | Engineer").
static NAME_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\p{Lu}[\p{L}'.-]*(?:\s+\p{Lu}[\p{L}'.-]*){1,3}(?:\s*[|,]\s*.{1,50})?$")
        .expect("valid regex")
});

/// Drops a signature written without a `-- ` delimiter: a last paragraph
/// that opens with a name and carries a phone number, every line short and
/// none a sentence ("Jo Example / Engineer, Acme / +1 555 0100 /
/// acme.example"). A phone number is what makes it a signature: a name
/// and a link alone may be a requester's proof of who they are.
fn drop_signature_block(lines: &mut Vec<&str>) {
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |p| p + 1);
    let start = lines[..end]
        .iter()
        .rposition(|l| l.trim().is_empty())
        .map_or(0, |p| p + 1);
    let block = &lines[start..end];
    let above_written = lines[..start].iter().any(|l| !l.trim().is_empty());
    let signature = above_written
        && (2..=6).contains(&block.len())
        && NAME_LINE.is_match(block[0].trim())
        && block.iter().any(|l| PHONE_LINE.is_match(l.trim()))
        && block.iter().all(|l| {
            let l = l.trim();
            l.chars().count() <= 60 && !l.ends_with(['.', '!', '?', ':', ',']) && !is_quoted(l)
        });
    if signature {
        lines.truncate(start);
    }
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
mod tests {
    use super::*;

    #[test]
    fn a_gmail_attribution_ends_the_new_text() {
        let body = "Here is my username: jodoe\n\nOn Mon, 2 Nov 2026 at 10:00, Support <support@x.org> wrote:\n> Please send your username";
        assert_eq!(new_text(body, None), "Here is my username: jodoe");
    }

    #[test]
    fn an_attribution_split_over_two_lines_is_found() {
        let body =
            "Thanks\n\nOn Mon, Aug 26, 2019 at 4:37 PM The Desk <\nsupport@x.org> wrote:\n\n> old";
        assert_eq!(new_text(body, None), "Thanks");
    }

    #[test]
    fn french_german_and_russian_attributions_are_found() {
        for header in [
            "Le 15 janv. 2024 à 14:30, Pierre <p@x.fr> a écrit :",
            "Am 14.01.2024 um 10:00 schrieb Hans <h@x.de>:",
            "ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:",
            "2025年4月30日 15:19 <a@b.cn> 写道：",
        ] {
            let body = format!("Nouveau texte\n\n{header}\n> ancien");
            assert_eq!(new_text(&body, None), "Nouveau texte", "{header}");
        }
    }

    #[test]
    fn an_outlook_block_ends_the_new_text() {
        let body = "New words\n________________________________\nFrom: Desk <d@x.org>\nSent: Monday\nTo: me\nSubject: hi\n\nold text";
        assert_eq!(new_text(body, None), "New words");
    }

    #[test]
    fn a_letter_that_starts_with_its_own_headers_is_kept() {
        let body = "From: Jo Doe <jo@example.org>\nTo: Support\nSubject: Account recovery\n\nMy username is jodoe.";
        assert_eq!(new_text(body, None), body);
        let fwd = "---------- Forwarded message ---------\nFrom: Index <noreply@index.example>\nDate: Mon\nSubject: New recovery codes\nTo: jo\n\nNew recovery codes for your account 'jodoe' have been generated.";
        assert!(new_text(fwd, None).contains("account 'jodoe'"));
    }

    #[test]
    fn original_message_separators_end_the_new_text() {
        let body = "Neu\n\n-----Ursprüngliche Nachricht-----\nVon: a\nold";
        assert_eq!(new_text(body, None), "Neu");
    }

    #[test]
    fn phone_footers_and_signatures_are_dropped() {
        assert_eq!(new_text("Hi\n\nSent from my iPhone", None), "Hi");
        assert_eq!(new_text("Hi\n-- \nJo Doe\n+1 555", None), "Hi");
        assert_eq!(new_text("Hi\n\nBest regards,\nJo", None), "Hi");
    }

    #[test]
    fn prose_that_resembles_headers_is_kept() {
        let body = "On the other hand, I wrote to you before.\nThe data comes from: our database.\nIt was sent from my phone app to you.";
        assert_eq!(new_text(body, None), body);
    }

    #[test]
    fn a_bottom_posted_answer_under_a_greeting_is_kept() {
        let body =
            "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Desk wrote:\n> old\n\nMy username is jodoe";
        assert_eq!(new_text(body, None), "Hi,\n\nMy username is jodoe");
    }

    #[test]
    fn quoted_lines_are_dropped_and_inline_answers_kept() {
        let body = "On Dec 15, 2024, at 2:00 PM, Desk <d@x.org> wrote:\n> Username?\n\njodoe\n\n> Reason?\n\nlost phone";
        assert_eq!(new_text(body, None), "jodoe\n\nlost phone");
    }

    #[test]
    fn code_fences_protect_their_content() {
        let body = "See:\n```\n--\nSent from my mailer\n```\nend";
        assert_eq!(new_text(body, None), body);
    }

    #[test]
    fn html_blockquotes_and_gmail_quotes_are_dropped() {
        let html = "<div>My username is jodoe</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon wrote:</div><blockquote>old <div>x</div></blockquote></div>";
        let plain = mail_parser::decoders::html::html_to_text(html);
        assert_eq!(new_text(&plain, Some(html)), "My username is jodoe");
    }

    #[test]
    fn an_outlook_html_reply_is_cut_at_its_reply_marker() {
        let html = "<p>New</p><div id=\"divRplyFwdMsg\">From: x</div><p>old</p>";
        assert_eq!(new_text("", Some(html)), "New");
    }

    #[test]
    fn rendered_html_keeps_its_block_boundaries() {
        let html = "<h3>PyPI Username</h3><p>jodoe</p><ul><li>[X] I agree</li></ul>";
        assert_eq!(
            new_text("", Some(html)),
            "### PyPI Username\njodoe\n\n- [X] I agree"
        );
    }

    #[test]
    fn a_real_plain_part_wins_over_the_html() {
        let html = "<p>Other</p><blockquote>old</blockquote>";
        assert_eq!(new_text("Plain words", Some(html)), "Plain words");
    }

    #[test]
    fn more_attribution_and_separator_shapes_end_the_new_text() {
        for history in [
            "2016-10-24 15:36 GMT+02:00 Foo bar <\ninfo@foo.bar>:\n> old",
            "2013/7/20 sam via Discourse Meta <info@discourse.org>\n\n| old",
            "Max Mustermann <max@example.org> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:\n> alt",
            "30 серп. 2016 р. 20:45 \"Arpit\" <a@example.com> пише:\n> старе",
            "*-------- Original Message --------*\nold",
            "-----Reply Message-----\nold",
            "-----Oprindelig meddelelse-----\nold",
        ] {
            let new = "These are the new words of my reply.";
            let body = format!("{new}\n\n{history}");
            assert_eq!(new_text(&body, None), new, "{history}");
        }
    }

    #[test]
    fn a_reply_that_is_all_quote_has_no_new_text() {
        // A quoted challenge code is never a confirmation: nothing quoted
        // becomes new text, even when nothing else was written.
        assert_eq!(new_text("> Your code is ABCD-EFGH", None), "");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in ["", ">", "\r\r\n", "On", "<blockquote>", "é\u{0}—", "-- "] {
            let _ = new_text(s, Some(s));
        }
    }

    #[test]
    fn an_inline_answer_keeps_the_quote_it_answers() {
        let body = "I have one more detail for you today.\nOn Mon, 2024-05-06 at 10:00 +0200, Desk wrote:\n> Which username is it?\n>\n> Please tell us.\n\nIt is jodoe.\n\nJD> an older quote\n\n__\nJo Doe";
        assert_eq!(
            new_text(body, None),
            "I have one more detail for you today.\n> Which username is it?\n>\n> Please tell us.\n\nIt is jodoe."
        );
    }

    #[test]
    fn a_quote_wrapped_by_the_client_is_no_inline_answer() {
        let body = "My answer, which is long enough to count.\nOn Mon, 6 May 2024 at 10:00, Desk <desk@example.org> wrote:\n> We reset the second factor on\nyour account today.";
        assert_eq!(
            new_text(body, None),
            "My answer, which is long enough to count."
        );
    }

    #[test]
    fn prose_ending_in_an_ellipsis_is_not_joined_into_a_wrapped_attribution() {
        let body = "I can test it in 2 weeks. I will let you know then...\nOp 16 aug. 2014 05:13 schreef \"Desk\" <desk@example.org> het\nvolgende geschreven:\n\n> old text";
        assert_eq!(
            new_text(body, None),
            "I can test it in 2 weeks. I will let you know then..."
        );
    }

    #[test]
    fn a_sentence_before_an_attribution_on_its_line_is_kept() {
        let body = "Sounds good. On Tue, Mar 3, 2020 at 10:00 AM Jo <jo@x.org> wrote:\n> old";
        assert_eq!(new_text(body, None), "Sounds good.");
        let body = "Thanks! 2016-03-03 17:21 GMT+01:00 Jo <jo@x.org>:\n> old";
        assert_eq!(new_text(body, None), "Thanks!");
        // A date's abbreviations are no sentence.
        let body = "New\n\nLe 15 janv. 2024 à 14:30, Pierre <p@x.fr> a écrit :\n> old";
        assert_eq!(new_text(body, None), "New");
    }

    #[test]
    fn attributions_in_more_languages_and_undated_over_a_quote_end_the_text() {
        for header in [
            "Op 3 mrt. 2016 om 17:21 heeft Jo <a@b.org> het volgende geschreven:",
            "W dniu 3.03.2016 o 17:21, Jo pisze:",
            "Dne 3. 3. 2016 v 17:21 Jo <a@b.org> napsal(a):",
            "Jo Example wrote:",
        ] {
            let body = format!("New\n\n{header}\n\n> old");
            assert_eq!(new_text(&body, None), "New", "{header}");
        }
        // Undated and with no quote under it, it is a sentence.
        let body = "My colleague wrote:\nthe key is lost";
        assert_eq!(new_text(body, None), body);
    }

    #[test]
    fn a_from_and_date_block_alone_ends_the_text() {
        let body = "New\n\nFrom: Jo <jo@x.org>\nDate: Thu, 3 Mar 2016\n\nold text";
        assert_eq!(new_text(body, None), "New");
        let body = "New\n\nFrom: our records\nDate: unknown\n\nmore";
        assert_eq!(new_text(body, None), body);
    }

    #[test]
    fn a_short_note_above_a_forward_keeps_the_forward() {
        let body = "FYI\n\n---------- Forwarded message ---------\nFrom: PyPI <noreply@pypi.org>\nDate: Mon, Jan 1, 2024\nSubject: Password reset\nTo: <jo@x.org>\n\nSomeone asked to reset your password.\n\nOn Mon, Jan 1, 2024 at 9:00 Jo <jo@x.org> wrote:\n> older";
        let got = new_text(body, None);
        assert!(
            got.starts_with("FYI\n\n---------- Forwarded message"),
            "{got}"
        );
        assert!(got.contains("Subject: Password reset"), "{got}");
        assert!(
            got.ends_with("Someone asked to reset your password."),
            "{got}"
        );
        // A reply's "Original Message" history still goes.
        let body = "FYI\n\n-----Original Message-----\nFrom: Jo\nold";
        assert_eq!(new_text(body, None), "FYI");
    }

    #[test]
    fn a_signature_block_with_a_phone_number_is_dropped() {
        let body = "Please reset it.\n\nJohn Smith | Senior Engineer\nAcme Corp\nM: +44 7700 900123\nhttps://acme.example";
        assert_eq!(new_text(body, None), "Please reset it.");
        // A name and a link may be a proof of ownership: kept.
        let body = "Please reset it.\n\nJohn Smith\nhttps://github.com/jsmith";
        assert_eq!(new_text(body, None), body);
    }

    #[test]
    fn more_phone_footers_are_dropped() {
        for footer in ["Verstuurd vanaf mijn iPhone", "Inviato dal mio iPhone"] {
            assert_eq!(
                new_text(&format!("New\n\n{footer}"), None),
                "New",
                "{footer}"
            );
        }
    }

    #[test]
    fn an_outlook_html_block_after_a_plain_rule_is_history() {
        let html =
            "<p>My new text</p><hr><p><b>From:</b> Jo<br><b>Sent:</b> Monday</p><p>old text</p>";
        assert_eq!(new_text("", Some(html)), "My new text");
        // A rule with nothing written above it opens a forwarded letter.
        let html = "<hr><p><b>From:</b> Jo<br><b>Sent:</b> Monday</p><p>the letter</p>";
        assert!(new_text("", Some(html)).contains("the letter"));
    }
}
