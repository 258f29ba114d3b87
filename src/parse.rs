//! Bytes to an owned [`Inbound`]: addresses, threading keys, text, and the
//! headers later stages look at.
//!
//! Parsing is best effort and never fails: broken mail is data. What could
//! not be understood is listed in [`Inbound::warnings`]. mail-parser does
//! the MIME work; this module only picks what recoverydesk needs and owns it,
//! so nothing downstream borrows from the raw bytes.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::EmailAddress;

/// Longest text body kept for reading; the raw message is always kept whole.
const MAX_TEXT_CHARS: usize = 256 * 1024;
/// Longest header value kept; a 135 KB header of encoded words is cut here.
const MAX_HEADER_CHARS: usize = 8 * 1024;
/// Most headers kept, so a message of 10,000 headers stays cheap to store.
const MAX_HEADERS: usize = 500;

/// A display name and address, as written in From/To/Cc/Reply-To.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The display name, if any, with control characters removed.
    pub name: Option<String>,
    /// The address.
    pub address: EmailAddress,
}

/// The parts of a `multipart/report` (RFC 3464/6522) that classification needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The `report-type` parameter, lower-cased (e.g. `delivery-status`).
    pub report_type: String,
    /// The text of the `message/delivery-status` (or similar) part.
    pub status: String,
    /// Headers of the returned original message, when it was attached.
    pub original_headers: String,
    /// The status part sat in another multipart (a `multipart/mixed` some
    /// servers send instead of `multipart/report`): only a report when
    /// the envelope or sender says a machine sent it.
    #[serde(default)]
    pub nested: bool,
}

/// One inbound message, owned and ready for classification and threading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// Message-ID without angle brackets; synthesised when missing.
    pub message_id: String,
    /// True when the message carried no usable Message-ID.
    pub message_id_synthesized: bool,
    /// In-Reply-To ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids, without angle brackets, oldest first.
    pub references: Vec<String>,
    /// The first From mailbox that parses as an address.
    pub from: Option<Mailbox>,
    /// Reply-To, when present and valid.
    pub reply_to: Option<Mailbox>,
    /// Sender header, when present and valid.
    pub sender: Option<Mailbox>,
    /// To recipients that parse.
    pub to: Vec<Mailbox>,
    /// Cc recipients that parse.
    pub cc: Vec<Mailbox>,
    /// Decoded subject, one line.
    pub subject: String,
    /// Date header as Unix seconds, when it parses.
    pub date: Option<i64>,
    /// The best plain text: text/plain, else the HTML rendered to text.
    pub text: String,
    /// The first HTML body, when there is one (for quote detection).
    pub html: Option<String>,
    /// True when the message had HTML but no text/plain body.
    pub html_only: bool,
    /// Every header as (lower-case name, decoded value), in order.
    pub headers: Vec<(String, String)>,
    /// The top-level content type, lower-cased, e.g. `multipart/report`.
    pub content_type: String,
    /// Delivery or disposition report parts, when the message is a report.
    pub report: Option<Report>,
    /// Size of the raw message in bytes.
    pub size: usize,
    /// SHA-256 of the raw bytes, hex; the key of the raw message in the store.
    pub content_hash: String,
    /// What could not be understood (missing From, undecodable parts, ...).
    pub warnings: Vec<String>,
}

impl Inbound {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The From address, when there is one.
    pub fn from_address(&self) -> Option<&EmailAddress> {
        self.from.as_ref().map(|m| &m.address)
    }

    /// Every recipient address (To then Cc).
    pub fn recipients(&self) -> impl Iterator<Item = &EmailAddress> {
        self.to.iter().chain(self.cc.iter()).map(|m| &m.address)
    }

    /// Every Message-ID this message points at: In-Reply-To, then References
    /// newest first.
    pub fn thread_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.in_reply_to.iter().map(String::as_str).collect();
        keys.extend(self.references.iter().rev().map(String::as_str));
        keys.dedup();
        keys
    }
}

/// The hex SHA-256 of a raw message.
pub fn content_hash(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// Parses raw bytes; never fails and never panics on hostile input.
pub fn parse(raw: &[u8]) -> Inbound {
    let hash = content_hash(raw);
    // Old Mac mail ends lines with a lone CR, which mail-parser does not
    // take as a line end: read such a message as if it used CRLF. The
    // stored raw message stays byte for byte as received.
    let normalized;
    let bytes = if raw.contains(&b'\r') && !raw.contains(&b'\n') {
        normalized = raw
            .iter()
            .flat_map(|b| {
                if *b == b'\r' {
                    vec![b'\r', b'\n']
                } else {
                    vec![*b]
                }
            })
            .collect::<Vec<u8>>();
        normalized.as_slice()
    } else {
        raw
    };
    let parsed = MessageParser::default().parse(bytes);
    let mut inbound = match parsed {
        Some(message) => from_message(&message, raw.len(), hash),
        None => unparseable(raw.len(), hash),
    };
    if bytes.len() != raw.len() {
        inbound
            .warnings
            .push("CR-only line endings read as CRLF".into());
    }
    inbound
}

/// A text part's text. When the declared charset turned the bytes into
/// replacement characters, or into accented mojibake ("perdÃ­"), but the
/// bytes are valid UTF-8 (a client that labels UTF-8 as `Big5` or
/// `ISO-8859-1`), the UTF-8 reading wins. When no charset is declared, or
/// `us-ascii` is claimed for 8-bit bytes, and they are not UTF-8, the
/// common legacy charsets are tried and the one that reads as its own
/// language wins (see [`guess_legacy`]).
fn part_text(
    message: &Message<'_>,
    part: &mail_parser::MessagePart<'_>,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let decoded = part.text_contents()?;
    let mut charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .unwrap_or("")
        .to_ascii_lowercase();
    if decoded.is_ascii() && !decoded.contains('\u{fffd}') {
        return Some(decoded.to_owned());
    }
    if charset.contains("utf-8") || charset.contains("utf8") || is_wide_unicode(&charset) {
        return Some(decoded.to_owned());
    }
    // ASCII cannot hold 8-bit bytes: the label says nothing of them.
    if matches!(charset.as_str(), "us-ascii" | "ascii" | "ansi_x3.4-1968") {
        charset.clear();
    }
    let Some(bytes) = body_bytes(message, part) else {
        return Some(decoded.to_owned());
    };
    match String::from_utf8(bytes) {
        // Legacy text is almost never valid UTF-8 with multi-byte
        // sequences in it, so such bytes under a legacy label are UTF-8.
        Ok(text) if !charset.is_empty() => {
            warnings.push(format!(
                "declared charset {charset} did not fit: read as UTF-8"
            ));
            Some(text)
        }
        Ok(text) => Some(text),
        Err(e) if charset.is_empty() => match guess_legacy(e.as_bytes()) {
            Some((name, text)) => {
                warnings.push(format!("undeclared 8-bit text read as {name}"));
                Some(text)
            }
            None => Some(decoded.to_owned()),
        },
        Err(_) => Some(decoded.to_owned()),
    }
}

/// UTF-16 and UTF-32 labels: their bytes are never UTF-8 text.
fn is_wide_unicode(charset: &str) -> bool {
    [
        "utf-16", "utf16", "utf-32", "utf32", "ucs-2", "ucs2", "ucs-4",
    ]
    .iter()
    .any(|w| charset.starts_with(w))
}

/// The part's body bytes with the transfer encoding undone.
fn body_bytes(message: &Message<'_>, part: &mail_parser::MessagePart<'_>) -> Option<Vec<u8>> {
    let raw = message.raw_message();
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    let body = raw.get(start..end.min(raw.len()))?;
    let encoding = part
        .headers
        .iter()
        .find(|h| {
            h.name
                .as_str()
                .eq_ignore_ascii_case("content-transfer-encoding")
        })
        .and_then(|h| h.value.as_text())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "base64" => mail_parser::decoders::base64::base64_decode(body),
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        _ => Some(body.to_vec()),
    }
}

/// The common legacy charsets, each with whether it is a Latin-script
/// table and the languages written in it.
/// Multi-byte ones come first: their decoders reject most foreign bytes,
/// where a single-byte table reads anything.
const LEGACY: &[(&str, bool, &[whatlang::Lang])] = {
    use whatlang::Lang::*;
    &[
        ("shift_jis", false, &[Jpn]),
        ("euc-jp", false, &[Jpn]),
        ("gbk", false, &[Cmn]),
        ("big5", false, &[Cmn]),
        ("euc-kr", false, &[Kor]),
        ("windows-1251", false, &[Rus, Ukr, Bel, Bul, Srp, Mkd]),
        // whatlang tells the Cyrillic languages apart poorly (short Russian
        // reads as Bulgarian); the case test in `plausible` is what tells
        // KOI8-R from windows-1251.
        ("koi8-r", false, &[Rus, Ukr, Bel, Bul, Srp, Mkd]),
        (
            "windows-1252",
            true,
            &[Eng, Spa, Por, Fra, Deu, Ita, Nld, Swe, Dan, Nob, Fin, Cat],
        ),
        ("iso-8859-2", true, &[Pol, Ces, Slk, Hun, Hrv, Slv, Ron]),
        ("iso-8859-7", false, &[Ell]),
    ]
};

/// Fewer letters than this tell no language apart: the lossy text stays.
const MIN_GUESS_LETTERS: usize = 12;

/// Most of a Latin-script text's letters are plain ASCII; a Russian text
/// read in a Latin table is all accented letters.
const MAX_ACCENTED_SHARE: f64 = 0.4;

/// Whether a reading looks like text at all: its non-ASCII characters are
/// letters or the punctuation people type (a wrong table turns letters
/// into `˙`, `¸`, `§`), there are enough letters to judge, the non-ASCII
/// letters are not mostly capitals, and in a Latin charset most letters
/// are ASCII.
fn plausible(text: &str, latin: bool) -> bool {
    const PUNCT: &str = "¿¡«»–—…“”„‘’€°·•№、。「」『』・ー！？，．：；（）";
    let (mut letters, mut accented, mut odd) = (0usize, 0usize, 0usize);
    let (mut upper, mut lower) = (0usize, 0usize);
    for c in text.chars() {
        if c.is_alphabetic() {
            letters += 1;
            accented += usize::from(!c.is_ascii());
            upper += usize::from(!c.is_ascii() && c.is_uppercase());
            lower += usize::from(!c.is_ascii() && c.is_lowercase());
        } else if !c.is_ascii() && !c.is_whitespace() && !PUNCT.contains(c) {
            odd += 1;
        }
    }
    let share = |n: usize| n as f64 / letters.max(1) as f64;
    // Prose is mostly lower case: a sibling table (KOI8-R read as
    // windows-1251) swaps the cases and reads as capitals.
    letters >= MIN_GUESS_LETTERS
        && odd * 20 <= accented.max(1)
        && upper <= lower.max(3)
        && vowels_plausible(text)
        && !(latin && share(accented) > MAX_ACCENTED_SHARE)
}

/// Vowels of the alphabets whose legacy tables are confused with each
/// other (Latin, Cyrillic, Greek), accented forms included.
const VOWELS: &str = "aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿąęěőűůœаеёиоуыэюяіїєαεηιουωάέήίόύώϊϋΐΰ";

/// Fewest alphabetic letters over which the vowel share is judged.
const MIN_VOWEL_LETTERS: usize = 20;

/// Whether the share of vowels among the letters is one a language has:
/// every written language of these alphabets has about a third to a half,
/// while a text read in the wrong table (Greek as windows-1251) turns its
/// vowels into consonants. Scripts without such vowels (CJK) pass.
fn vowels_plausible(text: &str) -> bool {
    let (mut letters, mut vowels) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        let c = c.to_lowercase().next().unwrap_or(c);
        let alphabetic_script =
            c.is_ascii() || matches!(c as u32, 0x00c0..=0x024f | 0x0370..=0x03ff | 0x0400..=0x04ff);
        if alphabetic_script {
            letters += 1;
            vowels += usize::from(VOWELS.contains(c));
        }
    }
    if letters < MIN_VOWEL_LETTERS {
        return true;
    }
    let share = vowels as f64 / letters as f64;
    (0.28..=0.7).contains(&share)
}

/// Undeclared 8-bit text: the legacy charset whose reading is most
/// confidently a language written in it, with that reading. A reading
/// with undecodable bytes is out; so is every reading when none is a
/// language of its charset (the caller keeps the lossy text).
fn guess_legacy(bytes: &[u8]) -> Option<(&'static str, String)> {
    let mut best: Option<(f64, &'static str, String)> = None;
    for &(name, latin, langs) in LEGACY {
        let Some(decode) = mail_parser::decoders::charsets::map::charset_decoder(name.as_bytes())
        else {
            continue;
        };
        let text = decode(bytes);
        if text.contains('\u{fffd}') {
            continue;
        }
        if !plausible(&text, latin) {
            continue;
        }
        let Some(info) = whatlang::detect(&text) else {
            continue;
        };
        if !langs.contains(&info.lang()) {
            continue;
        }
        if best.as_ref().is_none_or(|(c, _, _)| info.confidence() > *c) {
            best = Some((info.confidence(), name, text));
        }
    }
    best.map(|(_, name, text)| (name, text))
}

fn unparseable(size: usize, hash: String) -> Inbound {
    Inbound {
        message_id: synthesized_id(&hash),
        message_id_synthesized: true,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        from: None,
        reply_to: None,
        sender: None,
        to: Vec::new(),
        cc: Vec::new(),
        subject: String::new(),
        date: None,
        text: String::new(),
        html: None,
        html_only: false,
        headers: Vec::new(),
        content_type: String::new(),
        report: None,
        size,
        content_hash: hash,
        warnings: vec!["not a parseable message".into()],
    }
}

fn synthesized_id(hash: &str) -> String {
    format!("{}@synthesized.recoverydesk.invalid", &hash[..32])
}

fn from_message(message: &Message<'_>, size: usize, hash: String) -> Inbound {
    let mut warnings = Vec::new();
    let (message_id, message_id_synthesized) = match message.message_id().map(clean_id) {
        Some(id) if !id.is_empty() => (id, false),
        _ => {
            warnings.push("no Message-ID; synthesised from the content hash".into());
            (synthesized_id(&hash), true)
        }
    };
    let from = first_mailbox(message.from());
    if from.is_none() {
        warnings.push("no usable From address".into());
    }
    let text_plain = message
        .text_bodies()
        .find(|p| matches!(p.body, PartType::Text(_)))
        .and_then(|p| part_text(message, p, &mut warnings));
    let html = message
        .html_bodies()
        .find(|p| matches!(p.body, PartType::Html(_)))
        .and_then(|p| part_text(message, p, &mut warnings))
        .map(|h| truncate_chars(&h, MAX_TEXT_CHARS));
    let html_only = text_plain.is_none() && html.is_some();
    let text = match (&text_plain, &html) {
        (Some(t), _) => truncate_chars(t, MAX_TEXT_CHARS),
        (None, Some(h)) => truncate_chars(
            &mail_parser::decoders::html::html_to_text(h),
            MAX_TEXT_CHARS,
        ),
        (None, None) => String::new(),
    };
    if message.parts.iter().any(|p| p.is_encoding_problem) {
        warnings.push("a part could not be decoded".into());
    }
    let content_type = message
        .root_part()
        .content_type()
        .map(content_type_string)
        .unwrap_or_default();
    Inbound {
        message_id,
        message_id_synthesized,
        in_reply_to: id_list(message.in_reply_to()),
        references: id_list(message.references()),
        from,
        reply_to: first_mailbox(message.reply_to()),
        sender: first_mailbox(message.sender()),
        to: all_mailboxes(message.to()),
        cc: all_mailboxes(message.cc()),
        subject: crate::domain::header_safe(message.subject().unwrap_or("")),
        date: message.date().map(|d| d.to_timestamp()),
        text,
        html,
        html_only,
        headers: header_pairs(message),
        report: report_parts(message, &content_type),
        content_type,
        size,
        content_hash: hash,
        warnings,
    }
}

fn clean_id(id: &str) -> String {
    crate::domain::header_safe(id.trim().trim_start_matches('<').trim_end_matches('>'))
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    ids.into_iter()
        .filter(|id| !id.is_empty())
        .take(100)
        .collect()
}

fn to_mailbox(name: Option<&str>, address: Option<&str>) -> Option<Mailbox> {
    let address = EmailAddress::parse(address?)?;
    let name = name
        .map(crate::domain::header_safe)
        .filter(|n| !n.is_empty());
    Some(Mailbox { name, address })
}

fn all_mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| to_mailbox(addr.name(), addr.address()))
                .take(100)
                .collect()
        })
        .unwrap_or_default()
}

fn first_mailbox(address: Option<&Address<'_>>) -> Option<Mailbox> {
    all_mailboxes(address).into_iter().next()
}

fn content_type_string(ct: &mail_parser::ContentType<'_>) -> String {
    match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    }
}

fn header_pairs(message: &Message<'_>) -> Vec<(String, String)> {
    message
        .root_part()
        .headers
        .iter()
        .take(MAX_HEADERS)
        .map(|h| {
            let raw = &message.raw_message[(h.offset_start as usize).min(message.raw_message.len())
                ..(h.offset_end as usize).min(message.raw_message.len())];
            let value = match h.value() {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(list) => list.join(", "),
                _ => unfold(&String::from_utf8_lossy(raw)),
            };
            (
                h.name().to_ascii_lowercase(),
                truncate_chars(&value, MAX_HEADER_CHARS),
            )
        })
        .collect()
}

fn unfold(raw: &str) -> String {
    raw.split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn report_parts(message: &Message<'_>, content_type: &str) -> Option<Report> {
    let is_status = |part: &mail_parser::MessagePart<'_>| {
        part.content_type()
            .map(content_type_string)
            .is_some_and(|ct| {
                ct == "message/delivery-status" || ct == "message/global-delivery-status"
            })
    };
    let nested = content_type != "multipart/report";
    if nested
        && !(content_type.starts_with("multipart/") && message.parts.iter().skip(1).any(is_status))
    {
        return None;
    }
    let report_type = message
        .root_part()
        .content_type()
        .and_then(|ct| ct.attribute("report-type"))
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut report = Report {
        report_type: if nested { String::new() } else { report_type },
        nested,
        ..Report::default()
    };
    for part in message.parts.iter().skip(1) {
        let ct = part
            .content_type()
            .map(content_type_string)
            .unwrap_or_default();
        let body_text = || match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            PartType::Message(m) => String::from_utf8_lossy(
                &m.raw_message[..(m.root_part().offset_body as usize).min(m.raw_message.len())],
            )
            .into_owned(),
            PartType::Multipart(_) => String::new(),
        };
        match ct.as_str() {
            "message/delivery-status"
            | "message/global-delivery-status"
            | "message/disposition-notification"
            | "message/feedback-report" => {
                report.status = truncate_chars(&body_text(), MAX_TEXT_CHARS)
            }
            "message/rfc822"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/global"
            | "message/global-headers"
                if report.original_headers.is_empty() =>
            {
                report.original_headers = truncate_chars(&body_text(), MAX_TEXT_CHARS)
            }
            _ => {}
        }
    }
    Some(report)
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => text[..idx].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message_yields_addresses_ids_and_text() {
        let raw = b"From: Jo Doe <Jo@Example.org>\r\nTo: support@pypi.test\r\nSubject: Lost 2FA\r\nMessage-ID: <abc@x>\r\nIn-Reply-To: <p@x>\r\nReferences: <o@x> <p@x>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nHello, my username is jodoe.\r\n";
        let m = parse(raw);
        assert_eq!(m.message_id, "abc@x");
        assert_eq!(m.from_address().unwrap().as_str(), "jo@example.org");
        assert_eq!(m.in_reply_to, vec!["p@x"]);
        assert_eq!(m.references, vec!["o@x", "p@x"]);
        assert_eq!(m.thread_keys(), vec!["p@x", "o@x"]);
        assert!(m.text.contains("username is jodoe"));
        assert_eq!(m.subject, "Lost 2FA");
        assert!(m.date.is_some());
    }

    #[test]
    fn missing_message_id_is_synthesised_from_content() {
        let m = parse(b"From: a@b.org\r\n\r\nhi\r\n");
        assert!(m.message_id_synthesized);
        assert!(m.message_id.ends_with("@synthesized.recoverydesk.invalid"));
        assert_eq!(
            m.message_id,
            parse(b"From: a@b.org\r\n\r\nhi\r\n").message_id
        );
    }

    #[test]
    fn random_bytes_do_not_panic_and_are_flagged() {
        let m = parse(&[0xff, 0x00, 0x13, 0x37, b'\n', b'\n', 0xfe]);
        assert!(m.from.is_none());
        assert!(!m.warnings.is_empty());
    }

    #[test]
    fn cr_only_line_endings_are_read_like_crlf() {
        let m =
            parse(b"From: jo@example.org\rSubject: hi\rMessage-ID: <cr@x>\r\rUsername: jodoe\r");
        assert_eq!(m.from_address().unwrap().as_str(), "jo@example.org");
        assert_eq!(m.message_id, "cr@x");
        assert!(m.text.contains("jodoe"));
    }

    #[test]
    fn html_only_mail_is_rendered_to_text() {
        let raw =
            b"From: a@b.org\r\nContent-Type: text/html\r\n\r\n<p>My username is <b>jodoe</b></p>";
        let m = parse(raw);
        assert!(m.html_only);
        assert!(m.text.contains("jodoe"), "{}", m.text);
    }

    #[test]
    fn utf8_declared_as_big5_is_read_as_utf8() {
        let text = "你好，我丢失了手机，用户名是 jodoe。";
        for (cte, body) in [
            ("8bit", text.to_string()),
            (
                "base64",
                "5L2g5aW977yM5oiR5Lii5aSx5LqG5omL5py677yM55So5oi35ZCN5pivIGpvZG9l44CC".to_string(),
            ),
        ] {
            let raw = format!("From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=Big5\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n");
            let m = parse(raw.as_bytes());
            assert_eq!(m.text.trim(), text, "{cte}");
            assert!(
                m.warnings.iter().any(|w| w.contains("big5")),
                "{:?}",
                m.warnings
            );
        }
        // Real Big5 stays Big5.
        let big5: &[u8] = b"\xa7\x41\xa6\x6e";
        let mut raw =
            b"From: a@example.org\r\nContent-Type: text/plain; charset=Big5\r\n\r\n".to_vec();
        raw.extend_from_slice(big5);
        assert_eq!(parse(&raw).text.trim(), "你好");
    }

    #[test]
    fn undeclared_legacy_text_is_read_in_its_languages_charset() {
        let cases: [(&[u8], &str, &str); 3] = [
            (
                b"\xc7\xe4\xf0\xe0\xe2\xf1\xf2\xe2\xf3\xe9\xf2\xe5, \xff \xef\xee\xf2\xe5\xf0\xff\xeb \xf2\xe5\xeb\xe5\xf4\xee\xed \xf1 \xef\xf0\xe8\xeb\xee\xe6\xe5\xed\xe8\xe5\xec \xe8 \xed\xe5 \xec\xee\xe3\xf3 \xe2\xee\xe9\xf2\xe8 \xe2 \xf1\xe2\xee\xe9 \xe0\xea\xea\xe0\xf3\xed\xf2. \xcf\xee\xe6\xe0\xeb\xf3\xe9\xf1\xf2\xe0, \xef\xee\xec\xee\xe3\xe8\xf2\xe5.",
                "windows-1251",
                "я потерял телефон",
            ),
            (
                b"Hola, perd\xed mi tel\xe9fono y no puedo entrar en mi cuenta. \xbfPod\xe9is ayudarme? Gracias por la atenci\xf3n.",
                "windows-1252",
                "perdí mi teléfono",
            ),
            (
                b"\x83X\x83}\x81[\x83g\x83t\x83H\x83\x93\x82\xf0\x95\xb4\x8e\xb8\x82\xb5\x82\xbd\x82\xbd\x82\xdf\x81A\x93\xf1\x92i\x8aK\x94F\x8f\xd8\x82\xaa\x82\xc5\x82\xab\x82\xdc\x82\xb9\x82\xf1\x81B\x83A\x83J\x83E\x83\x93\x83g\x82\xcc\x95\x9c\x8b\x8c\x82\xf0\x82\xa8\x8a\xe8\x82\xa2\x82\xb5\x82\xdc\x82\xb7\x81B",
                "shift_jis",
                "スマートフォンを紛失",
            ),
        ];
        for (body, charset, words) in cases {
            let mut raw = b"From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
            raw.extend_from_slice(body);
            raw.extend_from_slice(b"\r\n");
            let inbound = parse(&raw);
            assert!(inbound.text.contains(words), "{charset}: {}", inbound.text);
            let warning = format!("undeclared 8-bit text read as {charset}");
            assert!(
                inbound.warnings.contains(&warning),
                "{:?}",
                inbound.warnings
            );
        }
        // Bytes no legacy charset reads as a language stay as they were.
        let raw = b"From: a@example.org\r\nContent-Type: text/plain\r\n\r\n\xff\xfe\x80\x81\r\n";
        assert!(!parse(raw)
            .warnings
            .iter()
            .any(|w| w.starts_with("undeclared")));
    }

    #[test]
    fn undeclared_text_in_more_legacy_charsets_is_read_in_its_language() {
        let cases: [(&[u8], &str, &str); 4] = [
            (
                b"Dzie\xf1 dobry, zgubi\xb3em telefon i nie mog\xea si\xea zalogowa\xe6 do swojego konta. Prosz\xea o pomoc.",
                "iso-8859-2",
                "zgubiłem telefon",
            ),
            (
                b"\xc4\xfa\xba\xc3\xa3\xac\xce\xd2\xb5\xc4\xca\xd6\xbb\xfa\xb6\xaa\xc1\xcb\xa3\xac\xce\xde\xb7\xa8\xb5\xc7\xc2\xbc\xce\xd2\xb5\xc4\xd5\xcb\xbb\xa7\xa3\xac\xc7\xeb\xb0\xef\xce\xd2\xbb\xd6\xb8\xb4\xd5\xcb\xbb\xa7\xa1\xa3\xd0\xbb\xd0\xbb\xa1\xa3",
                "gbk",
                "我的手机丢了",
            ),
            (
                b"\xfa\xc4\xd2\xc1\xd7\xd3\xd4\xd7\xd5\xca\xd4\xc5, \xd1 \xd0\xcf\xd4\xc5\xd2\xd1\xcc \xd4\xc5\xcc\xc5\xc6\xcf\xce \xc9 \xce\xc5 \xcd\xcf\xc7\xd5 \xd7\xcf\xca\xd4\xc9 \xd7 \xd3\xd7\xcf\xca \xc1\xcb\xcb\xc1\xd5\xce\xd4. \xf0\xcf\xcd\xcf\xc7\xc9\xd4\xc5, \xd0\xcf\xd6\xc1\xcc\xd5\xca\xd3\xd4\xc1.",
                "koi8-r",
                "я потерял телефон",
            ),
            (
                b"\xc3\xe5\xe9\xe1 \xf3\xe1\xf2, \xdd\xf7\xe1\xf3\xe1 \xf4\xef \xf4\xe7\xeb\xdd\xf6\xf9\xed\xfc \xec\xef\xf5 \xea\xe1\xe9 \xe4\xe5\xed \xec\xf0\xef\xf1\xfe \xed\xe1 \xf3\xf5\xed\xe4\xe5\xe8\xfe \xf3\xf4\xef\xed \xeb\xef\xe3\xe1\xf1\xe9\xe1\xf3\xec\xfc \xec\xef\xf5. \xc5\xf5\xf7\xe1\xf1\xe9\xf3\xf4\xfe.",
                "iso-8859-7",
                "έχασα το τηλέφωνό μου",
            ),
        ];
        for (body, charset, words) in cases {
            // No charset at all, and the us-ascii a client claims for 8-bit
            // text: neither says which table the bytes are in.
            for content_type in ["text/plain", "text/plain; charset=us-ascii"] {
                let mut raw = format!("From: a@example.org\r\nSubject: x\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").into_bytes();
                raw.extend_from_slice(body);
                raw.extend_from_slice(b"\r\n");
                let inbound = parse(&raw);
                assert!(
                    inbound.text.contains(words),
                    "{charset} ({content_type}): {}",
                    inbound.text
                );
            }
        }
    }

    #[test]
    fn utf8_declared_as_a_single_byte_charset_is_read_as_utf8() {
        for (charset, text) in [
            ("iso-8859-1", "Hola, perdí mi teléfono y no puedo entrar."),
            ("windows-1252", "Grüße, ich habe mein Telefon verloren."),
            ("windows-1251", "Здравствуйте, я потерял телефон."),
            ("koi8-r", "Я потерял телефон."),
        ] {
            let raw = format!("From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n");
            let m = parse(raw.as_bytes());
            assert_eq!(m.text.trim(), text, "{charset}");
            assert!(
                m.warnings.iter().any(|w| w.contains(charset)),
                "{:?}",
                m.warnings
            );
        }
        // Real ISO-8859-1 stays ISO-8859-1.
        let mut raw =
            b"From: a@example.org\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n".to_vec();
        raw.extend_from_slice(b"perd\xed mi tel\xe9fono");
        assert_eq!(parse(&raw).text.trim(), "perdí mi teléfono");
    }

    #[test]
    fn delivery_report_parts_are_kept() {
        let raw = b"From: MAILER-DAEMON@x.org\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; jo@example.org\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <sent@rd>\r\n--b--\r\n";
        let m = parse(raw);
        let report = m.report.expect("report");
        assert_eq!(report.report_type, "delivery-status");
        assert!(report.status.contains("jo@example.org"));
        assert!(report.original_headers.contains("sent@rd"));
    }
}
