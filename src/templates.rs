//! Reply templates (tera): which kinds exist, loading (embedded or from a
//! folder), language fallback, and rendering to subject, text and HTML.
//!
//! Pure rendering; loading reads files. Placeholder set; the operators
//! issue completes it (check, preview, hot reload).

use std::path::Path;

use serde::Serialize;
use tera::Tera;

use crate::error::{Error, Result};

/// Every kind of mail recoverydesk sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// First answer to a new request.
    Acknowledgement,
    /// Asks for the fields still missing.
    RequestInfo,
    /// The request is already in the queue.
    Duplicate,
}

impl TemplateKind {
    /// The file stem, e.g. `acknowledgement`.
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Acknowledgement => "acknowledgement",
            TemplateKind::RequestInfo => "request_info",
            TemplateKind::Duplicate => "duplicate",
        }
    }
}

/// A rendered mail body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// One-line subject.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part, when the template set has one.
    pub html: Option<String>,
}

/// A compiled template set.
#[derive(Debug)]
pub struct TemplateSet {
    tera: Tera,
    default_language: String,
}

const EMBEDDED: &[(&str, &str)] = &[
    ("en/acknowledgement.subject.tera", include_str!("../templates/en/acknowledgement.subject.tera")),
    ("en/acknowledgement.txt.tera", include_str!("../templates/en/acknowledgement.txt.tera")),
    ("en/request_info.subject.tera", include_str!("../templates/en/request_info.subject.tera")),
    ("en/request_info.txt.tera", include_str!("../templates/en/request_info.txt.tera")),
    ("en/duplicate.subject.tera", include_str!("../templates/en/duplicate.subject.tera")),
    ("en/duplicate.txt.tera", include_str!("../templates/en/duplicate.txt.tera")),
];

impl TemplateSet {
    /// The set compiled into the binary.
    pub fn embedded() -> Result<Self> {
        let mut tera = Tera::default();
        tera.add_raw_templates(EMBEDDED.iter().copied())
            .map_err(|e| Error::Template(error_chain(&e)))?;
        tera.autoescape_on(vec![".html.tera"]);
        Ok(TemplateSet { tera, default_language: "en".into() })
    }

    /// Loads every `*.tera` file under `dir` (`<lang>/<kind>.<part>.tera`).
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let glob = format!("{}/**/*.tera", dir.display());
        let mut tera = Tera::new(&glob).map_err(|e| Error::Template(error_chain(&e)))?;
        tera.autoescape_on(vec![".html.tera"]);
        Ok(TemplateSet { tera, default_language: "en".into() })
    }

    /// Renders a kind in `lang`, falling back to the default language per file.
    pub fn render(&self, kind: TemplateKind, lang: &str, context: &serde_json::Value) -> Result<Rendered> {
        let ctx = tera::Context::from_value(context.clone()).map_err(|e| Error::Template(error_chain(&e)))?;
        let part = |suffix: &str| -> Result<Option<String>> {
            for language in [lang, self.default_language.as_str()] {
                let name = format!("{language}/{}.{suffix}.tera", kind.name());
                if self.tera.get_template_names().any(|n| n == name) {
                    return self
                        .tera
                        .render(&name, &ctx)
                        .map(Some)
                        .map_err(|e| Error::Template(format!("{name}: {}", error_chain(&e))));
                }
            }
            Ok(None)
        };
        let subject = part("subject")?.ok_or_else(|| Error::Template(format!("no subject for {}", kind.name())))?;
        let text = part("txt")?.ok_or_else(|| Error::Template(format!("no text for {}", kind.name())))?;
        Ok(Rendered {
            subject: crate::domain::header_safe(&subject),
            text,
            html: part("html")?,
        })
    }
}

/// Joins an error and its sources into one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
