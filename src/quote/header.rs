//! Where quoted history starts: attribution lines ("On … wrote:"),
//! "Original message" separators and header blocks, in many languages.

use once_cell::sync::Lazy;
use regex::Regex;

use super::is_quoted;

/// How many lines a split attribution header ("On …\n… wrote:") may span.
pub(super) const MAX_HEADER_LINES: usize = 4;
/// Attribution headers longer than this are sentences, not headers.
pub(super) const MAX_HEADER_CHARS: usize = 400;

/// Verbs of attribution lines ("X wrote:") in the languages we meet.
pub(super) const WROTE: &str = r"(?:wrote|writes|a\s+écrit|a\s+ecrit|escribió|escribio|escreveu|schrieb|ha\s+scritto|schreef|het\s+volgende\s+geschreven|skrev|kirjoitti|napisał|napisala|napisal|napsal|pisze|написал|написала|написав|пишет|пише|đã\s+viết|scrisse|yazdı|írta|έγραψε|geschrieben|menulis|a\s+scris|napisao|napísal|rašė|rakstīja|kirjutas|va\s+escriure|escribiu|ha\s+escrit)(?:\(\p{L}{1,3}\))?";

/// The same verbs in scripts written without spaces, which follow a date
/// or a name with no word boundary ("下午5:21写道：").
pub(super) const WROTE_CJK: &str = r"写道|寫道|が書きました|のメール|님이\s*작성";

/// An attribution line: a verb of writing, ending the (joined) header with
/// an optional colon or a run of dashes (Zoho "---- On … wrote ----"), or
/// followed by the quoted author and a colon (German, Scandinavian).
pub(super) static ATTRIBUTION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)^(?:>\s*)*(?:-{{2,}}\s*)?\S.{{0,{MAX_HEADER_CHARS}}}?(?:(?:\b|\s|^)(?:{WROTE})|{WROTE_CJK})(?:\s*[:：]|\s*-{{2,}}|\s*$|\s.{{0,200}}[:：]\s*$)\s*(?:-{{2,}})?\s*$"
    ))
    .expect("valid regex")
});

/// Gmail in languages with no verb (Russian, Ukrainian): a date, an
/// address in angle brackets, then a colon ends the line.
pub(super) static ADDRESS_COLON: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"<\s*[^<>\s]+@[^<>\s]+\s*>\s*\)?\s*[:：]\s*$").expect("valid regex"));

/// Gmail's numeric-date attribution without a verb or colon
/// ("2013/7/20 Name <addr>", "2016-03-03 17:21 GMT+01:00 Name <addr>",
/// "3/3/16 Name <addr>": the date in either order).
pub(super) static NUMERIC_DATE_ADDRESS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*(?:\d{4}[/.-]\d{1,2}[/.-]\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})\b.{0,120}<\s*[^<>\s]+@[^<>\s]+\s*>\s*[:：]?\s*$")
        .expect("valid regex")
});

/// Something that dates a header, so "On the other hand …" never counts.
pub(super) static DATE_HINT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\d{1,2}[:.h]\d{2}|\b(?:19|20)\d{2}\b|\d{4}年|@").expect("valid regex")
});

/// The phrases of "Original message" and "Forwarded message" separators.
const SEPARATOR_PHRASES: &str = r"original\s+message|reply\s+message|oprindelig\s+meddelelse|original\s+meddelelse|opprinnelig\s+melding|forwarded\s+message|message\s+d'origine|message\s+original|message\s+transféré|ursprüngliche\s+nachricht|weitergeleitete\s+nachricht|oprindelig\s+besked|videresendt\s+meddelelse|opprinnelig\s+melding|ursprungligt\s+meddelande|alkuperäinen\s+viesti|oorspronkelijk\s+bericht|doorgestuurd\s+bericht|messaggio\s+originale|messaggio\s+inoltrato|mensaje\s+original|mensaje\s+reenviado|mensagem\s+original|mensagem\s+encaminhada|wiadomość\s+oryginalna|původní\s+zpráva|исходное\s+сообщение|оригинално\s+писмо|пересылаемое\s+сообщение|переслане\s+повідомлення|original-nachricht|oryginalna\s+wiadomość|оригінальне\s+повідомлення|eredeti\s+üzenet|orijinal\s+mesaj|thư\s+gốc|αρχικό\s+μήνυμα|pôvodná\s+správa|izvorna\s+poruka|originalmeddelande|原始邮件|原始郵件|原始消息|元のメッセージ|원본\s+메시지|přeposlaná\s+zpráva|przekazana\s+wiadomość|wiadomość\s+przekazana|пересланное\s+сообщение|пересланий\s+лист|vidarebefordrat\s+meddelande|videresendt\s+melding|välitetty\s+viesti|továbbított\s+(?:üzenet|levél)|iletilen\s+ileti|thư\s+đã\s+chuyển\s+tiếp|προωθημένο\s+μήνυμα|转发的邮件|転送されたメッセージ|전달된\s+메(?:시지|일)|original|originalnachricht|původní\s+e-?mail|оригинальное\s+сообщение|исходное\s+письмо|original\s+e-?mail|originale";

/// Separators that open forwarded or original messages: a phrase of
/// [`SEPARATOR_PHRASES`] after a rule of dashes, underscores, `=` or `*`.
pub(super) static SEPARATOR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*\*?\s*(?:-{{2,}}|_{{2,}}|={{2,}}|\*{{2,}})\s*(?:{SEPARATOR_PHRASES})\s*(?:-{{2,}}|_{{2,}}|={{2,}}|\*{{2,}})?\s*\*?\s*$|^\s*(?:begin\s+forwarded\s+message|début\s+du\s+message\s+réexpédié|anfang\s+der\s+weitergeleiteten\s+nachricht|inicio\s+del\s+mensaje\s+reenviado)\s*:\s*$",
    ))
    .expect("valid regex")
});

/// Such a phrase on a line of its own without its rule ("Original
/// Message"), as some clients put it over the header block.
pub(super) static BARE_SEPARATOR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)^[\s*_=-]*(?:{SEPARATOR_PHRASES})[\s*_=-]*:?\s*$"
    ))
    .expect("valid regex")
});

/// The separators among [`SEPARATOR`] that open a forward, not a reply.
pub(super) static FORWARD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)forward|transféré|réexpédié|weitergeleitet|reenviado|encaminhada|inoltrato|doorgestuurd|videresendt|vidarebefordrat|välitetty|továbbított|iletilen|přeposlaná|przekazana|chuyển\s+tiếp|προωθημένο|пересылаемое|пересланное|пересланий|переслане|转发|転送|전달된")
        .expect("valid regex")
});

/// First line of an Outlook-style header block, in many languages.
pub(super) static FROM_FIELD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:from|sender|von|de|da|van|fra|från|od|от(?:\s+кого)?|від|lähettäjä|feladó|gönderen|kimden|từ|από|afzender|avsändare|nadawca|відправник|отправитель|发件人|寄件者|差出人|보낸\s*사람)\*?\s*[:：]")
        .expect("valid regex")
});

/// Other fields of such a block; two of them under a From line make it a
/// header, which keeps "from: our database" in a sentence safe.
pub(super) static OTHER_FIELD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:sent|date|to|cc|subject|message\s+du|sujet|copie\s+à|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|fecha|para|asunto|assunto|data|inviato|oggetto|a|verzonden|aan|onderwerp|sendt|dato|til|emne|skickat|till|ämne|wysłano|do|temat|отправлено|дата|кому|тема|lähetetty|päivämäärä|vastaanottaja|aihe|ngày|đã\s+gửi|đến|chủ\s+đề|tarih|gönderildi|kime|konu|надіслано|odesláno|komu|předmět|wysłane|elküldve|dátum|címzett|tárgy|ημερομηνία|στάλθηκε|προς|θέμα|发送时间|时间|收件人|主题|傳送時間|收件者|主旨|送信日時|宛先|件名|보낸\s*날짜|받는\s*사람|제목|참조|enviada\s+em|enviada|bcc|reply-to)\*?\s*[:：]")
        .expect("valid regex")
});

/// A horizontal rule some clients draw above a quoted header block.
pub(super) static RULE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^[=_*-]{3,}$").expect("valid regex"));

/// A sentence break inside a line.
pub(super) static SENTENCE_BREAK: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"[.!?]\s+").expect("valid regex"));

/// Text written on the same line before an attribution ("Sounds good. On
/// Tue … wrote:") is new text: such a line is read as two lines.
pub(super) fn split_leads(lines: Vec<&str>) -> Vec<&str> {
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
/// The sentence must end as prose does and hold no digit, so a date's own
/// abbreviations ("Le 15 janv. 2024 à …") never split a header.
pub(super) fn lead_before_attribution(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i];
    if !SENTENCE_BREAK.is_match(line)
        || !DATE_HINT.is_match(&lines[i..lines.len().min(i + MAX_HEADER_LINES)].join(" "))
    {
        return None;
    }
    for m in SENTENCE_BREAK.find_iter(line) {
        let lead = line[..m.start() + 1].trim();
        let rest = &line[m.end()..];
        // Any letter may open it (Gmail's Russian and Czech headers start
        // with a lower-case weekday), as may a digit, a quote mark or the
        // dashes of a Zoho header: the lead's own checks keep dates whole.
        let starts_header = rest
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '"' | '\'' | '-' | '<' | '«'));
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

/// If an attribution header starts at line `i` (possibly wrapped over a
/// few lines), the index of the first line after it. A sentence shaped
/// like one is not: a pronoun writing ("On 3 March I wrote to you:"), or,
/// with no quote under it, a header that names no address and no time of
/// day, as every client's does ("As support wrote on 3 March 2016:").
pub(super) fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let next = header_end(lines, i)?;
    let joined = lines[i..next.min(lines.len())].join(" ");
    if PRONOUN_WROTE.is_match(&joined) {
        return None;
    }
    let quoted_below = lines[next.min(lines.len())..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quoted(l));
    (quoted_below || joined.contains('@') || TIME_OF_DAY.is_match(&joined)).then_some(next)
}

/// "I wrote", "we wrote", "she wrote" …: prose about writing. ("You
/// wrote:" is how some clients attribute: "At 6/1/2016 08:32 PM, you
/// wrote:".)
static PRONOUN_WROTE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)(?:^|\s)(?:i|we|he|she|they|ich|wir|je|j'ai|nous|yo|eu|io|ik|jag|jeg)\s+(?:have\s+|had\s+|also\s+|already\s+|then\s+)?(?:{WROTE})\b"
    ))
    .expect("valid regex")
});

/// A time of day ("17:21", "5:21 PM", "17.21", "17h21").
static TIME_OF_DAY: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"\b\d{1,2}[:.h]\d{2}\b").expect("valid regex"));

/// Where the header that [`attribution_at`] looks at ends, before the
/// prose checks.
fn header_end(lines: &[&str], i: usize) -> Option<usize> {
    if undated_attribution(lines, i) {
        return Some(i + 1);
    }
    // Only a first line that carries a date or an address (or a name
    // wrapped just before its address) may go on over later lines: prose
    // above a header usually carries neither and must not be joined in.
    let first = lines.get(i)?.trim();
    let continues = first.chars().any(|c| c.is_ascii_digit())
        || first.contains('@')
        || name_before_address(lines, i);
    let mut joined = String::new();
    let (mut n, mut taken) = (i, 0);
    while n < lines.len() && taken < MAX_HEADER_LINES {
        let line = lines[n].trim();
        if line.is_empty() {
            // Some clients leave blank lines inside a wrapped address
            // ("Jo Example\n\n<\nmailto:jo@x.org\n> wrote:").
            n = match blank_inside_header(lines, n) {
                Some(next) if taken > 0 && continues => next,
                _ => return None,
            };
            continue;
        }
        if joined.len() > MAX_HEADER_CHARS {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line);
        taken += 1;
        if is_header(&joined) && (taken == 1 || continues) {
            return Some(n + 1);
        }
        // A full sentence means this is prose, not a header's first part;
        // "28." or "Apr." ending a wrapped date is no sentence end.
        if !continues || ends_sentence(line) {
            return None;
        }
        n += 1;
    }
    None
}

/// Where a wrapped header goes on after the blank line at `n`: at most two
/// blank lines, then a piece of an address.
fn blank_inside_header(lines: &[&str], n: usize) -> Option<usize> {
    let p = lines[n..]
        .iter()
        .take(3)
        .position(|l| !l.trim().is_empty())?;
    address_piece(lines[n + p]).then_some(n + p)
}

/// The start of an address a client wrapped onto a line of its own.
fn address_piece(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with(['<', '(', '['])
        || line.to_ascii_lowercase().starts_with("mailto:")
        || line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('@'))
}

/// A short name line (no sentence) with its address wrapped under it.
fn name_before_address(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    !line.is_empty()
        && line.chars().count() <= 60
        && !line.ends_with(['.', '!', '?', ',', ';', ':'])
        && line
            .chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c == '"')
        && lines.get(i + 1).is_some_and(|l| address_piece(l))
}

/// "Jo Example wrote:" with no date: a header only when a quote follows.
/// Webmail that opens with its verb ("Quoting Jo <jo@x.org>:", Horde's)
/// is one too.
pub(super) fn undated_attribution(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    line.ends_with([':', '：'])
        && line.chars().count() <= 100
        && lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| is_quoted(l))
        && (ATTRIBUTION.is_match(line) || QUOTING.is_match(line))
}

/// An attribution that opens with its verb and names the author.
static QUOTING: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"(?i)^(?:quoting|zitat\s+von|citando|citation\s+de|cytuję|цитата)\s+\S.{0,90}[:：]$",
    )
    .expect("valid regex")
});

pub(super) static INNER_SENTENCE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"\p{Ll}{4,}[.!?] +\p{Lu}\p{Ll}* \p{Ll}").expect("valid regex"));

/// True when a line ends a sentence: `!`, `?`, or a `.` after a word of
/// more than three letters.
pub(super) fn ends_sentence(line: &str) -> bool {
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
pub(super) fn is_header(text: &str) -> bool {
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
pub(super) fn outlook_block_at(lines: &[&str], i: usize) -> bool {
    if !FROM_FIELD.is_match(lines[i]) {
        return false;
    }
    let fields = lines
        .iter()
        .skip(i + 1)
        .take(6)
        .filter(|l| OTHER_FIELD.is_match(l))
        .count();
    let dated =
        |l: &&&str| DATE_FIELD.is_match(l) && (lines[i].contains('@') || FULL_DATE.is_match(l));
    fields >= 2 || lines.iter().skip(i + 1).take(2).any(|l| dated(&l)) || field_run_at(lines, i)
}

/// A header block by its shape alone, for field names in languages not
/// listed: the From-like line and at least two more `Label: value` lines
/// right under it, with an address and a dated value (a year and a time)
/// among them. A requester's own "Email: … / Created: …" details carry
/// no From-like first line, so they stay.
fn field_run_at(lines: &[&str], i: usize) -> bool {
    let run: Vec<&str> = lines[i..]
        .iter()
        .take_while(|l| FIELD_LINE.is_match(l))
        .take(8)
        .copied()
        .collect();
    run.len() >= 3
        && run.iter().any(|l| l.contains('@'))
        && run
            .iter()
            .any(|l| FULL_DATE.is_match(l) || CJK_DATE.is_match(l))
}

/// One `Label: value` line of a header block: a label of one to three
/// words, then a value.
static FIELD_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*\*?\p{L}[\p{L}-]*(?:\s\p{L}[\p{L}-]*){0,2}\*?\s*[:：]\s*\S")
        .expect("valid regex")
});

/// A date written with CJK units ("2016年3月3日", "2016년 3월 3일").
static CJK_DATE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"\d{4}\s*[年년]\s*\d{1,2}\s*[月월]").expect("valid regex"));

/// A date with a year and a time of day: what a Sent line under a From
/// line without an address must carry to make the two a header block.
static FULL_DATE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\b(?:19|20)\d{2}\b.*\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}[:.]\d{2}\b.*\b(?:19|20)\d{2}\b")
        .expect("valid regex")
});

/// A phrase framed by rules ("----- Izvorno sporočilo -----") with a
/// header field under it: a separator in a language not listed in
/// [`SEPARATOR`]. The field under it is what keeps a heading of the
/// sender's own ("----- My accounts -----") in the text.
pub(super) fn framed_separator_at(lines: &[&str], i: usize) -> bool {
    FRAMED.is_match(lines[i])
        && lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| FIELD_WITH_ADDRESS.is_match(l) || outlook_block_at(lines, i + 1))
}

static FRAMED: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*\*?\s*(?:-{3,}|_{3,}|={3,})\s*\p{L}[\p{L}'’ -]{2,40}?\s*(?:-{3,}|_{3,}|={3,})\s*\*?\s*$")
        .expect("valid regex")
});

/// "Label: value" with an address in the value, the label one to three
/// words: the From line of a header block in any language.
static FIELD_WITH_ADDRESS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*\*?\p{L}+(?:\s\p{L}+){0,2}\*?\s*[:：]\s*\S.*@").expect("valid regex")
});

/// A dated Sent/Date field of a header block.
pub(super) static DATE_FIELD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:sent|date|datum|gesendet|envoyé|enviado|fecha|data|inviato|verzonden|sendt|dato|skickat|wysłano|wysłane|отправлено|надіслано|дата|lähetetty|päivämäärä|ngày|đã\s+gửi|tarih|gönderildi|odesláno|dátum|elküldve|ημερομηνία|στάλθηκε|发送时间|时间|傳送時間|送信日時|보낸\s*날짜|enviada\s+em|enviada)\*?\s*[:：].*\d")
        .expect("valid regex")
});

/// Walks back from a header block's From line over rules (`====`,
/// `____`) and fields some clients put above it ("Message du : …").
pub(super) fn block_start(lines: &[&str], from: usize) -> usize {
    let mut start = from;
    for j in (0..from).rev() {
        let above = lines[j].trim();
        if RULE.is_match(above) || OTHER_FIELD.is_match(above) || BARE_SEPARATOR.is_match(above) {
            start = j;
        } else if !above.is_empty() {
            break;
        }
    }
    start
}
