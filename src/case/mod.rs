//! The case core: a case, the events that happen to it, and the pure
//! function that applies one to the other.
//!
//! `apply(case, event, ctx) -> Outcome { case', effects, log }`. No I/O, no
//! clock read, no randomness: the caller passes `now`, the policy, the
//! installation key and a freshly drawn challenge code in [`Ctx`]. Every
//! rule of ARCHITECTURE.md ("The rules the code keeps") that concerns a case lives here and is unit-tested
//! here. Sending, storing and looking up accounts are the caller's job.

mod answer;
mod apply;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::Bounce;
use crate::domain::{CaseId, HandledKind, Priority};
use crate::request::{Field, RequestFields};
use crate::secrets::SecretKind;
use crate::staff_cmd::StaffMessage;
// Template kinds are plain data (no I/O): the core names the mail it wants.
use crate::templates::TemplateKind;
use crate::thread::{Role, ThreadStrength};

pub use answer::{short_answer, YesNo};
pub use apply::apply;
pub use timers::{next_allowed, QuietHours};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Created, nothing decided yet.
    New,
    /// Waiting for the requester to send missing fields.
    AwaitingInfo,
    /// Waiting for the challenge to be answered.
    AwaitingVerification,
    /// Waiting for staff.
    AwaitingStaff,
    /// Verified; waiting out the period in which the owner may still object.
    WaitingPeriod,
    /// Staff resolved it; closes after a quiet period.
    Resolved,
    /// Closed.
    Closed,
}

impl CaseState {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::New => "new",
            CaseState::AwaitingInfo => "awaiting_info",
            CaseState::AwaitingVerification => "awaiting_verification",
            CaseState::AwaitingStaff => "awaiting_staff",
            CaseState::WaitingPeriod => "waiting_period",
            CaseState::Resolved => "resolved",
            CaseState::Closed => "closed",
        }
    }

    /// True until the case is closed.
    pub fn is_open(self) -> bool {
        !matches!(self, CaseState::Closed)
    }
}

/// A flag staff should see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The requester describes signs of compromise.
    SuspectedCompromise,
    /// The linked mailbox's owner said they did not ask for this.
    TakeoverAttempt,
    /// A message claimed to be from staff without proof.
    ForgedStaff,
    /// Someone not on the case used its subject tag.
    UnverifiedSubjectTag,
    /// A message was too large and kept headers-only.
    Oversize,
    /// A message could not be fully parsed.
    MalformedMail,
    /// Mail we sent bounced or was refused.
    DeliveryFailure,
    /// The requester posted secrets (redacted).
    SecretsPosted,
    /// More than one address asked about this account.
    MultipleRequesters,
    /// The challenge locked after too many wrong codes.
    ChallengeLocked,
}

/// The verification challenge and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verification {
    /// Not started.
    NotStarted,
    /// The directory could not answer; retried on a timer.
    LookupPending {
        /// Lookups tried so far.
        tries: u32,
    },
    /// A code was sent to the linked address.
    Pending(Challenge),
    /// No account or no linked address: nothing was sent, but the requester
    /// is told exactly what they would be told if something had been.
    NoTarget {
        /// When the pretend challenge expires.
        expires_at: i64,
        /// Why nothing was sent (staff only).
        why: String,
        /// Wrong codes still allowed (kept so the requester sees the same).
        attempts_left: u32,
    },
    /// Proven.
    Verified {
        /// When.
        at: i64,
        /// How (code on the case, owner's yes, staff).
        how: String,
    },
    /// The owner said it was not them.
    Denied {
        /// When.
        at: i64,
    },
    /// Too many wrong codes.
    Locked {
        /// When.
        at: i64,
    },
    /// The code expired unanswered.
    Expired {
        /// When.
        at: i64,
    },
    /// No challenge: the requester lost the linked address; staff review.
    Skipped {
        /// Why.
        why: String,
    },
}

impl Verification {
    /// Stable snake_case name.
    pub fn label(&self) -> &'static str {
        match self {
            Verification::NotStarted => "not_started",
            Verification::LookupPending { .. } => "lookup_pending",
            Verification::Pending(_) => "pending",
            Verification::NoTarget { .. } => "pending_no_target",
            Verification::Verified { .. } => "verified",
            Verification::Denied { .. } => "denied",
            Verification::Locked { .. } => "locked",
            Verification::Expired { .. } => "expired",
            Verification::Skipped { .. } => "skipped",
        }
    }
}

/// An issued challenge; the code itself is never kept, only its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// HMAC of the code bound to the case.
    pub code_mac: String,
    /// When it was issued.
    pub issued_at: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// Wrong codes still allowed.
    pub attempts_left: u32,
    /// The linked address it went to.
    pub sent_to: String,
    /// Whether the one reminder was sent.
    pub reminded: bool,
}

/// Timers a case can have; each at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Remind a requester who owes us something.
    Reminder,
    /// Close a case whose requester stayed silent after the reminder.
    CloseInactive,
    /// Remind the linked address once before the challenge expires.
    ChallengeReminder,
    /// The challenge expires.
    ChallengeExpiry,
    /// The waiting period after verification ends.
    WaitingPeriodEnd,
    /// Tell the requester the case is still queued; nudge staff.
    StaffStatus,
    /// Close a resolved case.
    ResolvedClose,
    /// Retry an unavailable account directory.
    DirectoryRetry,
    /// Send the mail the rate limit held back (merged, one per recipient).
    HeldMail,
}

impl TimerKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Reminder => "reminder",
            TimerKind::CloseInactive => "close_inactive",
            TimerKind::ChallengeReminder => "challenge_reminder",
            TimerKind::ChallengeExpiry => "challenge_expiry",
            TimerKind::WaitingPeriodEnd => "waiting_period_end",
            TimerKind::StaffStatus => "staff_status",
            TimerKind::ResolvedClose => "resolved_close",
            TimerKind::DirectoryRetry => "directory_retry",
            TimerKind::HeldMail => "held_mail",
        }
    }

    /// Parses the stable name.
    pub fn parse(name: &str) -> Option<Self> {
        ALL_TIMERS.into_iter().find(|t| t.as_str() == name)
    }

    /// Follow-ups that quiet hours postpone.
    pub fn respects_quiet_hours(self) -> bool {
        matches!(
            self,
            TimerKind::Reminder
                | TimerKind::CloseInactive
                | TimerKind::StaffStatus
                | TimerKind::ChallengeReminder
        )
    }
}

/// Every timer kind.
pub const ALL_TIMERS: [TimerKind; 9] = [
    TimerKind::Reminder,
    TimerKind::CloseInactive,
    TimerKind::ChallengeReminder,
    TimerKind::ChallengeExpiry,
    TimerKind::WaitingPeriodEnd,
    TimerKind::StaffStatus,
    TimerKind::ResolvedClose,
    TimerKind::DirectoryRetry,
    TimerKind::HeldMail,
];

/// Which way a message went: to us or from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Mail we received.
    In,
    /// Mail we sent.
    Out,
}

/// Who caused a line of the case's log. Stored as `requester`, `owner`,
/// `staff:<address>` or `system`, the strings earlier stores hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Actor {
    /// The case's requester (or a second requester on the case).
    Requester,
    /// Whoever reads the account's linked address.
    Owner,
    /// A staff member, by address.
    Staff(String),
    /// recoverydesk itself: timers, the gate, the directory.
    System,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Requester => f.write_str("requester"),
            Actor::Owner => f.write_str("owner"),
            Actor::Staff(address) => write!(f, "staff:{address}"),
            Actor::System => f.write_str("system"),
        }
    }
}

impl From<Actor> for String {
    fn from(actor: Actor) -> String {
        actor.to_string()
    }
}

impl TryFrom<String> for Actor {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "requester" => Ok(Actor::Requester),
            "owner" => Ok(Actor::Owner),
            "system" => Ok(Actor::System),
            _ => match text.strip_prefix("staff:") {
                Some(address) => Ok(Actor::Staff(address.to_string())),
                None => Err(format!("unknown log actor {text:?}")),
            },
        }
    }
}

/// What a message on the case was. Stored as the bare name (`human`,
/// `acknowledgement`, ...): template names and reading kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RefKind {
    /// Mail we sent, by template.
    Sent(TemplateKind),
    /// Mail we received, by how it was read.
    Read(HandledKind),
}

impl std::fmt::Display for RefKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefKind::Sent(kind) => f.pad(kind.name()),
            RefKind::Read(kind) => f.pad(kind.name()),
        }
    }
}

/// One message on the case, in or out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// Message-ID without brackets.
    pub message_id: String,
    /// To us or from us.
    pub direction: Direction,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Unix seconds.
    pub date: i64,
    /// How we read it, or which template we sent.
    pub kind: RefKind,
    /// Which thread: the case's or the challenge's.
    pub role: Role,
}

/// A case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The id.
    pub id: CaseId,
    /// Where it stands.
    pub state: CaseState,
    /// How urgent.
    pub priority: Priority,
    /// ISO 639-1 language of the requester's writing.
    pub language: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// The address replies go to (the primary requester).
    pub requester: String,
    /// Every other address that asked about the same account.
    pub other_requesters: Vec<String>,
    /// What was understood, merged over all messages.
    pub fields: RequestFields,
    /// Required fields still missing.
    pub missing: Vec<Field>,
    /// Flags for staff.
    pub flags: Vec<Flag>,
    /// Secrets the requester posted (redacted before storing).
    pub secrets_found: Vec<SecretKind>,
    /// Verification.
    pub verification: Verification,
    /// The linked address, masked, for staff.
    pub linked_address_masked: Option<String>,
    /// The username of the account the directory found, for staff: when
    /// the requester forgot it or gave an address, this is the only place
    /// staff learn which account to recover. Never shown to the requester
    /// (a match must read like no match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_username: Option<String>,
    /// Staff member the case is assigned to.
    pub assignee: Option<String>,
    /// Due times of pending timers (Unix seconds).
    pub timers: BTreeMap<TimerKind, i64>,
    /// Reminders sent while waiting on the requester.
    pub reminders_sent: u32,
    /// Status notes sent while waiting on staff.
    pub status_notes_sent: u32,
    /// Last answer to a status chase.
    pub last_status_reply_at: Option<i64>,
    /// Challenges issued, Unix seconds (for the per-day limit).
    pub challenges_issued: Vec<i64>,
    /// Last staff action.
    pub last_staff_action_at: Option<i64>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// When it was closed.
    pub closed_at: Option<i64>,
    /// A closed case this one continues.
    pub continues: Option<CaseId>,
    /// Messages in and out.
    pub messages: Vec<MessageRef>,
    /// Mail the rate limit held back, at most one per recipient, sent by
    /// the [`TimerKind::HeldMail`] timer (stores from before it read as none).
    #[serde(default)]
    pub held: Vec<HeldMail>,
    /// Replies in a row that left the same details missing (after two, a
    /// person takes over instead of a third identical request).
    #[serde(default)]
    pub rounds_without_progress: u32,
    /// Staff's `/ask` put the case back to the requester: their answer is
    /// news for staff, like any reply while the case waits on staff.
    #[serde(default)]
    pub staff_asked: bool,
    /// Earlier cases of the same username or requester address, as the
    /// store had them when this case opened (newest first), for staff; set
    /// by the caller on the fresh case, like `continues`.
    #[serde(default)]
    pub earlier_cases: Vec<EarlierCase>,
    /// Attachments of the mail received on the case, in arrival order;
    /// their bytes stay in the kept raw message (`cases attachment ID N`).
    #[serde(default)]
    pub attachments: Vec<StoredAttachment>,
}

/// An attachment of a message on the case, listed for staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttachment {
    /// The message it came with.
    pub message_id: String,
    /// The content hash under which the raw message is kept.
    pub content_hash: String,
    /// Its place among that message's attachments (0-based).
    pub index: usize,
    /// The file name the sender gave.
    pub name: String,
    /// `type/subtype`.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    /// When the message arrived (Unix seconds).
    pub received_at: i64,
}

/// An earlier case of the same person or account, found when a case opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierCase {
    /// Its id.
    pub id: CaseId,
    /// Where it stood when the new case opened.
    pub state: CaseState,
    /// When it was opened (Unix seconds).
    pub created_at: i64,
    /// When it was closed, if it was.
    pub closed_at: Option<i64>,
    /// What it shares with the new case.
    pub shares: Shared,
}

/// What an earlier case shares with a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shared {
    /// The account username.
    Username,
    /// The requester's address.
    Address,
    /// Both.
    Both,
}

impl Shared {
    /// Words for staff.
    pub fn label(self) -> &'static str {
        match self {
            Shared::Username => "same username",
            Shared::Address => "same requester address",
            Shared::Both => "same username and address",
        }
    }
}

/// A mail the rate limit held back instead of dropping it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMail {
    /// The mail; composed only when it goes out, so it tells the case as it
    /// stands then. Never a challenge: a code is not kept in clear.
    pub mail: Mail,
    /// When it was first held (Unix seconds).
    pub since: i64,
    /// When the limit allows it (Unix seconds).
    pub until: i64,
    /// Why it was held, for staff and the case log.
    pub why: String,
    /// Earlier held mail this one replaces (oldest first).
    #[serde(default)]
    pub merged: Vec<TemplateKind>,
}

impl Case {
    /// A fresh case for a requester.
    pub fn new(id: CaseId, requester: &str, now: i64) -> Self {
        Case {
            id,
            state: CaseState::New,
            priority: Priority::Normal,
            language: "en".into(),
            created_at: now,
            updated_at: now,
            requester: requester.to_owned(),
            other_requesters: Vec::new(),
            fields: RequestFields::default(),
            missing: Vec::new(),
            flags: Vec::new(),
            secrets_found: Vec::new(),
            verification: Verification::NotStarted,
            linked_address_masked: None,
            account_username: None,
            assignee: None,
            timers: BTreeMap::new(),
            reminders_sent: 0,
            status_notes_sent: 0,
            last_status_reply_at: None,
            challenges_issued: Vec::new(),
            last_staff_action_at: None,
            resolved_at: None,
            closed_at: None,
            continues: None,
            messages: Vec::new(),
            held: Vec::new(),
            rounds_without_progress: 0,
            staff_asked: false,
            earlier_cases: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// Adds a flag once.
    pub fn flag(&mut self, flag: Flag) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }

    /// Whether a reply now may reopen this closed case (else a new linked case).
    pub fn accepts_reopen(&self, now: i64, policy: &Policy) -> bool {
        match self.closed_at {
            Some(at) if self.state == CaseState::Closed => now - at <= policy.reopen_window,
            _ => true,
        }
    }

    /// Every address that took part as a requester.
    pub fn requesters(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.requester.as_str())
            .chain(self.other_requesters.iter().map(String::as_str))
    }
}

/// The rules' numbers, all in seconds (resolved from `[policy]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Fields a request must contain.
    pub required: Vec<Field>,
    /// Challenge lifetime.
    pub challenge_ttl: i64,
    /// Wrong codes allowed.
    pub challenge_attempts: u32,
    /// Challenges per case per day.
    pub challenges_per_day: u32,
    /// Waiting period after verification (0 = none).
    pub waiting_period: i64,
    /// Reminder delay while waiting on the requester.
    pub reminder_after: i64,
    /// Close delay after the reminder.
    pub close_after: i64,
    /// First status note delay while waiting on staff.
    pub staff_status_after: i64,
    /// Status note repeat interval.
    pub status_repeat: i64,
    /// Status notes cap.
    pub status_cap: u32,
    /// One answer to "any update?" per this interval.
    pub status_reply_interval: i64,
    /// Resolved cases close after this.
    pub resolved_close_after: i64,
    /// Closed cases reopen within this; later a new linked case.
    pub reopen_window: i64,
    /// Directory retry delay.
    pub directory_retry: i64,
    /// Quiet hours for follow-ups.
    pub quiet_hours: Option<QuietHours>,
}

/// Who mail goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "address", rename_all = "snake_case")]
pub enum Recipient {
    /// The case's requester.
    Requester,
    /// The account's linked address (challenge thread only).
    Linked(String),
    /// The configured staff notification addresses.
    Staff,
    /// One staff member (command errors).
    StaffMember(String),
    /// A secondary requester (neutral notes only).
    Other(String),
}

/// One mail to send, described, not rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// Which template renders it.
    pub template: TemplateKind,
    /// Who gets it.
    pub to: Recipient,
    /// Which thread it belongs to.
    pub role: Role,
    /// The challenge code, only on challenge mails to the linked address.
    pub code: Option<String>,
    /// Extra template values (`extra.<key>`), e.g. a relayed text.
    pub extra: BTreeMap<String, String>,
}

impl Mail {
    /// A mail on the case thread with no extras.
    pub fn new(template: TemplateKind, to: Recipient) -> Self {
        Mail {
            template,
            to,
            role: Role::Case,
            code: None,
            extra: BTreeMap::new(),
        }
    }

    /// Adds an extra template value.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// Result of a directory lookup, as the core needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LookupOutcome {
    /// The account exists; its challenge address, if it has one.
    Found {
        /// Where a challenge may go.
        address: Option<String>,
        /// The account's username as the directory spells it.
        username: String,
    },
    /// No such account.
    NotFound,
    /// The directory could not answer.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// A message from a person on the case thread (the requester or anyone
/// writing as one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequesterMessage {
    /// Sender address (reply target).
    pub from: String,
    /// Fields read from the new text (after redaction).
    pub fields: RequestFields,
    /// Code-shaped tokens in the new text (attempt candidates).
    pub codes: Vec<String>,
    /// Code-shaped tokens that appear only in quoted text (filled only when
    /// the new text has none: otherwise the core does not look at it).
    pub quoted_codes: Vec<String>,
    /// Secrets found in this message.
    pub secrets: Vec<SecretKind>,
    /// Detected language.
    pub language: Option<String>,
    /// The message opened the case.
    pub opens_case: bool,
    /// A repeat of a request already in the queue (same sender or account).
    pub duplicate: bool,
    /// The directory's answer, when the caller looked the account up.
    pub lookup: Option<LookupOutcome>,
    /// Full size when the message was too large and kept headers-only.
    pub oversize: Option<u64>,
    /// The message could not be fully parsed.
    pub malformed: bool,
    /// A short yes or no that is all the new text says (read in context by
    /// the core: it answers the case's one open yes/no question).
    #[serde(default)]
    pub short_answer: Option<YesNo>,
    /// How firmly the mail is tied to the case. Mail tied only by what
    /// anyone can write (the sender's address) answers no challenge, keeps
    /// the case's language and only fills in what the case lacks.
    pub thread: ThreadStrength,
}

impl RequesterMessage {
    /// Whether whoever wrote this reads the case's mail (or opened it).
    pub fn proven(&self) -> bool {
        self.opens_case || self.thread == ThreadStrength::Proven
    }

    /// What of the message's fields may be merged into `case`: all of them
    /// from proven mail; otherwise only fields the case does not have yet,
    /// so a forged From can complete a request but never change one.
    pub fn fields_for(&self, case: &RequestFields) -> RequestFields {
        if self.proven() {
            return self.fields.clone();
        }
        let mut fields = self.fields.clone();
        if case.has(Field::Username) {
            fields.username = None;
            fields.lookup_address = None;
            fields.forgot_username = false;
        }
        if case.has(Field::Reason) {
            fields.reasons.clear();
        }
        if case.has(Field::EmailAccess) {
            fields.claims_email_access = Default::default();
        }
        if case.has(Field::CodeOfConduct) {
            fields.agreed_code_of_conduct = Default::default();
        }
        if case.has(Field::DelayAcknowledged) {
            fields.acknowledged_delay = Default::default();
        }
        if case.has(Field::Proofs) {
            fields.proofs = Default::default();
        }
        fields
    }
}

/// Something that happens to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A person wrote on the case thread.
    Requester(RequesterMessage),
    /// Another address asked about the same account.
    SecondRequester {
        /// Their address.
        from: String,
    },
    /// A subject tag from a non-participant: held, not merged.
    UnverifiedTag {
        /// Sender.
        from: String,
    },
    /// Someone wrote on the challenge thread.
    Owner {
        /// Sender.
        from: String,
        /// The new text (for yes/no).
        answer: OwnerAnswerKind,
        /// Code-shaped tokens in the new text.
        codes: Vec<String>,
    },
    /// Authenticated staff wrote on the case.
    Staff {
        /// Staff address.
        from: String,
        /// Display name.
        name: Option<String>,
        /// Commands, relay text, errors.
        message: StaffMessage,
        /// Staff wrote to the requester directly with support in Cc.
        direct: bool,
        /// Directory answer when a `/verify` needs one.
        lookup: Option<LookupOutcome>,
    },
    /// A message claimed to be staff without proof.
    ForgedStaff {
        /// Claimed address.
        from: String,
        /// Why it was not trusted.
        why: String,
    },
    /// A bounce or refusal of mail we sent.
    DeliveryFailed {
        /// Failed recipient(s).
        bounce: Bounce,
    },
    /// Machine mail on the case, recorded only.
    Machine {
        /// Which kind.
        kind: String,
        /// Which rule decided.
        reason: String,
    },
    /// Due timers (all of one case, processed together).
    Timers {
        /// Which timers fired.
        kinds: Vec<TimerKind>,
        /// Directory answer for a directory retry.
        lookup: Option<LookupOutcome>,
    },
}

/// The owner's answer on the challenge thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerAnswerKind {
    /// "Yes, that was me."
    Confirmed,
    /// "No, that wasn't me."
    Denied,
    /// Neither.
    Unclear,
}

/// What the caller supplies besides the case and the event.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// The time, Unix seconds.
    pub now: i64,
    /// The rules.
    pub policy: &'a Policy,
    /// The installation key (for code MACs).
    pub key: &'a [u8],
    /// Earlier installation keys a rotation still accepts for codes
    /// already sent (new codes always use `key`); empty once it ends.
    pub previous_keys: &'a [crate::secret::Secret],
    /// A freshly drawn challenge code, used if a challenge is issued.
    pub fresh_code: String,
}

/// A line for the case's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: Actor,
    /// What happened.
    pub what: String,
}

/// The result of applying an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The case after the event.
    pub case: Case,
    /// Mail to send.
    pub mails: Vec<Mail>,
    /// Log lines.
    pub log: Vec<LogEntry>,
}
