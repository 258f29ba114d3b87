//! Verification challenge codes: generation (from the caller's CSPRNG), an
//! HMAC at rest, constant-time comparison, finding codes in what people
//! type back, the linked mailbox owner's yes or no, and masking addresses.
//!
//! Pure: no I/O, no clock, no randomness of its own, and no panics on any
//! input. The case core decides what an outcome means for the case (expiry,
//! locking, alerts); this module only answers questions about codes and text.
//!
//! # The code
//! Eight characters from [`CODE_ALPHABET`] (32 symbols, no `0`/`O`/`1`/`I`),
//! shown as `XXXX-XXXX`. Every generated code holds at least one digit and
//! at least one letter (see [`generate_code`]); that costs a tenth of the
//! space (about 2^39.85 codes remain, against 2^40) and is what lets the
//! attempt rule below ignore ordinary words and plain numbers.
//!
//! # What counts as an attempt
//! [`attempt_candidates`] reports a token as a code only when all of these hold:
//! - it is 8 characters of the alphabet (any case), written either in one
//!   piece (`ab3defgh`) or split 4+4 by a dash or by spaces (`AB3D-EFGH`,
//!   `ab3d efgh`, `AB3D - EFGH`), with full-width forms and Unicode dashes
//!   read as their ASCII twins;
//! - it stands alone: not glued to other letters or digits by `-`, `_`,
//!   `.`, `/`, `@`, `+`, `#` and the like (so case ids such as `RD-7K3M9Q`,
//!   UUIDs, addresses, URLs and file names never match), and a space-split
//!   pair is not part of a longer run of 4-character groups such as a
//!   licence key;
//! - it contains at least one digit **and** at least one letter.
//!
//! The last rule is the one that matters for false positives: "GRATEFUL" or
//! "gra teful" is code-shaped but is an ordinary word, and "2345 6789" is a
//! phone number; since no generated code looks like either, neither is a
//! code, so neither can verify nor use up an attempt. Surrounding
//! punctuation (`code: ab3d-efgh.`, `"AB3D EFGH"`, `(AB3DEFGH)`) is ignored.
//!
//! Each *distinct* code found in the new text is one attempt when it is
//! checked and does not match. [`check_codes_any`] checks at most as many
//! candidates as attempts remain, so stuffing a message with guesses buys
//! nothing: five attempts are five guesses, however they are packaged.

use std::collections::{HashMap, HashSet};

use hmac::{Hmac, Mac};
use once_cell::sync::Lazy;
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Code alphabet: digits 2–9 and the letters A–Z without `I` and `O`, so
/// nothing in it can be misread as `0`, `O`, `1` or `I`.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Number of alphabet characters in a code (the dash is display only).
pub const CODE_LEN: usize = 8;

/// Shortest installation key [`code_mac`] should be given. The functions
/// accept any key (HMAC does), but with a short or empty key anyone holding
/// the store could recompute every code's MAC; configuration should refuse
/// shorter keys.
pub const MIN_KEY_BYTES: usize = 32;

/// Draws a code shown as `XXXX-XXXX` from the caller's RNG (callers pass a
/// CSPRNG such as `rand::rngs::OsRng`).
///
/// Draws that lack a digit or a letter are discarded and drawn again
/// (about one in ten), so every code satisfies the attempt rule of
/// [`attempt_candidates`]. Each character is uniform over the 32 symbols.
pub fn generate_code(rng: &mut impl Rng) -> String {
    loop {
        let chars: Vec<u8> = (0..CODE_LEN)
            .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())])
            .collect();
        if is_mixed(&chars) {
            return display_form(&chars);
        }
    }
}

/// HMAC-SHA256 (lower-case hex) of a code bound to its case, as kept in the
/// store. Same as [`code_mac_for`] with challenge serial 0.
pub fn code_mac(key: &[u8], case_id: &str, code: &str) -> String {
    code_mac_for(key, case_id, 0, code)
}

/// HMAC-SHA256 (lower-case hex) of a code bound to its case **and** to the
/// challenge serial (1 for the first challenge of a case, 2 for a re-issue,
/// …).
///
/// The case core issues every challenge with serial 0 ([`code_mac`]): a
/// case holds one pending challenge at a time and a re-issue overwrites
/// its MAC, so an earlier code has nothing left to match. A caller that kept
/// several challenges would bind each to its own serial, so that a code of
/// one never verifies another. The input is domain-separated and length-prefixed, so
/// no other MAC made under the installation key (reply addresses) can
/// collide with it. The code is normalised first (only ASCII letters and
/// digits, upper case), so `ab3d efgh` and `AB3D-EFGH` give the same MAC.
pub fn code_mac_for(key: &[u8], case_id: &str, serial: u32, code: &str) -> String {
    hex::encode(mac_bytes(key, case_id, serial, code))
}

#[cfg(test)]
/// Compares a candidate against the stored MAC (hex, from [`code_mac`]) in
/// constant time. A stored value that is not hex never matches.
pub fn code_matches(key: &[u8], case_id: &str, candidate: &str, stored_mac: &str) -> bool {
    code_matches_for(key, case_id, 0, candidate, stored_mac)
}

#[cfg(test)]
/// Like [`code_matches`] for a code sent under any of `keys`: the current
/// installation key and, during a rotation, the previous ones.
pub fn code_matches_any<'k>(
    keys: impl IntoIterator<Item = &'k [u8]>,
    case_id: &str,
    candidate: &str,
    stored_mac: &str,
) -> bool {
    // Every key is tried (no early exit), so the time taken does not say
    // which key, if any, made the stored MAC.
    keys.into_iter().fold(false, |found, key| {
        code_matches(key, case_id, candidate, stored_mac) | found
    })
}

/// Compares a candidate against the stored MAC (hex, from
/// [`code_mac_for`] with the same serial) in constant time.
pub fn code_matches_for(
    key: &[u8],
    case_id: &str,
    serial: u32,
    candidate: &str,
    stored_mac: &str,
) -> bool {
    let Ok(stored) = hex::decode(stored_mac.trim()) else {
        return false;
    };
    let computed = mac_bytes(key, case_id, serial, candidate);
    // `ct_eq` on slices of different lengths is false without looking at
    // the contents; the length of a MAC is no secret.
    computed.as_slice().ct_eq(stored.as_slice()).into()
}

#[cfg(test)]
/// The distinct codes in a text, normalised to `XXXX-XXXX`, in order of
/// first appearance. See the module doc for what counts as a code; ordinary
/// words and plain numbers never do.
///
/// Give it only what the sender newly wrote: a code that appears only in
/// quoted text is not a confirmation by itself.
pub fn find_codes(text: &str) -> Vec<String> {
    // A set, not `Vec::contains`: the text is the sender's, and a message
    // stuffed with codes must not cost quadratic time.
    let mut seen = HashSet::new();
    scan(text)
        .into_iter()
        .filter(|span| seen.insert(span.code.clone()))
        .map(|span| span.code)
        .collect()
}

/// The candidates that each count as one attempt if checked and wrong:
/// the distinct codes in the text (see the module doc), those written the way the code is
/// shown (split 4+4) first, then those written in one piece.
///
/// The order matters when fewer attempts remain than candidates: the
/// candidate most likely to be the code the person copied is tried first.
pub fn attempt_candidates(text: &str) -> Vec<String> {
    CodeScan::new(text).attempt_candidates()
}

/// The codes of one text, scanned once for both [`attempt_candidates`] and
/// [`redact_codes`] (the scan is the costly part of either).
pub struct CodeScan {
    spans: Vec<Span>,
}

impl CodeScan {
    /// Scans `text` for codes.
    pub fn new(text: &str) -> Self {
        CodeScan { spans: scan(text) }
    }

    /// As [`attempt_candidates`] of the scanned text.
    pub fn attempt_candidates(&self) -> Vec<String> {
        let mut spans: Vec<&Span> = self.spans.iter().collect();
        // Stable: within each form, the order of appearance is kept.
        spans.sort_by_key(|span| !span.split);
        let mut seen = HashSet::new();
        spans
            .into_iter()
            .filter(|span| seen.insert(span.code.as_str()))
            .map(|span| span.code.clone())
            .collect()
    }

    /// As [`redact_codes`]; `text` must be the text that was scanned.
    pub fn replaced(&self, text: &str, replacement: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for span in &self.spans {
            out.push_str(&text[last..span.start]);
            out.push_str(replacement);
            last = span.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

/// The outcome of checking one message's codes against a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// A candidate matched the stored MAC: the challenge is answered.
    Matched {
        /// Wrong candidates checked before the match (information only; a
        /// verified challenge has no attempts left to spend).
        wrong_before: u32,
    },
    /// Candidates were found and none matched.
    Wrong {
        /// Attempts used by this message (0 when none were left to use).
        attempts: u32,
    },
    /// Nothing in the text counts as an attempt.
    NoAttempt,
}

#[cfg(test)]
/// [`check_codes_any`] under one key (tests).
pub fn check_codes(
    key: &[u8],
    case_id: &str,
    serial: u32,
    stored_mac: &str,
    candidates: &[String],
    attempts_left: u32,
) -> CodeCheck {
    check_codes_any(
        &[key],
        case_id,
        serial,
        stored_mac,
        candidates,
        attempts_left,
    )
}

/// Checks a message's code candidates against a challenge's stored MAC,
/// made under any of `keys` (the current key and those a rotation still
/// accepts): the attempt rule the case core applies.
///
/// At most `attempts_left` candidates (from [`attempt_candidates`], in that
/// order) are compared; each one that does not match is one attempt,
/// whichever keys it is compared under. The caller subtracts `attempts`
/// from what remains and locks the challenge at zero. With no attempts
/// left, nothing is compared.
pub fn check_codes_any(
    keys: &[&[u8]],
    case_id: &str,
    serial: u32,
    stored_mac: &str,
    candidates: &[String],
    attempts_left: u32,
) -> CodeCheck {
    if candidates.is_empty() {
        return CodeCheck::NoAttempt;
    }
    let mut wrong = 0u32;
    for candidate in candidates.iter().take(attempts_left as usize) {
        // Every key is tried, so the time taken does not say which matched.
        let found = keys.iter().fold(false, |found, key| {
            code_matches_for(key, case_id, serial, candidate, stored_mac) | found
        });
        if found {
            return CodeCheck::Matched {
                wrong_before: wrong,
            };
        }
        wrong += 1;
    }
    CodeCheck::Wrong { attempts: wrong }
}

/// Replaces every code in `text` (same rule as [`attempt_candidates`]) with
/// `replacement`, so a code typed back by a requester never reaches a staff
/// notification, a log line or an export.
pub fn redact_codes(text: &str, replacement: &str) -> String {
    CodeScan::new(text).replaced(text, replacement)
}

/// What the owner of the linked mailbox said on the challenge thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAnswer {
    /// "Yes, that was me."
    Confirmed,
    /// "No, I did not ask for this." Wins over any yes in the same text.
    Denied,
    /// Neither.
    Unclear,
}

/// Reads the owner's yes or no from the new text of a challenge reply, in
/// English, Spanish, French, German, Portuguese, Chinese and Russian.
///
/// The text is cut into clauses (at punctuation and line ends). A clause
/// says yes when it starts with a yes-word (`yes`, `sí`, `oui`, `ja`,
/// `sim`, `да`, `是的`, …) or holds a confirming phrase (`it was me`,
/// `fui yo`, `c'était moi`, `das war ich`, `fui eu`, `是我`, `это я`, …);
/// it says no when it starts with a no-word or holds a denying phrase
/// (`not me`, `I didn't request this`, `no fui yo`, `pas moi`, `war ich
/// nicht`, `não fui eu`, `不是我`, `не я`, …). A confirming phrase with a
/// negation earlier in its clause (`I never said it was me`) counts as a
/// no. Lines quoted with `>` are skipped.
///
/// Denied wins whenever any clause says no: a false "no" costs a staff
/// review, a false "yes" could hand an account over. For the same reason a
/// yes counts only within the first few lines, while a no counts anywhere.
pub fn owner_answer(new_text: &str) -> OwnerAnswer {
    let text = fold_answer_text(new_text);
    let mut confirmed = false;
    let mut denied = false;
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('>'));
    for (line_idx, line) in lines.enumerate() {
        for clause in line.split(is_clause_break) {
            let verdict = clause_verdict(clause);
            denied |= verdict.no;
            confirmed |= verdict.yes && line_idx < YES_WITHIN_LINES;
        }
    }
    match (confirmed, denied) {
        (_, true) => OwnerAnswer::Denied,
        (true, false) => OwnerAnswer::Confirmed,
        (false, false) => OwnerAnswer::Unclear,
    }
}

/// Masks an address for staff display: `j***@e***.org`.
///
/// Shows the first character of the local part and of the domain, and the
/// last domain label (the TLD); everything else, including lengths, is
/// hidden. Accepts `Name <addr>` and odd input; never panics, and never
/// echoes control characters.
pub fn mask_address(address: &str) -> String {
    let addr = bare_address(address);
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return "***".into();
    };
    let domain = domain.trim_matches('.');
    let (host, tld) = match domain.rsplit_once('.') {
        Some((host, tld)) => (host, tld),
        None => (domain, ""),
    };
    format!(
        "{}***@{}***{}",
        first_visible(local),
        first_visible(host),
        tld_suffix(tld)
    )
}

/// Masks the *requester's* address for the challenge mail sent to the
/// linked mailbox: `j***@example.org`. The domain stays readable so the
/// owner can tell their own provider or employer from a stranger's; the
/// local part shows its first character only. Odd input gives `***`.
pub fn mask_requester_for_owner(address: &str) -> String {
    let addr = bare_address(address);
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return "***".into();
    };
    let domain = domain.trim_matches('.');
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if !domain_ok {
        return format!("{}***@***", first_visible(local));
    }
    format!("{}***@{}", first_visible(local), domain.to_lowercase())
}

// ---------------------------------------------------------------------------
// Codes: MAC and scanning.

/// Domain separation for the code MAC: the installation key also makes the
/// reply-address MACs, and the two must never be interchangeable.
const MAC_CONTEXT: &[u8] = b"recoverydesk/challenge-code/v1";

fn mac_bytes(key: &[u8], case_id: &str, serial: u32, code: &str) -> Vec<u8> {
    let normalized: Vec<u8> = code
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    // HMAC takes keys of any length (RFC 2104 hashes long ones), so this
    // never fails whatever the key.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    // Each variable part is length-prefixed so `("A:B", "C")` and
    // `("A", "B:C")` can never feed the same bytes.
    for part in [MAC_CONTEXT, case_id.as_bytes(), normalized.as_slice()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.update(&serial.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn is_mixed(chars: &[u8]) -> bool {
    chars.iter().any(u8::is_ascii_digit) && chars.iter().any(u8::is_ascii_alphabetic)
}

fn display_form(chars: &[u8]) -> String {
    let text: String = chars.iter().map(|&b| b as char).collect();
    format!("{}-{}", &text[..4], &text[4..])
}

/// One code found in a text.
struct Span {
    /// Normalised `XXXX-XXXX`.
    code: String,
    /// Byte range in the original text.
    start: usize,
    end: usize,
    /// Written split 4+4 rather than in one piece.
    split: bool,
}

/// A run of ASCII letters and digits, as char indexes.
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
}

impl Word {
    fn len(self) -> usize {
        self.end - self.start
    }
}

/// Finds every code under the rule of the module doc.
fn scan(text: &str) -> Vec<Span> {
    // Char-indexed copy with look-alikes folded, plus each char's byte
    // offset in the original for redaction.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let chars: Vec<char> = text.chars().map(fold_char).collect();
    let words = ascii_words(&chars);

    let mut spans = Vec::new();
    let mut idx = 0;
    while idx < words.len() {
        let word = words[idx];
        let whole = &chars[word.start..word.end];
        if word.len() == CODE_LEN
            && is_code_text(whole)
            && free_before(&chars, word.start)
            && free_after(&chars, word.end)
        {
            spans.push(make_span(&chars, &offsets, word.start, word.end, false));
            idx += 1;
            continue;
        }
        if let Some(&next) = words.get(idx + 1) {
            if is_split_pair(&chars, &words, idx) {
                spans.push(make_span(&chars, &offsets, word.start, next.end, true));
                idx += 2;
                continue;
            }
        }
        idx += 1;
    }
    spans
}

fn make_span(chars: &[char], offsets: &[usize], start: usize, end: usize, split: bool) -> Span {
    let code: Vec<u8> = chars[start..end]
        .iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase() as u8)
        .collect();
    Span {
        code: display_form(&code),
        start: offsets[start],
        end: offsets[end],
        split,
    }
}

fn ascii_words(chars: &[char]) -> Vec<Word> {
    let mut words = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        if chars[idx].is_ascii_alphanumeric() {
            let start = idx;
            while idx < chars.len() && chars[idx].is_ascii_alphanumeric() {
                idx += 1;
            }
            words.push(Word { start, end: idx });
        } else {
            idx += 1;
        }
    }
    words
}

/// Words `idx` and `idx + 1` form `XXXX-XXXX` / `XXXX XXXX`, standing alone.
fn is_split_pair(chars: &[char], words: &[Word], idx: usize) -> bool {
    let (first, second) = (words[idx], words[idx + 1]);
    if first.len() != 4 || second.len() != 4 {
        return false;
    }
    let joined: Vec<char> = chars[first.start..first.end]
        .iter()
        .chain(&chars[second.start..second.end])
        .copied()
        .collect();
    if !is_code_text(&joined) || !is_separator(&chars[first.end..second.start]) {
        return false;
    }
    if !free_before(chars, first.start) || !free_after(chars, second.end) {
        return false;
    }
    // Not one pair out of a longer run of groups (`AB2C D3EF GH4J`, a
    // licence key): a neighbouring 4-character group with a digit, joined
    // by a separator, disqualifies the pair.
    // Only a group joined the same way counts: `AB3D-EFGJ AB3D-EFGK` is two
    // codes in a row, not one long key.
    let pair_gap = &chars[first.end..second.start];
    let group_neighbour = |other: Word, gap: &[char]| {
        other.len() == 4
            && gap == pair_gap
            && chars[other.start..other.end]
                .iter()
                .any(char::is_ascii_digit)
    };
    let before = idx
        .checked_sub(1)
        .map(|p| words[p])
        .is_some_and(|prev| group_neighbour(prev, &chars[prev.end..first.start]));
    let after = words
        .get(idx + 2)
        .is_some_and(|&next| group_neighbour(next, &chars[second.end..next.start]));
    !before && !after
}

/// Eight alphabet characters (any case) with at least one digit and one
/// letter.
fn is_code_text(chars: &[char]) -> bool {
    let bytes: Vec<u8> = chars
        .iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase() as u8)
        .collect();
    bytes.len() == CODE_LEN && bytes.iter().all(|b| CODE_ALPHABET.contains(b)) && is_mixed(&bytes)
}

/// The gap between two halves: one to three chars of horizontal space with
/// at most one dash or underscore (`-`, ` `, ` - `, `_`). No line breaks.
fn is_separator(gap: &[char]) -> bool {
    let dashes = gap.iter().filter(|c| matches!(c, '-' | '_')).count();
    (1..=3).contains(&gap.len())
        && dashes <= 1
        && gap.iter().all(|c| matches!(c, '-' | '_' | ' ' | '\t'))
}

/// Characters that glue a token to its neighbour into one larger token.
fn is_joiner(c: char) -> bool {
    matches!(
        c,
        '-' | '_' | '.' | '/' | '\\' | '@' | '+' | '#' | '&' | '=' | '%' | '~' | '|'
    )
}

/// A letter of a script written with spaces (Latin, Cyrillic, …): such a
/// neighbour makes the ASCII run part of a longer word (`éAB3DEFGH`). CJK
/// text runs into Latin without spaces, so it does not glue.
fn glues_as_letter(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

fn free_before(chars: &[char], start: usize) -> bool {
    let Some(&prev) = start.checked_sub(1).and_then(|i| chars.get(i)) else {
        return true;
    };
    if glues_as_letter(prev) {
        return false;
    }
    let glued = start >= 2 && is_joiner(prev) && chars[start - 2].is_alphanumeric();
    !glued
}

fn free_after(chars: &[char], end: usize) -> bool {
    let Some(&next) = chars.get(end) else {
        return true;
    };
    if glues_as_letter(next) {
        return false;
    }
    let glued = is_joiner(next) && chars.get(end + 1).is_some_and(|c| c.is_alphanumeric());
    !glued
}

/// Folds look-alikes people produce when retyping: full-width forms (CJK
/// input methods) to ASCII, odd spaces to a space, Unicode dashes to `-`.
fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' | '\u{00A0}' | '\u{2007}' | '\u{202F}' => ' ',
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => '-',
        _ => c,
    }
}

// ---------------------------------------------------------------------------
// The owner's answer.

/// A yes counts only within this many non-empty lines of the new text.
const YES_WITHIN_LINES: usize = 6;

/// Words that answer yes when they open a clause.
#[rustfmt::skip]
const YES_WORDS: &[&str] = &[
    "yes", "yeah", "yep", "yup", "correct", "confirmed", "affirmative", "indeed",
    "si", "oui", "ja", "jawohl", "genau", "sim", "да", "ага",
    "是", "是的", "对", "对的", "确认", "确定", "嗯",
];

/// Words that answer no when they open a clause.
#[rustfmt::skip]
const NO_WORDS: &[&str] = &[
    "no", "nope", "nah", "non", "nein", "nao", "нет", "否", "不", "不是", "没有", "没",
];

/// After a clause-opening "no", these make it a pleasantry, not an answer
/// ("no problem, that was me"; Spanish "no hay problema", "no te preocupes").
#[rustfmt::skip]
const NO_PLEASANTRY: &[&str] = &[
    "problem", "problems", "prob", "worries", "worry", "hay", "te", "se", "pasa",
];

/// Phrases (space-separated words, after folding) that confirm.
#[rustfmt::skip]
const YES_PHRASES: &[&str] = &[
    // English.
    "that was me", "it was me", "this was me", "was me", "that's me", "thats me",
    "that's correct", "thats correct", "that is correct",
    "that is me", "it's me", "its me", "it is me", "this is me",
    "i requested it", "i requested this", "i requested that", "i did request", "i did ask",
    "i asked for it", "i asked for this", "i made the request", "i made this request",
    "i made that request", "i sent the request", "i sent it", "i sent this",
    "i confirm", "i can confirm", "i do confirm", "please proceed", "go ahead",
    // Spanish.
    "fui yo", "soy yo", "era yo", "lo solicite", "lo pedi", "yo lo pedi", "yo lo solicite",
    "lo confirmo", "confirmo",
    // French.
    "c'etait moi", "c etait moi", "c'etait bien moi", "c'est moi", "c'est bien moi",
    "je confirme", "j'ai demande", "j'ai fait la demande",
    // German.
    "das war ich", "war ich", "ich war das", "ich war es", "das bin ich", "ich bin es",
    "ich bestatige", "ich bestaetige", "bestatigt", "bestaetigt",
    // Portuguese.
    "fui eu", "sou eu", "era eu", "eu solicitei", "eu pedi",
    // Russian.
    "это я", "это был я", "это была я", "я запрашивал", "я запрашивала", "подтверждаю",
];

/// Phrases that deny; any one of them anywhere makes the answer Denied.
#[rustfmt::skip]
const NO_PHRASES: &[&str] = &[
    // English.
    "not me", "wasn't me", "wasnt me", "isn't me", "isnt me", "not mine",
    "did not ask", "didn't ask", "didnt ask", "did not request", "didn't request",
    "didnt request", "did not make", "didn't make", "didnt make", "did not send",
    "didn't send", "didnt send", "did not initiate", "didn't initiate", "didnt initiate",
    "never asked", "never requested", "never made", "not requested", "not request",
    "not asked", "not ask", "not initiated", "not authorized", "not authorised",
    "unauthorized", "unauthorised", "requested nothing", "asked for nothing",
    "nothing to do with me", "do not recognize", "don't recognize", "dont recognize",
    "do not recognise", "don't recognise", "dont recognise", "do not proceed",
    "don't proceed", "dont proceed", "please cancel", "no idea",
    // Spanish.
    "no fui yo", "no soy yo", "no era yo", "yo no", "no lo solicite", "no lo pedi",
    "no solicite", "no pedi", "no he solicitado", "no he pedido",
    // French.
    "pas moi", "ce n'etait pas moi", "ce n'est pas moi", "je n'ai pas demande",
    "je n'ai rien demande", "pas demande",
    // German.
    "nicht ich", "war ich nicht", "ich war das nicht", "ich war es nicht", "nicht von mir",
    "habe ich nicht", "ich habe nicht", "ich habe das nicht", "nicht angefordert",
    "nicht beantragt",
    // Portuguese.
    "nao fui eu", "nao sou eu", "nao era eu", "nao solicitei", "nao pedi",
    // Russian.
    "не я", "это не я", "не запрашивал", "не запрашивала", "не просил", "не просила",
    "не делал", "не делала",
];

/// Chinese phrases, matched inside the clause (no spaces between words).
const YES_PHRASES_CJK: &[&str] = &["是我", "我本人", "我申请的", "我自己申请", "本人操作"];

/// Chinese phrases that deny.
#[rustfmt::skip]
const NO_PHRASES_CJK: &[&str] = &[
    "不是我", "并非我", "不是本人", "非本人", "没有申请", "没申请", "未申请", "我没有",
    "没有请求", "没有要求",
];

/// Chinese characters that negate what follows them in a clause.
const NEGATORS_CJK: &[char] = &['不', '没', '未', '非', '无', '别', '否'];

/// Words that negate (or cast doubt on) a confirming phrase after them in
/// the same clause.
#[rustfmt::skip]
const NEGATORS: &[&str] = &[
    // English, with the apostrophe-less spellings people type.
    "not", "never", "nor", "neither", "cannot", "nobody", "didnt", "dont", "doesnt", "wasnt",
    "isnt", "cant", "wont", "havent", "hasnt",
    // Someone else "claiming" or "pretending" it was the owner is a warning.
    "someone", "somebody", "pretend", "pretends", "pretending", "claim", "claims", "claiming",
    // German, French, Spanish, Portuguese, Russian.
    "nicht", "kein", "keine", "keinen", "nie", "niemals", "niemand",
    "pas", "jamais", "personne",
    "nunca", "jamas", "nadie",
    "nao", "nem", "ninguem",
    "не", "нет", "никогда", "никто",
];

fn is_negator(words: &[&str], idx: usize) -> bool {
    let word = words[idx];
    if matches!(word, "no" | "non") {
        // "no worries, it was me" is not a negation.
        return !words
            .get(idx + 1)
            .is_some_and(|w| NO_PLEASANTRY.contains(w));
    }
    NEGATORS.contains(&word) || word.ends_with("n't") || word.starts_with("n'")
}

#[derive(Default)]
struct Verdict {
    yes: bool,
    no: bool,
}

fn clause_verdict(clause: &str) -> Verdict {
    let words: Vec<&str> = clause
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut verdict = Verdict::default();
    let Some(&first) = words.first() else {
        return verdict;
    };

    if YES_WORDS.contains(&first) {
        verdict.yes = true;
    }
    if NO_WORDS.contains(&first) && is_negator_or_no_word(&words) {
        verdict.no = true;
    }
    if NO_PHRASES_CJK.iter().any(|p| clause.contains(p)) {
        verdict.no = true;
    }
    // One pass over the words, each looked up among the phrases that start
    // with it, and the clause's first negation found once: the text is the
    // sender's, so nothing here may be quadratic.
    let first_negator = (0..words.len()).find(|&j| is_negator(&words, j));
    for at in 0..words.len() {
        for phrase in PHRASES_BY_FIRST_WORD.get(words[at]).into_iter().flatten() {
            if !words[at..].starts_with(&phrase.words) {
                continue;
            }
            if !phrase.confirms || first_negator.is_some_and(|j| j < at) {
                verdict.no = true;
            } else {
                verdict.yes = true;
            }
        }
    }
    let first_negator_cjk = clause.find(|c| NEGATORS_CJK.contains(&c));
    for phrase in YES_PHRASES_CJK {
        for (at, _) in clause.match_indices(phrase) {
            // "是我的邮箱" is "it is my mailbox", not "it was me".
            let possessive = *phrase == "是我" && clause[at + phrase.len()..].starts_with('的');
            if first_negator_cjk.is_some_and(|j| j < at) {
                verdict.no = true;
            } else if !possessive {
                verdict.yes = true;
            }
        }
    }
    verdict
}

/// A clause-opening no-word counts unless it starts a pleasantry.
fn is_negator_or_no_word(words: &[&str]) -> bool {
    match words.first() {
        Some(&"no") | Some(&"non") => is_negator(words, 0),
        Some(_) => true,
        None => false,
    }
}

/// A phrase of [`YES_PHRASES`] or [`NO_PHRASES`], split into words.
struct Phrase {
    words: Vec<&'static str>,
    confirms: bool,
}

/// The phrases of both tables, by their first word.
static PHRASES_BY_FIRST_WORD: Lazy<HashMap<&'static str, Vec<Phrase>>> = Lazy::new(|| {
    let mut map: HashMap<&'static str, Vec<Phrase>> = HashMap::new();
    for (table, confirms) in [(YES_PHRASES, true), (NO_PHRASES, false)] {
        for text in table {
            let words: Vec<&'static str> = text.split(' ').collect();
            map.entry(words[0])
                .or_default()
                .push(Phrase { words, confirms });
        }
    }
    map
});

fn is_clause_break(c: char) -> bool {
    ".,;:!?¡¿()[]\"«»“”。，、！？；：…".contains(c)
}

/// Lower case, full-width to ASCII, typographic apostrophes to `'`, and the
/// accents of the supported languages folded away (people type `si` for
/// `sí` and `nao` for `não`).
fn fold_answer_text(text: &str) -> String {
    text.chars()
        .map(fold_char)
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '`' | '\u{00B4}' | '\u{02BC}' | '\u{2032}' => '\'',
            'ё' => 'е',
            other => crate::lang::fold_accent(other),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Masking.

/// The addr-spec of `Name <addr>`, trimmed.
fn bare_address(input: &str) -> &str {
    let input = input.trim();
    match (input.rfind('<'), input.rfind('>')) {
        (Some(open), Some(close)) if open < close => input[open + 1..close].trim(),
        _ => input,
    }
}

/// The first character if it is safe to show, else `*`; empty stays empty.
fn first_visible(part: &str) -> String {
    match part.chars().next() {
        Some(c) if c.is_alphanumeric() => c.to_lowercase().collect(),
        Some(_) => "*".into(),
        None => String::new(),
    }
}

/// `.org` for a plausible TLD; nothing for none; `.***` for anything odd.
fn tld_suffix(tld: &str) -> String {
    if tld.is_empty() {
        String::new()
    } else if tld.len() <= 24 && tld.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        format!(".{}", tld.to_ascii_lowercase())
    } else {
        ".***".into()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    const KEY: &[u8] = b"an installation key of thirty-two bytes!";

    #[test]
    fn alphabet_has_32_distinct_symbols_and_no_ambiguous_ones() {
        let set: HashSet<u8> = CODE_ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), 32);
        assert_eq!(CODE_ALPHABET.len(), 32);
        for ambiguous in [b'0', b'O', b'1', b'I', b'o', b'i', b'l'] {
            assert!(!CODE_ALPHABET.contains(&ambiguous), "{}", ambiguous as char);
        }
    }

    #[test]
    fn generated_codes_are_shown_as_two_groups_of_four_from_the_alphabet() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let code = generate_code(&mut rng);
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            let chars: Vec<u8> = code.bytes().filter(|&b| b != b'-').collect();
            assert!(chars.iter().all(|b| CODE_ALPHABET.contains(b)), "{code}");
            assert!(is_mixed(&chars), "{code} lacks a digit or a letter");
        }
    }

    #[test]
    fn codes_never_repeat_across_ten_thousand_seeded_draws() {
        let mut rng = StdRng::seed_from_u64(2026);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(generate_code(&mut rng)));
        }
    }

    #[test]
    fn every_generated_code_is_found_again_in_the_way_it_is_shown() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..2000 {
            let code = generate_code(&mut rng);
            assert_eq!(find_codes(&code), vec![code.clone()]);
            assert_eq!(
                find_codes(&code.to_lowercase().replace('-', "")),
                vec![code]
            );
        }
    }

    #[test]
    fn mac_is_stable_and_ignores_how_the_code_was_typed() {
        let stored = code_mac(KEY, "RD-7K3M9Q", "AB3D-EFGH");
        assert_eq!(stored.len(), 64);
        assert_eq!(stored, code_mac(KEY, "RD-7K3M9Q", "ab3d efgh"));
        assert!(code_matches(KEY, "RD-7K3M9Q", "ab3defgh", &stored));
    }

    #[test]
    fn mac_of_the_same_code_under_another_case_id_differs() {
        assert_ne!(
            code_mac(KEY, "RD-7K3M9Q", "AB3D-EFGH"),
            code_mac(KEY, "RD-7K3M9R", "AB3D-EFGH")
        );
    }

    #[test]
    fn a_code_whose_mac_was_made_under_a_previous_key_matches_while_that_key_is_given() {
        let old: &[u8] = b"the key before the rotation, 32 bytes";
        let stored = code_mac(old, "RD-7K3M9Q", "AB3D-EFGH");
        assert!(!code_matches(KEY, "RD-7K3M9Q", "AB3D-EFGH", &stored));
        assert!(code_matches_any(
            [KEY, old],
            "RD-7K3M9Q",
            "AB3D-EFGH",
            &stored
        ));
        assert!(!code_matches_any([KEY], "RD-7K3M9Q", "AB3D-EFGH", &stored));
        assert!(!code_matches_any(
            [KEY, old],
            "RD-7K3M9Q",
            "AB3D-EFGX",
            &stored
        ));
    }

    #[test]
    fn mac_of_the_same_code_under_another_serial_or_key_differs() {
        let first = code_mac_for(KEY, "RD-7K3M9Q", 1, "AB3D-EFGH");
        assert_ne!(first, code_mac_for(KEY, "RD-7K3M9Q", 2, "AB3D-EFGH"));
        assert_ne!(
            first,
            code_mac_for(b"another key", "RD-7K3M9Q", 1, "AB3D-EFGH")
        );
        assert_eq!(
            code_mac(KEY, "RD-1", "AB3D-EFGH"),
            code_mac_for(KEY, "RD-1", 0, "AB3D-EFGH")
        );
        assert!(!code_matches_for(KEY, "RD-7K3M9Q", 2, "AB3D-EFGH", &first));
    }

    #[test]
    fn case_id_and_code_cannot_be_shifted_into_each_other() {
        assert_ne!(
            code_mac(KEY, "RD-A", "B3CDEFGH"),
            code_mac(KEY, "RD-AB", "3CDEFGH")
        );
    }

    #[test]
    fn comparison_rejects_a_one_char_change() {
        let stored = code_mac(KEY, "RD-7K3M9Q", "AB3D-EFGH");
        assert!(code_matches(KEY, "RD-7K3M9Q", "AB3D-EFGH", &stored));
        for wrong in [
            "AB3D-EFGJ",
            "BB3D-EFGH",
            "AB4D-EFGH",
            "AB3D-EFG",
            "AB3D-EFGHH",
        ] {
            assert!(!code_matches(KEY, "RD-7K3M9Q", wrong, &stored), "{wrong}");
        }
    }

    #[test]
    fn comparison_rejects_garbage_stored_values_without_panicking() {
        for stored in ["", "zz", "abc", &"0".repeat(64), "é"] {
            assert!(!code_matches(KEY, "RD-1", "AB3D-EFGH", stored));
        }
    }

    #[test]
    fn the_code_is_found_however_people_retype_it() {
        let expect = vec!["AB3D-EFGH".to_string()];
        for text in [
            "AB3D-EFGH",
            "ab3d-efgh",
            "ab3defgh",
            "AB3D EFGH",
            "ab3d - efgh",
            "AB3D_EFGH",
            "AB3D\u{2013}EFGH",
            "ＡＢ３Ｄ－ＥＦＧＨ",
            "code: ab3d efgh",
            "Code:AB3D-EFGH.",
            "Here it is: \"AB3D-EFGH\", thanks!",
            "(ab3defgh)",
            "my code is AB3D-EFGH\nThanks",
            "我的验证码是AB3D-EFGH。",
            "<b>AB3D-EFGH</b>",
        ] {
            assert_eq!(find_codes(text), expect, "{text:?}");
        }
    }

    #[test]
    fn ordinary_words_and_numbers_are_not_codes() {
        for text in [
            "GRATEFUL",
            "I am grateful for your help",
            "gra teful",
            "WXYZ-ABCD",
            "call me on 2345 6789",
            "23456789",
            "HELPDESK",
        ] {
            assert!(find_codes(text).is_empty(), "{text:?}");
            assert!(attempt_candidates(text).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn tokens_glued_to_their_neighbours_are_not_codes() {
        for text in [
            "[Case RD-7K3M9Q]",
            "RD-AB3DEFGH",
            "AB3DEFGH-X",
            "3F2A9BC4-1234-5678-9ABC-DEF012345678",
            "ab3defgh@example.org",
            "https://example.org/ab3defgh",
            "https://example.org/ab3d-efgh/x",
            "file ab3defgh.txt",
            "AB2C-D3EF-GH4J",
            "licence AB2C D3EF GH4J",
            "xAB3DEFGH",
            "AB3DEFGHx",
            "éAB3DEFGH",
            "AB3D\nEFGH",
            "AB3D -- EFGH",
            "AB3D, EFGH",
        ] {
            assert!(
                find_codes(text).is_empty(),
                "{text:?} gave {:?}",
                find_codes(text)
            );
        }
    }

    #[test]
    fn candidates_are_distinct_and_split_forms_come_first() {
        let text = "ref XK7P9QAB, my code AB3D-EFGH (AB3D EFGH), again ab3defgh";
        assert_eq!(find_codes(text), vec!["XK7P-9QAB", "AB3D-EFGH"]);
        assert_eq!(attempt_candidates(text), vec!["AB3D-EFGH", "XK7P-9QAB"]);
    }

    #[test]
    fn check_codes_verifies_the_right_code_among_others() {
        let stored = code_mac_for(KEY, "RD-1", 1, "AB3D-EFGH");
        let text = "Hi, the code is ab3d efgh, my order was XK7P9QAB";
        assert_eq!(
            check_codes(KEY, "RD-1", 1, &stored, &attempt_candidates(text), 5),
            CodeCheck::Matched { wrong_before: 0 }
        );
    }

    #[test]
    fn check_codes_spends_one_attempt_per_distinct_wrong_code_and_no_more_than_left() {
        let stored = code_mac_for(KEY, "RD-1", 1, "AB3D-EFGH");
        let guesses = "AB3D-EFGJ AB3D-EFGK, AB3D-EFGL; AB3D-EFGJ";
        assert_eq!(
            check_codes(KEY, "RD-1", 1, &stored, &attempt_candidates(guesses), 5),
            CodeCheck::Wrong { attempts: 3 }
        );
        assert_eq!(
            check_codes(KEY, "RD-1", 1, &stored, &attempt_candidates(guesses), 2),
            CodeCheck::Wrong { attempts: 2 }
        );
        let right_last = "AB3D-EFGJ, AB3D-EFGH";
        assert_eq!(
            check_codes(KEY, "RD-1", 1, &stored, &attempt_candidates(right_last), 1),
            CodeCheck::Wrong { attempts: 1 }
        );
        assert_eq!(
            check_codes(KEY, "RD-1", 1, &stored, &attempt_candidates(right_last), 0),
            CodeCheck::Wrong { attempts: 0 }
        );
    }

    #[test]
    fn check_codes_ignores_text_without_a_code() {
        let stored = code_mac_for(KEY, "RD-1", 1, "AB3D-EFGH");
        for text in ["", "I am GRATEFUL, thanks", "Case RD-7K3M9Q", "any update?"] {
            assert_eq!(
                check_codes(KEY, "RD-1", 1, &stored, &attempt_candidates(text), 5),
                CodeCheck::NoAttempt
            );
        }
    }

    #[test]
    fn redaction_removes_every_written_form_of_a_code() {
        let text = "code: ab3d efgh, again AB3D-EFGH and ＡＢ３ＤＥＦＧＨ, case RD-7K3M9Q";
        assert_eq!(
            redact_codes(text, "[code]"),
            "code: [code], again [code] and [code], case RD-7K3M9Q"
        );
        assert_eq!(redact_codes("nothing here", "[code]"), "nothing here");
    }

    fn check_answers(expect: OwnerAnswer, texts: &[&str]) {
        for text in texts {
            assert_eq!(owner_answer(text), expect, "{text:?}");
        }
    }

    #[test]
    fn owner_confirmations_in_seven_languages_read_as_confirmed() {
        check_answers(
            OwnerAnswer::Confirmed,
            &[
                "Yes, that was me",
                "yes",
                "YES!",
                "Yep. Thanks",
                "It was me.",
                "Hi,\n\nthat was me, thanks for checking.\n\nBest,\nJane",
                "No worries, that was me",
                "No problem, it was me",
                "I requested this, please proceed",
                "That's correct",
                "It’s me",
                "Sí, fui yo",
                "si, fui yo",
                "Fui yo",
                "Oui, c'était moi",
                "C’était moi",
                "c'est bien moi",
                "Ja, das war ich",
                "Das war ich.",
                "Sim, fui eu",
                "fui eu mesmo",
                "是的，是我申请的",
                "是我",
                "Да, это был я",
                "это я",
            ],
        );
    }

    #[test]
    fn owner_denials_in_seven_languages_read_as_denied() {
        check_answers(
            OwnerAnswer::Denied,
            &[
                "No, this wasn't me",
                "no",
                "No.",
                "Nope",
                "I did not ask for this",
                "I didn't request this",
                "I didnt request this!!",
                "That was not me",
                "it was NOT me",
                "Not me.",
                "I never requested anything",
                "I never said it was me",
                "Someone is pretending it was me",
                "No, no fui yo",
                "No lo solicité",
                "Non, ce n'était pas moi",
                "Ce n’est pas moi",
                "Nein, das war ich nicht",
                "Das war ich nicht",
                "Não fui eu",
                "nao fui eu",
                "不是我",
                "我没有申请",
                "Нет, это не я",
                "это не я",
            ],
        );
    }

    #[test]
    fn denial_wins_when_both_appear() {
        check_answers(
            OwnerAnswer::Denied,
            &[
                "Yes... wait, no, that was not me",
                "That's correct... no wait, not me",
                "Yes I got it, but I did not request this",
                "It was me. Actually, no.",
                "Hello\n\nThanks\n\nFor\n\nThe\n\nMail\n\nBut I didn't ask for this",
            ],
        );
    }

    #[test]
    fn unclear_replies_are_neither() {
        check_answers(
            OwnerAnswer::Unclear,
            &[
                "",
                "   ",
                "What is this about?",
                "Thanks for the message",
                "> yes, that was me",
                "这是我的邮箱",
                "Please call me",
                "Lorem\nipsum\ndolor\nsit\namet\nconsectetur\nyes it was me",
            ],
        );
    }

    #[test]
    fn a_message_stuffed_with_codes_and_phrases_is_read_in_linear_time() {
        // Quadratic scanning would take hours on these; linear takes
        // milliseconds, so the bound is loose enough for a busy machine.
        let mut codes = String::new();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20_000 {
            codes.push_str(&generate_code(&mut rng));
            codes.push(' ');
        }
        let phrases = "not that it was me ".repeat(20_000);
        let started = std::time::Instant::now();
        assert!(find_codes(&codes).len() > 19_000);
        assert_eq!(attempt_candidates(&codes).len(), find_codes(&codes).len());
        assert_eq!(owner_answer(&phrases), OwnerAnswer::Denied);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn masks_show_only_first_letters_and_the_tld() {
        assert_eq!(mask_address("jane.doe@example.org"), "j***@e***.org");
        assert_eq!(
            mask_address("Jane <Jane@Mail.Example.co.uk>"),
            "j***@m***.uk"
        );
        assert_eq!(mask_address("x@localhost"), "x***@l***");
        assert_eq!(mask_address("élodie@exemple.fr"), "é***@e***.fr");
    }

    #[test]
    fn masks_survive_odd_input() {
        assert_eq!(mask_address(""), "***");
        assert_eq!(mask_address("no at sign"), "***");
        assert_eq!(mask_address("@"), "***@***");
        assert_eq!(mask_address("a@."), "a***@***");
        assert_eq!(mask_address("\r\n@\r\n"), "***@***");
        assert_eq!(mask_address("\u{7}evil@\nexample.org"), "****@****.org");
        assert_eq!(mask_address("a@b.c\r\nBcc: x"), "a***@b***.***");
        assert_eq!(mask_address("\"a@b\"@example.org"), "****@e***.org");
    }

    #[test]
    fn requester_mask_keeps_a_plain_domain_only() {
        assert_eq!(
            mask_requester_for_owner("Mallory <mallory@Evil.Example>"),
            "m***@evil.example"
        );
        assert_eq!(mask_requester_for_owner("m@bad domain\r\n"), "m***@***");
        assert_eq!(mask_requester_for_owner("nothing"), "***");
    }
}
