//! The optional daily digest to staff: every open case by age, with the
//! cases whose requester asked for an update in the last day marked, so
//! status chases reach staff without becoming cases of their own.
//!
//! Sent once a day at `[staff] digest_at` (local time in
//! `digest_timezone`), straight through the transport: it belongs to no
//! case, so it does not go through the case outbox. The day it was sent is
//! recorded in the store only after the transport accepted it. The first
//! start sends none: the first digest goes at the next `digest_at`.

use chrono::TimeZone;
use serde_json::json;

use crate::config::DigestSchedule;
use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::templates::TemplateKind;
use crate::transport::{OutgoingMessage, Transport};

/// Store key of the last local date a digest went out.
const LAST_DIGEST: &str = "last_digest_date";

/// Sends the digest if one is configured and due; returns whether it sent.
pub async fn send_if_due(pipeline: &Pipeline, transport: &dyn Transport, now: i64) -> Result<bool> {
    let Some(DigestSchedule { at, timezone }) = pipeline.settings.staff_mail.digest else {
        return Ok(false);
    };
    let Some(local) = timezone.timestamp_opt(now, 0).single() else {
        return Ok(false);
    };
    let today = local.date_naive().to_string();
    let Some(last) = pipeline.store.meta(LAST_DIGEST)? else {
        // The first start (or the first with a digest configured) sends
        // none: starting at 15:00 with `digest_at = "08:00"` is no reason
        // for a digest now. The first one goes at the next `digest_at`.
        let passed = if local.time() >= at {
            local.date_naive()
        } else {
            local.date_naive().pred_opt().unwrap_or(local.date_naive())
        };
        pipeline.store.set_meta(LAST_DIGEST, &passed.to_string())?;
        return Ok(false);
    };
    if local.time() < at || last == today {
        return Ok(false);
    }
    let message = compose(pipeline, now)?;
    transport.send(&message).await?;
    pipeline.store.set_meta(LAST_DIGEST, &today)?;
    tracing::info!(date = %today, "daily digest sent to staff");
    Ok(true)
}

fn compose(pipeline: &Pipeline, now: i64) -> Result<OutgoingMessage> {
    let settings = &pipeline.settings;
    let mut cases: Vec<_> = pipeline
        .store
        .cases()?
        .into_iter()
        .filter(|c| c.state.is_open())
        .collect();
    cases.sort_by_key(|c| c.created_at);
    let mut items = Vec::new();
    for case in &cases {
        let chased = pipeline
            .store
            .events(&case.id)?
            .iter()
            .any(|e| e.at > now - 86_400 && e.what == "asked for an update");
        items.push(json!({
            "id": case.id.as_str(),
            "state": case.state.as_str(),
            "age_days": (now - case.created_at).max(0) / 86_400,
            "username": case.fields.username,
            "priority": case.priority.as_str(),
            "asked_for_update": chased,
        }));
    }
    let date = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.format("%A %-d %B %Y").to_string())
        .unwrap_or_default();
    let notify = &settings.staff_mail.notify;
    let context = json!({
        "support": settings.instance.template_context(&settings.support_address),
        "now": date,
        "digest": { "cases": items },
    });
    let rendered = pipeline
        .templates
        .current()
        .render(TemplateKind::Digest, "en", &context)?;
    let message_id = format!(
        "digest.{}.{}@{}",
        now,
        pipeline.store.next_id()?,
        settings.support_address.domain()
    );
    let bytes = crate::compose::format_plain(settings, notify, &rendered, &message_id, now)?;
    Ok(OutgoingMessage {
        message_id,
        envelope_from: settings.support_address.to_string(),
        envelope_to: notify.clone(),
        bytes,
    })
}
