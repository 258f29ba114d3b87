//! `templates preview`: render one kind with a sample scenario (or a real
//! case's context) and show it the way a mail client will: as readable
//! headers and parts, or as an RFC 5322 `.eml` file built with lettre.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::Value;

use super::{samples, Audience, Rendered, TemplateKind, TemplateSet};
use crate::error::{Error, Result};

/// The sample context `templates preview --sample SCENARIO` renders with,
/// trimmed to what the worker passes for `kind`.
pub fn sample_context(kind: TemplateKind, scenario: &str) -> Result<Value> {
    let context = samples::scenario(scenario).ok_or_else(|| {
        Error::Config(format!(
            "unknown sample `{scenario}`; known samples: {}",
            samples::NAMES.join(", ")
        ))
    })?;
    Ok(samples::for_kind(&context, kind))
}

/// Puts the operator's instance into a sample context: support name,
/// address, Code of Conduct link and team from `settings`, and reply
/// addresses under their domain and key, so a preview shows what their
/// requesters will see rather than the sample installation.
pub fn use_instance(context: &mut Value, settings: &crate::config::Settings) {
    let support = &settings.support_address;
    context["support"] = settings.instance.template_context(support);
    let key = settings.secret_key.expose().as_bytes();
    let Some(id) = str_at(context, "/case/id").and_then(crate::domain::CaseId::parse) else {
        return;
    };
    use crate::thread::{reply_address, Role};
    if context.pointer("/case/reply_address").is_some() {
        context["case"]["reply_address"] = reply_address(support, key, &id, Role::Case).into();
    }
    if context.pointer("/challenge/reply_address").is_some() {
        context["challenge"]["reply_address"] =
            reply_address(support, key, &id, Role::Challenge).into();
    }
}

/// The context the worker would render `kind` with for a stored case
/// (`templates preview --case`). A challenge code is never stored, so a
/// placeholder stands in for it.
pub fn case_context(
    settings: &crate::config::Settings,
    set: &TemplateSet,
    case: &crate::case::Case,
    kind: TemplateKind,
    queue_position: usize,
    now: i64,
) -> Value {
    use crate::case::{Mail, Recipient};
    let to = match kind.audience() {
        Audience::Requester => Recipient::Requester,
        Audience::LinkedAddress => Recipient::Linked(samples::SAMPLE_LINKED_ADDRESS.into()),
        Audience::Staff => Recipient::Staff,
    };
    let mut mail = Mail::new(kind, to);
    if kind.audience() == Audience::LinkedAddress {
        mail.role = crate::thread::Role::Challenge;
        mail.code = Some("XXXX-XXXX".into());
    }
    let composer = crate::compose::Composer {
        settings,
        templates: set,
    };
    composer.context(case, &mail, queue_position, now, &Default::default())
}

/// Renders `kind` with a sample scenario in `lang`.
pub fn preview(
    set: &TemplateSet,
    kind: TemplateKind,
    scenario: &str,
    lang: &str,
) -> Result<Rendered> {
    set.render(kind, lang, &sample_context(kind, scenario)?)
}

/// Who a preview is addressed from and to, derived from the context the
/// way the outbox addresses the real mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The support mailbox (`support.name <support.address>`).
    pub from: String,
    /// The recipient: the requester, the linked address (a sample, since the
    /// context never holds it) or the support team.
    pub to: String,
    /// Where replies go: the case's or the challenge thread's reply address.
    pub reply_to: Option<String>,
}

fn str_at<'a>(context: &'a Value, pointer: &str) -> Option<&'a str> {
    context
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The envelope for `kind` given its context.
pub fn envelope(kind: TemplateKind, context: &Value) -> Envelope {
    let address = str_at(context, "/support/address").unwrap_or("support@example.org");
    let from = match str_at(context, "/support/name") {
        Some(name) => format!(
            "{} <{address}>",
            crate::domain::header_safe(name).replace(['<', '>', '"'], "")
        ),
        None => address.to_string(),
    };
    let case_reply = str_at(context, "/case/reply_address").map(str::to_string);
    let (to, reply_to) = match kind.audience() {
        Audience::Requester => (
            str_at(context, "/case/requester")
                .unwrap_or(samples::SAMPLE_REQUESTER)
                .to_string(),
            case_reply,
        ),
        Audience::LinkedAddress => (
            samples::SAMPLE_LINKED_ADDRESS.to_string(),
            str_at(context, "/challenge/reply_address").map(str::to_string),
        ),
        Audience::Staff => (
            address.to_string(),
            if kind == TemplateKind::Digest {
                None
            } else {
                case_reply
            },
        ),
    };
    Envelope { from, to, reply_to }
}

fn mailbox(text: &str) -> Result<Mailbox> {
    text.parse::<Mailbox>()
        .map_err(|e| Error::Config(format!("bad address `{text}`: {e}")))
}

/// Builds a complete RFC 5322 message: text only, or multipart/alternative
/// with text and HTML when the template set has an HTML part.
pub fn build_eml(kind: TemplateKind, envelope: &Envelope, rendered: &Rendered) -> Result<Vec<u8>> {
    let domain = envelope
        .from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>'))
        .unwrap_or("example.org");
    let mut builder = Message::builder()
        .from(mailbox(&envelope.from)?)
        .to(mailbox(&envelope.to)?)
        .subject(crate::domain::header_safe(&rendered.subject))
        .date_now()
        .message_id(Some(format!(
            "<preview.{}@{domain}>",
            kind.name().replace('_', "-")
        )));
    if let Some(reply_to) = &envelope.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    let built = match &rendered.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(rendered.text.clone())),
    };
    let mut message =
        built.map_err(|e| Error::Permanent(format!("cannot build the preview mail: {e}")))?;
    // Same marker the outbox sets (RFC 3834), so a preview behaves like the
    // real thing if someone forwards it into a test mailbox.
    let auto = if kind.is_staff_facing() {
        "auto-generated"
    } else {
        "auto-replied"
    };
    message.headers_mut().insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        auto.to_string(),
    ));
    Ok(message.formatted())
}

/// Renders `kind` with `context` and builds the `.eml` (for `--case ID`,
/// where the caller builds the context from a stored case).
pub fn eml_from_context(
    set: &TemplateSet,
    kind: TemplateKind,
    lang: &str,
    context: &Value,
) -> Result<Vec<u8>> {
    let rendered = set.render(kind, lang, context)?;
    build_eml(kind, &envelope(kind, context), &rendered)
}

/// Renders `kind` with a sample scenario and returns the `.eml` bytes.
pub fn preview_eml(
    set: &TemplateSet,
    kind: TemplateKind,
    scenario: &str,
    lang: &str,
) -> Result<Vec<u8>> {
    eml_from_context(set, kind, lang, &sample_context(kind, scenario)?)
}

/// A readable preview for a terminal: headers, the text part, the HTML part.
pub fn format_preview(kind: TemplateKind, context: &Value, rendered: &Rendered) -> String {
    let envelope = envelope(kind, context);
    let mut out = format!("From: {}\nTo: {}\n", envelope.from, envelope.to);
    if let Some(reply_to) = &envelope.reply_to {
        out.push_str(&format!("Reply-To: {reply_to}\n"));
    }
    out.push_str(&format!("Subject: {}\n\n", rendered.subject));
    out.push_str("----- text/plain -----\n");
    out.push_str(&rendered.text);
    match &rendered.html {
        Some(html) => {
            out.push_str("\n----- text/html -----\n");
            out.push_str(html);
            if !html.ends_with('\n') {
                out.push('\n');
            }
        }
        None => out.push_str("\n(no HTML part: the mail is sent as text only)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_goes_to_linked_address_with_its_own_reply_to() {
        let context = sample_context(TemplateKind::Challenge, "seed_2fa").unwrap();
        let envelope = envelope(TemplateKind::Challenge, &context);
        assert_eq!(envelope.to, samples::SAMPLE_LINKED_ADDRESS);
        assert!(envelope.reply_to.unwrap().contains("ch-"));
    }

    #[test]
    fn only_mail_to_the_linked_address_knows_the_challenge_threads_address() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secret.key"),
            "preview-test-key-0123456789abcdef",
        )
        .unwrap();
        let settings =
            crate::config::Settings::from_toml(crate::config::DEMO_TOML, dir.path(), "test")
                .unwrap();
        let set = TemplateSet::embedded().unwrap();
        let id = crate::domain::CaseId::parse("RD-ABCDEF").unwrap();
        let case = crate::case::Case::new(id, "jo@requester.example", 0);
        let thread = |kind| {
            case_context(&settings, &set, &case, kind, 0, 0)["challenge"]
                .get("reply_address")
                .cloned()
        };
        let to_owner = thread(TemplateKind::Challenge).expect("the challenge names its thread");
        assert!(to_owner.as_str().unwrap().contains("-v."), "{to_owner}");
        assert_eq!(thread(TemplateKind::OwnerReceipt), Some(to_owner));
        for kind in [TemplateKind::Acknowledgement, TemplateKind::ChallengeSent] {
            assert_eq!(thread(kind), None, "{kind}");
        }
    }

    #[test]
    fn preview_eml_is_a_mail() {
        let set = TemplateSet::embedded().unwrap();
        let eml = preview_eml(&set, TemplateKind::Acknowledgement, "seed_2fa", "en").unwrap();
        let text = String::from_utf8_lossy(&eml);
        assert!(text.contains("Subject: [Case RD-7K3M9Q]"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(sample_context(TemplateKind::Acknowledgement, "nope").is_err());
    }
}
