//! Short answers read in context: "Yes.", "yes", "Yes, I can still read
//! it.", "No", "Sí, claro" answer the one yes/no question a case has open.
//! The field rules cannot read them (nothing in "Yes." says what it is
//! about); the case knows which question it asked.

use crate::request::{Claim, Field, RequestFields, Tick};

/// A short yes or no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
}

/// The questions of the required fields that a plain yes or no answers.
pub const YES_NO_FIELDS: [Field; 3] = [
    Field::EmailAccess,
    Field::CodeOfConduct,
    Field::DelayAcknowledged,
];

/// At most this many words on the answer's line: longer prose is for the
/// field rules, which read it better than a leading word.
const MAX_WORDS: usize = 10;

/// At most this many non-empty lines in the whole new text (the answer, a
/// thanks and a name).
const MAX_LINES: usize = 4;

const YES: &[&str] = &[
    "yes",
    "yep",
    "yeah",
    "yup",
    "sure",
    "correct",
    "indeed",
    "affirmative",
    "sí",
    "si",
    "claro",
    "correcto",
    "efectivamente",
];
const NO: &[&str] = &["no", "nope", "negative", "nah"];
/// Words that turn a leading "yes" into something else ("Yes, I cannot").
const NEGATIONS: &[&str] = &[
    "not", "cannot", "can't", "cant", "don't", "dont", "no", "never", "lost", "nunca", "ya",
];

/// The short yes or no of a new text, if that is all it is. Quoted lines
/// and everything from a quote header or signature on are ignored.
pub fn short_answer(text: &str) -> Option<YesNo> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !starts_quote_or_signature(l))
        .filter(|l| !l.is_empty() && !l.starts_with('>'))
        .collect();
    let first = lines.first()?;
    if lines.len() > MAX_LINES {
        return None;
    }
    let words: Vec<String> = first
        .split(|c: char| c.is_whitespace() || ",.!;:¡¿".contains(c))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let lead = words.first()?.as_str();
    if words.len() > MAX_WORDS {
        return None;
    }
    let rest = &words[1..];
    let negated = rest
        .iter()
        .any(|w| NEGATIONS.contains(&w.as_str()) || w.ends_with("n't"));
    if YES.contains(&lead) {
        return (!negated).then_some(YesNo::Yes);
    }
    if NO.contains(&lead) {
        return Some(YesNo::No);
    }
    None
}

fn starts_quote_or_signature(line: &str) -> bool {
    let lower = line.to_lowercase();
    line == "--"
        || line.starts_with("-----")
        || line.starts_with("___")
        || (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("el ") && lower.ends_with("escribió:"))
        || lower.starts_with("from:")
        || lower.starts_with("de:")
}

/// The one yes/no question among `missing`, if exactly one is open.
pub fn single_open_question(missing: &[Field]) -> Option<Field> {
    let mut open = missing
        .iter()
        .copied()
        .filter(|f| YES_NO_FIELDS.contains(f));
    let first = open.next()?;
    open.next().is_none().then_some(first)
}

/// Records `answer` as the answer to `field`.
pub fn answer(fields: &mut RequestFields, field: Field, answer: YesNo) {
    let yes = answer == YesNo::Yes;
    let tick = if yes { Tick::Stated } else { Tick::Refused };
    match field {
        Field::EmailAccess => fields.claims_email_access = if yes { Claim::Yes } else { Claim::No },
        Field::CodeOfConduct => fields.agreed_code_of_conduct = tick,
        Field::DelayAcknowledged => fields.acknowledged_delay = tick,
        _ => {}
    }
}

/// The fields whose value differs between `before` and `after`, in
/// [`Field::ALL`] order: what a reply changed, for staff.
pub fn changed_fields(before: &RequestFields, after: &RequestFields) -> Vec<Field> {
    Field::ALL
        .into_iter()
        .filter(|field| match field {
            Field::Username => {
                before.username != after.username
                    || before.lookup_address != after.lookup_address
                    || before.forgot_username != after.forgot_username
            }
            Field::Reason => before.reasons != after.reasons,
            Field::EmailAccess => before.claims_email_access != after.claims_email_access,
            Field::CodeOfConduct => before.agreed_code_of_conduct != after.agreed_code_of_conduct,
            Field::DelayAcknowledged => before.acknowledged_delay != after.acknowledged_delay,
            Field::Proofs => before.proofs != after.proofs,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_polite_yes_and_no_are_read() {
        for text in [
            "Yes.",
            "yes",
            "Yes, I can still read it.",
            "YES!",
            "Sí, claro.",
            "si",
        ] {
            assert_eq!(short_answer(text), Some(YesNo::Yes), "{text}");
        }
        for text in [
            "No.",
            "no",
            "Nope, that mailbox is gone.",
            "No, ya no puedo.",
        ] {
            assert_eq!(short_answer(text), Some(YesNo::No), "{text}");
        }
    }

    #[test]
    fn the_quoted_question_and_a_signature_do_not_count() {
        let text = "Yes\r\n\r\nThanks,\r\nJo\r\n\r\nOn Mon, 23 Nov 2026 support wrote:\r\n> Whether you can still read the email address (yes or no)\r\n> no idea\r\n";
        assert_eq!(short_answer(text), Some(YesNo::Yes));
        assert_eq!(short_answer("> yes\r\n"), None);
    }

    #[test]
    fn prose_and_contradictions_are_left_to_the_field_rules() {
        for text in [
            "Yes, but I cannot read the linked mailbox.",
            "Yesterday I lost my phone",
            "Not sure.",
            "I think so? I will check tonight and write back to you tomorrow morning.",
            "",
            "yes\nline\nline\nline\nline\n",
        ] {
            assert_eq!(short_answer(text), None, "{text:?}");
        }
    }

    #[test]
    fn only_a_single_open_question_takes_a_short_answer() {
        assert_eq!(
            single_open_question(&[Field::Username, Field::EmailAccess]),
            Some(Field::EmailAccess)
        );
        assert_eq!(
            single_open_question(&[Field::EmailAccess, Field::CodeOfConduct]),
            None
        );
        assert_eq!(single_open_question(&[Field::Username]), None);
    }
}
