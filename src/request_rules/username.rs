//! The account username, or the address to look the account up by.
//!
//! Strategies run from the most to the least explicit: the form's username
//! section, `Username: x` labels, a pasted system mail ("your account
//! 'x'"), prose ("my username is x"), a profile URL, the subject. The first
//! valid name wins; the first address seen where a name belongs becomes
//! the lookup address (support addresses never do).

use once_cell::sync::Lazy;
use regex::Regex;

use super::sections::{Document, SectionKind};

/// What was found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// A cleaned username.
    pub username: Option<String>,
    /// An address given where the username belongs.
    pub lookup_address: Option<String>,
}

/// A value as written, possibly wrapped in quotes or brackets.
const TOKEN: &str = r#"(https?://\S+|(?:[`'"«\[(<*]+\s*[^`'"»\])>*\n]{1,60}?\s*[`'"»\])>*]+)|[^\s,;:!?。，、；：！？（）]+)"#;

/// `Username: x`, `PyPI username = [x]`, and translations, at line start.
static LABEL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?im)^\s*(?:[-*]\s*)?(?:\*\*)?(?:pypi\s+)?(?:user\s*name|username|user|account(?:\s+name)?|nombre\s+de\s+usuario|usuario|nome\s+de\s+usu[aá]rio|usu[aá]rio|nom\s+d'utilisateur|identifiant|benutzername|имя\s+пользователя|логин|用户名|账号|帐号)(?:\*\*)?\s*[:=]\s*(?:\*\*)?{TOKEN}"
    ))
    .expect("valid regex")
});

/// The words that can only introduce a username, in the languages read.
const NAME_WORD: &str = r"(?:\b(?:user\s*name|username|user\s+id|login\s+name|account\s+name|nombre\s+de\s+usuario|mi\s+usuario|nome\s+de\s+usu[aá]rio|meu\s+usu[aá]rio|nom\s+d'utilisateur|benutzername|имя\s+пользователя|логин))";

/// "on PyPI" between the word and the name, in each language ("nombre de
/// usuario en PyPI es x" must not read "en").
const ON_PYPI: &str = r"(?:\s+(?:on|at|for|in|en|em|no|na|sur|de|bei|auf|im|на|в)\s+pypi)?";

/// "my username is x" and relatives: the name follows a word that can only
/// introduce a username and a copula or separator.
static PROSE_STRONG: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)(?:{NAME_WORD}{ON_PYPI}\s*(?:(?:is|was|es|era|é|est|ist|lautet)\b|:|=|-|—)|(?:用户名|账号|帳號)(?:是|为|:|=)?)\s*(?:called\s+|named\s+)?{TOKEN}"
    ))
    .expect("valid regex")
});

/// "username jodoe" with no copula: the next word is as often the rest of
/// the sentence ("the username field above"), so it must look like a name.
static PROSE_BARE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i){NAME_WORD}{ON_PYPI}\s+(?:called\s+|named\s+)?{TOKEN}"
    ))
    .expect("valid regex")
});

/// "registered under x@y": only ever an address to look the account up by
/// ("linked to particular libraries" names nothing).
static REGISTERED_UNDER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:registered|signed\s+up|linked)\s+(?:under|with|to)(?:\s+the)?(?:\s+(?:e-?mail|address))?\s+<?([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
        .expect("valid regex")
});

/// "account x", "user x": the word is also used in ordinary sentences, so
/// the name must look like one (quoted, or with a digit, dot, dash or
/// underscore).
static PROSE_WEAK: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:account|user|cuenta|conta|compte|konto|аккаунт\w*|учетн\w+\s+запис\w+)(?:[ \t]+(?:on|at)[ \t]+pypi)?(?:[ \t]*[:=][ \t]*|[ \t]+)(?:is[ \t]+|named[ \t]+|called[ \t]+)?{TOKEN}"
    ))
    .expect("valid regex")
});

/// The account name inside a pasted notification: "your PyPI account 'x'".
static SYSTEM_MAIL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"(?i)your\s+(?:pypi\s+)?account\s+['"`]([^'"`\s]{1,60})['"`]"#)
        .expect("valid regex")
});

/// A profile URL on any host: `/user/<name>/`.
static PROFILE_URL: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"https?://[^\s/]+/user/([A-Za-z0-9._-]+)").expect("valid regex"));

/// "for user x" and "of account x" in a subject line, where the words
/// around are few and the phrase can only introduce a name.
static SUBJECT_FOR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:for|of)\s+(?:the\s+)?(?:user|account)\s+{TOKEN}"
    ))
    .expect("valid regex")
});

/// Subjects such as "Account recovery for jodoe" or "Lost 2FA - jodoe".
static SUBJECT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)(?:recovery|2fa|access|locked\s+out|reset)(?:\s+request)?\s*(?:for|of|[-–:])\s*(?:user\s+|account\s+)?{TOKEN}"
    ))
    .expect("valid regex")
});

static VALID: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$").expect("valid regex")
});

static ADDRESS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$").expect("valid regex")
});

/// Words that follow "account"/"username" in sentences and are no name.
const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "my",
    "is",
    "was",
    "and",
    "or",
    "but",
    "to",
    "for",
    "of",
    "on",
    "in",
    "at",
    "it",
    "this",
    "that",
    "with",
    "without",
    "has",
    "have",
    "had",
    "been",
    "be",
    "name",
    "names",
    "username",
    "user",
    "account",
    "accounts",
    "pypi",
    "none",
    "n/a",
    "na",
    "unknown",
    "no",
    "yes",
    "same",
    "below",
    "above",
    "here",
    "there",
    "recovery",
    "please",
    "help",
    "locked",
    "lost",
    "access",
    "because",
    "since",
    "so",
    "as",
    "which",
    "who",
    "not",
    "also",
    "still",
    "again",
    "email",
    "e-mail",
    "address",
    "password",
    "and/or",
    "id",
    "login",
    "is:",
    "are",
    "were",
    "i",
    "me",
    "we",
    "you",
    "your",
    "our",
    "their",
    "his",
    "her",
    "its",
    "from",
    "by",
    "settings",
    "page",
    "security",
    "2fa",
    "information",
    "details",
    "request",
    "created",
    "registered",
    "associated",
    "linked",
    "via",
    "using",
    "if",
    "when",
    "then",
    "any",
    "all",
    "can",
    "cannot",
    "can't",
    "will",
    "would",
    "should",
    "could",
    "may",
    "might",
    "must",
    "does",
    "do",
    "did",
    "mit",
    "de",
    "la",
    "el",
    "es",
    "le",
    "une",
    "un",
    "ist",
    "der",
    "die",
    "das",
    "meu",
    "minha",
    "mi",
    "mon",
    "ma",
    "mein",
    "meine",
    "est",
    "é",
    "что",
    "на",
    "и",
    "owner",
    "holder",
    "redacted",
    "recover",
    "recovering",
    "back",
    "reset",
    "working",
    "blocked",
];

/// Runs the strategies in order.
pub(super) fn find(doc: &Document, subject: &str, ignore: &[String]) -> Found {
    let mut found = Found::default();
    let offer = |raw: &str, strict: bool, found: &mut Found| -> bool {
        match clean(raw, strict) {
            Some(Value::Name(name)) if found.username.is_none() => {
                found.username = Some(name);
                true
            }
            Some(Value::Address(addr)) => {
                if found.lookup_address.is_none() && !ignore.contains(&addr) {
                    found.lookup_address = Some(addr);
                }
                false
            }
            _ => false,
        }
    };
    // 1. The form's username section: its first meaningful line.
    let answer = doc.answers(SectionKind::Username);
    if let Some(line) = answer.lines().map(str::trim).find(|l| !l.is_empty()) {
        let value = LABEL
            .captures(line)
            .and_then(|c| c.get(1))
            .map_or(line, |m| m.as_str());
        offer(value, false, &mut found);
    }
    if found.username.is_some() {
        return found;
    }
    // 2. Labels, 3. pasted notifications, 4. prose, 5. profile URLs.
    let text = &doc.text;
    let passes: [(&Lazy<Regex>, bool); 7] = [
        (&LABEL, false),
        (&SYSTEM_MAIL, false),
        (&PROSE_STRONG, false),
        (&PROSE_BARE, true),
        (&REGISTERED_UNDER, false),
        (&PROSE_WEAK, true),
        (&PROFILE_URL, false),
    ];
    for (re, strict) in passes {
        for caps in re.captures_iter(text) {
            if let Some(m) = caps.get(1) {
                if offer(m.as_str(), strict, &mut found) {
                    return found;
                }
            }
        }
    }
    // 6. The subject, last: it is often generic ("Account recovery").
    let subject_passes = [
        (&*LABEL, false),
        (&*PROSE_STRONG, false),
        (&*PROSE_BARE, true),
        (&*SUBJECT_FOR, false),
        (&*SUBJECT, true),
    ];
    for (re, strict) in subject_passes {
        for caps in re.captures_iter(subject) {
            if let Some(m) = caps.get(1) {
                if offer(m.as_str(), strict, &mut found) {
                    return found;
                }
            }
        }
    }
    found
}

/// A cleaned value.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    Name(String),
    Address(String),
}

/// Strips quotes, backticks, brackets, markdown and stray spaces; turns
/// `username=[x]` and profile URLs into `x`; tells names from addresses.
/// `strict` asks for a name that looks like one unless it was quoted.
fn clean(raw: &str, strict: bool) -> Option<Value> {
    const WRAP: &[char] = &[
        '`', '\'', '"', '«', '»', '[', ']', '(', ')', '<', '>', '*', '{', '}',
    ];
    let trimmed = raw.trim();
    let wrapped = trimmed.starts_with(WRAP);
    let mut value = trimmed.trim_matches(WRAP).trim();
    // "username=[x]" pasted whole into the answer.
    if let Some(rest) = value.split_once(['=', ':']).and_then(|(k, v)| {
        let k = k.trim().to_lowercase();
        (k.ends_with("username") || k.ends_with("user") || k == "login").then_some(v)
    }) {
        value = rest.trim().trim_matches(WRAP).trim();
    }
    if let Some(caps) = PROFILE_URL.captures(value) {
        return caps.get(1).map(|m| Value::Name(m.as_str().to_string()));
    }
    // Inside quotes a space is a slip ("` jodoe `"); outside, the first
    // word is the name and the rest is commentary ("jodoe (old account)").
    // A quoted phrase ("(same as my github username)") is commentary, not
    // a name: a name with a slip has at most one stray inner space, and
    // running text ("account (old one)") gets none.
    let words = value.split_whitespace().count();
    if wrapped && (words > 2 || (strict && words > 1)) {
        return None;
    }
    let value: String = if wrapped {
        value.split_whitespace().collect()
    } else {
        value.split_whitespace().next().unwrap_or("").to_string()
    };
    let value = value
        .trim_matches(WRAP)
        .trim_start_matches('@')
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .trim_matches(WRAP);
    if ADDRESS.is_match(value) {
        return Some(Value::Address(value.to_lowercase()));
    }
    if !VALID.is_match(value) || STOP.contains(&value.to_lowercase().as_str()) {
        return None;
    }
    let looks_like_name = value
        .chars()
        .any(|c| c.is_ascii_digit() || "._-".contains(c))
        || value.chars().skip(1).any(|c| c.is_ascii_uppercase());
    // Digits alone in running text are SMTP codes, counts and years.
    let digits_only = value.chars().all(|c| c.is_ascii_digit());
    if strict && !wrapped && (!looks_like_name || digits_only) {
        return None;
    }
    Some(Value::Name(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Option<String> {
        match clean(raw, false) {
            Some(Value::Name(n)) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn wrappers_and_stray_spaces_are_removed() {
        assert_eq!(name("` jodoe `").as_deref(), Some("jodoe"));
        assert_eq!(name("'jodoe'").as_deref(), Some("jodoe"));
        assert_eq!(name("username=[jodoe]").as_deref(), Some("jodoe"));
        assert_eq!(name("**jo_doe**").as_deref(), Some("jo_doe"));
        assert_eq!(name("jodoe (my old account)").as_deref(), Some("jodoe"));
    }

    #[test]
    fn placeholders_and_sentence_words_are_not_names() {
        for raw in ["N/A", "the", "_No response_", "is", ""] {
            assert_eq!(name(raw), None, "{raw}");
        }
    }

    #[test]
    fn names_are_not_read_out_of_longer_words_or_bounces() {
        let doc = Document::parse("Final-Recipient: theusername@mail.example\nmailbox for user is full\nnot our user\n550 5.1.1");
        let found = find(&doc, "", &[]);
        assert_eq!(found.username, None);
    }

    #[test]
    fn a_profile_url_gives_its_name() {
        assert_eq!(
            name("https://index.example/user/jodoe/").as_deref(),
            Some("jodoe")
        );
    }

    #[test]
    fn weak_prose_needs_a_name_shaped_value() {
        assert_eq!(clean("locked", true), None);
        assert_eq!(clean("jodoe", true), None);
        assert_eq!(clean("jo-doe", true), Some(Value::Name("jo-doe".into())));
        assert_eq!(clean("`jodoe`", true), Some(Value::Name("jodoe".into())));
    }

    fn username_in(text: &str) -> Option<String> {
        find(&Document::parse(text), "", &[]).username
    }

    #[test]
    fn a_preposition_before_pypi_is_not_the_name() {
        assert_eq!(
            username_in("Mi nombre de usuario en PyPI es lucia-fdz. Perdí el teléfono.").as_deref(),
            Some("lucia-fdz")
        );
        assert_eq!(
            username_in("Meu nome de usuário no PyPI é joao_s.").as_deref(),
            Some("joao_s")
        );
    }

    #[test]
    fn no_name_is_invented_from_commentary() {
        // The section holds an address; prose only talks about the field.
        let form = "### PyPI Username\n\n`jo@mail.example`\n\n### Reason for request\n\nI don't remember my username. I've put my account email in the PyPI Username field above.";
        let found = find(&Document::parse(form), "", &[]);
        assert_eq!(found.username, None);
        assert_eq!(found.lookup_address.as_deref(), Some("jo@mail.example"));
        assert_eq!(
            username_in("I want my pypi account (same as my github username) back."),
            None
        );
    }

    #[test]
    fn a_bare_name_after_the_word_still_counts_when_it_looks_like_one() {
        assert_eq!(
            username_in("my username jo-doe is locked").as_deref(),
            Some("jo-doe")
        );
        assert_eq!(
            username_in("my username is jodoe").as_deref(),
            Some("jodoe")
        );
        assert_eq!(username_in("用户名是jodoe").as_deref(), Some("jodoe"));
        let form = "### PyPI Username\n\nnousername\n\n### Reason for request\n\nI accidentally lost my recovery code, But I have the pypi token";
        assert_eq!(username_in(form).as_deref(), Some("nousername"));
    }
}
