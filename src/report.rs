//! Read-only views of the store for operators: `cases list|show|export`
//! and `followups`. Secrets never appear here: fields were redacted before
//! they were stored, and challenge codes are kept only as MACs.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::case::{Case, CaseState, Direction, TimerKind, Verification};
use crate::domain::{CaseId, Priority};
use crate::store::{OutboxItem, Store};
use crate::templates::Audience;

fn age(now: i64, then: i64) -> String {
    let secs = (now - then).max(0);
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Which cases a listing or export includes; every set condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFilter {
    /// Only cases in this state.
    pub state: Option<CaseState>,
    /// Only cases of this priority.
    pub priority: Option<Priority>,
    /// Only cases naming this account username (case-insensitive).
    pub username: Option<String>,
    /// Only cases with this requester or lookup address (case-insensitive).
    pub address: Option<String>,
    /// Only cases opened at least this many seconds ago.
    pub older_than: Option<i64>,
    /// Only cases opened at most this many seconds ago.
    pub newer_than: Option<i64>,
    /// Only cases whose text (id, addresses, username, subjects, log)
    /// contains this, case-insensitively.
    pub search: Option<String>,
}

impl CaseFilter {
    /// Whether a case passes; `events` is read only when a search needs it.
    pub fn matches(&self, store: &Store, c: &Case, now: i64) -> anyhow::Result<bool> {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b.trim());
        let ok = self.state.is_none_or(|s| c.state == s)
            && self.priority.is_none_or(|p| c.priority == p)
            && self.username.as_deref().is_none_or(|u| {
                c.fields
                    .username
                    .as_deref()
                    .is_some_and(|mine| same(mine, u))
            })
            && self.address.as_deref().is_none_or(|a| {
                c.requesters().any(|r| same(r, a))
                    || c.fields
                        .lookup_address
                        .as_deref()
                        .is_some_and(|l| same(l, a))
            })
            && self
                .older_than
                .is_none_or(|secs| now - c.created_at >= secs)
            && self
                .newer_than
                .is_none_or(|secs| now - c.created_at <= secs);
        match (&self.search, ok) {
            (Some(needle), true) => Ok(case_text(store, c)?
                .to_lowercase()
                .contains(&needle.to_lowercase())),
            _ => Ok(ok),
        }
    }
}

/// The searchable text of a case. Message bodies are not in it: the case
/// keeps what was understood of them (fields, log), and the raw mail is
/// not read back for a listing.
fn case_text(store: &Store, c: &Case) -> anyhow::Result<String> {
    let mut text = format!("{}\n", c.id);
    for r in c.requesters() {
        let _ = writeln!(text, "{r}");
    }
    for v in [&c.fields.username, &c.fields.lookup_address, &c.assignee]
        .into_iter()
        .flatten()
    {
        let _ = writeln!(text, "{v}");
    }
    for m in &c.messages {
        let _ = writeln!(text, "{} {}", m.from, m.subject);
    }
    for e in store.events(&c.id)? {
        let _ = writeln!(text, "{} {}", e.actor, e.what);
    }
    Ok(text)
}

/// A read-only question about the cases, answered the same way from the
/// store or by a running daemon over the admin socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "view", rename_all = "snake_case")]
pub enum Query {
    /// `cases list`.
    List {
        /// Which cases.
        filter: CaseFilter,
    },
    /// `cases show ID`.
    Show {
        /// The case.
        id: CaseId,
    },
    /// `cases export --json`.
    Export {
        /// Which cases.
        filter: CaseFilter,
    },
    /// `followups --within`.
    Followups {
        /// How far ahead, in seconds.
        within: i64,
    },
    /// `cases show --attachments ID`: the case's attachments, numbered.
    Attachments {
        /// The case.
        id: CaseId,
    },
    /// `cases attachment ID N`: one attachment's bytes, base64 on the wire
    /// (the admin socket carries text); the CLI writes them out decoded.
    Attachment {
        /// The case.
        id: CaseId,
        /// Its number in the listing, from 1.
        number: usize,
    },
    /// `cases audit`: what retention and erasure removed.
    Audit,
}

/// The text a query prints.
pub fn answer(store: &Store, query: &Query, now: i64) -> anyhow::Result<String> {
    match query {
        Query::List { filter } => list(store, filter, now),
        Query::Show { id } => match store.case(id)? {
            Some(case) => show(store, &case, now),
            None => match store.tombstone(id)? {
                Some(t) => Ok(crate::retention::tombstone_text(&t)),
                None => Err(anyhow::anyhow!("no case {id}")),
            },
        },
        Query::Export { filter } => {
            // One pass over the outbox for all cases, not one per case.
            let mut outbox: std::collections::HashMap<CaseId, Vec<OutboxItem>> = Default::default();
            for item in store.outbox()? {
                outbox.entry(item.case_id.clone()).or_default().push(item);
            }
            let mut out = String::new();
            for case in store.cases()? {
                if !filter.matches(store, &case, now)? {
                    continue;
                }
                let items = outbox.remove(&case.id).unwrap_or_default();
                let _ = writeln!(out, "{}", export_with(store, &case, items)?);
            }
            Ok(out)
        }
        Query::Followups { within } => followups(store, now, *within),
        Query::Attachments { id } => attachments(&load(store, id)?),
        Query::Attachment { id, number } => attachment(store, &load(store, id)?, *number),
        Query::Audit => crate::retention::audit(store),
    }
}

fn load(store: &Store, id: &CaseId) -> anyhow::Result<Case> {
    store
        .case(id)?
        .ok_or_else(|| anyhow::anyhow!("no case {id}"))
}

/// One line per attachment: number, name, type, size, the message it came with.
fn attachments(case: &Case) -> anyhow::Result<String> {
    let mut text = String::new();
    if case.attachments.is_empty() {
        let _ = writeln!(text, "{}: no attachments", case.id);
    }
    for (i, a) in case.attachments.iter().enumerate() {
        let _ = writeln!(
            text,
            "{}. {} ({}, {}) from <{}>, received {}",
            i + 1,
            a.name,
            a.content_type,
            crate::attachments::human_size(a.size),
            a.message_id,
            crate::labels::format_date("en", a.received_at)
        );
    }
    Ok(text)
}

/// The base64 of attachment `number` (from 1), read from the kept raw message.
fn attachment(store: &Store, case: &Case, number: usize) -> anyhow::Result<String> {
    use base64::Engine as _;
    let a = number
        .checked_sub(1)
        .and_then(|i| case.attachments.get(i))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has {} attachment(s); no number {number}",
                case.id,
                case.attachments.len()
            )
        })?;
    let raw = store
        .raw(&a.content_hash)?
        .ok_or_else(|| anyhow::anyhow!("the message <{}> is no longer kept", a.message_id))?;
    let bytes = crate::attachments::content(&raw, a.index).ok_or_else(|| {
        anyhow::anyhow!("attachment {number} cannot be read from the kept message")
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn list(store: &Store, filter: &CaseFilter, now: i64) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<22} {:<6} {:>4}  {:<16} {:<28} MISSING",
        "CASE", "STATE", "PRIO", "AGE", "USERNAME", "REQUESTER"
    );
    let (mut shown, mut open) = (0, 0);
    for c in store.cases()? {
        if !filter.matches(store, &c, now)? {
            continue;
        }
        shown += 1;
        open += usize::from(c.state.is_open());
        let missing: Vec<&str> = c.missing.iter().map(|f| f.code()).collect();
        let _ = writeln!(
            out,
            "{:<10} {:<22} {:<6} {:>4}  {:<16} {:<28} {}",
            c.id.as_str(),
            c.state.as_str(),
            c.priority.as_str(),
            age(now, c.created_at),
            c.fields.username.as_deref().unwrap_or("-"),
            c.requester,
            if missing.is_empty() {
                "-".into()
            } else {
                missing.join(",")
            }
        );
    }
    let _ = writeln!(out, "{shown} case(s), {open} open");
    Ok(out)
}

/// A readable account of one case: facts, the thread, the log.
pub fn show(store: &Store, c: &Case, now: i64) -> anyhow::Result<String> {
    let mut out = summary(c, now);
    out.push_str("\nThread:\n");
    for m in &c.messages {
        let (arrow, who) = if m.direction == Direction::In {
            ("<-", shown_from(m))
        } else {
            ("->", shown_to(m).join(", "))
        };
        out.push_str(&format!(
            "  {:>4} {arrow} {:<30} {:<22} {}\n",
            age(now, m.date),
            who,
            m.kind,
            m.subject
        ));
    }
    out.push_str("\nLog:\n");
    for e in store.events(&c.id)? {
        out.push_str(&format!(
            "  {:>5} ago  {:<24} {}\n",
            age(now, e.at),
            e.actor,
            e.what
        ));
    }
    Ok(out)
}

/// The labelled lines at the top of `cases show`.
fn summary(c: &Case, now: i64) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<22} {v}\n"));
    line(&mut out, "Case", c.id.to_string());
    line(
        &mut out,
        "State",
        format!("{} (priority {})", c.state.as_str(), c.priority.as_str()),
    );
    line(
        &mut out,
        "Opened",
        format!("{} ago", age(now, c.created_at)),
    );
    line(
        &mut out,
        "Requester",
        c.requesters().collect::<Vec<_>>().join(", "),
    );
    line(&mut out, "Language", c.language.clone());
    line(
        &mut out,
        "Username",
        c.fields.username.clone().unwrap_or_else(|| "-".into()),
    );
    line(
        &mut out,
        "Reasons",
        c.fields
            .reasons
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .join(", "),
    );
    line(
        &mut out,
        "Missing",
        c.missing
            .iter()
            .map(|f| f.code())
            .collect::<Vec<_>>()
            .join(", "),
    );
    line(&mut out, "Verification", c.verification.label().to_string());
    line(
        &mut out,
        "Linked address",
        c.linked_address_masked
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    line(&mut out, "Flags", format!("{:?}", c.flags));
    for h in &c.held {
        line(
            &mut out,
            "Held back",
            format!(
                "{}, goes out in {} ({})",
                h.mail.template,
                age(h.until, now),
                h.why
            ),
        );
    }
    out
}

/// The documented JSON form of a case (README "Case JSON").
pub fn export(store: &Store, c: &Case) -> anyhow::Result<serde_json::Value> {
    export_with(store, c, store.outbox_of(&c.id)?)
}

/// [`export`] with the case's outbox items already at hand.
fn export_with(
    store: &Store,
    c: &Case,
    outbox: Vec<OutboxItem>,
) -> anyhow::Result<serde_json::Value> {
    let outgoing: Vec<_> = outbox
        .into_iter()
        .map(|o| {
            let to = if o.template.audience() == Audience::LinkedAddress { masked(&o.to) } else { o.to.clone() };
            json!({"to": to, "subject": o.subject, "template": o.template, "message_id": o.message_id, "sent": o.sent_at.is_some(), "failed": o.failed})
        })
        .collect();
    let verification = match &c.verification {
        Verification::Pending(ch) => {
            json!({"state": "pending", "expires_at": ch.expires_at, "attempts_left": ch.attempts_left})
        }
        other => json!({"state": other.label()}),
    };
    Ok(json!({
        "id": c.id, "state": c.state.as_str(), "priority": c.priority.as_str(), "language": c.language,
        "created_at": c.created_at, "requesters": c.requesters().collect::<Vec<_>>(),
        "username": c.fields.username, "lookup_address": c.fields.lookup_address,
        "reasons": c.fields.reasons, "claims_email_access": c.fields.claims_email_access,
        "agreed_code_of_conduct": c.fields.agreed_code_of_conduct, "acknowledged_delay": c.fields.acknowledged_delay,
        "proofs": c.fields.proofs, "missing": c.missing, "flags": c.flags, "secrets_found": c.secrets_found,
        "verification": verification, "linked_address_masked": c.linked_address_masked, "assignee": c.assignee,
        "timers": c.timers.iter().map(|(k, d)| json!({"kind": k.as_str(), "due": d})).collect::<Vec<_>>(),
        "messages": c.messages.iter().map(|m| json!({"message_id": m.message_id, "direction": m.direction, "from": shown_from(m), "to": shown_to(m), "subject": m.subject, "date": m.date, "kind": m.kind})).collect::<Vec<_>>(),
        "outgoing": outgoing,
        "held": c.held.iter().map(|h| json!({"template": h.mail.template, "since": h.since, "until": h.until, "why": h.why, "merged": h.merged})).collect::<Vec<_>>(),
        "events": store.events(&c.id)?,
    }))
}

/// The linked address is shown to staff only masked (README, "Security rules it keeps"), so the
/// challenge thread's addresses are masked in every listing.
fn masked(addresses: &[String]) -> Vec<String> {
    addresses
        .iter()
        .map(|a| crate::verify::mask_address(a))
        .collect()
}

fn shown_to(m: &crate::case::MessageRef) -> Vec<String> {
    if m.role == crate::thread::Role::Challenge && m.direction == Direction::Out {
        masked(&m.to)
    } else {
        m.to.clone()
    }
}

fn shown_from(m: &crate::case::MessageRef) -> String {
    if m.role == crate::thread::Role::Challenge && m.direction == Direction::In {
        crate::verify::mask_address(&m.from)
    } else {
        m.from.clone()
    }
}

/// What a timer will send, and to whom.
pub fn timer_effect(kind: TimerKind) -> (&'static str, &'static str) {
    match kind {
        TimerKind::Reminder => (
            "reminder (or close notice after a long outage)",
            "requester",
        ),
        TimerKind::CloseInactive => ("close_notice", "requester"),
        TimerKind::ChallengeReminder => ("challenge_reminder", "linked address"),
        TimerKind::ChallengeExpiry => ("nothing (challenge expires)", "-"),
        TimerKind::WaitingPeriodEnd => ("nothing (ready for staff)", "-"),
        TimerKind::StaffStatus => ("status_note + staff_nudge", "requester, staff"),
        TimerKind::ResolvedClose => ("nothing (closes)", "-"),
        TimerKind::DirectoryRetry => ("account lookup retry", "-"),
        TimerKind::HeldMail => ("mail the rate limit held back", "requester"),
    }
}

/// The follow-ups due within `within` seconds.
pub fn followups(store: &Store, now: i64, within: i64) -> anyhow::Result<String> {
    let timers: Vec<_> = store
        .all_timers()?
        .into_iter()
        .filter(|(due, _, _)| *due <= now + within)
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:<20} {:<48} TO",
        "DUE (UTC)", "CASE", "TIMER", "SENDS"
    );
    for (due, case, kind) in &timers {
        let (what, to) = timer_effect(*kind);
        let when = chrono::DateTime::from_timestamp(*due, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let overdue = if *due <= now { " (due now)" } else { "" };
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<20} {:<48} {to}{overdue}",
            when,
            case.as_str(),
            kind.as_str(),
            what
        );
    }
    let _ = writeln!(
        out,
        "{} follow-up(s) within {}",
        timers.len(),
        humantime::format_duration(std::time::Duration::from_secs(within.max(0) as u64))
    );
    Ok(out)
}
