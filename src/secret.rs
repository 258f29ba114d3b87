//! Secrets in config (passwords, tokens, the installation key): read from
//! an environment variable or a file, never written in the config itself,
//! never printed.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where a secret comes from: `{ env = "NAME" }` or `{ file = "path" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Name of an environment variable holding the secret.
    pub env: Option<String>,
    /// Path of a file holding the secret (trailing newline trimmed).
    pub file: Option<PathBuf>,
}

/// A secret value whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl SecretSource {
    /// Reads the secret; `key` names the config key in errors
    /// (e.g. `source.imap.password`). Relative files resolve against `base`.
    pub fn resolve(&self, key: &str, base: &std::path::Path) -> Result<Secret> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map(Secret::new).map_err(|_| {
                Error::Config(format!("{key}: environment variable {var} is not set"))
            }),
            (None, Some(path)) => {
                let path = base.join(path);
                std::fs::read_to_string(&path)
                    .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
                    .map_err(|e| {
                        Error::Config(format!("{key}: cannot read {}: {e}", path.display()))
                    })
            }
            _ => Err(Error::Config(format!(
                "{key}: give exactly one of env = \"VAR\" or file = \"path\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn both_env_and_file_is_a_config_error_naming_the_key() {
        let src = SecretSource {
            env: Some("X".into()),
            file: Some("y".into()),
        };
        let err = src
            .resolve("smtp.password", std::path::Path::new("."))
            .unwrap_err();
        assert!(err.to_string().contains("smtp.password"));
    }

    #[test]
    fn file_secret_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "abc\n").unwrap();
        let src = SecretSource {
            env: None,
            file: Some("k".into()),
        };
        assert_eq!(src.resolve("k", dir.path()).unwrap().expose(), "abc");
    }
}
