//! The configuration resolved once, at start: every value parsed and
//! checked, every path made absolute, each `kind` paired with its section.
//! Nothing reads the file's raw sections after this, so a bad value stops
//! the program (exit 2) naming its key instead of failing at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;

use super::{policy, values, InstanceSection, RawConfig, SourceKind, StaffSection, TransportKind};
use crate::authres::StaffPolicy;
use crate::domain::EmailAddress;
use crate::error::{Error, Result};
use crate::ratelimit::RateLimits;
use crate::secret::Secret;

/// The resolved configuration the rest of the program uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who we are, as requesters and staff see it.
    pub instance: Instance,
    /// The folder relative paths resolved against.
    pub base_dir: PathBuf,
    /// The installation key.
    pub secret_key: Secret,
    /// Why the key file's permissions are too loose, if they are.
    pub key_warning: Option<String>,
    /// Keys a rotation still accepts, and until when (Unix seconds).
    pub previous_keys: (Vec<Secret>, i64),
    /// The support address, parsed.
    pub support_address: EmailAddress,
    /// The sled database's folder.
    pub store_path: PathBuf,
    /// Bytes of sled's page cache for the daemon's store handle.
    pub store_cache_bytes: u64,
    /// Where mail comes from, and how much of it per batch.
    pub source: SourceSettings,
    /// Where replies go.
    pub transport: TransportSettings,
    /// Where accounts are looked up (opened against `base_dir`).
    pub directory: crate::directory::DirectorySettings,
    /// The operator's template folder (absolute), or `None` for the embedded set.
    pub templates_dir: Option<PathBuf>,
    /// Reload templates when a file in `templates_dir` changes.
    pub templates_watch: bool,
    /// Staff trust policy.
    pub staff: StaffPolicy,
    /// Our own addresses (support, its reply addresses, staff lists), whose
    /// mail is never answered.
    pub own_addresses: crate::classify::OwnAddresses,
    /// Where staff mail goes and how it reads.
    pub staff_mail: StaffMail,
    /// The resolver for `verify = "dkim"`.
    pub dns: DnsSettings,
    /// The case rules, resolved and checked from `[policy]`.
    pub policy: Arc<crate::case::Policy>,
    /// Limits on automatic mail, applied when it is queued.
    pub send_limits: SendLimits,
    /// The Prometheus endpoint and readiness rule.
    pub metrics: MetricsSettings,
    /// The admin socket's file (the CLI looks for it even when not served).
    pub admin_socket: PathBuf,
    /// Serve the admin socket while running (`[admin] enabled`).
    pub serve_admin: bool,
    /// Remove a closed case's mail this long after it closed; `None` keeps it.
    pub retention: Option<Duration>,
}

/// `[instance]` as the templates and headers use it.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Stamped in the loop header of everything we send.
    pub id: String,
    /// Display name on outgoing mail.
    pub support_name: String,
    /// Sign-off name in templates (the support name when not set).
    pub team: String,
    /// Link to the Code of Conduct.
    pub code_of_conduct_url: Option<String>,
    /// What requesters are told about review time.
    pub expected_wait: String,
}

impl Instance {
    /// The `support` object of every template context.
    pub fn template_context(&self, address: &EmailAddress) -> serde_json::Value {
        serde_json::json!({
            "name": self.support_name,
            "address": address.as_str(),
            "code_of_conduct_url": self.code_of_conduct_url,
            "team": self.team,
        })
    }
}

/// `[source]` with its mailbox section.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// The mailbox itself.
    pub mailbox: Mailbox,
    /// Messages per batch (at least 1).
    pub batch_size: usize,
    /// A batch ends once its messages reach this many bytes.
    pub batch_bytes: u64,
    /// Larger messages are kept headers-only.
    pub max_message_bytes: u64,
    /// How long to wait between polls when nothing signals new mail.
    pub poll_interval: Duration,
}

/// Which mailbox mail is read from.
#[derive(Debug, Clone)]
pub enum Mailbox {
    /// A local Maildir folder (absolute).
    Maildir(PathBuf),
    /// An IMAP mailbox.
    Imap(Box<crate::source::imap::ImapSettings>),
}

/// Where replies are sent.
#[derive(Debug, Clone)]
pub enum TransportSettings {
    /// One `.eml` file per message in this folder (absolute).
    File(PathBuf),
    /// An SMTP server.
    Smtp(crate::transport::smtp::SmtpSettings),
}

/// Staff mail: recipients, the relay's signature and the daily digest.
#[derive(Debug, Clone)]
pub struct StaffMail {
    /// Where staff notifications go.
    pub notify: Vec<String>,
    /// Whether relayed replies show the staff member's name.
    pub show_staff_name: bool,
    /// The daily digest, when one is configured and has recipients.
    pub digest: Option<DigestSchedule>,
}

/// When the daily digest goes out.
#[derive(Debug, Clone, Copy)]
pub struct DigestSchedule {
    /// Local time of day.
    pub at: NaiveTime,
    /// The zone `at` is in.
    pub timezone: chrono_tz::Tz,
}

/// The DNS resolver for DKIM and DMARC lookups.
#[derive(Debug, Clone, Copy)]
pub struct DnsSettings {
    /// `ip:port`; the system resolver when `None`.
    pub server: Option<std::net::SocketAddr>,
    /// How long one lookup may take.
    pub timeout: Duration,
}

/// Limits on automatic mail (see the gate in the pipeline).
#[derive(Debug, Clone)]
pub struct SendLimits {
    /// Per-recipient reply limits.
    pub per_address: RateLimits,
    /// Per-case limits on all automatic mail of one case.
    pub per_case: RateLimits,
    /// Per-case limits on progress mail, past which it is held and merged.
    pub progress: RateLimits,
    /// At most one staff alert of one kind per case in this interval.
    pub staff_alert_interval: Duration,
    /// Alerts of one kind across cases per interval before they fold.
    pub staff_flood_threshold: u32,
}

/// `[metrics]`.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Address of the Prometheus text endpoint; none when `None`.
    pub listen: Option<String>,
    /// `/readyz` fails once work has been stuck this long.
    pub not_ready_after: Duration,
}

impl Settings {
    /// Loads and resolves a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, &base, &path.display().to_string())
    }

    /// Parses and resolves TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, base_dir: &Path, origin: &str) -> Result<Self> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        values::check(&raw, base_dir, origin)?;
        let key_warning = raw
            .instance
            .secret_key
            .loose_permissions("instance.secret_key", base_dir);
        if let Some(warning) = &key_warning {
            tracing::warn!("{warning}");
        }
        let (secret_key, previous_keys) = keys(&raw.instance, base_dir, origin)?;
        let support_address =
            EmailAddress::parse(&raw.instance.support_address).ok_or_else(|| {
                Error::Config(format!(
                    "{origin}: instance.support_address: not an address"
                ))
            })?;
        let policy = Arc::new(policy::resolve(&raw.policy, text, origin)?);
        let at = |p: &Path| absolute(base_dir, p);
        let staff = staff_policy(&raw.staff);
        let own_addresses =
            crate::classify::own_addresses(&support_address, &staff, &raw.staff.notify);
        Ok(Settings {
            instance: instance(&raw.instance),
            base_dir: base_dir.to_path_buf(),
            secret_key,
            key_warning,
            previous_keys,
            support_address,
            store_path: at(&raw.store.path),
            store_cache_bytes: store_cache_bytes(raw.store.cache_bytes, origin)?,
            source: source(&raw, base_dir, origin)?,
            transport: transport(&raw, base_dir, origin)?,
            directory: raw.directory.clone(),
            templates_dir: raw.templates.dir.as_deref().map(at),
            templates_watch: raw.templates.watch,
            staff,
            own_addresses,
            staff_mail: staff_mail(&raw.staff, origin)?,
            dns: DnsSettings {
                server: raw.staff.dns_server,
                timeout: raw.staff.dns_timeout.unwrap_or(Duration::from_secs(5)),
            },
            policy,
            send_limits: send_limits(&raw.policy),
            metrics: MetricsSettings {
                listen: raw.metrics.listen.clone(),
                not_ready_after: raw.metrics.not_ready_after,
            },
            admin_socket: admin_socket(&raw, base_dir),
            serve_admin: raw.admin.enabled,
            retention: raw.retention.closed_after,
        })
    }

    /// The previous installation keys still accepted at `now`: empty when
    /// there are none or their period has ended.
    pub fn previous_keys_at(&self, now: i64) -> &[Secret] {
        let (keys, until) = &self.previous_keys;
        if now < *until {
            keys
        } else {
            &[]
        }
    }

    /// Resolves a path against the config's folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        absolute(&self.base_dir, p)
    }
}

fn absolute(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

fn instance(raw: &InstanceSection) -> Instance {
    Instance {
        id: raw.id.clone(),
        support_name: raw.support_name.clone(),
        team: raw.team.clone().unwrap_or_else(|| raw.support_name.clone()),
        code_of_conduct_url: raw.code_of_conduct_url.clone(),
        expected_wait: raw.expected_wait.clone(),
    }
}

/// `[admin] socket`, or `admin.sock` beside the store folder.
fn admin_socket(raw: &RawConfig, base_dir: &Path) -> PathBuf {
    match &raw.admin.socket {
        Some(p) => absolute(base_dir, p),
        None => absolute(base_dir, &raw.store.path)
            .parent()
            .map(|d| d.join("admin.sock"))
            .unwrap_or_else(|| PathBuf::from("admin.sock")),
    }
}

/// sled's page cache: at least 1 MiB (below that every lookup of a busy
/// store reads the disk), at most 1 GiB (sled's own default).
fn store_cache_bytes(bytes: u64, origin: &str) -> Result<u64> {
    const MIB: u64 = 1024 * 1024;
    if (MIB..=1024 * MIB).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(Error::Config(format!(
            "{origin}: store.cache_bytes: {bytes} is outside 1048576 (1 MiB) to 1073741824 (1 GiB)"
        )))
    }
}

fn missing(origin: &str, section: &str, kind: &str) -> Error {
    Error::Config(format!(
        "{origin}: {section}: missing for kind = \"{kind}\""
    ))
}

/// `[source]` paired with the section its `kind` names; `[source]` alone
/// decides batch size, polling and the size limit, for IMAP too.
fn source(raw: &RawConfig, base_dir: &Path, origin: &str) -> Result<SourceSettings> {
    let s = &raw.source;
    let mailbox = match s.kind {
        SourceKind::Maildir => {
            let m = s
                .maildir
                .as_ref()
                .ok_or_else(|| missing(origin, "source.maildir", "maildir"))?;
            Mailbox::Maildir(absolute(base_dir, &m.path))
        }
        SourceKind::Imap => {
            let mut imap = s
                .imap
                .clone()
                .ok_or_else(|| missing(origin, "source.imap", "imap"))?;
            imap.batch_size = s.batch_size;
            imap.poll_interval = s.poll_interval;
            imap.max_message_bytes = s.max_message_bytes;
            imap.batch_bytes = s.batch_bytes;
            Mailbox::Imap(Box::new(imap))
        }
    };
    Ok(SourceSettings {
        mailbox,
        batch_size: s.batch_size.max(1),
        batch_bytes: s.batch_bytes,
        max_message_bytes: s.max_message_bytes,
        poll_interval: s.poll_interval,
    })
}

fn transport(raw: &RawConfig, base_dir: &Path, origin: &str) -> Result<TransportSettings> {
    let t = &raw.transport;
    Ok(match t.kind {
        TransportKind::File => {
            let f = t
                .file
                .as_ref()
                .ok_or_else(|| missing(origin, "transport.file", "file"))?;
            TransportSettings::File(absolute(base_dir, &f.dir))
        }
        TransportKind::Smtp => TransportSettings::Smtp(
            t.smtp
                .clone()
                .ok_or_else(|| missing(origin, "transport.smtp", "smtp"))?,
        ),
    })
}

/// The installation key and the previous keys, read and checked.
fn keys(
    raw: &InstanceSection,
    base_dir: &Path,
    origin: &str,
) -> Result<(Secret, (Vec<Secret>, i64))> {
    let secret_key = raw.secret_key.resolve("instance.secret_key", base_dir)?;
    if secret_key.expose().len() < crate::verify::MIN_KEY_BYTES {
        return Err(Error::Config(format!(
            "{origin}: instance.secret_key: the key must be at least {} characters (openssl rand -hex 32)",
            crate::verify::MIN_KEY_BYTES
        )));
    }
    Ok((secret_key, previous_keys(raw, base_dir, origin)?))
}

/// Resolves `instance.previous_secret_keys` and the time they stop being
/// accepted; a list without an end is refused, so no old key stays valid
/// for ever by oversight.
fn previous_keys(
    instance: &InstanceSection,
    base_dir: &Path,
    origin: &str,
) -> Result<(Vec<Secret>, i64)> {
    let bad = |key: &str, why: String| Error::Config(format!("{origin}: instance.{key}: {why}"));
    if instance.previous_secret_keys.is_empty() {
        return Ok((Vec::new(), i64::MIN));
    }
    let until = instance.previous_keys_until.as_deref().ok_or_else(|| {
        bad(
            "previous_keys_until",
            "required with previous_secret_keys (e.g. \"2027-03-01\")".into(),
        )
    })?;
    let until = crate::clock::parse_time(until)
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(until.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp())
        })
        .ok_or_else(|| {
            bad(
                "previous_keys_until",
                format!("write a date (2027-03-01) or an RFC 3339 time, not {until:?}"),
            )
        })?;
    let mut keys = Vec::new();
    for (i, source) in instance.previous_secret_keys.iter().enumerate() {
        let name = format!("instance.previous_secret_keys[{i}]");
        if let Some(warning) = source.loose_permissions(&name, base_dir) {
            tracing::warn!("{warning}");
        }
        keys.push(source.resolve(&name, base_dir)?);
    }
    Ok((keys, until))
}

/// `staff.notify`, the relay signature rule and the digest's schedule
/// (`digest_at` a time, `digest_timezone` a zone; no recipients, no digest).
fn staff_mail(staff: &StaffSection, origin: &str) -> Result<StaffMail> {
    let timezone: chrono_tz::Tz = staff.digest_timezone.parse().map_err(|_| {
        Error::Config(format!(
            "{origin}: staff.digest_timezone: unknown time zone {}",
            staff.digest_timezone
        ))
    })?;
    let at = staff
        .digest_at
        .as_deref()
        .map(|at| {
            NaiveTime::parse_from_str(at, "%H:%M").map_err(|_| {
                Error::Config(format!(
                    "{origin}: staff.digest_at: write a time as HH:MM, not {at}"
                ))
            })
        })
        .transpose()?;
    Ok(StaffMail {
        notify: staff.notify.clone(),
        show_staff_name: staff.show_staff_name,
        digest: at
            .filter(|_| !staff.notify.is_empty())
            .map(|at| DigestSchedule { at, timezone }),
    })
}

fn send_limits(p: &super::PolicySection) -> SendLimits {
    SendLimits {
        per_address: p.rate_limit,
        per_case: p.rate_limit_per_case,
        progress: p.rate_limit_progress,
        staff_alert_interval: p.staff_alert_interval,
        staff_flood_threshold: p.staff_flood_threshold,
    }
}

/// The staff trust policy, with addresses and domains lower-cased once.
fn staff_policy(staff: &StaffSection) -> StaffPolicy {
    StaffPolicy {
        addresses: staff.addresses.iter().map(|a| a.to_lowercase()).collect(),
        domains: staff.domains.iter().map(|d| d.to_lowercase()).collect(),
        trusted_authserv_ids: staff.trusted_authserv_ids.clone(),
        trusted_received_hops: staff.trusted_received_hops,
        accept: staff.accept.clone(),
        verify: staff.verify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Settings> {
        let dir = super::super::key_dir();
        Settings::from_toml(text, dir.path(), "test.toml")
    }

    #[test]
    fn paths_are_resolved_against_the_config_folder_once() {
        let dir = super::super::key_dir();
        let settings = Settings::from_toml(super::super::DEMO_TOML, dir.path(), "demo").unwrap();
        assert_eq!(settings.store_path, dir.path().join("data/store"));
        assert_eq!(settings.admin_socket, dir.path().join("data/admin.sock"));
        let Mailbox::Maildir(inbox) = &settings.source.mailbox else {
            panic!("the demo reads a maildir");
        };
        assert_eq!(inbox, &dir.path().join("mail/inbox"));
    }

    #[test]
    fn the_store_cache_is_configurable_within_bounds() {
        let with = |line: &str| {
            super::super::DEMO_TOML.replace(
                "path = \"data/store\"\n",
                &format!("path = \"data/store\"\n{line}\n"),
            )
        };
        let default = resolve(super::super::DEMO_TOML).unwrap();
        assert_eq!(default.store_cache_bytes, crate::store::DEFAULT_CACHE_BYTES);
        let small = resolve(&with("cache_bytes = 4194304")).unwrap();
        assert_eq!(small.store_cache_bytes, 4 * 1024 * 1024);
        let err = resolve(&with("cache_bytes = 4096")).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("store.cache_bytes"), "{err}");
    }

    #[test]
    fn a_digest_needs_a_time_a_zone_and_someone_to_send_it_to() {
        let with = |staff: &str| {
            super::super::DEMO_TOML
                .replace("notify = [\"admins@pypi.example\"]\n", "")
                .replace("[staff]\n", &format!("[staff]\n{staff}\n"))
        };
        let none = resolve(&with("digest_at = \"08:00\"\nnotify = []")).unwrap();
        assert!(none.staff_mail.digest.is_none());
        let due = resolve(&with(
            "digest_at = \"08:30\"\ndigest_timezone = \"Europe/Berlin\"\nnotify = [\"team@pypi.example\"]",
        ))
        .unwrap();
        let digest = due.staff_mail.digest.expect("a digest is configured");
        assert_eq!(digest.at, NaiveTime::from_hms_opt(8, 30, 0).unwrap());
        assert_eq!(digest.timezone, chrono_tz::Europe::Berlin);
        let err = resolve(&with("digest_at = \"8 am\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("staff.digest_at") && err.contains("8 am"),
            "{err}"
        );
        let err = resolve(&with("digest_timezone = \"Mars/Olympus\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("staff.digest_timezone"), "{err}");
    }
}
