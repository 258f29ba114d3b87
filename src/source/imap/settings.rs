//! The `[source.imap]` settings: parsing, defaults and the checks that
//! need no server.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::SecretSource;

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plaintext greeting, then `STARTTLS` before login (port 143).
    Starttls,
    /// No TLS at all; refused unless `allow_plaintext = true`.
    Plain,
}

/// How the source logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapAuth {
    /// The `LOGIN` command.
    Login,
    /// `AUTHENTICATE PLAIN` (RFC 4616).
    Plain,
}

/// The `[source.imap]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    /// Server host name (also the name the certificate must carry, unless
    /// `tls_server_name` says otherwise).
    pub host: String,
    /// Server port, e.g. 993 (implicit) or 143 (STARTTLS).
    pub port: u16,
    /// `"implicit"`, `"starttls"` or `"plain"`.
    pub tls: ImapTls,
    /// Must be true for `tls = "plain"`; meant for loopback tests only.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// An extra root CA (PEM) to trust, e.g. a test CA. Relative paths
    /// resolve against the config's directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name to verify the server certificate against when it differs
    /// from `host` (e.g. connecting by IP address). Defaults to `host`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Login name.
    pub username: String,
    /// Where the password comes from (`{ env = "..." }` or `{ file = "..." }`).
    pub password: SecretSource,
    /// `"login"` (default) or `"plain"`.
    #[serde(default = "default_auth")]
    pub auth: ImapAuth,
    /// The mailbox to read (default `INBOX`).
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    /// System flag set on processed mail (default `\Seen`; empty for none).
    #[serde(default = "default_processed_flag")]
    pub processed_flag: String,
    /// Keyword also set on processed mail, e.g. `$RecoverydeskDone`.
    #[serde(default)]
    pub processed_keyword: Option<String>,
    /// Folder processed mail is moved to (MOVE if advertised, else COPY;
    /// never expunged by us).
    #[serde(default)]
    pub move_to: Option<String>,
    /// Folder a processed message that held a secret is moved to instead
    /// of `move_to`, so the server copy is in one place to purge (we never
    /// expunge it ourselves).
    #[serde(default)]
    pub secrets_move_to: Option<String>,
    /// Messages per `UID FETCH` command: `[source] batch_size`, not
    /// accepted here (one key, one place).
    #[serde(skip, default = "default_batch_size")]
    pub batch_size: usize,
    /// Use IDLE when the server offers it (default true).
    #[serde(default = "default_true")]
    pub idle: bool,
    /// How long to sleep between polls without IDLE: `[source]
    /// poll_interval`, not accepted here.
    #[serde(skip, default = "default_poll_interval")]
    pub poll_interval: Duration,
    /// Messages larger than this are fetched headers-only and marked
    /// oversize: `[source] max_message_bytes`, not accepted here.
    #[serde(skip, default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// A batch ends once it reaches this many bytes (set from
    /// `[source] batch_bytes`; not a key of its own here).
    #[serde(skip, default = "default_batch_bytes")]
    pub batch_bytes: u64,
}

fn default_batch_bytes() -> u64 {
    8 * 1024 * 1024
}

fn default_auth() -> ImapAuth {
    ImapAuth::Login
}
fn default_mailbox() -> String {
    "INBOX".to_string()
}
fn default_processed_flag() -> String {
    "\\Seen".to_string()
}
fn default_batch_size() -> usize {
    100
}
fn default_true() -> bool {
    true
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_message_bytes() -> u64 {
    25 * 1024 * 1024
}

impl ImapSettings {
    /// `user@host:port`, for messages.
    pub(super) fn place(&self) -> String {
        format!("{}@{}:{}", self.username, self.host, self.port)
    }

    /// Checks what can be checked without a server.
    pub(super) fn validate(&self) -> Result<()> {
        let place = self.place();
        if self.tls == ImapTls::Plain && !self.allow_plaintext {
            return Err(Error::Config(format!(
                "imap {place}: tls = \"plain\" sends the password in clear; \
                 set allow_plaintext = true only for a loopback test server"
            )));
        }
        if self.host.is_empty() {
            return Err(Error::Config("imap: host is empty".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Config(format!(
                "imap {place}: batch_size must be at least 1"
            )));
        }
        if self.poll_interval.is_zero() {
            return Err(Error::Config(format!(
                "imap {place}: poll_interval must be above 0"
            )));
        }
        for (key, name) in [
            ("mailbox", Some(&self.mailbox)),
            ("move_to", self.move_to.as_ref()),
            ("secrets_move_to", self.secrets_move_to.as_ref()),
        ] {
            if let Some(name) = name {
                if name.is_empty() || name.chars().any(|c| c.is_control()) {
                    return Err(Error::Config(format!(
                        "imap {place}: {key} {name:?} is not a usable mailbox name"
                    )));
                }
                // IMAP4rev1 names are modified UTF-7 (RFC 3501 section
                // 5.1.3); we send names as written, so they must be ASCII.
                if !name.is_ascii() {
                    return Err(Error::Config(format!(
                        "imap {place}: {key} {name:?} is not ASCII; write it in IMAP's modified \
                         UTF-7 form (e.g. \"Entw&APw-rfe\" for \"Entwürfe\")"
                    )));
                }
            }
        }
        for (key, folder) in [
            ("move_to", &self.move_to),
            ("secrets_move_to", &self.secrets_move_to),
        ] {
            if folder.as_deref() == Some(self.mailbox.as_str()) {
                return Err(Error::Config(format!(
                    "imap {place}: {key} is the mailbox being read ({})",
                    self.mailbox
                )));
            }
        }
        if !self.processed_flag.is_empty() && !is_system_flag(&self.processed_flag) {
            return Err(Error::Config(format!(
                "imap {place}: processed_flag {:?} is not a system flag such as \\Seen \
                 (use processed_keyword for a keyword)",
                self.processed_flag
            )));
        }
        if let Some(keyword) = &self.processed_keyword {
            if !is_atom(keyword) {
                return Err(Error::Config(format!(
                    "imap {place}: processed_keyword {keyword:?} is not an IMAP atom"
                )));
            }
        }
        Ok(())
    }

    /// The flags `mark_done` sets, as an IMAP list, or `None` for none.
    pub(super) fn done_flags(&self) -> Option<String> {
        let mut flags: Vec<&str> = Vec::new();
        if !self.processed_flag.is_empty() {
            flags.push(&self.processed_flag);
        }
        if let Some(keyword) = &self.processed_keyword {
            flags.push(keyword);
        }
        (!flags.is_empty()).then(|| format!("({})", flags.join(" ")))
    }
}

fn is_system_flag(flag: &str) -> bool {
    ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
        .iter()
        .any(|known| known.eq_ignore_ascii_case(flag))
        // \Deleted would invite someone else's EXPUNGE; we never delete.
        && !flag.eq_ignore_ascii_case("\\Deleted")
}

/// RFC 3501 `atom`: no specials, no controls, no spaces.
fn is_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> std::result::Result<ImapSettings, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn plaintext_is_refused_without_the_explicit_switch() {
        let s = settings(
            "host = \"127.0.0.1\"\nport = 143\ntls = \"plain\"\nusername = \"u\"\npassword = { env = \"P\" }\n",
        )
        .expect("parses");
        let err = s.validate().expect_err("refused");
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("allow_plaintext"));
    }

    #[test]
    fn defaults_parse_and_source_keys_are_refused_here() {
        let s = settings(
            "host = \"h\"\nport = 993\ntls = \"implicit\"\nusername = \"u\"\npassword = { env = \"P\" }\nprocessed_keyword = \"$RecoverydeskDone\"\n",
        )
        .expect("parses");
        assert_eq!(s.mailbox, "INBOX");
        assert_eq!(s.poll_interval, Duration::from_secs(60));
        assert!(s.idle);
        assert_eq!(
            s.done_flags().as_deref(),
            Some("(\\Seen $RecoverydeskDone)")
        );
        assert!(s.validate().is_ok());
        // [source] owns these three; accepting them here and then
        // overwriting them would ignore what the operator wrote.
        for key in [
            "poll_interval = \"90s\"",
            "batch_size = 10",
            "max_message_bytes = 5",
        ] {
            let text = format!(
                "host = \"h\"\nport = 993\nusername = \"u\"\npassword = {{ env = \"P\" }}\n{key}\n"
            );
            let err = settings(&text).expect_err("refused").to_string();
            assert!(err.contains(key.split(' ').next().unwrap()), "{err}");
        }
    }

    #[test]
    fn unknown_keys_and_deleted_flag_are_refused() {
        assert!(settings(
            "host = \"h\"\nport = 993\ntls = \"implicit\"\nusername = \"u\"\npassword = { env = \"P\" }\nbogus = 1\n"
        )
        .is_err());
        let s = settings(
            "host = \"h\"\nport = 993\ntls = \"implicit\"\nusername = \"u\"\npassword = { env = \"P\" }\nprocessed_flag = \"\\\\Deleted\"\n",
        )
        .expect("parses");
        assert!(s.validate().is_err());
    }
}
