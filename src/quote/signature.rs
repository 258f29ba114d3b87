//! Signatures and footers under the new text: phone footers, `-- `
//! delimiters, valedictions and name + phone blocks.

use once_cell::sync::Lazy;
use regex::Regex;

use super::is_quoted;

/// A valediction only ends the text when at most this many short lines follow.
const MAX_SIGNATURE_LINES: usize = 4;

/// Footers that phones and webmail append under the new text.
pub(super) static SENT_FROM: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:sent\s+(?:from|via|with|using)\s+\S|get\s+outlook\s+for\s|envoyé\s+(?:de|depuis|à\s+partir\s+de)\s|von\s+meinem\s|gesendet\s+von\s|enviado\s+(?:desde|do|de)\s|inviato\s+da\s|(?:verzonden|verstuurd)\s+(?:met|vanaf|van)\s|inviato\s+dal\s|lähetetty\s|odesláno\s+z\s|sendt\s+fra\s|skickat\s+från\s|wysłane\s+z\s|отправлено\s+(?:с|из)\s|надіслано\s+з\s|发自我的|從我的|iPhoneから送信)")
        .expect("valid regex")
});

/// Signature delimiters: RFC 3676 `-- `, its trimmed form, and underscores.
pub(super) static SIG_DELIM: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^(?:--|__+)\s*$").expect("valid regex"));

/// Closing words that start a signature block.
pub(super) static VALEDICTION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:best|kind|warm|warmest|many)\s+regards|regards|cheers|sincerely|yours\s+sincerely|yours\s+truly|best\s+wishes|thanks\s+(?:and|&)\s+regards|cordialement|bien\s+à\s+vous|mit\s+freundlichen\s+grüßen|viele\s+grüße|beste\s+grüße|saludos(?:\s+cordiales)?|atentamente|atenciosamente|abraços|cordiali\s+saluti|met\s+vriendelijke\s+groet|с\s+уважением|此致|敬礼)\s*[,.!]?\s*$")
        .expect("valid regex")
});

/// True when what follows a valediction looks like a name and a title, not
/// more message.
pub(super) fn short_tail(rest: &[&str]) -> bool {
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
pub(super) static PHONE_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^(?:(?:tel|phone|mobile|mob|cell|fax|office|direct|[tmpfo])\.?\s*[:.]?\s*)?\+?\(?\d[\d\s().\-/]{6,}\d$")
        .expect("valid regex")
});

/// A name line: two to four capitalised words, optionally with a title
/// after a bar or a comma ("Jo Example | Engineer").
pub(super) static NAME_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\p{Lu}[\p{L}'.-]*(?:\s+\p{Lu}[\p{L}'.-]*){1,3}(?:\s*[|,]\s*.{1,50})?$")
        .expect("valid regex")
});

/// Drops a signature written without a `-- ` delimiter: a last paragraph
/// that opens with a name and carries a phone number, every line short and
/// none a sentence ("Jo Example / Engineer, Acme / +1 555 0100 /
/// acme.example"). A phone number is what makes it a signature: a name
/// and a link alone may be a requester's proof of who they are.
pub(super) fn drop_signature_block(lines: &mut Vec<&str>) {
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
