//! The extraction rules behind [`crate::request::extract`].
//!
//! Owns: reading recovery fields out of a message's new text: the form
//! sections people paste, the prose they write around them, and the
//! sentences that contradict a ticked box. Does not own: quote stripping
//! ([`crate::quote`]), redaction ([`crate::secrets`]), language detection
//! ([`crate::lang`]) or what to do with the fields (the case core).
//!
//! The rules are split by field: `sections` turns the text into a
//! `sections::Document` (form sections, ticks, prose), and `username`,
//! `reasons`, `claims` and `proofs` read it. Every rule is pure,
//! compiled once, and never panics; an empty [`RequestFields`] is a valid
//! answer, because asking for a missing field is cheap and misreading one
//! is not.

mod claims;
mod forgotten_username;
pub mod linear;
mod proofs;
pub mod reason_model;
mod reasons;
mod sections;
mod username;

use crate::request::RequestFields;

/// Reads recovery fields; see [`crate::request::extract`].
pub fn extract(new_text: &str, subject: &str, ignore: &[String]) -> RequestFields {
    extract_with(new_text, subject, ignore, reason_model::committed())
}

/// [`extract`] with another reason model: the generator's cross-validation
/// measures a model trained without the requests it reads.
pub fn extract_with(
    new_text: &str,
    subject: &str,
    ignore: &[String],
    model: &reason_model::Model,
) -> RequestFields {
    let ignore: Vec<String> = ignore.iter().map(|a| a.trim().to_lowercase()).collect();
    let original_subject = subject;
    let (doc, subject) = prepare(new_text, subject);

    let mut fields = RequestFields::default();
    let found = username::find(&doc, &subject, &ignore);
    fields.username = found.username;
    fields.lookup_address = found.lookup_address;
    fields.forgot_username = forgotten_username::said(&doc.text);
    fields.solved = claims::solved(&doc.text, &subject);
    let reading = reasons::Reading {
        solved: fields.solved,
        free_text_model: !is_reply_subject(original_subject) && !claims::status_chase(&doc),
    };
    fields.reasons = reasons::find(&doc, &subject, reading, model);
    fields.claims_email_access = claims::email_access(&doc, &fields.reasons);
    fields.agreed_code_of_conduct = claims::code_of_conduct(&doc);
    fields.acknowledged_delay = claims::delay(&doc);
    fields.proofs = proofs::find(&doc, &ignore, fields.lookup_address.as_deref());
    // "Mainly" a chase: a message that also brings a username, a reason, a
    // claim or a proof is new information and is answered as such.
    let brings_news = fields.username.is_some()
        || fields.lookup_address.is_some()
        || !fields.reasons.is_empty()
        || fields.claims_email_access != crate::request::Claim::Unknown
        || !fields.proofs.is_empty();
    fields.status_chase = !fields.solved && !brings_news && claims::status_chase(&doc);
    fields
}

/// The document and the subject the rules read: the text normalised, a
/// letter's own "Subject:" line moved to the subject, and a reply's
/// subject dropped.
fn prepare(new_text: &str, subject: &str) -> (sections::Document, String) {
    let text = normalise(new_text);
    let (own_subject, body) = sections::split_own_subject(&text);
    let body = sections::unwrap(&body);
    // A reply's subject ("Re: Lost my 2FA device") was written earlier, by
    // them or by us: it is history, like quoted text, and brings nothing new.
    let subject = if is_reply_subject(subject) {
        ""
    } else {
        subject
    };
    let subject = match own_subject {
        Some(own) => format!("{} {own}", normalise(subject)),
        None => normalise(subject),
    };
    (sections::Document::parse(&body), subject)
}

/// Reply prefixes of common clients and languages (RFC 5322 §3.6.5 "Re:"
/// and its translations).
fn is_reply_subject(subject: &str) -> bool {
    static REPLY: once_cell::sync::Lazy<regex::Regex> = once_cell::sync::Lazy::new(|| {
        regex::Regex::new(r"(?i)^\s*(?:re|aw|sv|vs|antw|ant|rif|r|odp|ynt|tr|réf|res|回复|回覆|答复|答覆|ответ|відповідь)\s*(?:\[\d+\])?\s*[:：]")
            .expect("valid regex")
    });
    REPLY.is_match(subject)
}

/// One spelling for the many ways mail clients and keyboards write the
/// same thing: CRLF, typographic quotes, accents used as quotes,
/// non-breaking and zero-width spaces, full-width colons.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' | '\u{00b4}' => {
                out.push('\'')
            }
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' => out.push('"'),
            '\u{00a0}' | '\u{2007}' | '\u{202f}' | '\u{3000}' | '\t' => out.push(' '),
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' => {}
            '\u{ff1a}' => out.push(':'),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Claim, Reason, Tick};

    const FORM: &str = "### PyPI Username\n\n`jodoe`\n\n### Reason for request\n\nI lost my phone with the authenticator app, and my recovery codes do not work.\n\n### Code of Conduct\n\n- [X] I agree to follow the PSF Code of Conduct\n\n### Acknowledgement\n\n- [x] I acknowledge that it may take a significant amount of time to process this request";

    #[test]
    fn a_pasted_form_yields_every_field() {
        let f = extract(FORM, "Account recovery", &[]);
        assert_eq!(f.username.as_deref(), Some("jodoe"));
        assert_eq!(
            f.reasons,
            vec![Reason::Lost2faDevice, Reason::RecoveryCodesLostOrNotWorking]
        );
        assert_eq!(f.agreed_code_of_conduct, Tick::Weak);
        assert_eq!(f.acknowledged_delay, Tick::Weak);
        assert!(!f.status_chase && !f.solved);
    }

    #[test]
    fn prose_that_contradicts_a_tick_wins() {
        let text = format!("{FORM}\n\nTo be honest I do not agree to the code of conduct.");
        assert_eq!(
            extract(&text, "", &[]).agreed_code_of_conduct,
            Tick::Refused
        );
    }

    #[test]
    fn an_address_where_the_username_belongs_is_a_lookup_address() {
        let f = extract("### PyPI Username\n\njo@example.org\n", "", &[]);
        assert_eq!(f.username, None);
        assert_eq!(f.lookup_address.as_deref(), Some("jo@example.org"));
    }

    #[test]
    fn the_support_address_is_never_taken() {
        let ignore = vec!["support@desk.example".to_string()];
        let f = extract("Username: support@desk.example", "", &ignore);
        assert_eq!(f.lookup_address, None);
        assert_eq!(f.username, None);
    }

    #[test]
    fn prose_requests_are_read() {
        let f = extract(
            "Hello, my username is \u{201c}jo.doe\u{201d}. I forgot my password and I still have access to my email.",
            "",
            &[],
        );
        assert_eq!(f.username.as_deref(), Some("jo.doe"));
        assert_eq!(f.reasons, vec![Reason::ForgotPassword]);
        assert_eq!(f.claims_email_access, Claim::Yes);
    }

    #[test]
    fn solved_and_status_chases_are_recognised() {
        assert!(extract("solved", "", &[]).solved);
        assert!(extract("Hi, any update on this?", "", &[]).status_chase);
        assert!(extract("¿Alguna novedad?", "", &[]).status_chase);
        assert!(!extract(FORM, "", &[]).status_chase);
        assert!(!extract("Any update? Also, my username is jodoe.", "", &[]).status_chase);
    }

    #[test]
    fn wrapped_agreements_are_read() {
        let f = extract(
            "Hello, my username is jodoe and I lost my phone. I agree to the\nCode of Conduct, and I understand\nthis could take a while.",
            "Lost 2FA",
            &[],
        );
        assert_eq!(f.agreed_code_of_conduct, Tick::Stated);
        assert_eq!(f.acknowledged_delay, Tick::Stated);
        let f = extract(
            "I lost my authenticator. I know the review can take\na while.",
            "",
            &[],
        );
        assert_eq!(f.acknowledged_delay, Tick::Stated);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "",
            "###",
            "- [",
            "Username:",
            "\r\n\r",
            "用户名：",
            "my username is",
            "`",
        ] {
            let _ = extract(s, s, &[s.to_string()]);
        }
    }
}

#[cfg(test)]
mod reply_subject_tests {
    use super::*;

    #[test]
    fn a_reply_subject_brings_no_fields_so_a_chase_stays_a_chase() {
        let f = extract("Any update on my request?", "Re: Lost my 2FA device", &[]);
        assert!(f.reasons.is_empty(), "{:?}", f.reasons);
        assert!(f.status_chase);
        let f = extract(
            "Any update?",
            "AW: [Case RD-7K3M9Q] Passwort vergessen",
            &[],
        );
        assert!(f.status_chase);
    }

    #[test]
    fn a_first_message_subject_still_counts() {
        let f = extract("Please help.", "Lost my 2FA device", &[]);
        assert!(f.reasons.contains(&crate::request::Reason::Lost2faDevice));
    }
}
