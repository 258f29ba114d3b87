//! The copy of a message the store keeps: the raw message with secrets
//! redacted in every header a person writes and in every text part.
//!
//! The acknowledgement tells the requester we removed what they posted by
//! mistake from our copy; this makes it true. The content hash that
//! de-duplicates mail is taken from the original bytes before this runs,
//! so a re-fetched message is still recognised.
//!
//! Only what is redacted changes: a text part with a secret is written back
//! as UTF-8 in base64 (its own charset and transfer encoding cannot be kept
//! for text that changed), a header with one gets the redacted value (RFC
//! 2047-encoded when it is not ASCII), and everything else, attachments
//! included, stays byte for byte. A binary part cannot be redacted; a
//! forwarded message (`message/rfc822`) is redacted like the message itself.
//!
//! Pure; never panics on input (the caller also catches mail-parser's
//! own panics on hostile MIME).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mail_parser::{Encoding, HeaderName, HeaderValue, MessageParser, MessagePart, PartType};

use crate::secrets::{self, SecretKind};

/// A redacted copy of a raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The bytes to store.
    pub bytes: Vec<u8>,
    /// The kinds of secret removed, no repeats.
    pub found: Vec<SecretKind>,
}

/// Headers written by machines along the way (ids, trace, signatures,
/// MIME structure): a hex id there is not a recovery code, and changing
/// them would only break the copy.
fn machine_written(name: &HeaderName<'_>) -> bool {
    matches!(
        name,
        HeaderName::MessageId
            | HeaderName::InReplyTo
            | HeaderName::References
            | HeaderName::Received
            | HeaderName::ReturnPath
            | HeaderName::Date
            | HeaderName::ContentType
            | HeaderName::ContentTransferEncoding
            | HeaderName::ContentId
            | HeaderName::ContentDisposition
            | HeaderName::MimeVersion
            | HeaderName::ResentMessageId
            | HeaderName::ResentDate
    ) || {
        let lower = name.as_str().to_ascii_lowercase();
        lower.starts_with("arc-")
            || matches!(
                lower.as_str(),
                "dkim-signature"
                    | "authentication-results"
                    | "received-spf"
                    | "x-google-dkim-signature"
                    | "x-gm-message-state"
                    | "x-google-smtp-source"
                    | "x-received"
                    | "delivered-to"
                    | "x-original-to"
            )
    }
}

/// The redacted copy, or `None` when the message holds no secret (keep the
/// original bytes then).
pub fn redact_raw(raw: &[u8]) -> Option<Kept> {
    let mut found = Vec::new();
    let bytes = redact_message(raw, &mut found, 0)?;
    Some(Kept { bytes, found })
}

/// [`redact_raw`] and the message's attachments (which the copy kept at
/// rest leaves as they are) from one parse.
pub fn redact_and_list(raw: &[u8]) -> (Option<Kept>, Vec<crate::attachments::Listed>) {
    let Some(message) = MessageParser::default().parse(raw) else {
        return (redact_raw(raw), Vec::new());
    };
    let listed = crate::attachments::list_parsed(&message);
    let mut found = Vec::new();
    let edits = edits_of(raw, &message, &mut found, 0);
    // The parse holds a decoded copy of every text part: gone before the
    // redacted copy is put together.
    drop(message);
    let kept = (!edits.is_empty()).then(|| Kept {
        bytes: apply(raw, edits),
        found,
    });
    (kept, listed)
}

/// Forwarded messages inside forwarded messages are followed this deep.
const MAX_DEPTH: usize = 4;

/// One replacement of `raw[start..end]`.
struct Edit {
    start: usize,
    end: usize,
    with: Vec<u8>,
}

fn redact_message(raw: &[u8], found: &mut Vec<SecretKind>, depth: usize) -> Option<Vec<u8>> {
    let Some(message) = MessageParser::default().parse(raw) else {
        // Not a message at all: redact it as text when it is text.
        let text = std::str::from_utf8(raw).ok()?;
        let redacted = secrets::redact_found(text)?;
        note(found, &redacted.found);
        return (redacted.text != text).then(|| redacted.text.into_bytes());
    };
    let edits = edits_of(raw, &message, found, depth);
    drop(message);
    (!edits.is_empty()).then(|| apply(raw, edits))
}

/// The replacements that take the secrets out of a parsed message.
fn edits_of(
    raw: &[u8],
    message: &mail_parser::Message<'_>,
    found: &mut Vec<SecretKind>,
    depth: usize,
) -> Vec<Edit> {
    let mut edits = Vec::new();
    if let Some(root) = message.parts.first() {
        header_edits(raw, root, found, &mut edits);
    }
    for part in &message.parts {
        part_edits(raw, part, found, depth, &mut edits);
    }
    edits
}

fn note(found: &mut Vec<SecretKind>, kinds: &[SecretKind]) {
    for kind in kinds {
        if !found.contains(kind) {
            found.push(*kind);
        }
    }
}

/// Redacts the values of the person-written headers of the message.
fn header_edits(
    raw: &[u8],
    root: &MessagePart<'_>,
    found: &mut Vec<SecretKind>,
    edits: &mut Vec<Edit>,
) {
    for header in &root.headers {
        if machine_written(&header.name) {
            continue;
        }
        let (start, end) = (header.offset_start as usize, header.offset_end as usize);
        let Some(value) = raw.get(start..end) else {
            continue;
        };
        let value = String::from_utf8_lossy(value);
        let eol = line_end(&value);
        // Encoded words hide their text: judge the decoded value then.
        let decoded = match &header.value {
            HeaderValue::Text(text) if value.contains("=?") => Some(text.as_ref()),
            _ => None,
        };
        let Some(plain) = secrets::redact_found(decoded.unwrap_or(&value)) else {
            continue;
        };
        note(found, &plain.found);
        let with = match decoded {
            Some(_) => format!(" {}{eol}", encode_word(plain.text.trim())),
            None => plain.text,
        };
        edits.push(Edit {
            start,
            end,
            with: with.into_bytes(),
        });
    }
}

/// The line ending a header value's bytes end with.
fn line_end(value: &str) -> &'static str {
    if value.ends_with("\r\n") {
        "\r\n"
    } else if value.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// An RFC 2047 encoded word for a non-ASCII value (ASCII stays as it is).
fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    format!("=?utf-8?b?{}?=", STANDARD.encode(text.as_bytes()))
}

/// Redacts one part: a text part is rewritten, a forwarded message is
/// redacted in turn, anything else is left alone.
fn part_edits(
    raw: &[u8],
    part: &MessagePart<'_>,
    found: &mut Vec<SecretKind>,
    depth: usize,
    edits: &mut Vec<Edit>,
) {
    let (body_start, body_end) = (part.offset_body as usize, part.offset_end as usize);
    let Some(body) = raw.get(body_start..body_end) else {
        return;
    };
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => {
            let Some(redacted) = secrets::redact_found(text) else {
                return;
            };
            note(found, &redacted.found);
            let html = matches!(part.body, PartType::Html(_));
            rewrite_text_part(part, body, &redacted.text, html, edits);
        }
        PartType::Message(_) if part.encoding == Encoding::None && depth < MAX_DEPTH => {
            if let Some(inner) = redact_message(body, found, depth + 1) {
                edits.push(Edit {
                    start: body_start,
                    end: body_end,
                    with: inner,
                });
            }
        }
        _ => {}
    }
}

/// Replaces a text part's body with base64 UTF-8 and its Content-Type and
/// Content-Transfer-Encoding headers with ones that say so.
fn rewrite_text_part(
    part: &MessagePart<'_>,
    body: &[u8],
    text: &str,
    html: bool,
    edits: &mut Vec<Edit>,
) {
    for header in &part.headers {
        if matches!(
            header.name,
            HeaderName::ContentType | HeaderName::ContentTransferEncoding
        ) {
            edits.push(Edit {
                start: header.offset_field as usize,
                end: header.offset_end as usize,
                with: Vec::new(),
            });
        }
    }
    let subtype = if html { "html" } else { "plain" };
    let start = part.offset_header as usize;
    edits.push(Edit {
        start,
        end: start,
        with: format!(
            "Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        )
        .into_bytes(),
    });
    // 57 bytes make one 76-character line: encoded line by line straight
    // into the replacement, with no whole encoded copy beside it.
    let lines = text.len().div_ceil(57);
    let mut with = String::with_capacity(lines * 78 + 2);
    for (i, chunk) in text.as_bytes().chunks(57).enumerate() {
        if i > 0 {
            with.push_str("\r\n");
        }
        STANDARD.encode_string(chunk, &mut with);
    }
    let mut with = with.into_bytes();
    // The line break before a boundary belongs to the boundary: keep the
    // body's own ending as it was.
    if body.ends_with(b"\n") {
        with.extend_from_slice(b"\r\n");
    }
    edits.push(Edit {
        start: part.offset_body as usize,
        end: part.offset_body as usize + body.len(),
        with,
    });
}

/// Applies non-overlapping edits; an edit overlapping an earlier one is
/// dropped rather than corrupting the copy.
fn apply(raw: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    // Insertions (empty ranges) go before a replacement starting there.
    edits.sort_by_key(|e| (e.start, e.end));
    // Sized for the result: a base64 part is a third larger than the text
    // it replaces, and growing past `raw.len()` doubled a 10 MB buffer.
    let grown: usize = edits.iter().map(|e| e.with.len()).sum();
    let mut out = Vec::with_capacity(raw.len() + grown);
    let mut at = 0usize;
    for edit in edits {
        if edit.start < at || edit.end > raw.len() || edit.start > edit.end {
            continue;
        }
        out.extend_from_slice(&raw[at..edit.start]);
        out.extend_from_slice(&edit.with);
        at = edit.end;
    }
    out.extend_from_slice(&raw[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "pypi-AgEIcHlwaS5vcmcCJGI4ZTU5ZmJhLWY0NmUtNDVkYy04NjY2";

    fn reparse(bytes: &[u8]) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(bytes)
            .expect("still a message")
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[test]
    fn a_message_without_secrets_is_kept_as_it_came() {
        let raw = b"From: jo@example.org\r\nSubject: lost my phone\r\nMessage-ID: <0123456789abcdef@example.org>\r\n\r\nHello, my username is jo.\r\n";
        assert_eq!(redact_raw(raw), None);
    }

    #[test]
    fn a_plain_message_loses_the_token_in_subject_and_body_and_keeps_the_rest() {
        let raw = format!(
            "From: Jo <jo@example.org>\r\nSubject: my token {TOKEN}\r\nMessage-ID: <a@example.org>\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHere it is: {TOKEN}\r\nGr=FC=DFe\r\n"
        );
        let kept = redact_raw(raw.as_bytes()).expect("redacted");
        assert_eq!(kept.found, vec![SecretKind::ApiToken]);
        assert!(!contains(&kept.bytes, TOKEN));
        let again = reparse(&kept.bytes);
        assert_eq!(again.subject(), Some("my token [redacted api_token]"));
        let text = again.body_text(0).unwrap();
        assert!(text.contains("Here it is: [redacted api_token]"), "{text}");
        assert!(
            text.contains("Grüße"),
            "the charset is carried over: {text}"
        );
        assert_eq!(again.message_id(), Some("a@example.org"));
        assert_eq!(
            again.from().unwrap().first().unwrap().address(),
            Some("jo@example.org")
        );
    }

    #[test]
    fn base64_parts_and_encoded_subjects_are_redacted_too() {
        let body = STANDARD.encode(format!("<p>token {TOKEN}</p>"));
        let subject = STANDARD.encode(format!("Zugang verloren – {TOKEN}"));
        let raw = format!(
            "From: jo@example.org\r\nSubject: =?utf-8?b?{subject}?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain {TOKEN}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgc=\r\n--b1--\r\n"
        );
        let kept = redact_raw(raw.as_bytes()).expect("redacted");
        let again = reparse(&kept.bytes);
        assert_eq!(
            again.subject(),
            Some("Zugang verloren – [redacted api_token]")
        );
        assert!(again
            .body_text(0)
            .unwrap()
            .contains("plain [redacted api_token]"));
        let html = again.body_html(0).unwrap();
        assert!(html.contains("token [redacted api_token]"), "{html}");
        assert!(!html.contains(TOKEN));
        // The attachment is untouched.
        assert!(contains(&kept.bytes, "AAECAwQFBgc="));
        // No secret survives in any encoding.
        let all = String::from_utf8_lossy(&kept.bytes).to_string();
        assert!(!all.contains(TOKEN));
        assert!(!all.contains(&body));
        assert!(!all.contains(&subject));
    }

    #[test]
    fn a_forwarded_message_is_redacted_inside() {
        let raw = "From: jo@example.org\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: jo@example.org\r\nSubject: old\r\n\r\nmy password is Hunter2hunter\r\n--b--\r\n";
        let kept = redact_raw(raw.as_bytes()).expect("redacted");
        assert!(!contains(&kept.bytes, "Hunter2hunter"));
        assert_eq!(kept.found, vec![SecretKind::Password]);
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            &b""[..],
            b"\xff\xfe\x00",
            b"Subject: =?utf-8?b?!!!?=\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--",
        ] {
            assert_eq!(redact_raw(raw), None, "nothing secret in {raw:?}");
        }
        let text = format!("no headers at all, just {TOKEN}\r\n");
        let kept = redact_raw(text.as_bytes()).expect("redacted");
        assert!(!contains(&kept.bytes, TOKEN));
    }
}
