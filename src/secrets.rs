//! Secrets posted by mistake (API tokens, recovery codes, TOTP seeds,
//! passwords): found and redacted before anything is stored in clear.
//!
//! Owns: recognising those secrets in free text and replacing each with
//! `[redacted <kind>]`. Does not own: deciding what to tell the requester
//! (templates do that from [`Redacted::found`]) or the redacted copy of the
//! raw message the store keeps (`at_rest`).
//!
//! Pure; never panics. Detectors are deliberately shaped, not generic
//! "high entropy" guesses: a support desk quotes usernames, package names,
//! case ids (`RD-7K3M9Q`) and challenge codes (`ABCD-EF23`) back to people,
//! and redacting those would make replies useless.

use once_cell::sync::Lazy;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// A kind of secret the requester should revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// An API token such as `pypi-AgE…`.
    ApiToken,
    /// A 2FA recovery code.
    RecoveryCode,
    /// A TOTP seed or `otpauth://` URI.
    TotpSeed,
    /// A password stated in the text.
    Password,
}

impl SecretKind {
    /// Stable snake_case code used in JSON and templates.
    pub fn code(self) -> &'static str {
        match self {
            SecretKind::ApiToken => "api_token",
            SecretKind::RecoveryCode => "recovery_code",
            SecretKind::TotpSeed => "totp_seed",
            SecretKind::Password => "password",
        }
    }
}

/// Text with secrets replaced by `[redacted <kind>]`, and what was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redacted {
    /// The text, safe to store, show and quote.
    pub text: String,
    /// Kinds found, no repeats, in order of first appearance.
    pub found: Vec<SecretKind>,
}

/// `otpauth://` URIs carry the seed in their `secret=` parameter; the whole
/// URI goes.
static OTPAUTH: Lazy<Regex> =
    Lazy::new(|| Regex::new(r#"(?i)otpauth(?:-migration)?://[^\s<>"')\]]+"#).expect("valid regex"));

/// Package index tokens (`pypi-…`, `testpypi-…`), bare macaroons (`AgE…`
/// is the base64 of their version header), and the forge tokens people
/// paste next to them.
static API_TOKEN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"\b(?:(?:test)?pypi-[A-Za-z0-9_\-]{16,}|AgE[A-Za-z0-9_\-]{40,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_\-]{20,})",
    )
    .expect("valid regex")
});

/// A stated password: the value after "password is", "password:", and
/// their translations. A verb or a colon is required, so "password reset"
/// or "password 2FA" never count. Only the value is redacted, so the sentence still
/// reads ("my password is [redacted password]").
static PASSWORD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"(?i)\b(?:password|passwd|passcode|pwd|passwort|kennwort|contraseña|contrasena|mot\s+de\s+passe|senha|пароль|密码|密碼)(?:\s+(?:is|was|ist|war|lautet|es|era|est|était|é|—|-)\s+|\s*[:=：]\s*)["'`“‘«]?([^\s"'`”’»]{3,64})"#,
    )
    .expect("valid regex")
});

/// A password named loosely ("my password, I think it was X"): only a
/// value that looks like a password (letters with digits or symbols)
/// counts, since the words in between could be anything.
static PASSWORD_LOOSE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"(?i)\b(?:password|passwort|contraseña|senha|mot\s+de\s+passe|пароль)\b[^.\n]{0,40}?\b(?:it|which|that)\s+(?:is|was)\s+["'`]?([^\s"'`]{6,64})"#)
        .expect("valid regex")
});

/// PyPI recovery codes: 16 lower-case hex characters.
static RECOVERY_CODE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?i)\b[0-9a-f]{16}\b").expect("valid regex"));

/// Base32 TOTP seeds, either in one run or in the groups of four some
/// authenticator apps display.
static BASE32_SEED: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\b(?:[A-Z2-7]{16,64}|[a-z2-7]{16,64}|(?:[A-Z2-7]{4} ){3,15}[A-Z2-7]{4}|(?:[a-z2-7]{4} ){3,15}[a-z2-7]{4})\b")
        .expect("valid regex")
});

/// Words that follow "password is" in a sentence and are not a password.
const NOT_A_PASSWORD: &[&str] = &[
    "not",
    "wrong",
    "lost",
    "forgotten",
    "forgot",
    "incorrect",
    "correct",
    "the",
    "same",
    "also",
    "still",
    "now",
    "reset",
    "expired",
    "invalid",
    "working",
    "rejected",
    "gone",
    "unknown",
    "none",
    "n/a",
    "and",
    "but",
    "for",
    "that",
    "this",
    "which",
    "because",
    "manager",
    "managers",
    "changed",
    "fine",
    "ok",
    "okay",
    "right",
    "known",
    "saved",
    "stored",
    "there",
    "here",
    "in",
    "on",
    "of",
    "to",
    "with",
    "without",
    "from",
    "never",
    "always",
    "being",
    "been",
    "too",
    "very",
    "really",
    "probably",
    "maybe",
    "and/or",
    "reset.",
    "field",
    "form",
    "page",
    "link",
    "email",
    "mail",
    "recovery",
    "you",
    "i",
    "it",
    "my",
    "your",
    "a",
    "an",
    "is",
    "was",
    "has",
    "have",
    "had",
    "login",
    "no",
    "yes",
    "nicht",
    "falsch",
    "vergessen",
    "incorrecta",
    "olvidada",
    "oublié",
    "perdu",
    "esquecida",
    "incorreta",
    "неверный",
    "забыл",
    "[redacted",
];

/// Finds and redacts secrets in `text`.
pub fn redact(text: &str) -> Redacted {
    redact_found(text).unwrap_or_else(|| Redacted {
        text: text.to_string(),
        found: Vec::new(),
    })
}

/// Like [`redact`], but `None` when `text` holds no secret: no copy of a
/// clean text is made (a pasted 10 MB attachment was copied twice).
pub fn redact_found(text: &str) -> Option<Redacted> {
    let first = spans(text);
    if first.is_empty() {
        return None;
    }
    // One pass cannot see a secret glued to another one it is replacing
    // ("usernameotpauth://…"); passes repeat until nothing changes, so
    // redacting redacted text is a no-op. Each pass only shortens the
    // text's secrets, and a few passes always suffice.
    let mut result = replace(text, first);
    for _ in 0..MAX_PASSES {
        // Nothing left to find: done, without a copy to compare.
        let more = spans(&result.text);
        if more.is_empty() {
            break;
        }
        let again = replace(&result.text, more);
        if again.text == result.text {
            break;
        }
        for kind in again.found {
            if !result.found.contains(&kind) {
                result.found.push(kind);
            }
        }
        result.text = again.text;
    }
    Some(result)
}

/// Upper bound on extra redaction passes (pathological input only).
const MAX_PASSES: usize = 4;

/// Where the secrets of `text` are, in order, without overlaps.
fn spans(text: &str) -> Vec<(usize, usize, SecretKind)> {
    let mut spans: Vec<(usize, usize, SecretKind)> = Vec::new();
    let mut add = |start: usize, end: usize, kind: SecretKind| {
        // Earlier detectors are more specific; a later overlapping match
        // is a piece of something already redacted.
        if !spans.iter().any(|&(s, e, _)| start < e && s < end) {
            spans.push((start, end, kind));
        }
    };
    for m in OTPAUTH.find_iter(text) {
        add(m.start(), m.end(), SecretKind::TotpSeed);
    }
    for m in API_TOKEN.find_iter(text) {
        add(m.start(), m.end(), SecretKind::ApiToken);
    }
    for caps in PASSWORD.captures_iter(text) {
        if let Some(value) = caps.get(1) {
            let trimmed = value
                .as_str()
                .trim_end_matches(['.', ',', ';', '!', '?', ')']);
            if looks_like_password(trimmed) {
                add(
                    value.start(),
                    value.start() + trimmed.len(),
                    SecretKind::Password,
                );
            }
        }
    }
    for caps in PASSWORD_LOOSE.captures_iter(text) {
        if let Some(value) = caps.get(1) {
            let trimmed = value.as_str().trim_end_matches(['.', ',', ';', ')']);
            if looks_like_password(trimmed) && password_shaped(trimmed) {
                add(
                    value.start(),
                    value.start() + trimmed.len(),
                    SecretKind::Password,
                );
            }
        }
    }
    for m in RECOVERY_CODE.find_iter(text) {
        if is_recovery_code(m.as_str()) && standalone(text, m.start(), m.end()) {
            add(m.start(), m.end(), SecretKind::RecoveryCode);
        }
    }
    for m in BASE32_SEED.find_iter(text) {
        if is_base32_seed(m.as_str()) && standalone(text, m.start(), m.end()) {
            add(m.start(), m.end(), SecretKind::TotpSeed);
        }
    }
    spans.sort_by_key(|&(start, _, _)| start);
    spans
}

/// `text` with each span replaced by its marker.
fn replace(text: &str, spans: Vec<(usize, usize, SecretKind)>) -> Redacted {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut pos = 0;
    for (start, end, kind) in spans {
        out.push_str(&text[pos..start]);
        out.push_str("[redacted ");
        out.push_str(kind.code());
        out.push(']');
        pos = end;
        if !found.contains(&kind) {
            found.push(kind);
        }
    }
    out.push_str(&text[pos..]);
    Redacted { text: out, found }
}

fn looks_like_password(value: &str) -> bool {
    let lower = value.to_lowercase();
    value.chars().count() >= 4
        && !NOT_A_PASSWORD.contains(&lower.as_str())
        && !value.starts_with('[')
        // "password: ***" or "password: ........" hides nothing.
        && value.chars().any(|c| c.is_alphanumeric())
}

/// Letters together with digits or symbols: "Sunfl0wer!88", not "lost".
fn password_shaped(value: &str) -> bool {
    let letters = value.chars().any(char::is_alphabetic);
    let others = value
        .chars()
        .any(|c| c.is_ascii_digit() || c.is_ascii_punctuation());
    letters && others
}

/// Sixteen hex characters with both letters and digits: a run of digits
/// is a number (a phone, an order id), a run of letters a word.
fn is_recovery_code(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit()) && s.chars().any(|c| c.is_ascii_alphabetic())
}

/// Base32 with several digits 2–7 and several letters: English words and
/// shouted sentences have no digits, so they never qualify.
fn is_base32_seed(s: &str) -> bool {
    let digits = s.chars().filter(|c| ('2'..='7').contains(c)).count();
    let letters = s.chars().filter(|c| c.is_ascii_alphabetic()).count();
    digits >= 2 && letters >= 6
}

/// True when a code-shaped match is a word of its own, not a piece of a
/// larger identifier: Message-IDs (`<0000014a…-788e…@host>`), SMTP ids
/// (`id 1a2b….222`), DKIM selectors (`s=…;`), addresses and URLs all glue
/// their hex and base32 runs to `-`, `.`, `@`, `=` or `/`.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    // `[` and `]` too: a run glued to a redaction marker was glued to the
    // secret that marker replaced, and must stay as it was on a second pass.
    const GLUE: &[char] = &[
        '-', '_', '.', '@', '/', '=', '+', '%', '#', '&', '<', '>', '[', ']',
    ];
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let next = after.next();
    let glued_before = before.is_some_and(|c| GLUE.contains(&c) || c.is_alphanumeric());
    // A full stop ends a sentence when whitespace or the end follows it.
    let glued_after = match next {
        Some('.') => after.next().is_some_and(|c| !c.is_whitespace()),
        Some(c) => GLUE.contains(&c) || c.is_alphanumeric(),
        None => false,
    };
    !glued_before && !glued_after && !inside_url(text, start)
}

/// True when the match sits inside a URL (commit hashes and ids in links
/// are not secrets).
fn inside_url(text: &str, at: usize) -> bool {
    // Walk back by chars, not bytes: the separator may be a multi-byte
    // space (U+00A0, U+3000) and the slice must start on a boundary.
    let word_start = text[..at]
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || c == '<' || c == '(' || c == '"')
        .map_or(0, |(i, c)| i + c.len_utf8());
    text[word_start..at].contains("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_not_copied_and_a_secret_is_redacted_as_by_redact() {
        assert!(redact_found("I lost my phone; my username is jo.").is_none());
        let text = "my token pypi-AgEIcHlwaS5vcmcCJGI4ZTU5ZmJhLWY0NmUtNDVkYy04NjY2 leaked";
        let found = redact_found(text).expect("a token is a secret");
        assert_eq!(found, redact(text));
        assert_eq!(found.found, vec![SecretKind::ApiToken]);
        assert!(!found.text.contains("pypi-AgE"), "{}", found.text);
    }

    #[test]
    fn an_index_api_token_is_redacted() {
        let r = redact("my token pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmFiY2RlZmFiY2RlZg and more");
        assert_eq!(r.text, "my token [redacted api_token] and more");
        assert_eq!(r.found, vec![SecretKind::ApiToken]);
    }

    #[test]
    fn a_list_of_recovery_codes_is_redacted_code_by_code() {
        let r = redact("codes:\n1a2b3c4d5e6f7a8b\n9f8e7d6c5b4a3f2e\n");
        assert_eq!(
            r.text,
            "codes:\n[redacted recovery_code]\n[redacted recovery_code]\n"
        );
        assert_eq!(r.found, vec![SecretKind::RecoveryCode]);
    }

    #[test]
    fn totp_seeds_and_otpauth_uris_are_redacted() {
        let r = redact("otpauth://totp/PyPI:jo?secret=JBSWY3DPEHPK3PXP&issuer=PyPI");
        assert_eq!(r.text, "[redacted totp_seed]");
        let r = redact("seed JBSW Y3DP EHPK 3PXP ok");
        assert_eq!(r.text, "seed [redacted totp_seed] ok");
        assert_eq!(r.found, vec![SecretKind::TotpSeed]);
    }

    #[test]
    fn stated_passwords_are_redacted_but_not_words_about_them() {
        assert_eq!(
            redact("my password is hunter22!").text,
            "my password is [redacted password]!"
        );
        assert_eq!(
            redact("Password: `S3cret-Pass`").text,
            "Password: `[redacted password]`"
        );
        for clean in [
            "my password is not working",
            "I forgot my password.",
            "password reset link",
            "my password is lost",
            "I lost my password 2FA device",
        ] {
            assert_eq!(redact(clean).found, vec![], "{clean}");
        }
    }

    #[test]
    fn a_loosely_stated_password_is_redacted_when_it_looks_like_one() {
        let r = redact("my password, I think it was Sunfl0wer!88 but");
        assert_eq!(
            r.text,
            "my password, I think it was [redacted password] but"
        );
        assert!(redact("my password, I think it was stolen")
            .found
            .is_empty());
    }

    #[test]
    fn found_kinds_are_listed_in_order_of_appearance() {
        let r = redact("password: Tr0ub4dor and pypi-AgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(r.found, vec![SecretKind::Password, SecretKind::ApiToken]);
    }

    #[test]
    fn ordinary_words_ids_and_challenge_codes_survive() {
        for clean in [
            "Case RD-7K3M9Q, code ABCD-EF23, package requests-toolbelt",
            "username jodoe2024 and project django-rest-framework",
            "PLEASEHELPMEQUICKLY I LOST MY AUTHENTICATOR",
            "commit https://github.com/jo/x/commit/1a2b3c4d5e6f7a8b9c0d",
            "order 1234567890123456 and deadbeefdeadbeef",
            "Message-ID: <0000014a1b2c3d4e-788e31c8-2be1@mail.example>",
            "with SMTP id 1a2b3c4d5e6f7a8b.222; s=ug7nbtf4gccmlpwj322ax3p6ow6yfsug; d=x",
            "Return-Path: 0000014a1b2c3d4e-788e@bounces.example",
        ] {
            let r = redact(clean);
            assert_eq!(r.text, clean);
            assert!(r.found.is_empty(), "{clean}: {:?}", r.found);
        }
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "",
            "password",
            "password:",
            "пароль: ",
            "密码：é",
            "otpauth://",
            "\u{3000}1a2b3c4d5e6f7a8b",
            "x\u{a0}1a2b3c4d5e6f7a8b\u{3000}JBSWY3DPEHPK3PXP",
            "https://x\u{3000}1a2b3c4d5e6f7a8b",
        ] {
            let _ = redact(s);
        }
    }
}
