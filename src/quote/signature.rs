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

/// "From my …" in the languages of [`SENT_FROM`]: what a footer that
/// puts its verb elsewhere names its device with.
static FROM_MY: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:from\s+my|von\s+meinem|vom|de\s+mon|depuis\s+mon|desde\s+mi|do\s+meu|dal\s+mio|vanaf\s+mijn|från\s+min|fra\s+min|z\s+mojego|с\s+моего|з\s+мого)\b")
        .expect("valid regex")
});

/// A verb of sending, anywhere in a footer line.
static SEND_VERB: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:sent|gesendet|versendet|envoyé|enviado|inviato|verzonden|verstuurd|skickat|sendt|wysłane|отправлено|надіслано)\b")
        .expect("valid regex")
});

/// A mail app's own advert: the app, a preposition and a platform ("Get
/// Outlook for iOS", "Obtenir Outlook pour Android", "Outlook voor iOS
/// downloaden"), a few words at most.
static APP_FOOTER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\W*(?:\p{L}+\s+){0,3}(?:outlook|bluemail|spark|yahoo\s+mail|aquamail|gmail|proton\s*mail|samsung\s+email|edison\s+mail|mail\.ru|яндекс\.почт\p{L}*)\s+\p{L}{2,5}\s+(?:ios|android|windows|mac|iphone|ipad)\b(?:\s+\p{L}+)?\W*$")
        .expect("valid regex")
});

/// A first word that makes a line a person's sentence, not a footer.
static PERSONAL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\W*(?:i|we|you|my|our|it|ich|wir|je|nous|yo|eu|io|ik|jag|jeg)\b")
        .expect("valid regex")
});

/// A phone or webmail footer line. A line that goes on past the footer
/// with something to say ("Sent from my phone, sorry: my username is …")
/// is the sender's.
pub(super) fn is_footer(line: &str) -> bool {
    let words = line.split_whitespace().count();
    let short = !line.contains(": ") && words <= 12;
    (SENT_FROM.is_match(line) && short)
        || (words <= 8 && SENT_LAST.is_match(line) && DEVICE.is_match(line))
        || (short
            && !PERSONAL.is_match(line)
            && FROM_MY.is_match(line)
            && SEND_VERB.is_match(line)
            && DEVICE.is_match(line))
        || (words <= 7 && !PERSONAL.is_match(line) && APP_FOOTER.is_match(line))
}

/// Signature delimiters: RFC 3676 `-- `, its trimmed form, and underscores.
pub(super) static SIG_DELIM: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^(?:--|__+)\s*$").expect("valid regex"));

/// Closing words above a signature card: the sender's, so kept.
static VALEDICTION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:best|kind|warm|warmest|many)\s+regards|regards|cheers|thanks|thank\s+you|many\s+thanks|best|all\s+the\s+best|take\s+care|danke|vielen\s+dank|merci|gracias|obrigad[oa]|grazie|bedankt|groetjes|tack|hälsningar|mvh|hilsen|pozdrawiam|dzięki|спасибо|liebe\s+grüße|gruß|grüße|un\s+saludo|amicalement|bien\s+cordialement|sincerely|yours\s+sincerely|yours\s+truly|best\s+wishes|thanks\s+(?:and|&)\s+regards|cordialement|bien\s+à\s+vous|mit\s+freundlichen\s+grüßen|viele\s+grüße|beste\s+grüße|saludos(?:\s+cordiales)?|atentamente|atenciosamente|abraços|cordiali\s+saluti|met\s+vriendelijke\s+groet|с\s+уважением|此致|敬礼)\s*[,.!]?\s*$")
        .expect("valid regex")
});

/// A line of telephone numbers, each with or without a short label
/// ("+44 20 7946 0958", "Tél : +33 1 23 45 67 89", "T +44 20 7946 0958 |
/// M +44 7700 900123").
pub(super) static PHONE_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"(?i)^(?:(?:\p{L}{1,10}\.?\s*[:.]?\s*)?\+?\(?\d[\d\s().\-/]{6,}\d(?:\s*[|,/]\s*|\s+)?)+$",
    )
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
    Regex::new(r"(?i)^(?:(?:web|www|email|e-mail|mail|w|e)\s*[:.]\s*)?(?:https?://\S+|www\.\S+|[^\s@]+@[^\s@]+\.\w+|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/?)$")
        .expect("valid regex")
});

/// Drops a signature written without a `-- ` delimiter: a last paragraph
/// that opens with a name, every line short and none a sentence, and that
/// carries a phone number, or a title and a link or address
/// ("Jo Example / Engineer, Acme / +1 555 0100 / acme.example"). A name
/// and a link alone stay: they may be a requester's proof of who they
/// are. Closing words above the card ("Kind regards,") are kept.
pub(super) fn drop_signature_block(lines: &mut Vec<&str>) {
    // A notice may sit under a card, and a card under a rule or closing
    // words: one block goes per round, from the end. Real mail has a few;
    // the bound keeps a hostile body of thousands linear (and unrecursed).
    for _ in 0..MAX_SIGNATURE_BLOCKS {
        if !drop_last_block(lines) {
            break;
        }
    }
}

/// Most blocks (card, notice, footer) one signature is made of.
const MAX_SIGNATURE_BLOCKS: usize = 8;

/// Drops the last block of a signature; true when one went and another
/// may sit above it.
fn drop_last_block(lines: &mut Vec<&str>) -> bool {
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |p| p + 1);
    // A card under a rule goes from the rule, whatever is above it.
    if let Some(rule) = ruled_card(&lines[..end]) {
        lines.truncate(rule);
        return true;
    }
    let paragraph = lines[..end]
        .iter()
        .rposition(|l| l.trim().is_empty())
        .map_or(0, |p| p + 1);
    let mut start = paragraph;
    if lines.get(start).is_some_and(|l| VALEDICTION.is_match(l)) {
        start += 1;
    }
    // Closing words alone are no letter: a card under nothing else is
    // the whole message (a name and a profile link as proof) and stays.
    let above_written = lines[..paragraph].iter().any(|l| !l.trim().is_empty());
    let block = &lines[start..end];
    if above_written && start < end && (is_card(block) || is_disclaimer(block)) {
        lines.truncate(start);
        return !VALEDICTION.is_match(lines[..start].last().copied().unwrap_or(""));
    }
    false
}

/// A rule of dashes, underscores, em dashes or `=` on a line of its own.
static CARD_RULE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\s*[-_=—–~*]{3,}\s*$").expect("valid regex"));

/// Where a card drawn under a rule starts ("Thanks,\nJo\n\n-----\nJoanna
/// Example\nAcme Ltd"): a rule line with written text above it and, to the
/// end, at most six short lines, the first a name and none a sentence. A
/// rule between two parts of a letter ("---\nReason: lost phone") has no
/// name under it and stays.
fn ruled_card(lines: &[&str]) -> Option<usize> {
    let rule = lines.iter().rposition(|l| CARD_RULE.is_match(l))?;
    let below: Vec<&str> = lines[rule + 1..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let written_above = lines[..rule].iter().any(|l| !l.trim().is_empty());
    let card = (1..=6).contains(&below.len())
        && NAME_LINE.is_match(below[0])
        && below
            .iter()
            .all(|l| l.chars().count() <= 60 && !card_sentence(l) && !is_quoted(l));
    // A long rule over a few lines with a link and no "Label: value"
    // detail is a list's or a company's footer.
    let footer = lines[rule].trim().chars().count() >= 10
        && (1..=6).contains(&below.len())
        && below
            .iter()
            .any(|l| l.contains("http") || CONTACT_LINE.is_match(l))
        && below
            .iter()
            .all(|l| l.chars().count() <= 80 && !LABELLED.is_match(l) && !is_quoted(l));
    (written_above && (card || footer)).then_some(rule)
}

/// A "Label: value" detail line ("Username: jodoe"), which a footer does
/// not hold.
static LABELLED: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\p{L}[\p{L} ]{0,30}:\s+\S").expect("valid regex"));

/// A confidentiality notice: a last paragraph that calls the mail
/// confidential and speaks to a recipient it was not meant for.
static DISCLAIMER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?is)(?:confidential|vertraulich|confidentiel|confidencial|riservat|vertrouwelijk|konfidentiell|fortrolig|poufn|конфиденциальн).{0,400}(?:intended|recipient|addressee|empfänger|destinataire|destinatario|geadresseerde|mottagare|modtager|adresat|адресат|получател)|(?:intended|recipient|addressee|empfänger|destinataire|destinatario|geadresseerde).{0,400}(?:confidential|vertraulich|confidentiel|confidencial|riservat|vertrouwelijk)")
        .expect("valid regex")
});

/// True when the lines are a confidentiality notice.
pub(super) fn is_disclaimer(lines: &[&str]) -> bool {
    let text = lines.join(" ");
    text.chars().count() <= 1500 && DISCLAIMER.is_match(&text)
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
        && card
            .iter()
            .all(|l| l.chars().count() <= 60 && !card_sentence(l) && !is_quoted(l))
}

/// A card line that reads as a sentence: ends in `!`, `?`, `:` or `,`, or
/// in a full stop that closes no abbreviation ("Acme Inc." is a card's).
fn card_sentence(line: &str) -> bool {
    if line.ends_with(['!', '?', ':', ',']) {
        return true;
    }
    let Some(rest) = line.strip_suffix('.') else {
        return false;
    };
    let last = rest.rsplit(char::is_whitespace).next().unwrap_or("");
    let abbreviation = last.chars().count() <= 4
        && last.chars().next().is_some_and(char::is_uppercase)
        && line.split_whitespace().count() <= 5;
    !abbreviation
}
