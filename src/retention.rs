//! `cases erase`, `cases purge` and `cases audit`: what the operator asks
//! and the text they read back, the same whether the daemon answers over
//! the admin socket or the CLI opens the store itself. The removal itself
//! is the store's (`store/retention.rs`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::store::{AuditEntry, EraseTarget, Removed, Store, Tombstone};

/// A data-subject request as the operator gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erase {
    /// The case or the address.
    pub target: EraseTarget,
    /// Why (kept in the audit trail).
    pub reason: String,
    /// Who asks (kept in the audit trail).
    pub by: String,
    /// False: only say what would be erased.
    pub confirmed: bool,
}

/// Erases, or without confirmation lists what would be erased.
pub fn erase(store: &Store, request: &Erase, now: i64) -> anyhow::Result<String> {
    let ids = store.erasure_cases(&request.target)?;
    let mut out = String::new();
    if !request.confirmed {
        let _ = writeln!(out, "would erase {} case(s):", ids.len());
        for id in &ids {
            let _ = writeln!(out, "  {id}");
        }
        if matches!(request.target, EraseTarget::Address(_)) {
            let _ = writeln!(
                out,
                "and the address's mail that reached no case and its rate-limit history"
            );
        }
        let _ = writeln!(out, "nothing changed; run again with --yes to erase");
        return Ok(out);
    }
    let entries = store.erase(&request.target, now, &request.by, &request.reason)?;
    let _ = writeln!(out, "erased {} case(s)", ids.len());
    for entry in &entries {
        let _ = writeln!(out, "  {}", entry_line(entry));
    }
    Ok(out)
}

/// Runs retention now.
pub fn purge(store: &Store, keep_for: i64, by: &str, now: i64) -> anyhow::Result<String> {
    let entries = store.purge_expired(now, keep_for, by)?;
    let mut out = format!(
        "purged {} closed case(s) closed more than {} ago\n",
        entries.len(),
        humantime::format_duration(std::time::Duration::from_secs(keep_for.max(0) as u64))
    );
    for entry in &entries {
        let _ = writeln!(out, "  {}", entry_line(entry));
    }
    Ok(out)
}

/// The audit trail, oldest first, one line an entry.
pub fn audit(store: &Store) -> anyhow::Result<String> {
    let entries = store.audit()?;
    let mut out = format!("{} audit entr{}\n", entries.len(), plural(entries.len()));
    for entry in &entries {
        let _ = writeln!(
            out,
            "{}  {:<9}  by {:<16}  {}  ({})",
            stamp(entry.at),
            entry.action.as_str(),
            entry.by,
            entry_line(entry),
            entry.reason
        );
    }
    Ok(out)
}

/// What `cases show` says about a case that was removed.
pub fn tombstone_text(t: &Tombstone) -> String {
    let mut out = format!(
        "{}: removed by {} at {}; only this is kept\n",
        t.case_id,
        t.why.as_str(),
        stamp(t.removed_at)
    );
    let _ = writeln!(out, "  opened    {}", stamp(t.created_at));
    if let Some(at) = t.resolved_at {
        let _ = writeln!(out, "  resolved  {}", stamp(at));
    }
    if let Some(at) = t.closed_at {
        let _ = writeln!(out, "  closed    {}", stamp(at));
    }
    let _ = writeln!(out, "  outcome   {}", t.outcome.as_str());
    out
}

fn entry_line(entry: &AuditEntry) -> String {
    let case = entry
        .case_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "mail outside any case".into());
    format!("{case}: {}", counts(&entry.removed))
}

fn counts(r: &Removed) -> String {
    let parts = [
        (r.raw_messages, "raw message(s)"),
        (r.events, "log line(s)"),
        (r.message_ids, "Message-ID(s)"),
        (r.outbox_rows, "sent/failed mail record(s)"),
        (r.pending_outbox_rows, "unsent mail"),
        (r.timers, "timer(s)"),
        (r.rate_limit_histories, "rate-limit histor(ies)"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if text.is_empty() {
        "nothing held".into()
    } else {
        text.join(", ")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "y"
    } else {
        "ies"
    }
}

fn stamp(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| at.to_string())
}
