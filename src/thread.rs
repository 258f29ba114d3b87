//! Which case a message belongs to (ARCHITECTURE.md "Threading", in order):
//! the per-case reply address, then In-Reply-To/References, then a subject
//! tag from a known participant, then an open case of the same sender;
//! otherwise a new case. The username rule (one open case per account)
//! needs the extracted fields and is applied by the pipeline afterwards.
//!
//! Pure: lookups go through [`ThreadLookup`], which the store implements.

use hmac::{Hmac, Mac};
use once_cell::sync::Lazy;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::CaseId;
use crate::error::Result;
use crate::parse::Inbound;

/// Characters of the reply-address MAC (lower-case base32, 50 bits).
const MAC_LEN: usize = 10;

/// Which thread of a case a reply address or Message-ID belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The case thread (requester and staff).
    Case,
    /// The challenge thread to the account's linked address.
    Challenge,
}

/// How a message was matched to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum CaseMatch {
    /// Sent to a valid per-case reply address.
    ReplyAddress {
        /// The case.
        case: CaseId,
        /// Which thread.
        role: Role,
    },
    /// In-Reply-To/References names a message of the case.
    Reference {
        /// The case.
        case: CaseId,
        /// Which thread.
        role: Role,
        /// One of the named messages is one we sent (its Message-ID is
        /// unguessable), not only one we received (which anyone copied on
        /// the mail may know).
        #[serde(default)]
        ours: bool,
    },
    /// A `[Case RD-…]` tag in the subject from a known participant.
    SubjectTag {
        /// The case.
        case: CaseId,
    },
    /// A subject tag from someone who is not a participant: held, not merged.
    UnverifiedTag {
        /// The case the tag names.
        case: CaseId,
    },
    /// The sender already has an open case.
    OpenCaseOfSender {
        /// The case.
        case: CaseId,
    },
    /// No match: a new case.
    New,
}

impl CaseMatch {
    /// The matched case, if any (an unverified tag is not a match).
    pub fn case(&self) -> Option<&CaseId> {
        match self {
            CaseMatch::ReplyAddress { case, .. }
            | CaseMatch::Reference { case, .. }
            | CaseMatch::SubjectTag { case }
            | CaseMatch::OpenCaseOfSender { case } => Some(case),
            CaseMatch::UnverifiedTag { .. } | CaseMatch::New => None,
        }
    }

    /// The thread matched (the case thread unless it is the challenge's).
    pub fn role(&self) -> Role {
        match self {
            CaseMatch::ReplyAddress { role, .. } | CaseMatch::Reference { role, .. } => *role,
            _ => Role::Case,
        }
    }

    /// How firmly the message is tied to the case (see [`ThreadStrength`]).
    pub fn strength(&self) -> ThreadStrength {
        match self {
            CaseMatch::ReplyAddress { .. } | CaseMatch::Reference { ours: true, .. } => {
                ThreadStrength::Proven
            }
            _ => ThreadStrength::SenderOnly,
        }
    }

    /// Short name for logs and JSON.
    pub fn via(&self) -> &'static str {
        match self {
            CaseMatch::ReplyAddress { .. } => "reply_address",
            CaseMatch::Reference { .. } => "reference",
            CaseMatch::SubjectTag { .. } => "subject_tag",
            CaseMatch::UnverifiedTag { .. } => "unverified_tag",
            CaseMatch::OpenCaseOfSender { .. } => "open_case_of_sender",
            CaseMatch::New => "new",
        }
    }
}

/// How firmly a message is tied to its case, which decides what it may
/// change there (ARCHITECTURE.md "Verification challenge": a forged From must
/// not burn the requester's attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadStrength {
    /// Sent to the case's reply address (its MAC cannot be guessed) or
    /// naming a message we sent: whoever wrote it reads the case's mail.
    Proven,
    /// Tied only by what anyone can write: the From address of an open
    /// case, a subject tag, or a reference to a message we received.
    SenderOnly,
}

/// What threading needs to know from the store.
///
/// Every answer can fail: a store error must fail the message (it is kept and
/// retried), never read as "not found", which would open a new case and
/// acknowledge it.
pub trait ThreadLookup {
    /// The case and thread of a Message-ID we received or sent.
    fn case_of_message(&self, message_id: &str) -> Result<Option<(CaseId, Role)>>;
    /// Whether a Message-ID is one of the messages we sent.
    fn is_our_message(&self, message_id: &str) -> Result<bool>;
    /// Whether a case exists.
    fn case_exists(&self, case: &CaseId) -> Result<bool>;
    /// Whether an address has written on, or been written to on, a case.
    fn is_participant(&self, case: &CaseId, address: &str) -> Result<bool>;
    /// The open case of a sender, if any.
    fn open_case_of_sender(&self, address: &str) -> Result<Option<CaseId>>;
}

/// The reply-address token for a case thread: `rd-7k3m9q.<mac>` or
/// `rd-7k3m9q-v.<mac>` for the challenge thread.
pub fn reply_token(key: &[u8], case: &CaseId, role: Role) -> String {
    let stem = match role {
        Role::Case => case.as_str().to_ascii_lowercase(),
        Role::Challenge => format!("{}-v", case.as_str().to_ascii_lowercase()),
    };
    format!("{stem}.{}", token_mac(key, &stem))
}

/// The full reply address: `support+<token>@domain`.
pub fn reply_address(
    support: &crate::domain::EmailAddress,
    key: &[u8],
    case: &CaseId,
    role: Role,
) -> String {
    format!(
        "{}+{}@{}",
        support.local_part(),
        reply_token(key, case, role),
        support.domain()
    )
}

/// Recognises one of our reply addresses and checks its MAC.
pub fn parse_reply_address(
    address: &str,
    support: &crate::domain::EmailAddress,
    key: &[u8],
) -> Option<(CaseId, Role)> {
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(support.domain()) {
        return None;
    }
    let (base, token) = local.split_once('+')?;
    if !base.eq_ignore_ascii_case(support.local_part()) {
        return None;
    }
    let (stem, mac) = token.rsplit_once('.')?;
    let stem = stem.to_ascii_lowercase();
    let expected = token_mac(key, &stem);
    if !bool::from(
        expected
            .as_bytes()
            .ct_eq(mac.to_ascii_lowercase().as_bytes()),
    ) {
        return None;
    }
    let (case_text, role) = match stem.strip_suffix("-v") {
        Some(case_text) => (case_text, Role::Challenge),
        None => (stem.as_str(), Role::Case),
    };
    Some((CaseId::parse(case_text)?, role))
}

/// Like [`parse_reply_address`], accepting a MAC under any of `keys` (the
/// current key first, then those a rotation still accepts).
pub fn parse_reply_address_any(
    address: &str,
    support: &crate::domain::EmailAddress,
    keys: &[&[u8]],
) -> Option<(CaseId, Role)> {
    keys.iter()
        .find_map(|key| parse_reply_address(address, support, key))
}

fn token_mac(key: &[u8], stem: &str) -> String {
    use crate::domain::BASE32_LOWER as B32;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(b"reply-address:");
    mac.update(stem.as_bytes());
    let bytes = mac.finalize().into_bytes();
    // Five bits per character from the first bytes of the MAC.
    let mut bits: u64 = 0;
    for b in &bytes[..8] {
        bits = (bits << 8) | u64::from(*b);
    }
    (0..MAC_LEN)
        .map(|i| B32[((bits >> (59 - 5 * i)) & 31) as usize] as char)
        .collect()
}

static SUBJECT_TAG: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?i)\[\s*case\s+(rd-[0-9a-z]{6})\s*\]").expect("valid regex"));

/// The case named by a `[Case RD-…]` subject tag, if any.
pub fn subject_tag(subject: &str) -> Option<CaseId> {
    SUBJECT_TAG
        .captures(subject)
        .and_then(|c| CaseId::parse(c.get(1)?.as_str()))
}

/// The subject tag of a case.
pub fn tag_for(case: &CaseId) -> String {
    format!("[Case {case}]")
}

#[cfg(test)]
/// [`match_case_with_keys`] under one key (tests).
pub fn match_case(
    inbound: &Inbound,
    lookup: &impl ThreadLookup,
    support: &crate::domain::EmailAddress,
    key: &[u8],
) -> Result<CaseMatch> {
    match_case_with_keys(inbound, lookup, support, &[key])
}

/// Applies threading rules 1–4 to one message, accepting every key a reply
/// address may be signed with (see [`parse_reply_address_any`]); fails
/// only when the lookup does.
pub fn match_case_with_keys(
    inbound: &Inbound,
    lookup: &impl ThreadLookup,
    support: &crate::domain::EmailAddress,
    keys: &[&[u8]],
) -> Result<CaseMatch> {
    // The envelope recipient that our own MTA records (Delivered-To,
    // X-Original-To) counts too: staff often Bcc the case address.
    let envelope = inbound
        .header_all("delivered-to")
        .chain(inbound.header_all("x-original-to"))
        .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>'));
    for address in inbound.recipients().map(|a| a.as_str()).chain(envelope) {
        if let Some((case, role)) = parse_reply_address_any(address, support, keys) {
            if lookup.case_exists(&case)? {
                return Ok(CaseMatch::ReplyAddress { case, role });
            }
        }
    }
    for id in inbound.thread_keys() {
        if let Some((case, role)) = lookup.case_of_message(id)? {
            let ours = names_our_message(inbound, lookup, &case)?;
            return Ok(CaseMatch::Reference { case, role, ours });
        }
    }
    let sender = inbound.from_address().map(|a| a.as_str().to_owned());
    if let Some(case) = subject_tag(&inbound.subject) {
        if lookup.case_exists(&case)? {
            let known = match &sender {
                Some(s) => lookup.is_participant(&case, s)?,
                None => false,
            };
            return Ok(if known {
                CaseMatch::SubjectTag { case }
            } else {
                CaseMatch::UnverifiedTag { case }
            });
        }
    }
    if let Some(s) = sender.as_deref() {
        if let Some(case) = lookup.open_case_of_sender(s)? {
            return Ok(CaseMatch::OpenCaseOfSender { case });
        }
    }
    Ok(CaseMatch::New)
}

/// Whether the message names one of the messages we sent on `case`: our
/// Message-IDs are unguessable, so only someone who got that mail knows one.
fn names_our_message(inbound: &Inbound, lookup: &impl ThreadLookup, case: &CaseId) -> Result<bool> {
    for id in inbound.thread_keys() {
        if lookup.is_our_message(id)?
            && lookup.case_of_message(id)?.is_some_and(|(c, _)| &c == case)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;
    use std::collections::HashMap;

    const KEY: &[u8] = b"test-key-0123456789abcdef";

    #[derive(Default)]
    struct FakeLookup {
        messages: HashMap<String, (CaseId, Role)>,
        ours: Vec<String>,
        cases: Vec<CaseId>,
        participants: Vec<(CaseId, String)>,
        open: HashMap<String, CaseId>,
    }

    impl ThreadLookup for FakeLookup {
        fn case_of_message(&self, id: &str) -> Result<Option<(CaseId, Role)>> {
            Ok(self.messages.get(id).cloned())
        }
        fn is_our_message(&self, id: &str) -> Result<bool> {
            Ok(self.ours.iter().any(|o| o == id))
        }
        fn case_exists(&self, case: &CaseId) -> Result<bool> {
            Ok(self.cases.contains(case))
        }
        fn is_participant(&self, case: &CaseId, address: &str) -> Result<bool> {
            Ok(self
                .participants
                .iter()
                .any(|(c, a)| c == case && a == address))
        }
        fn open_case_of_sender(&self, address: &str) -> Result<Option<CaseId>> {
            Ok(self.open.get(address).cloned())
        }
    }

    fn support() -> EmailAddress {
        EmailAddress::parse("support@pypi.example").unwrap()
    }

    fn case() -> CaseId {
        CaseId::parse("RD-7K3M9Q").unwrap()
    }

    fn mail(headers: &str) -> Inbound {
        crate::parse::parse(format!("From: jo@example.org\r\n{headers}\r\n\r\nhi\r\n").as_bytes())
    }

    /// A store that fails every lookup, as a full or corrupt disk would.
    struct FailingLookup;

    fn disk_error() -> crate::error::Error {
        crate::error::Error::Store(sled::Error::Io(std::io::Error::other("disk gone")))
    }

    impl ThreadLookup for FailingLookup {
        fn case_of_message(&self, _: &str) -> Result<Option<(CaseId, Role)>> {
            Err(disk_error())
        }
        fn is_our_message(&self, _: &str) -> Result<bool> {
            Err(disk_error())
        }
        fn case_exists(&self, _: &CaseId) -> Result<bool> {
            Err(disk_error())
        }
        fn is_participant(&self, _: &CaseId, _: &str) -> Result<bool> {
            Err(disk_error())
        }
        fn open_case_of_sender(&self, _: &str) -> Result<Option<CaseId>> {
            Err(disk_error())
        }
    }

    #[test]
    fn a_failing_store_fails_threading_instead_of_opening_a_new_case() {
        // No reply address, no references, no tag: only the sender lookup
        // is asked, and its failure must not read as "no open case".
        let plain = mail("Subject: help");
        assert!(matches!(
            match_case(&plain, &FailingLookup, &support(), KEY),
            Err(crate::error::Error::Store(_))
        ));
        let reply = mail("Subject: Re: x\r\nIn-Reply-To: <a@b>");
        assert!(match_case(&reply, &FailingLookup, &support(), KEY).is_err());
        let tagged = mail("Subject: [Case RD-7K3M9Q] again");
        assert!(match_case(&tagged, &FailingLookup, &support(), KEY).is_err());
    }

    #[test]
    fn a_reply_address_signed_with_a_previous_key_is_accepted_only_while_that_key_is_listed() {
        const OLD: &[u8] = b"the key before the rotation, 32 bytes";
        let addr = reply_address(&support(), OLD, &case(), Role::Challenge);
        assert_eq!(parse_reply_address(&addr, &support(), KEY), None);
        assert_eq!(
            parse_reply_address_any(&addr, &support(), &[KEY, OLD]),
            Some((case(), Role::Challenge))
        );
        assert_eq!(parse_reply_address_any(&addr, &support(), &[KEY]), None);
    }

    #[test]
    fn reply_address_round_trips_and_rejects_a_forged_mac() {
        let addr = reply_address(&support(), KEY, &case(), Role::Case);
        assert!(addr.starts_with("support+rd-7k3m9q."), "{addr}");
        assert_eq!(
            parse_reply_address(&addr, &support(), KEY),
            Some((case(), Role::Case))
        );
        assert_eq!(
            parse_reply_address(&addr.to_uppercase(), &support(), KEY),
            Some((case(), Role::Case))
        );
        let forged = "support+rd-7k3m9q.aaaaaaaaaa@pypi.example";
        assert_eq!(parse_reply_address(forged, &support(), KEY), None);
        let other_key = reply_address(&support(), b"another-key-0123456789", &case(), Role::Case);
        assert_eq!(parse_reply_address(&other_key, &support(), KEY), None);
    }

    #[test]
    fn a_reply_address_in_delivered_to_counts_when_bcc_hid_it() {
        let lookup = FakeLookup {
            cases: vec![case()],
            ..Default::default()
        };
        let to = reply_address(&support(), KEY, &case(), Role::Case);
        let m = mail(&format!(
            "Delivered-To: {to}\r\nTo: jo@example.org\r\nSubject: hi"
        ));
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::ReplyAddress {
                case: case(),
                role: Role::Case
            }
        );
        let forged = mail("Delivered-To: support+rd-7k3m9q.aaaaaaaaaa@pypi.example\r\nSubject: hi");
        assert_eq!(
            match_case(&forged, &lookup, &support(), KEY).unwrap(),
            CaseMatch::New
        );
    }

    #[test]
    fn challenge_thread_has_its_own_reply_address() {
        let case_addr = reply_address(&support(), KEY, &case(), Role::Case);
        let challenge_addr = reply_address(&support(), KEY, &case(), Role::Challenge);
        assert_ne!(case_addr, challenge_addr);
        assert_eq!(
            parse_reply_address(&challenge_addr, &support(), KEY),
            Some((case(), Role::Challenge))
        );
    }

    #[test]
    fn reply_address_wins_over_everything_else() {
        let lookup = FakeLookup {
            cases: vec![case()],
            ..Default::default()
        };
        let to = reply_address(&support(), KEY, &case(), Role::Case);
        let m = mail(&format!("To: {to}\r\nSubject: re"));
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::ReplyAddress {
                case: case(),
                role: Role::Case
            }
        );
    }

    #[test]
    fn references_to_a_known_message_join_its_case() {
        let mut lookup = FakeLookup {
            cases: vec![case()],
            ..Default::default()
        };
        lookup
            .messages
            .insert("ack@pypi.example".into(), (case(), Role::Case));
        lookup
            .messages
            .insert("req@example.org".into(), (case(), Role::Case));
        lookup.ours.push("ack@pypi.example".into());
        let m = mail("To: support@pypi.example\r\nReferences: <x@y> <ack@pypi.example>");
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::Reference {
                case: case(),
                role: Role::Case,
                ours: true
            }
        );
        // Naming only the requester's own message proves nothing: anyone
        // copied on it knows its Message-ID.
        let theirs = mail("To: support@pypi.example\r\nIn-Reply-To: <req@example.org>");
        let matched = match_case(&theirs, &lookup, &support(), KEY).unwrap();
        assert_eq!(
            matched,
            CaseMatch::Reference {
                case: case(),
                role: Role::Case,
                ours: false
            }
        );
        assert_eq!(matched.strength(), ThreadStrength::SenderOnly);
        // Theirs first, ours later in References: still ours.
        let both = mail(
            "To: support@pypi.example\r\nIn-Reply-To: <req@example.org>\r\nReferences: <ack@pypi.example>",
        );
        assert_eq!(
            match_case(&both, &lookup, &support(), KEY)
                .unwrap()
                .strength(),
            ThreadStrength::Proven
        );
    }

    #[test]
    fn only_the_reply_address_and_our_own_message_ids_prove_the_thread() {
        let mut lookup = FakeLookup {
            cases: vec![case()],
            ..Default::default()
        };
        let to = reply_address(&support(), KEY, &case(), Role::Case);
        let by_address = mail(&format!("To: {to}\r\nSubject: re"));
        assert_eq!(
            match_case(&by_address, &lookup, &support(), KEY)
                .unwrap()
                .strength(),
            ThreadStrength::Proven
        );
        lookup.participants.push((case(), "jo@example.org".into()));
        lookup.open.insert("jo@example.org".into(), case());
        let tagged = mail("To: support@pypi.example\r\nSubject: Re: [Case RD-7K3M9Q] help");
        let by_sender = mail("To: support@pypi.example\r\nSubject: help");
        for m in [tagged, by_sender] {
            let matched = match_case(&m, &lookup, &support(), KEY).unwrap();
            assert!(matched.case().is_some(), "{matched:?}");
            assert_eq!(
                matched.strength(),
                ThreadStrength::SenderOnly,
                "{matched:?}"
            );
        }
    }

    #[test]
    fn subject_tag_counts_only_from_a_participant() {
        let mut lookup = FakeLookup {
            cases: vec![case()],
            ..Default::default()
        };
        let m = mail("To: support@pypi.example\r\nSubject: Re: [Case RD-7K3M9Q] help");
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::UnverifiedTag { case: case() }
        );
        lookup.participants.push((case(), "jo@example.org".into()));
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::SubjectTag { case: case() }
        );
    }

    #[test]
    fn a_sender_with_an_open_case_joins_it_and_a_stranger_gets_a_new_case() {
        let mut lookup = FakeLookup::default();
        let m = mail("To: support@pypi.example\r\nSubject: help");
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::New
        );
        lookup.open.insert("jo@example.org".into(), case());
        assert_eq!(
            match_case(&m, &lookup, &support(), KEY).unwrap(),
            CaseMatch::OpenCaseOfSender { case: case() }
        );
    }

    #[test]
    fn subject_tag_is_found_in_any_letter_case() {
        assert_eq!(subject_tag("Re: [case rd-7k3m9q] hello"), Some(case()));
        assert_eq!(subject_tag("no tag"), None);
        assert_eq!(tag_for(&case()), "[Case RD-7K3M9Q]");
    }
}
