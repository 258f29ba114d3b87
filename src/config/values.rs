//! Value checks the types cannot make: a zero where a zero would stop the
//! worker or the challenge, staff and notify entries that are not
//! addresses or domains, a template folder that is not there. Each error
//! names the key as written in the file, so it exits 2 with that name.

use std::path::Path;
use std::time::Duration;

use super::RawConfig;
use crate::domain::EmailAddress;
use crate::error::{Error, Result};

/// Checks the values of a parsed file; `base_dir` resolves relative paths.
pub(crate) fn check(raw: &RawConfig, base_dir: &Path, origin: &str) -> Result<()> {
    let bad = |key: &str, why: String| Error::Config(format!("{origin}: {key}: {why}"));
    let positive = |key: &str, d: Duration| {
        if d.is_zero() {
            Err(bad(key, "must be more than 0s".into()))
        } else {
            Ok(())
        }
    };
    let at_least_one = |key: &str, n: u64| {
        if n == 0 {
            Err(bad(key, "must be at least 1".into()))
        } else {
            Ok(())
        }
    };
    positive("source.poll_interval", raw.source.poll_interval)?;
    at_least_one("source.batch_size", raw.source.batch_size as u64)?;
    at_least_one("source.max_message_bytes", raw.source.max_message_bytes)?;
    let p = &raw.policy;
    positive("policy.challenge_ttl", p.challenge_ttl)?;
    at_least_one("policy.challenge_attempts", p.challenge_attempts.into())?;
    at_least_one("policy.challenges_per_day", p.challenges_per_day.into())?;
    positive("policy.reminder_after", p.reminder_after)?;
    positive("policy.close_after", p.close_after)?;
    positive("policy.staff_status_after", p.staff_status_after)?;
    positive("policy.status_repeat", p.status_repeat)?;
    positive("policy.directory_retry", p.directory_retry)?;
    if let Some(keep) = raw.retention.closed_after {
        // A reply within the reopen window reopens the case: its mail must
        // still be there to reopen.
        if keep < p.reopen_window {
            return Err(bad(
                "retention.closed_after",
                format!(
                    "must be at least policy.reopen_window ({})",
                    humantime::format_duration(p.reopen_window)
                ),
            ));
        }
    }
    // A zero limit would hold back every automatic reply for good.
    for (key, limits) in [
        ("policy.rate_limit", &p.rate_limit),
        ("policy.rate_limit_per_case", &p.rate_limit_per_case),
    ] {
        at_least_one(&format!("{key}.per_hour"), limits.per_hour.into())?;
        at_least_one(&format!("{key}.per_day"), limits.per_day.into())?;
    }
    for (key, list) in [
        ("staff.addresses", &raw.staff.addresses),
        ("staff.notify", &raw.staff.notify),
    ] {
        if let Some(entry) = list.iter().find(|a| EmailAddress::parse(a).is_none()) {
            return Err(bad(key, format!("{entry:?} is not an email address")));
        }
    }
    if let Some(entry) = raw.staff.domains.iter().find(|d| !is_domain(d)) {
        return Err(bad(
            "staff.domains",
            format!("{entry:?} is not a domain (write example.org, without @)"),
        ));
    }
    if let Some(dir) = &raw.templates.dir {
        let path = if dir.is_absolute() {
            dir.clone()
        } else {
            base_dir.join(dir)
        };
        if !path.is_dir() {
            return Err(bad(
                "templates.dir",
                format!("{} is not a folder", path.display()),
            ));
        }
    }
    Ok(())
}

fn is_domain(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.contains('.')
        && !t.starts_with('.')
        && !t.ends_with('.')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use crate::config::{Settings, DEMO_TOML};

    fn error_of(text: &str) -> String {
        let dir = crate::config::key_dir();
        match Settings::from_toml(text, dir.path(), "t.toml") {
            Ok(_) => String::new(),
            Err(e) => {
                assert!(matches!(e, crate::error::Error::Config(_)), "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn zeros_that_would_stop_the_worker_or_the_challenge_are_refused_by_key() {
        for (from, to, key) in [
            (
                "poll_interval = \"2s\"",
                "poll_interval = \"0s\"",
                "source.poll_interval",
            ),
            (
                "challenge_ttl = \"48h\"",
                "challenge_ttl = \"48h\"\nchallenge_attempts = 0",
                "policy.challenge_attempts",
            ),
        ] {
            assert!(DEMO_TOML.contains(from), "{from}");
            let err = error_of(&DEMO_TOML.replace(from, to));
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn staff_and_notify_entries_must_be_addresses_and_domains() {
        let notify = "notify = [\"admins@pypi.example\"]";
        assert!(DEMO_TOML.contains(notify));
        let err = error_of(&DEMO_TOML.replace(notify, "notify = [\"admins at pypi\"]"));
        assert!(err.contains("staff.notify"), "{err}");
        let domains = format!("{notify}\ndomains = [\"@pypi.example\"]");
        let err = error_of(&DEMO_TOML.replace(notify, &domains));
        assert!(err.contains("staff.domains"), "{err}");
    }

    #[test]
    fn retention_shorter_than_the_reopen_window_is_refused() {
        let short = format!("{DEMO_TOML}\n[retention]\nclosed_after = \"7d\"\n");
        let err = error_of(&short);
        assert!(err.contains("retention.closed_after"), "{err}");
        let fine = format!("{DEMO_TOML}\n[retention]\nclosed_after = \"180d\"\n");
        assert_eq!(error_of(&fine), "");
    }

    #[test]
    fn previous_keys_need_an_end_and_are_accepted_only_until_it() {
        let key = "secret_key = { file = \"secret.key\" }";
        assert!(DEMO_TOML.contains(key));
        let open_ended = DEMO_TOML.replace(
            key,
            &format!("{key}\nprevious_secret_keys = [{{ file = \"secret.key\" }}]"),
        );
        let err = error_of(&open_ended);
        assert!(err.contains("instance.previous_keys_until"), "{err}");
        let dir = crate::config::key_dir();
        let bounded = open_ended.replace(
            "previous_secret_keys",
            "previous_keys_until = \"2027-03-01\"\nprevious_secret_keys",
        );
        let settings = Settings::from_toml(&bounded, dir.path(), "t.toml").unwrap();
        let until = 1_803_859_200; // 2027-03-01T00:00:00Z
        assert_eq!(settings.previous_keys_at(until - 1).len(), 1);
        assert!(settings.previous_keys_at(until).is_empty());
    }

    #[test]
    fn a_config_without_a_staff_section_loads() {
        let start = DEMO_TOML.find("[staff]").unwrap();
        let end = start + DEMO_TOML[start..].find("\n[policy]").unwrap();
        let without = format!("{}{}", &DEMO_TOML[..start], &DEMO_TOML[end..]);
        assert!(!without.contains("[staff]"));
        assert_eq!(error_of(&without), "");
    }

    #[test]
    fn a_missing_template_folder_is_a_config_error() {
        assert!(!DEMO_TOML.contains("[templates]"));
        let text = format!("{DEMO_TOML}\n[templates]\ndir = \"no-such-folder\"\n");
        let err = error_of(&text);
        assert!(err.contains("templates.dir"), "{err}");
    }
}
