//! `[policy]` resolved once, at start, into the case core's [`Policy`]: every
//! value is checked here, so a bad one stops the program (exit 2) naming the
//! key and its line, instead of being dropped at run time.

use toml::Spanned;

use super::{PolicySection, QuietHoursSection};
use crate::case::{Policy, QuietHours};
use crate::error::{Error, Result};

/// Builds the core's policy from the section, or says which value is wrong.
pub(crate) fn resolve(p: &PolicySection, text: &str, origin: &str) -> Result<Policy> {
    let s = |d: std::time::Duration| d.as_secs() as i64;
    Ok(Policy {
        required: p.required_fields.clone(),
        challenge_ttl: s(p.challenge_ttl),
        challenge_attempts: p.challenge_attempts,
        challenges_per_day: p.challenges_per_day,
        waiting_period: s(p.waiting_period),
        reminder_after: s(p.reminder_after),
        close_after: s(p.close_after),
        staff_status_after: s(p.staff_status_after),
        status_repeat: s(p.status_repeat),
        status_cap: p.status_cap,
        status_reply_interval: s(p.status_reply_interval),
        resolved_close_after: s(p.resolved_close_after),
        reopen_window: s(p.reopen_window),
        directory_retry: s(p.directory_retry),
        quiet_hours: p
            .quiet_hours
            .as_ref()
            .map(|q| quiet_hours(q, text, origin))
            .transpose()?,
    })
}

fn quiet_hours(q: &QuietHoursSection, text: &str, origin: &str) -> Result<QuietHours> {
    let timezone = q.timezone.get_ref().parse().map_err(|_| {
        bad(
            text,
            origin,
            "timezone",
            &q.timezone,
            "is not an IANA time zone (e.g. \"Europe/Berlin\")",
        )
    })?;
    let time = |key: &str, value: &Option<Spanned<String>>| {
        value
            .as_ref()
            .map(|v| {
                chrono::NaiveTime::parse_from_str(v.get_ref().trim(), "%H:%M").map_err(|_| {
                    bad(
                        text,
                        origin,
                        key,
                        v,
                        "is not a time: write HH:MM, e.g. \"22:00\"",
                    )
                })
            })
            .transpose()
    };
    Ok(QuietHours {
        timezone,
        weekends: q.weekends,
        start: time("start", &q.start)?,
        end: time("end", &q.end)?,
    })
}

fn bad(text: &str, origin: &str, key: &str, value: &Spanned<String>, why: &str) -> Error {
    let line = 1 + text[..value.span().start.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count();
    Error::Config(format!(
        "{origin}: line {line}: policy.quiet_hours.{key} = {:?} {why}",
        value.get_ref()
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn with_quiet_hours(lines: &str) -> String {
        let demo = crate::config::DEMO_TOML;
        format!("{demo}\n[policy.quiet_hours]\n{lines}\n")
    }

    fn load(text: &str) -> crate::error::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secret.key"),
            "0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        Settings::from_toml(text, dir.path(), "test.toml")
    }

    fn error_of(text: &str) -> String {
        match load(text) {
            Ok(_) => panic!("accepted a bad value"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bad_quiet_hours_time_is_an_error_naming_key_and_line() {
        let text =
            with_quiet_hours("timezone = \"Europe/Berlin\"\nstart = \"25:00\"\nend = \"07:00\"");
        let line = text.lines().position(|l| l.starts_with("start")).unwrap() + 1;
        let err = error_of(&text);
        assert!(err.contains("policy.quiet_hours.start"), "{err}");
        assert!(err.contains(&format!("line {line}")), "{err}");
        let text = with_quiet_hours("timezone = \"Europe/Berlin\"\nend = \"7am\"");
        assert!(error_of(&text).contains("policy.quiet_hours.end"));
    }

    #[test]
    fn an_unknown_time_zone_is_an_error_naming_the_key() {
        let err = error_of(&with_quiet_hours("timezone = \"Mars/Olympus\""));
        assert!(err.contains("policy.quiet_hours.timezone"), "{err}");
    }

    #[test]
    fn good_quiet_hours_reach_the_policy() {
        let text = with_quiet_hours(
            "timezone = \"Europe/Berlin\"\nweekends = true\nstart = \"22:00\"\nend = \"07:30\"",
        );
        let settings = load(&text).unwrap();
        let quiet = settings.policy.quiet_hours.as_ref().expect("quiet hours");
        assert!(quiet.weekends);
        assert_eq!(quiet.start.unwrap().to_string(), "22:00:00");
        assert_eq!(quiet.end.unwrap().to_string(), "07:30:00");
    }
}
