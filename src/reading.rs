//! Everything the pipeline learns from one message on its own, without the
//! store, the clock or the directory: the parsed message, its class, who
//! it claims to be, the new text with secrets and codes taken out, the
//! request's fields and its language.
//!
//! [`read`] is pure and about half the CPU a message costs, so the worker
//! has it done on other cores ([`ReadAhead`]) while it does the store work,
//! which stays sequential so that threading and the case rules see
//! messages in the order they arrived.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::authres::{self, StaffTrust};
use crate::classify::{self, Classification};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::parse::{self, Inbound};
use crate::request::{self, RequestFields};
use crate::signature::StaffVerify;
use crate::source::Fetched;
use crate::{lang, quote, secrets, verify};

/// Longest excerpt of a message kept for staff notifications (characters).
const EXCERPT_CHARS: usize = 2000;

/// What one message says, read without the store.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The parsed message.
    pub inbound: Inbound,
    /// Its class from headers and content (the store may still say it is
    /// mail we sent ourselves).
    pub classification: Classification,
    /// Whether it comes from staff, with trusted proof.
    pub staff: StaffTrust,
    /// The new text as staff read it (history and signatures cut; the
    /// quotes inline answers reply to and a forward under a note kept),
    /// secrets still in.
    pub new_text_raw: String,
    /// The sender's own words alone (no quoted line, no forward), secrets
    /// still in: where challenge codes and the linked owner's answer are
    /// read, since a code or "I did not ask" in a quote or a forwarded
    /// mail (our own challenge, often) was not written by the sender.
    pub own_text_raw: String,
    /// The new text with secrets replaced: what is stored and shown.
    pub redacted: secrets::Redacted,
    /// The redacted new text with challenge codes removed, shortened for
    /// staff notifications.
    pub excerpt: String,
    /// Codes in the new text, in the order they are tried.
    pub new_codes: Vec<String>,
    /// Codes found only in quoted history (when the new text has none).
    pub quoted_codes: Vec<String>,
    /// The request's fields (empty for machine and staff mail, and for a
    /// message too large to have its body fetched).
    pub fields: RequestFields,
    /// The language of the new text, when it can be told.
    pub language: Option<String>,
    /// The copy to store when the message holds a secret anywhere (any
    /// header a person writes, any text part, quoted history included);
    /// `None` keeps the bytes as they came.
    pub(crate) kept: Option<crate::at_rest::Kept>,
    /// The attachments of the message as kept (redaction leaves them as
    /// they are), listed for staff.
    pub attachments: Vec<crate::attachments::Listed>,
}

impl Reading {
    /// The bytes the store keeps of this message: never a secret in clear.
    /// A redacted copy is moved out, not copied (a 10 MB message held a
    /// third copy of itself here); call it once.
    pub fn take_raw_to_keep(&mut self, fetched: &Fetched) -> Arc<Vec<u8>> {
        match &mut self.kept {
            Some(kept) => Arc::new(std::mem::take(&mut kept.bytes)),
            // The fetched bytes themselves, shared: no copy.
            None => Arc::clone(&fetched.raw),
        }
    }

    /// Every kind of secret the message held: in the new text, and in a
    /// subject or quoted text, which the requester should revoke as well.
    pub fn secrets_found(&self) -> Vec<secrets::SecretKind> {
        let mut found = self.redacted.found.clone();
        for kind in self.kept.iter().flat_map(|k| &k.found) {
            if !found.contains(kind) {
                found.push(*kind);
            }
        }
        found
    }
}

/// Reads one message. A panic anywhere in reading becomes an error, so the
/// message is kept and set aside instead of stopping the worker.
pub fn read(fetched: &Fetched, settings: &Settings) -> Result<Reading> {
    // mail-parser 0.11 can panic on hostile MIME (a debug assertion,
    // "Invalid part ID", in debug builds). A panic here would stop the
    // worker before the commit, and the same message would stop it
    // again after every restart.
    let inbound = catch_unwind(|| parse::parse(&fetched.raw))
        .map_err(|_| Error::Permanent("the MIME parser panicked on this message".into()))?;
    catch_unwind(AssertUnwindSafe(|| read_parsed(inbound, fetched, settings))).map_err(|_| {
        Error::Permanent("reading this message panicked (a bug; the message is kept)".into())
    })
}

/// Readings of a batch made on background threads while the caller works
/// through the earlier ones; handed out in the batch's order.
pub struct ReadAhead {
    lanes: Vec<tokio::sync::mpsc::Receiver<Result<Reading>>>,
    next: usize,
}

/// Readings each reader thread may hold ahead of the caller: enough to keep
/// the caller busy, few enough that large messages do not pile up.
const AHEAD_PER_LANE: usize = 4;

impl ReadAhead {
    /// Starts `threads` readers over `batch` (message i goes to reader i mod
    /// threads, so order is kept without sorting). Needs a tokio runtime.
    pub fn start(batch: Arc<Vec<Fetched>>, settings: Arc<Settings>, threads: usize) -> Self {
        let threads = threads.clamp(1, batch.len().max(1));
        let lanes = (0..threads)
            .map(|lane| {
                let (tx, rx) = tokio::sync::mpsc::channel(AHEAD_PER_LANE);
                let (batch, settings) = (batch.clone(), settings.clone());
                tokio::task::spawn_blocking(move || {
                    for fetched in batch.iter().skip(lane).step_by(threads) {
                        // The caller stopped early (a store error): stop too.
                        if tx.blocking_send(read(fetched, &settings)).is_err() {
                            break;
                        }
                    }
                });
                rx
            })
            .collect();
        ReadAhead { lanes, next: 0 }
    }

    /// The reading of the next message of the batch.
    pub async fn next(&mut self) -> Result<Reading> {
        let lane = self.next % self.lanes.len();
        self.next += 1;
        // `read` catches its own panics, so a lane ends early only if its
        // thread could not run at all.
        self.lanes[lane].recv().await.unwrap_or_else(|| {
            Err(Error::Permanent(
                "the reader thread stopped before this message".into(),
            ))
        })
    }
}

/// Threads worth using for reading on this machine: one core is left to
/// the caller, which does the store work at the same time (on 2 cores a
/// second reader only added memory: regex caches and a malloc arena each).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).clamp(1, 8))
}

fn read_parsed(inbound: Inbound, fetched: &Fetched, settings: &Settings) -> Reading {
    let classification =
        classify::classify_with(&inbound, &settings.instance.id, &settings.own_addresses);
    // Under staff.verify = "dkim" the pipeline checks the signature (I/O)
    // and replaces this verdict before routing.
    let staff = match settings.staff.verify {
        StaffVerify::AuthenticationResults => authres::staff_trust(&inbound, &settings.staff),
        StaffVerify::Dkim => authres::staff_trust_by_signature(&inbound, &settings.staff, None),
    };
    let reply = quote::reply(&inbound.text, inbound.html.as_deref());
    let new_text_raw = reply.shown();
    let redacted = secrets::redact(&new_text_raw);
    let codes = verify::CodeScan::new(&new_text_raw);
    // Codes are found in the raw text (a code next to a redacted secret is
    // still a code); the excerpt hides them in the redacted text. When
    // nothing was redacted the two texts are one and one scan serves both.
    let shown = if redacted.text == new_text_raw {
        codes.replaced(&new_text_raw, CODE_REMOVED)
    } else {
        verify::redact_codes(&redacted.text, CODE_REMOVED)
    };
    // Usually the own words are all there is and the one scan serves.
    let new_codes = if reply.own == new_text_raw {
        codes.attempt_candidates()
    } else {
        verify::attempt_candidates(&reply.own)
    };
    // Codes in the quoted history matter only when the new text has none
    // (the core then logs that a quoted code is no confirmation), and only
    // if there is history at all: skip the scan otherwise.
    let quoted_codes = if new_codes.is_empty() && inbound.text.len() > reply.own.len() {
        verify::attempt_candidates(&inbound.text)
    } else {
        Vec::new()
    };
    let asks = !classification.kind.is_machine()
        && !matches!(staff, StaffTrust::Staff { .. })
        && fetched.oversize.is_none();
    // The request rules read no quoted line (our own questions, quoted
    // back, are not the requester's answers) but do read a forward.
    let for_rules = reply.for_rules();
    let rules_text = if for_rules == new_text_raw {
        redacted.text.clone()
    } else {
        secrets::redact(&for_rules).text
    };
    let (fields, language) = if asks {
        (
            request::extract(
                &rules_text,
                &inbound.subject,
                &[settings.support_address.to_string()],
            ),
            lang::detect(&rules_text),
        )
    } else {
        (RequestFields::default(), None)
    };
    let (kept, attachments) = crate::at_rest::redact_and_list(&fetched.raw);
    Reading {
        excerpt: excerpt(&shown),
        inbound,
        classification,
        staff,
        new_text_raw,
        own_text_raw: reply.own,
        redacted,
        new_codes,
        quoted_codes,
        fields,
        language,
        kept,
        attachments,
    }
}

/// What a challenge code typed back becomes in anything staff see.
const CODE_REMOVED: &str = "[challenge code removed]";

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}\n[…]", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secret.key"),
            "reading-test-key-0123456789abcdef",
        )
        .unwrap();
        Settings::from_toml(crate::config::DEMO_TOML, dir.path(), "test").unwrap()
    }

    fn fetched(raw: &str) -> Fetched {
        Fetched {
            source_id: "t".into(),
            raw: Arc::new(raw.as_bytes().to_vec()),
            oversize: None,
            cursor: None,
        }
    }

    const REQUEST: &str = "From: Ana <ana@example.org>\r\nTo: support@example.org\r\n\
        Subject: Lost 2FA\r\nMessage-ID: <r1@example.org>\r\n\r\n\
        Hello, my username is anapkg and I lost my phone with the authenticator app.\r\n\
        My code was ab3d efgh if that helps.\r\n";

    #[test]
    fn a_request_is_read_with_fields_language_and_codes_hidden() {
        let reading = read(&fetched(REQUEST), &settings()).unwrap();
        assert_eq!(reading.fields.username.as_deref(), Some("anapkg"));
        assert_eq!(reading.language.as_deref(), Some("en"));
        assert_eq!(reading.new_codes, vec!["AB3D-EFGH".to_string()]);
        assert!(
            reading.excerpt.contains(CODE_REMOVED),
            "{}",
            reading.excerpt
        );
        assert!(!reading.excerpt.contains("ab3d"));
    }

    #[test]
    fn a_forward_is_shown_and_read_for_fields_but_its_codes_are_not_the_senders() {
        let raw = "From: Ana <ana@example.org>\r\nTo: support@example.org\r\n\
            Subject: Fwd: your code\r\nMessage-ID: <f1@example.org>\r\n\r\n\
            FYI, I got this.\r\n\r\n\
            ---------- Forwarded message ---------\r\n\
            From: Index <noreply@index.example>\r\n\
            Date: Mon, Jan 1, 2024\r\nSubject: Your code\r\n\r\n\
            New recovery codes for your account 'anapkg' have been generated.\r\n\
            Your code is AB3D-EFGH.\r\n";
        let reading = read(&fetched(raw), &settings()).unwrap();
        assert!(reading.new_codes.is_empty(), "{:?}", reading.new_codes);
        assert_eq!(reading.quoted_codes, vec!["AB3D-EFGH".to_string()]);
        assert_eq!(reading.own_text_raw, "FYI, I got this.");
        assert!(
            reading.excerpt.contains("Forwarded message"),
            "{}",
            reading.excerpt
        );
        assert!(!reading.excerpt.contains("AB3D"), "{}", reading.excerpt);
        assert_eq!(reading.fields.username.as_deref(), Some("anapkg"));
    }

    #[test]
    fn the_questions_an_inline_answer_quotes_are_shown_but_not_read_as_fields() {
        let raw = "From: Ana <ana@example.org>\r\nTo: support@example.org\r\n\
            Subject: Re: your request\r\nMessage-ID: <i1@example.org>\r\n\r\n\
            > Which username is it? Our records say oldname.\r\n\r\n\
            My username is anapkg\r\n\r\n\
            > Your code is ZZ9Q-7KWD\r\n\r\n\
            I lost my phone.\r\n";
        let reading = read(&fetched(raw), &settings()).unwrap();
        assert!(
            reading.excerpt.contains("> Which username"),
            "{}",
            reading.excerpt
        );
        assert!(reading.new_codes.is_empty(), "{:?}", reading.new_codes);
        assert_eq!(reading.fields.username.as_deref(), Some("anapkg"));
    }

    #[test]
    fn the_bytes_kept_of_a_message_without_secrets_are_the_fetched_bytes_not_a_copy() {
        let fetched = fetched(REQUEST);
        let mut reading = read(&fetched, &settings()).unwrap();
        assert!(reading.kept.is_none(), "no secret in this request");
        let kept = reading.take_raw_to_keep(&fetched);
        assert!(Arc::ptr_eq(&kept, &fetched.raw), "a second copy was made");
    }

    #[test]
    fn machine_mail_is_not_read_as_a_request() {
        let raw = REQUEST.replace("Subject:", "Auto-Submitted: auto-replied\r\nSubject:");
        let reading = read(&fetched(&raw), &settings()).unwrap();
        assert!(reading.classification.kind.is_machine());
        assert_eq!(reading.fields, RequestFields::default());
        assert_eq!(reading.language, None);
    }

    #[test]
    fn mail_from_our_own_addresses_is_our_own_mail() {
        let settings = settings();
        let support = settings.support_address.as_str().to_string();
        let (local, domain) = support.split_once('@').unwrap();
        for from in [
            support.clone(),
            format!("{local}+RD-7K3M9Q.abc123@{domain}"),
        ] {
            let raw = REQUEST.replace("Ana <ana@example.org>", &format!("Desk <{from}>"));
            let reading = read(&fetched(&raw), &settings).unwrap();
            assert_eq!(
                reading.classification.kind,
                crate::classify::MessageKind::OwnLoop,
                "{from}: {}",
                reading.classification.reason
            );
            assert_eq!(reading.fields, RequestFields::default());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readings_ahead_on_many_threads_keep_the_batch_order() {
        let batch: Vec<Fetched> = (0..37)
            .map(|i| fetched(&REQUEST.replace("anapkg", &format!("pkg{i:02}"))))
            .collect();
        let mut ahead = ReadAhead::start(Arc::new(batch), Arc::new(settings()), 4);
        let mut names = Vec::new();
        for _ in 0..37 {
            names.push(ahead.next().await.unwrap().fields.username.unwrap());
        }
        let expected: Vec<_> = (0..37).map(|i| format!("pkg{i:02}")).collect();
        assert_eq!(names, expected);
        assert!(ahead.next().await.is_err(), "nothing past the batch");
    }

    #[test]
    fn the_excerpt_is_cut_on_a_character_boundary() {
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert!(cut.ends_with("\n[…]"));
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 4);
    }
}
