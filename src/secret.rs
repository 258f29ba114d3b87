//! Secrets in config (passwords, tokens, the installation key): read from
//! an environment variable or a file, never written in the config itself,
//! never printed.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where a secret comes from: `{ env = "NAME" }`, `{ file = "path" }`, or
/// `{ credential = "name" }` for a systemd credential (`LoadCredential=`),
/// read from `$CREDENTIALS_DIRECTORY/name`. A credential may name a `file`
/// too: it is read when there is no credentials directory, which is how
/// the CLI, run by root outside the service, reads the same secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Name of an environment variable holding the secret.
    pub env: Option<String>,
    /// Path of a file holding the secret (trailing newline trimmed).
    pub file: Option<PathBuf>,
    /// Name of a systemd credential holding the secret.
    #[serde(default)]
    pub credential: Option<String>,
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
        if let Some(name) = &self.credential {
            if self.env.is_some() {
                return Err(Error::Config(format!(
                    "{key}: give credential (optionally with file), not env as well"
                )));
            }
            match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => return read_file(key, &std::path::Path::new(&dir).join(name)),
                None if self.file.is_none() => {
                    return Err(Error::Config(format!(
                        "{key}: credential {name:?} needs CREDENTIALS_DIRECTORY (run under systemd with LoadCredential={name}:…) or a file = \"…\" to read instead"
                    )))
                }
                None => {}
            }
        }
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map(Secret::new).map_err(|_| {
                Error::Config(format!("{key}: environment variable {var} is not set"))
            }),
            (None, Some(path)) => read_file(key, &base.join(path)),
            _ => Err(Error::Config(format!(
                "{key}: give exactly one of env = \"VAR\" or file = \"path\""
            ))),
        }
    }
}

fn read_file(key: &str, path: &std::path::Path) -> Result<Secret> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
        .map_err(|e| Error::Config(format!("{key}: cannot read {}: {e}", path.display())))
}

impl SecretSource {
    /// A warning when the secret's file can be read by other users than
    /// its owner (e.g. mode 0644), naming the key and the fix.
    pub fn loose_permissions(&self, key: &str, base: &std::path::Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = base.join(self.file.as_ref()?);
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{key}: {} is readable by other users (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_read_from_the_credentials_directory_else_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("creds")).unwrap();
        std::fs::write(dir.path().join("creds/secret_key"), "from-systemd\n").unwrap();
        std::fs::write(dir.path().join("fallback.key"), "from-file\n").unwrap();
        let source = SecretSource {
            env: None,
            file: Some("fallback.key".into()),
            credential: Some("secret_key".into()),
        };
        // The only test that touches this variable.
        std::env::remove_var("CREDENTIALS_DIRECTORY");
        let outside = source.resolve("instance.secret_key", dir.path()).unwrap();
        assert_eq!(outside.expose(), "from-file");
        std::env::set_var("CREDENTIALS_DIRECTORY", dir.path().join("creds"));
        let inside = source.resolve("instance.secret_key", dir.path());
        std::env::remove_var("CREDENTIALS_DIRECTORY");
        assert_eq!(inside.unwrap().expose(), "from-systemd");
        let bare = SecretSource {
            file: None,
            ..source
        };
        let err = bare.resolve("instance.secret_key", dir.path()).unwrap_err();
        assert!(err.to_string().contains("LoadCredential"), "{err}");
    }

    #[test]
    fn a_key_file_others_can_read_is_named_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, "k").unwrap();
        let source = SecretSource {
            env: None,
            file: Some("secret.key".into()),
            credential: None,
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = source.loose_permissions("instance.secret_key", dir.path());
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.contains("instance.secret_key") && w.contains("644")),
            "{warning:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.loose_permissions("k", dir.path()), None);
    }

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
            credential: None,
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
            credential: None,
        };
        assert_eq!(src.resolve("k", dir.path()).unwrap().expose(), "abc");
    }
}
