//! The extraction rules behind [`crate::request::extract`].
//!
//! Placeholder rules; the reading issue replaces this file.

use crate::request::{Claim, Reason, RequestFields, Tick};

/// Reads recovery fields; see [`crate::request::extract`].
pub fn extract(new_text: &str, subject: &str, _ignore: &[String]) -> RequestFields {
    let lower = format!("{subject}\n{new_text}").to_lowercase();
    let mut fields = RequestFields::default();
    for line in new_text.lines() {
        let l = line.trim();
        if let Some(rest) = l.to_lowercase().strip_prefix("username:") {
            let v = rest.trim().trim_matches('`').to_string();
            if !v.is_empty() {
                fields.username = Some(v);
            }
        }
    }
    if lower.contains("2fa") {
        fields.reasons.push(Reason::Lost2faDevice);
    }
    if lower.contains("password") {
        fields.reasons.push(Reason::ForgotPassword);
    }
    if lower.contains("code of conduct") {
        fields.agreed_code_of_conduct = Tick::Weak;
    }
    if lower.contains("still have access") {
        fields.claims_email_access = Claim::Yes;
    }
    fields
}
