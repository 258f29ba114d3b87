//! Signatures and footers under the new text: phone footers, `-- `
//! delimiters and signature cards (name, title, phone, links) with or
//! without the closing words above them, which are kept.

use once_cell::sync::Lazy;
use regex::Regex;

use super::is_quoted;

/// Footers that phones and webmail append under the new text, opening with
/// their verb ("Sent from my …", "Envoyé de mon …").
static SENT_FROM: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:sent\s+(?:from|via|with|using)\s+\S|get\s+outlook\s+for\s|envoyé\s+(?:de|depuis|à\s+partir\s+de)\s|von\s+meinem\s|gesendet\s+(?:von|vom|mit|aus)\s|enviado\s+(?:desde|do|de|con)\s|inviato\s+da\s|(?:verzonden|verstuurd)\s+(?:met|vanaf|van)\s|inviato\s+dal\s|lähetetty\s|odesláno\s+z\s|sendt\s+(?:fra|från)\s|skickat\s+från\s|wysłane\s+z\s|wysłano\s+z\s|отправлено\s+(?:с|из)\s|надіслано\s+з\s|(?:được\s+)?gửi\s+từ\s|elküldve\s|στάλθηκε\s+από\s|发自我的|從我的|iPhoneから送信)")
        .expect("valid regex")
});

/// Footers that put the verb last ("Von meinem iPhone gesendet",
/// "iPhone'umdan gönderildi", "iPhone에서 보냄"): a short line that opens
/// with "from my"/"with" or with the device itself and ends in a verb of
/// sending, so "Ich habe die Mail gesendet." stays a sentence.
static SENT_LAST: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:von|vom|mit|met|van|vanaf|da|de|desde|depuis|från|fra|z|с|з)\s|iphone|ipad|android|galaxy|samsung|huawei|xiaomi|pixel|blackberry|outlook)\S*.{0,60}?(?:gesendet|gönderildi|verzonden|verstuurd|envoyé|enviado|inviato|送信|보냄)\s*\.?\s*$")
        .expect("valid regex")
});

/// A device or a mail app, as such footers name them.
static DEVICE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)iphone|ipad|android|galaxy|samsung|huawei|xiaomi|pixel|blackberry|smartphone|handy|mobil|telefon|outlook|\bapp\b|\bmail\b")
        .expect("valid regex")
});

/// A phone or webmail footer line.
pub(super) fn is_footer(line: &str) -> bool {
    SENT_FROM.is_match(line)
        || (line.split_whitespace().count() <= 8
            && SENT_LAST.is_match(line)
            && DEVICE.is_match(line))
}

/// Signature delimiters: RFC 3676 `-- `, its trimmed form, and underscores.
pub(super) static SIG_DELIM: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^(?:--|__+)\s*$").expect("valid regex"));

/// Closing words above a signature card: the sender's, so kept.
static VALEDICTION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:best|kind|warm|warmest|many)\s+regards|regards|cheers|sincerely|yours\s+sincerely|yours\s+truly|best\s+wishes|thanks\s+(?:and|&)\s+regards|cordialement|bien\s+à\s+vous|mit\s+freundlichen\s+grüßen|viele\s+grüße|beste\s+grüße|saludos(?:\s+cordiales)?|atentamente|atenciosamente|abraços|cordiali\s+saluti|met\s+vriendelijke\s+groet|с\s+уважением|此致|敬礼)\s*[,.!]?\s*$")
        .expect("valid regex")
});

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

/// A title or company line of a card: capitalised words, no digits, no
/// sentence ("Head of Platform, Acme", "CTO | Example Ltd").
static TITLE_LINE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\p{Lu}[\p{L}&'’.,|/ -]{1,59}$").expect("valid regex"));

/// A link or an address on a line of its own.
static CONTACT_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^(?:(?:web|www|email|e-mail|mail|w|e)\s*[:.]\s*)?(?:https?://\S+|www\.\S+|[^\s@]+@[^\s@]+\.\w+)$")
        .expect("valid regex")
});

/// Drops a signature written without a `-- ` delimiter: a last paragraph
/// that opens with a name, every line short and none a sentence, and that
/// carries a phone number, or a title and a link or address
/// ("Jo Example / Engineer, Acme / +1 555 0100 / acme.example"). A name
/// and a link alone stay: they may be a requester's proof of who they
/// are. Closing words above the card ("Kind regards,") are kept.
pub(super) fn drop_signature_block(lines: &mut Vec<&str>) {
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |p| p + 1);
    let mut start = lines[..end]
        .iter()
        .rposition(|l| l.trim().is_empty())
        .map_or(0, |p| p + 1);
    if lines.get(start).is_some_and(|l| VALEDICTION.is_match(l)) {
        start += 1;
    }
    let above_written = lines[..start].iter().any(|l| !l.trim().is_empty());
    if above_written && start < end && is_card(&lines[start..end]) {
        lines.truncate(start);
    }
}

/// True when the lines are a signature card.
fn is_card(card: &[&str]) -> bool {
    let card: Vec<&str> = card.iter().map(|l| l.trim()).collect();
    let phone = card.iter().any(|l| PHONE_LINE.is_match(l));
    let contact = card[1..].iter().any(|l| CONTACT_LINE.is_match(l));
    let title = card[1..]
        .iter()
        .any(|l| TITLE_LINE.is_match(l) && !CONTACT_LINE.is_match(l));
    (2..=6).contains(&card.len())
        && NAME_LINE.is_match(card[0])
        && (phone || (title && contact))
        && card.iter().all(|l| {
            l.chars().count() <= 60 && !l.ends_with(['.', '!', '?', ':', ',']) && !is_quoted(l)
        })
}
