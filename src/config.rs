//! The TOML configuration: raw sections as written, checked with
//! `deny_unknown_fields` so a typo names the key and the line, then resolved
//! once into typed [`Settings`] (durations, paths, the installation key).
//!
//! Relative paths resolve against the config file's folder. Secrets are
//! read from an environment variable or a file (see [`crate::secret`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::ratelimit::RateLimits;
use crate::request::Field;
use crate::secret::SecretSource;

mod policy;
mod settings;
mod values;

pub use settings::{
    DigestSchedule, DnsSettings, Instance, Mailbox, MetricsSettings, SendLimits, Settings,
    SourceSettings, StaffMail, TransportSettings,
};

/// The embedded default configuration (`config/demo.toml`).
pub const DEMO_TOML: &str = include_str!("../config/demo.toml");

/// The whole file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// `[instance]`: who we are.
    pub instance: InstanceSection,
    /// `[store]`: where sled keeps its data.
    pub store: StoreSection,
    /// `[source]`: where mail comes from.
    pub source: SourceSection,
    /// `[transport]`: where replies go.
    pub transport: TransportSection,
    /// `[directory]`: where accounts are looked up.
    pub directory: crate::directory::DirectorySettings,
    /// `[templates]`: which template set.
    #[serde(default)]
    pub templates: TemplatesSection,
    /// `[staff]`: who is staff and where notifications go.
    #[serde(default)]
    pub staff: StaffSection,
    /// `[policy]`: required fields, timers, limits.
    #[serde(default)]
    pub policy: PolicySection,
    /// `[metrics]`: optional Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// `[admin]`: the local admin socket the CLI uses while `run` holds the store.
    #[serde(default)]
    pub admin: AdminSection,
    /// `[retention]`: how long closed cases keep their mail.
    #[serde(default)]
    pub retention: RetentionSection,
}

/// `[retention]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionSection {
    /// Remove a closed case's mail and log this long after it closed,
    /// keeping a tombstone; absent: keep everything.
    #[serde(default, deserialize_with = "opt_duration")]
    pub closed_after: Option<Duration>,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminSection {
    /// Serve the admin socket while running (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The socket file; `admin.sock` beside the store folder when absent.
    #[serde(default)]
    pub socket: Option<PathBuf>,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            enabled: true,
            socket: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `[instance]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceSection {
    /// Instance id, stamped in the loop header of everything we send.
    pub id: String,
    /// The support address requesters write to, e.g. `support@example.org`.
    pub support_address: String,
    /// Display name on outgoing mail.
    pub support_name: String,
    /// Sign-off name in templates.
    #[serde(default)]
    pub team: Option<String>,
    /// Link to the Code of Conduct.
    #[serde(default)]
    pub code_of_conduct_url: Option<String>,
    /// The installation key for reply-address MACs and challenge MACs.
    pub secret_key: SecretSource,
    /// Keys used before `secret_key`, still accepted (never used to sign)
    /// until `previous_keys_until`.
    #[serde(default)]
    pub previous_secret_keys: Vec<SecretSource>,
    /// When the previous keys stop being accepted: a date (`2027-03-01`,
    /// midnight UTC) or an RFC 3339 time.
    #[serde(default)]
    pub previous_keys_until: Option<String>,
    /// What to tell requesters about review time.
    #[serde(default = "default_expected_wait")]
    pub expected_wait: String,
}

impl Default for StaffSection {
    /// The same values as an empty `[staff]` table: a config without the
    /// section must not get an empty time zone, which no check accepts.
    fn default() -> Self {
        StaffSection {
            addresses: Vec::new(),
            domains: Vec::new(),
            notify: Vec::new(),
            trusted_authserv_ids: Vec::new(),
            show_staff_name: false,
            trusted_received_hops: 0,
            digest_at: None,
            digest_timezone: default_digest_timezone(),
            accept: Vec::new(),
            verify: Default::default(),
            dns_server: None,
            dns_timeout: None,
        }
    }
}

fn default_digest_timezone() -> String {
    "UTC".into()
}

fn default_expected_wait() -> String {
    "one to two weeks".into()
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    /// Folder of the sled database.
    pub path: PathBuf,
    /// Bytes of sled's page cache.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
}

fn default_cache_bytes() -> u64 {
    crate::store::DEFAULT_CACHE_BYTES
}

/// `[source]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceSection {
    /// `maildir` or `imap`.
    pub kind: SourceKind,
    /// Messages handled per batch (one durable flush per batch).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How long to wait between polls when nothing signals new mail.
    #[serde(default = "default_poll", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Larger messages are stored headers-only and the requester is told.
    #[serde(default = "default_max_bytes")]
    pub max_message_bytes: u64,
    /// A batch ends once its messages reach this many bytes (a larger
    /// message is a batch of its own), so memory does not grow with the
    /// size of the mail.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u64,
    /// `[source.maildir]`.
    #[serde(default)]
    pub maildir: Option<MaildirSection>,
    /// `[source.imap]`.
    #[serde(default)]
    pub imap: Option<crate::source::imap::ImapSettings>,
}

fn default_batch() -> usize {
    100
}
fn default_poll() -> Duration {
    Duration::from_secs(30)
}
fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_batch_bytes() -> u64 {
    8 * 1024 * 1024
}

/// Which mailbox source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SourceKind {
    /// A local Maildir folder.
    Maildir,
    /// An IMAP mailbox.
    Imap,
}

/// `[source.maildir]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaildirSection {
    /// The Maildir folder (with `new/`, `cur/`, `tmp/`).
    pub path: PathBuf,
}

/// `[transport]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransportSection {
    /// `file` or `smtp`.
    pub kind: TransportKind,
    /// `[transport.file]`.
    #[serde(default)]
    pub file: Option<FileTransportSection>,
    /// `[transport.smtp]`.
    #[serde(default)]
    pub smtp: Option<crate::transport::smtp::SmtpSettings>,
}

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportKind {
    /// One `.eml` file per message in a folder.
    File,
    /// An SMTP server.
    Smtp,
}

/// `[transport.file]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTransportSection {
    /// Folder the `.eml` files are written to.
    pub dir: PathBuf,
}

/// `[templates]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplatesSection {
    /// Template folder; the embedded set when absent.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Reload when a template file changes.
    #[serde(default)]
    pub watch: bool,
}

/// `[staff]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaffSection {
    /// Staff addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Staff domains.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Where staff notifications go.
    #[serde(default)]
    pub notify: Vec<String>,
    /// authserv-ids whose Authentication-Results are trusted.
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
    /// Whether relayed replies show the staff member's name.
    #[serde(default)]
    pub show_staff_name: bool,
    /// Received headers allowed above the trusted Authentication-Results
    /// (hops your own servers add after stamping it).
    #[serde(default)]
    pub trusted_received_hops: usize,
    /// Send a daily digest of open cases to `notify` at this local time
    /// (`HH:MM`); no digest when absent.
    #[serde(default)]
    pub digest_at: Option<String>,
    /// Time zone of `digest_at` (IANA name).
    #[serde(default = "default_digest_timezone")]
    pub digest_timezone: String,
    /// Which passing results prove staff: `dmarc`, `dkim_aligned`,
    /// `spf_aligned` (default: all three).
    #[serde(default)]
    pub accept: Vec<crate::authres::AuthMethod>,
    /// What proves a staff sender: `authentication_results` (default) or
    /// `dkim` (recoverydesk verifies the signature itself).
    #[serde(default)]
    pub verify: crate::signature::StaffVerify,
    /// DNS server (`ip:port`) for the DKIM and DMARC lookups of
    /// `verify = "dkim"`; the system resolver when absent.
    #[serde(default)]
    pub dns_server: Option<std::net::SocketAddr>,
    /// How long one of those lookups may take (default 5s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub dns_timeout: Option<Duration>,
}

/// `[policy]`: every timeframe is a duration such as `"48h"` or `"7d"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PolicySection {
    /// Fields a request must contain.
    pub required_fields: Vec<Field>,
    /// How long a challenge code stays valid.
    #[serde(deserialize_with = "duration")]
    pub challenge_ttl: Duration,
    /// Wrong codes allowed before the challenge locks.
    pub challenge_attempts: u32,
    /// Challenges per case per day.
    pub challenges_per_day: u32,
    /// Wait after verification before the case is ready for staff (0 = off).
    #[serde(deserialize_with = "duration")]
    pub waiting_period: Duration,
    /// Remind a requester who owes us information after this long.
    #[serde(deserialize_with = "duration")]
    pub reminder_after: Duration,
    /// Close a silent case this long after the reminder.
    #[serde(deserialize_with = "duration")]
    pub close_after: Duration,
    /// Tell the requester the case is still queued after this long without staff action.
    #[serde(deserialize_with = "duration")]
    pub staff_status_after: Duration,
    /// Repeat that status note at this interval.
    #[serde(deserialize_with = "duration")]
    pub status_repeat: Duration,
    /// At most this many status notes per case.
    pub status_cap: u32,
    /// At most one answer to "any update?" per this interval.
    #[serde(deserialize_with = "duration")]
    pub status_reply_interval: Duration,
    /// Close a resolved case after this long without a reply.
    #[serde(deserialize_with = "duration")]
    pub resolved_close_after: Duration,
    /// A reply to a case closed longer ago than this opens a new linked case.
    #[serde(deserialize_with = "duration")]
    pub reopen_window: Duration,
    /// Retry an unavailable account directory after this long.
    #[serde(deserialize_with = "duration")]
    pub directory_retry: Duration,
    /// Per-recipient reply limits.
    pub rate_limit: RateLimits,
    /// Per-case reply limits (all automatic mail of one case).
    pub rate_limit_per_case: RateLimits,
    /// Per-case limits on progress mail (answers with news, state changes):
    /// past them it is held back and merged, never dropped.
    pub rate_limit_progress: RateLimits,
    /// At most one staff alert of one kind per case in this interval; also
    /// the window in which a flood across cases is counted.
    #[serde(deserialize_with = "duration")]
    pub staff_alert_interval: Duration,
    /// Alerts of one kind across cases in one interval after which the rest
    /// fold into one summary mail per interval.
    pub staff_flood_threshold: u32,
    /// Optional quiet hours for reminders and status notes.
    pub quiet_hours: Option<QuietHoursSection>,
}

impl Default for PolicySection {
    fn default() -> Self {
        let day = 86_400;
        PolicySection {
            required_fields: vec![
                Field::Username,
                Field::Reason,
                Field::EmailAccess,
                Field::CodeOfConduct,
                Field::DelayAcknowledged,
            ],
            challenge_ttl: Duration::from_secs(2 * day),
            challenge_attempts: 5,
            challenges_per_day: 3,
            waiting_period: Duration::from_secs(7 * day),
            reminder_after: Duration::from_secs(5 * day),
            close_after: Duration::from_secs(7 * day),
            staff_status_after: Duration::from_secs(10 * day),
            status_repeat: Duration::from_secs(7 * day),
            status_cap: 3,
            status_reply_interval: Duration::from_secs(3 * day),
            resolved_close_after: Duration::from_secs(7 * day),
            reopen_window: Duration::from_secs(30 * day),
            directory_retry: Duration::from_secs(15 * 60),
            rate_limit: RateLimits {
                per_hour: 3,
                per_day: 10,
            },
            rate_limit_per_case: RateLimits {
                per_hour: 6,
                per_day: 20,
            },
            rate_limit_progress: RateLimits {
                per_hour: 10,
                per_day: 30,
            },
            staff_alert_interval: Duration::from_secs(3600),
            staff_flood_threshold: 10,
            quiet_hours: None,
        }
    }
}

/// `[policy.quiet_hours]`: no reminders or status notes then.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuietHoursSection {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: toml::Spanned<String>,
    /// No reminders on Saturday and Sunday.
    #[serde(default)]
    pub weekends: bool,
    /// Start of the quiet night, `HH:MM` (optional).
    #[serde(default)]
    pub start: Option<toml::Spanned<String>>,
    /// End of the quiet night, `HH:MM` (optional).
    #[serde(default)]
    pub end: Option<toml::Spanned<String>>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsSection {
    /// Address for the Prometheus text endpoint, e.g. `127.0.0.1:9187`.
    #[serde(default)]
    pub listen: Option<String>,
    /// `/readyz` answers 503 once passes have failed, or a reply has
    /// waited unsent, for longer than this.
    #[serde(default = "default_not_ready_after", deserialize_with = "duration")]
    pub not_ready_after: Duration,
}

fn default_not_ready_after() -> Duration {
    Duration::from_secs(300)
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: None,
            not_ready_after: default_not_ready_after(),
        }
    }
}

/// The one duration parser of the config (`"48h"`, `"7d"`, `"300ms"`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!("{e} (write durations like \"48h\" or \"7d\")"))
    })
}

fn opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A folder with the files the demo config names (a key, an empty
/// accounts file), for tests that load config text.
#[cfg(test)]
pub(crate) fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(
        dir.path().join("secret.key"),
        "0123456789abcdef0123456789abcdef",
    )
    .expect("the key is written");
    std::fs::write(dir.path().join("accounts.toml"), "").expect("the accounts file is written");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(text: &str) -> crate::error::Result<Settings> {
        let dir = key_dir();
        Settings::from_toml(text, dir.path(), "test.toml")
    }

    #[test]
    fn the_embedded_demo_config_loads() {
        let settings = with_key(DEMO_TOML).unwrap();
        assert_eq!(settings.support_address.as_str(), "support@pypi.example");
        assert!(matches!(settings.source.mailbox, Mailbox::Maildir(_)));
    }

    #[test]
    fn the_example_config_documents_keys_that_all_parse() {
        std::env::set_var(
            "RECOVERYDESK_SECRET_KEY",
            "0123456789abcdef0123456789abcdef",
        );
        let text = include_str!("../config/example.toml");
        let settings = with_key(text).unwrap();
        assert!(matches!(settings.source.mailbox, Mailbox::Imap(_)));
        assert!(matches!(settings.transport, TransportSettings::Smtp(_)));
        assert_eq!(settings.policy.challenge_attempts, 5);
    }

    #[test]
    fn staff_verify_defaults_to_the_header_and_reads_dkim_with_its_resolver() {
        let settings = with_key(DEMO_TOML).unwrap();
        assert_eq!(
            settings.staff.verify,
            crate::signature::StaffVerify::AuthenticationResults
        );
        assert_eq!(settings.dns.timeout, Duration::from_secs(5));
        let text = DEMO_TOML.replace(
            "[staff]\n",
            "[staff]\nverify = \"dkim\"\ndns_server = \"127.0.0.1:15353\"\ndns_timeout = \"2s\"\n",
        );
        let settings = with_key(&text).unwrap();
        assert_eq!(settings.staff.verify, crate::signature::StaffVerify::Dkim);
        assert_eq!(
            settings.dns.server,
            Some("127.0.0.1:15353".parse().unwrap())
        );
        assert_eq!(settings.dns.timeout, Duration::from_secs(2));
        let bad = DEMO_TOML.replace("[staff]\n", "[staff]\nverify = \"dmarc\"\n");
        let err = with_key(&bad).unwrap_err().to_string();
        assert!(err.contains("verify") || err.contains("dmarc"), "{err}");
    }

    #[test]
    fn a_kind_without_its_section_names_the_missing_section() {
        let imap = DEMO_TOML.replacen("kind = \"maildir\"", "kind = \"imap\"", 1);
        let err = with_key(&imap).unwrap_err().to_string();
        assert!(
            err.contains("source.imap: missing for kind = \"imap\""),
            "{err}"
        );
        let smtp = DEMO_TOML.replacen(
            "[transport]\nkind = \"file\"",
            "[transport]\nkind = \"smtp\"",
            1,
        );
        let err = with_key(&smtp).unwrap_err().to_string();
        assert!(
            err.contains("transport.smtp: missing for kind = \"smtp\""),
            "{err}"
        );
    }

    #[test]
    fn a_typo_names_the_key_and_the_line() {
        let text = DEMO_TOML.replace("poll_interval = \"2s\"", "polll_interval = \"2s\"");
        let err = with_key(&text).unwrap_err().to_string();
        assert!(err.contains("polll_interval"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn a_bad_duration_is_explained() {
        let text = DEMO_TOML.replace("challenge_ttl = \"48h\"", "challenge_ttl = \"two days\"");
        let err = with_key(&text).unwrap_err().to_string();
        assert!(
            err.contains("challenge_ttl") || err.contains("48h"),
            "{err}"
        );
    }

    #[test]
    fn a_short_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.key"), "short").unwrap();
        let err = Settings::from_toml(DEMO_TOML, dir.path(), "demo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("instance.secret_key"), "{err}");
    }
}
