//! Secrets posted by mistake (API tokens, recovery codes, TOTP seeds,
//! passwords): found and redacted before anything is stored in clear.
//!
//! Pure. Placeholder rules; the reading issue replaces them.

use serde::{Deserialize, Serialize};

/// A kind of secret the requester should revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// An API token such as `pypi-AgE…`.
    ApiToken,
    /// A 2FA recovery code.
    RecoveryCode,
    /// A TOTP seed or `otpauth://` URI.
    TotpSeed,
    /// A password stated in the text.
    Password,
}

impl SecretKind {
    /// Stable snake_case code used in JSON and templates.
    pub fn code(self) -> &'static str {
        match self {
            SecretKind::ApiToken => "api_token",
            SecretKind::RecoveryCode => "recovery_code",
            SecretKind::TotpSeed => "totp_seed",
            SecretKind::Password => "password",
        }
    }
}

/// Text with secrets replaced by `[redacted <kind>]`, and what was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redacted {
    /// The text, safe to store, show and quote.
    pub text: String,
    /// Kinds found, no repeats, in order of first appearance.
    pub found: Vec<SecretKind>,
}

/// Finds and redacts secrets in `text`.
pub fn redact(text: &str) -> Redacted {
    let mut found = Vec::new();
    let words: Vec<String> = text
        .split(' ')
        .map(|w| {
            if w.starts_with("pypi-") && w.len() > 20 {
                if !found.contains(&SecretKind::ApiToken) {
                    found.push(SecretKind::ApiToken);
                }
                "[redacted api_token]".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    Redacted { text: words.join(" "), found }
}
