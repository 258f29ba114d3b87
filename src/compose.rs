//! Turns a [`Mail`] effect into a finished message: the template context
//! (documented in `templates/README.md`), the rendered parts, and the
//! RFC 5322 bytes with Message-ID, threading headers, Reply-To and the
//! automatic-mail headers (RFC 3834).
//!
//! No I/O: the caller supplies the Message-ID, the time and the queue
//! position. Header values that come from user input are made header-safe.

use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::MessageBuilder;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::{json, Value};

use crate::case::{Case, Direction, Mail, MessageRef, Recipient, RefKind, Verification};
use crate::classify::LOOP_HEADER;
use crate::config::Settings;
use crate::domain::{header_safe, HandledKind};
use crate::error::{Error, Result};
use crate::request::{Claim, Field, Tick};
use crate::templates::{Rendered, TemplateKind, TemplateSet};
use crate::thread::{reply_address, tag_for, Role};
use crate::verify::mask_address;

/// Facts about the message that caused the mail, for staff notifications.
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    /// The redacted new text of the latest message.
    pub excerpt: Option<String>,
    /// Trust signals as (label, value).
    pub trust: Vec<(String, String)>,
    /// The latest message's attachments, with their case-wide numbers.
    pub attachments: Vec<(usize, crate::case::StoredAttachment)>,
}

/// A finished message ready for the outbox.
#[derive(Debug, Clone)]
pub struct Composed {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Formatted bytes.
    pub bytes: Vec<u8>,
    /// Envelope sender.
    pub envelope_from: String,
}

/// Everything needed to compose, borrowed from the worker.
pub struct Composer<'a> {
    /// Resolved settings.
    pub settings: &'a Settings,
    /// The template set in use.
    pub templates: &'a TemplateSet,
}

/// The mail the rate limit holds back on a case, as staff see it (the
/// challenge thread's address masked, as everywhere for staff).
fn held_for_staff(case: &Case, date: &dyn Fn(i64) -> String) -> Vec<Value> {
    case.held
        .iter()
        .map(|h| {
            let to = match &h.mail.to {
                Recipient::Requester => case.requester.clone(),
                Recipient::Other(a) => a.clone(),
                Recipient::Linked(a) => mask_address(a),
                Recipient::Staff | Recipient::StaffMember(_) => "staff".into(),
            };
            json!({
                "template": h.mail.template,
                "to": to,
                "until": date(h.until),
                "why": h.why,
                "merged": h.merged,
            })
        })
        .collect()
}

impl Composer<'_> {
    /// The address a recipient resolves to (empty when staff has no notify list).
    pub fn recipients(&self, case: &Case, to: &Recipient) -> Vec<String> {
        match to {
            Recipient::Requester => vec![case.requester.clone()],
            Recipient::Linked(a) | Recipient::StaffMember(a) | Recipient::Other(a) => {
                vec![a.clone()]
            }
            Recipient::Staff => self.settings.staff_mail.notify.clone(),
        }
    }

    /// Builds the template context for one mail.
    pub fn context(
        &self,
        case: &Case,
        mail: &Mail,
        queue_position: usize,
        now: i64,
        trigger: &Trigger,
    ) -> Value {
        let staff_facing = matches!(mail.to, Recipient::Staff | Recipient::StaffMember(_));
        // Staff read English; everyone else the case's language.
        let lang = if staff_facing { "en" } else { &case.language };
        let l = crate::labels::for_lang(lang);
        let date = |t: i64| crate::labels::format_date(lang, t);
        let mut ctx = json!({
            "case": self.case_json(case, mail, l, queue_position, now, &date),
            "support": self.support_json(),
            "now": date(now),
            "policy": self.policy_json(),
            "extra": mail.extra,
        });
        ctx["challenge"] = self.challenge_json(case, mail, now, &date);
        ctx["relay"] = json!({
            "text": mail.extra.get("text"),
            "staff_name": mail.extra.get("staff_name").filter(|_| self.settings.staff_mail.show_staff_name),
        });
        ctx["limits"] = json!({
            "size_bytes": mail.extra.get("size_bytes").and_then(|s| s.parse::<u64>().ok()),
            "limit_bytes": self.settings.source.max_message_bytes,
        });
        let number = |key: &str| mail.extra.get(key).and_then(|n| n.parse::<u64>().ok());
        let flood_kind = mail.extra.get("flood_kind");
        ctx["flood"] = json!({
            "kind": flood_kind,
            "label": flood_kind.map(|k| alert_words(k)),
            "count": number("flood_count"),
            "interval_minutes": number("interval_minutes"),
            "threshold": self.settings.send_limits.staff_flood_threshold,
        });
        if matches!(mail.to, Recipient::Other(_)) {
            self.hide_the_case(&mut ctx);
        }
        let requester_facing = matches!(mail.to, Recipient::Requester | Recipient::Other(_));
        if !requester_facing {
            ctx["staff"] = staff_json(case, mail, trigger, &date);
        }
        ctx
    }

    /// `case`: the case as the recipient may see it.
    fn case_json(
        &self,
        case: &Case,
        mail: &Mail,
        l: &crate::labels::Labels,
        queue_position: usize,
        now: i64,
        date: &dyn Fn(i64) -> String,
    ) -> Value {
        let key = self.settings.secret_key.expose().as_bytes();
        let fields = &case.fields;
        let staff_facing = matches!(mail.to, Recipient::Staff | Recipient::StaffMember(_));
        let requester_facing = matches!(mail.to, Recipient::Requester | Recipient::Other(_));
        let items = field_items(fields, l, staff_facing);
        let proofs = proof_items(fields, l);
        let received = received_items(mail, &items, &proofs);
        let understood: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
        let missing: Vec<Value> = case
            .missing
            .iter()
            .map(|f| {
                let (label, hint) = l.field(*f);
                // Staff read what the requester has not given, not "you".
                let label = match staff_facing {
                    true => crate::lang::upper_first(crate::labels::staff_field(*f)),
                    false => label.to_owned(),
                };
                json!({"code": f.code(), "label": label, "hint": hint})
            })
            .collect();
        // A second address asking about the same account learns nothing the
        // first requester wrote: no fields, proofs, secrets or addresses.
        let secrets: Vec<Value> = if requester_facing {
            case.secrets_found
                .iter()
                .map(|s| json!({"code": s.code(), "label": l.secret(*s)}))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "id": case.id.as_str(),
            "subject_tag": tag_for(&case.id),
            "state": case.state.as_str(),
            "priority": case.priority.as_str(),
            "language": case.language,
            "username": fields.username,
            "lookup_address": fields.lookup_address,
            "username_forgotten": username_forgotten(fields),
            "email_access": fields.claims_email_access,
            "reasons": fields.reasons.iter().map(|r| json!({"code": r.code(), "label": l.reason(*r)})).collect::<Vec<_>>(),
            "understood": understood,
            "received": received,
            "missing": missing,
            "queue_position": queue_position,
            "expected_wait": self.settings.instance.expected_wait,
            "created": date(case.created_at),
            "age_days": (now - case.created_at).max(0) / DAY,
            "reply_address": reply_address(&self.settings.support_address, key, &case.id, Role::Case),
            "requester": match &mail.to { Recipient::Other(a) => a.as_str(), _ => case.requester.as_str() },
            "secrets_found": secrets,
            "flags": case.flags.iter().map(|f| serde_json::to_value(f).unwrap_or(Value::Null)).collect::<Vec<_>>(),
            "proofs": proofs,
        })
    }

    /// `support`: who we are.
    fn support_json(&self) -> Value {
        self.settings
            .instance
            .template_context(&self.settings.support_address)
    }

    /// `policy`: the time frames the mail may promise, in days.
    fn policy_json(&self) -> Value {
        let policy = &self.settings.policy;
        json!({
            "reopen_days": policy.reopen_window / DAY,
            "close_after_days": policy.close_after / DAY,
            "waiting_period_days": policy.waiting_period / DAY,
        })
    }

    /// `challenge`: the code (challenge mails only), its dates and thread.
    fn challenge_json(
        &self,
        case: &Case,
        mail: &Mail,
        now: i64,
        date: &dyn Fn(i64) -> String,
    ) -> Value {
        let key = self.settings.secret_key.expose().as_bytes();
        let fields = &case.fields;
        // The challenge thread's address is a capability: a "yes" sent to it
        // verifies the case. Only mail to the linked address may know it, so
        // a template edit cannot hand it to the requester.
        let thread = matches!(mail.to, Recipient::Linked(_)).then(|| {
            reply_address(
                &self.settings.support_address,
                key,
                &case.id,
                Role::Challenge,
            )
        });
        let requested = case.challenges_issued.last().copied().unwrap_or(now);
        let expires = match &case.verification {
            Verification::Pending(ch) => ch.expires_at,
            Verification::NoTarget { expires_at, .. } => *expires_at,
            _ => now + self.settings.policy.challenge_ttl,
        };
        let mut challenge = json!({
            "code": mail.code,
            "expires": date(expires),
            "requested": date(requested),
            "requester_masked": mask_address(&case.requester),
            "account": fields.username.clone().or_else(|| fields.lookup_address.clone()),
            "wrong_code": mail.extra.contains_key("wrong_code"),
            "attempts_left": mail.extra.get("attempts_left").and_then(|a| a.parse::<u32>().ok()),
        });
        if let Some(address) = thread {
            challenge["reply_address"] = json!(address);
        }
        challenge
    }

    /// A second address asking about the same account must learn nothing
    /// about the case: not that it exists, not its id, not what the first
    /// requester wrote.
    fn hide_the_case(&self, ctx: &mut Value) {
        for key in [
            "id",
            "subject_tag",
            "requester",
            "username",
            "lookup_address",
        ] {
            ctx["case"][key] = json!("");
        }
        ctx["case"]["username_forgotten"] = json!(false);
        ctx["case"]["reply_address"] = json!(self.settings.support_address.as_str());
        for key in [
            "understood",
            "received",
            "missing",
            "reasons",
            "proofs",
            "secrets_found",
            "flags",
        ] {
            ctx["case"][key] = json!([]);
        }
    }

    /// Renders a mail and formats it as RFC 5322 bytes.
    pub fn compose(
        &self,
        case: &Case,
        mail: &Mail,
        message_id: &str,
        queue_position: usize,
        now: i64,
        trigger: &Trigger,
    ) -> Result<Composed> {
        let to = self.recipients(case, &mail.to);
        if to.is_empty() {
            return Err(Error::Permanent(format!(
                "no recipient for {}",
                mail.template
            )));
        }
        let context = self.context(case, mail, queue_position, now, trigger);
        let kind = mail.template;
        let lang = if matches!(mail.to, Recipient::Staff | Recipient::StaffMember(_)) {
            "en"
        } else {
            case.language.as_str()
        };
        let mut rendered = self.templates.render(kind, lang, &context)?;
        if matches!(mail.to, Recipient::Requester) {
            one_subject_per_case(case, &mut rendered);
        }
        let bytes = self.format(case, mail, &to, &rendered, message_id, now)?;
        Ok(Composed {
            to,
            subject: rendered.subject,
            bytes,
            envelope_from: self.envelope_from(),
        })
    }

    fn envelope_from(&self) -> String {
        self.settings.support_address.to_string()
    }

    /// In-Reply-To and References: under their own message for a second
    /// requester, else the thread the recipient has seen.
    fn thread_of(&self, case: &Case, mail: &Mail) -> (Option<String>, Vec<String>) {
        match &mail.to {
            // Only under their own message: the case's thread is not theirs to see.
            Recipient::Other(address) => {
                let own = case
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.direction == Direction::In && m.from.eq_ignore_ascii_case(address))
                    .map(|m| m.message_id.clone());
                (own.clone(), own.into_iter().collect())
            }
            // A second requester's messages are no part of the case's thread,
            // and the requester's thread holds only what they saw: not staff
            // mail (relayed under our own Message-ID) nor notifications.
            _ => {
                let second = |m: &MessageRef| {
                    m.direction == Direction::In
                        && case
                            .other_requesters
                            .iter()
                            .any(|o| o.eq_ignore_ascii_case(&m.from))
                };
                let unseen = |m: &MessageRef| {
                    matches!(mail.to, Recipient::Requester)
                        && if m.direction == Direction::In {
                            self.settings.staff.is_staff_address(&m.from)
                        } else {
                            !m.to
                                .iter()
                                .any(|t| case.requesters().any(|r| r.eq_ignore_ascii_case(t)))
                        }
                };
                // Machine mail (auto-replies, bounces) is kept on the case but
                // is never a parent or a reference of what we send.
                let machine = |m: &MessageRef| {
                    m.direction == Direction::In && m.kind != RefKind::Read(HandledKind::Human)
                };
                let visible: Vec<MessageRef> = case
                    .messages
                    .iter()
                    .filter(|m| !second(m) && !unseen(m) && !machine(m))
                    .cloned()
                    .collect();
                thread_headers(&visible, mail)
            }
        }
    }

    fn format(
        &self,
        case: &Case,
        mail: &Mail,
        to: &[String],
        rendered: &Rendered,
        message_id: &str,
        now: i64,
    ) -> Result<Vec<u8>> {
        let key = self.settings.secret_key.expose().as_bytes();
        let support = &self.settings.support_address;
        let bad = |e: &dyn std::fmt::Display| {
            Error::Permanent(format!("cannot build {}: {e}", mail.template))
        };
        let from = support_mailbox(self.settings).map_err(|e| bad(&e))?;
        let to_other = matches!(mail.to, Recipient::Other(_));
        let reply_to = if to_other {
            support.to_string()
        } else {
            reply_address(support, key, &case.id, mail.role)
        };
        let reply_to: Mailbox = reply_to.parse().map_err(|e| bad(&e))?;
        let mut builder = Message::builder()
            .from(from)
            .reply_to(reply_to)
            .subject(header_safe(&rendered.subject))
            .message_id(Some(format!("<{message_id}>")))
            .date(SystemTime::UNIX_EPOCH + Duration::from_secs(now.max(0) as u64));
        for address in to {
            builder = builder.to(address.parse::<Mailbox>().map_err(|e| bad(&e))?);
        }
        let (in_reply_to, references) = self.thread_of(case, mail);
        // Ids come from other people's mail ("9209252113.AA00975@ ebony"):
        // lettre refuses spaces and brackets in them, and the reply is lost.
        if let Some(parent) = in_reply_to.as_deref().and_then(id_token) {
            builder = builder.in_reply_to(format!("<{parent}>"));
        }
        let refs: Vec<String> = references
            .iter()
            .filter_map(|r| id_token(r))
            .map(|r| format!("<{r}>"))
            .collect();
        if !refs.is_empty() {
            builder = builder.references(refs.join(" "));
        }
        let auto = auto_submitted(mail.template);
        builder = automatic_headers(builder, auto, &self.settings.instance.id);
        // A second requester must not learn the case exists.
        if !to_other {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Recoverydesk-Case"),
                case.id.to_string(),
            ));
        }
        let message = match &rendered.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(rendered.text.clone()),
            ),
        }
        .map_err(|e| bad(&e))?;
        Ok(message.formatted())
    }
}

/// RFC 3834's `Auto-Submitted` value for a kind of mail.
fn auto_submitted(kind: TemplateKind) -> &'static str {
    match kind {
        // A person wrote it: relaying it does not make it automatic
        // (RFC 3834 section 5: "no" marks mail a person originated).
        TemplateKind::StaffRelay => "no",
        TemplateKind::Reminder
        | TemplateKind::CloseNotice
        | TemplateKind::StatusNote
        | TemplateKind::Challenge
        | TemplateKind::ChallengeReminder => "auto-generated",
        kind if kind.is_staff_facing() => "auto-generated",
        _ => "auto-replied",
    }
}

/// Everything the requester gets carries one subject,
/// `Re: [Case RD-XXXXXX] <their first subject>`, so clients that thread by
/// subject (Gmail) keep the case in one conversation; what the template's
/// subject said (what changed) becomes the body's first line instead.
fn one_subject_per_case(case: &Case, rendered: &mut Rendered) {
    let tag = tag_for(&case.id);
    let original = case
        .messages
        .iter()
        .find(|m| m.direction == Direction::In && m.from.eq_ignore_ascii_case(&case.requester))
        .map(|m| bare_subject(&m.subject, &tag))
        .unwrap_or_default();
    let headline = bare_subject(&rendered.subject, &tag);
    let topic = if original.is_empty() {
        headline.clone()
    } else {
        original
    };
    rendered.subject = format!("Re: {tag} {topic}");
    if headline.is_empty() {
        return;
    }
    rendered.text = format!("{headline}\n\n{}", rendered.text);
    if let Some(html) = &mut rendered.html {
        let line = format!(
            "<p><strong>{}</strong></p>",
            headline
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        );
        // Right after the opening body tag, else at the start.
        let at = html
            .find("<body")
            .and_then(|b| html[b..].find('>').map(|e| b + e + 1))
            .unwrap_or(0);
        html.insert_str(at, &line);
    }
}

/// A subject without reply prefixes (`Re:`, `Fwd:`, `AW:`, `RV:`, …) and
/// without our case tag, trimmed and kept to one line.
fn bare_subject(subject: &str, tag: &str) -> String {
    let mut rest = header_safe(subject).replace(tag, " ");
    loop {
        let trimmed = rest.trim_start();
        let lower = trimmed.to_lowercase();
        let prefix = ["re:", "fwd:", "fw:", "aw:", "wg:", "rv:", "res:", "sv:"]
            .iter()
            .find(|p| lower.starts_with(*p));
        match prefix {
            Some(p) => match trimmed.get(p.len()..) {
                Some(after) => rest = after.to_owned(),
                None => break,
            },
            None => break,
        }
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A Message-ID as a header-safe token (visible ASCII, no brackets), or
/// `None` when nothing is left of it.
fn id_token(id: &str) -> Option<String> {
    let token: String = id
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The loop header name as a `'static` literal for lettre.
const LOOP_HEADER_STATIC: &str = "X-Recoverydesk-Loop";
const _: () = assert!(LOOP_HEADER_STATIC.len() == LOOP_HEADER.len());

fn verification_label(v: &Verification) -> String {
    match v {
        Verification::Pending(ch) => format!(
            "code sent to {}, {} attempts left",
            mask_address(&ch.sent_to),
            ch.attempts_left
        ),
        Verification::NoTarget { why, .. } => {
            format!("nothing sent: {why} (the requester was told the usual text)")
        }
        Verification::Verified { how, .. } => format!("verified: {how}"),
        Verification::Skipped { why } => format!("no challenge: {why}"),
        other => other.label().replace('_', " "),
    }
}

/// A staff alert's kind as a staff member would name it, for the flood
/// summary that stands for many of them (the metric keeps the code).
fn alert_words(kind: &str) -> String {
    match TemplateKind::from_name(kind) {
        Some(TemplateKind::StaffUnverifiedTag) => "someone outside the case used its tag".into(),
        Some(TemplateKind::StaffForged) => "unauthenticated mail from a staff address".into(),
        Some(TemplateKind::StaffDeliveryFailure) => "delivery failure".into(),
        Some(TemplateKind::StaffCompromise) => "suspected compromise".into(),
        Some(TemplateKind::StaffDenied) => "owner denied the request".into(),
        Some(TemplateKind::StaffNewCase) => "new recovery case".into(),
        _ => kind.replace('_', " "),
    }
}

/// Why staff see no linked address, as a code each language's
/// `_staff_case` partial words: "(none known)" alone read as if the
/// account had none when the directory was simply never asked.
fn linked_address_status(case: &Case) -> &'static str {
    if case.linked_address_masked.is_some() {
        return "known";
    }
    match case.verification {
        Verification::NotStarted => "not_yet",
        Verification::Skipped { .. } => "not_looked_up",
        Verification::LookupPending { .. } => "lookup_pending",
        Verification::NoTarget { .. } => "none_found",
        _ => "unknown",
    }
}

const DAY: i64 = 86_400;

/// `staff`: what only the team sees (masked linked address, trust
/// signals, the latest text, history, held mail).
fn staff_json(case: &Case, mail: &Mail, trigger: &Trigger, date: &dyn Fn(i64) -> String) -> Value {
    let extra = |key: &str| mail.extra.get(key).map(String::as_str).unwrap_or("");
    json!({
        "linked_address_masked": case.linked_address_masked,
        "linked_address_status": linked_address_status(case),
        "account_username": case.account_username,
        "account": case.fields.username.as_ref().or(case.account_username.as_ref()),
        "verification": verification_label(&case.verification),
        "trust": trigger.trust.iter().map(|(l, v)| json!({"label": l, "value": v})).collect::<Vec<_>>(),
        "excerpt": trigger.excerpt,
        "requesters": case.requesters().collect::<Vec<_>>(),
        "commands_help": "/note <one line> · /internal (at the top: the whole reply is a note) · /close [reason] · /resolve · /verify · /ask <fields> · /reopen · /priority high|normal · /assign me",
        "events": Vec::<Value>::new(),
        "reason": mail.extra.get("reason"),
        "failed_recipient": mail.extra.get("failed_recipient"),
        "error": mail.extra.get("error"),
        "held": held_for_staff(case, date),
        "assignee": case.assignee,
        "attachments": trigger.attachments.iter().map(|(n, a)| json!({
            "number": n,
            "name": a.name,
            "content_type": a.content_type,
            "size": crate::attachments::human_size(a.size),
        })).collect::<Vec<_>>(),
        "attachments_total": case.attachments.len(),
        "earlier_cases": case.earlier_cases.iter().map(|e| json!({
            "id": e.id.as_str(),
            "state": e.state.as_str(),
            "opened": date(e.created_at),
            "closed": e.closed_at.map(date),
            "shares": e.shares.label(),
        })).collect::<Vec<_>>(),
        "done": extra("done").lines().collect::<Vec<_>>(),
        "changed": extra("changed").split(',').filter(|f| !f.is_empty()).collect::<Vec<_>>(),
    })
}

/// What we understood of the fields other than proofs, as label/value
/// pairs tagged with their field.
fn field_items(
    fields: &crate::request::RequestFields,
    l: &crate::labels::Labels,
    staff_facing: bool,
) -> Vec<(Field, Value)> {
    let item = |label: &str, value: &str| json!({"label": label, "value": value});
    let mut items = Vec::new();
    if let Some(u) = &fields.username {
        items.push((Field::Username, item(l.username, u)));
    }
    if let Some(a) = &fields.lookup_address {
        items.push((Field::Username, item(l.lookup_address, a)));
    }
    if username_forgotten(fields) {
        let value = if staff_facing {
            "not remembered: looked up by the requester's own address"
        } else {
            l.username_forgotten
        };
        items.push((Field::Username, item(l.username, value)));
    }
    if !fields.reasons.is_empty() {
        let reasons: Vec<&str> = fields.reasons.iter().map(|r| l.reason(*r)).collect();
        items.push((Field::Reason, item(l.reason, &reasons.join(", "))));
    }
    match fields.claims_email_access {
        Claim::Yes => items.push((Field::EmailAccess, item(l.email_access, l.yes_no_ticked[0]))),
        Claim::No => items.push((Field::EmailAccess, item(l.email_access, l.yes_no_ticked[1]))),
        Claim::Unknown => {}
    }
    let tick = |t: Tick| match t {
        Tick::Stated => Some(l.yes_no_ticked[0]),
        Tick::Weak => Some(l.yes_no_ticked[2]),
        Tick::Refused => Some(l.yes_no_ticked[1]),
        Tick::Unknown => None,
    };
    if let Some(v) = tick(fields.agreed_code_of_conduct) {
        items.push((Field::CodeOfConduct, item(l.code_of_conduct, v)));
    }
    if let Some(v) = tick(fields.acknowledged_delay) {
        items.push((Field::DelayAcknowledged, item(l.delay, v)));
    }
    items
}

/// The proofs offered, one label/value pair each.
fn proof_items(fields: &crate::request::RequestFields, l: &crate::labels::Labels) -> Vec<Value> {
    let p = &fields.proofs;
    let labelled = |label: &str, values: &[String]| -> Vec<Value> {
        values
            .iter()
            .map(|v| json!({"label": label, "value": v}))
            .collect()
    };
    let mut proofs = labelled(l.proofs[0], &p.packages);
    proofs.extend(labelled(l.proofs[1], &p.repository_urls));
    proofs.extend(labelled(l.proofs[2], &p.previous_addresses));
    proofs.extend(labelled(l.proofs[3], p.account_created.as_slice()));
    proofs
}

/// `case.received`: the items of the fields the latest reply changed
/// (`extra.received`, set by the case core), so the requester sees what
/// was understood of the answer itself.
fn received_items(mail: &Mail, items: &[(Field, Value)], proofs: &[Value]) -> Vec<Value> {
    let fields: Vec<Field> = mail
        .extra
        .get("received")
        .map(|r| r.split(',').filter_map(Field::parse).collect())
        .unwrap_or_default();
    let mut received: Vec<Value> = items
        .iter()
        .filter(|(f, _)| fields.contains(f))
        .map(|(_, v)| v.clone())
        .collect();
    if fields.contains(&Field::Proofs) {
        received.extend(proofs.iter().cloned());
    }
    received
}

/// They said they forgot the username and named no account: the account
/// is looked up by the address they write from (13.8), and the mail says
/// so whether or not one matched.
fn username_forgotten(fields: &crate::request::RequestFields) -> bool {
    fields.forgot_username && fields.username.is_none() && fields.lookup_address.is_none()
}

/// In-Reply-To and References for a new mail on a thread: the latest
/// message on that thread is the parent; References holds the thread's
/// first message and its last few (RFC 5322 §3.6.4 allows trimming).
fn thread_headers(messages: &[MessageRef], mail: &Mail) -> (Option<String>, Vec<String>) {
    let on_thread: Vec<&MessageRef> = messages.iter().filter(|m| m.role == mail.role).collect();
    // People answer what they were sent: the requester's mail, or for
    // staff the mail a notice is about (a staff member's receipt answers
    // their own message). Only the challenge thread follows our own mail.
    let parent = if matches!(
        mail.to,
        Recipient::Requester | Recipient::Staff | Recipient::StaffMember(_)
    ) {
        on_thread
            .iter()
            .rev()
            .find(|m| m.direction == Direction::In)
            .or(on_thread.last())
    } else {
        on_thread.last()
    }
    .map(|m| m.message_id.clone());
    let mut references: Vec<String> = Vec::new();
    if let Some(first) = on_thread.first() {
        references.push(first.message_id.clone());
    }
    for m in on_thread.iter().rev().take(8).rev() {
        if !references.contains(&m.message_id) {
            references.push(m.message_id.clone());
        }
    }
    (parent, references)
}

/// A mail that belongs to no case (the staff digest): From and Reply-To the
/// support address, marked automatic like everything we send.
pub fn format_plain(
    settings: &Settings,
    to: &[String],
    rendered: &Rendered,
    message_id: &str,
    now: i64,
) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| Error::Permanent(format!("cannot build the digest: {e}"));
    let from = support_mailbox(settings).map_err(|e| bad(&e))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(from)
        .subject(header_safe(&rendered.subject))
        .message_id(Some(format!("<{message_id}>")))
        .date(SystemTime::UNIX_EPOCH + Duration::from_secs(now.max(0) as u64));
    for address in to {
        builder = builder.to(address.parse::<Mailbox>().map_err(|e| bad(&e))?);
    }
    builder = automatic_headers(builder, "auto-generated", &settings.instance.id);
    let message = builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(rendered.text.clone()),
        )
        .map_err(|e| bad(&e))?;
    Ok(message.formatted())
}

/// `Support Name <support@domain>`, the sender of everything we send.
fn support_mailbox(
    settings: &Settings,
) -> std::result::Result<Mailbox, lettre::address::AddressError> {
    format!(
        "{} <{}>",
        header_safe(&settings.instance.support_name).replace(['<', '>', '"'], ""),
        settings.support_address
    )
    .parse()
}

/// The headers every mail we send carries: RFC 3834 `Auto-Submitted`,
/// Exchange's auto-reply suppression, and our loop header.
fn automatic_headers(builder: MessageBuilder, auto: &str, instance_id: &str) -> MessageBuilder {
    [
        ("Auto-Submitted", auto.to_string()),
        ("X-Auto-Response-Suppress", "All".to_string()),
        (LOOP_HEADER_STATIC, header_safe(instance_id)),
    ]
    .into_iter()
    .fold(builder, |b, (name, value)| {
        b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ))
    })
}
