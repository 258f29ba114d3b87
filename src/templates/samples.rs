//! Named sample contexts for checking and previewing templates.
//!
//! Each scenario is a complete context as the worker builds it (see
//! `templates/README.md`); together they cover every case state and every
//! optional field both present and absent (null, empty list, or a list with
//! several items). [`for_kind`] trims a full context to what the worker
//! passes for one kind, e.g. no challenge code in `challenge_sent`.

use serde_json::{json, Value};

use super::{Audience, TemplateKind};

/// Scenario names, in the order `templates check` renders them.
pub const NAMES: &[&str] = &[
    "seed_2fa",
    "seed_password",
    "missing_everything",
    "verified",
    "compromise",
    "non_english",
    "lost_linked_address",
    "challenge_known_account",
    "challenge_unknown_account",
    "hostile_input",
    "resolved",
    "closed",
    "wrong_code",
];

/// The label of the extra render `templates check` does per kind with
/// [`null_shape`].
pub const NULL_SHAPE: &str = "missing_everything+nulls";

/// The sample requester address (never the linked address).
pub const SAMPLE_REQUESTER: &str = "jordan.lee@example.org";
/// A made-up linked address, used only as the preview recipient of challenge
/// mail: the real one never appears in any template context.
pub const SAMPLE_LINKED_ADDRESS: &str = "owner@example.net";

/// Every scenario with its context.
pub fn all() -> Vec<(&'static str, Value)> {
    NAMES
        .iter()
        .filter_map(|n| scenario(n).map(|v| (*n, v)))
        .collect()
}

/// The full context of a named scenario.
pub fn scenario(name: &str) -> Option<Value> {
    let mut v = base();
    match name {
        "seed_2fa" => {}
        "seed_password" => seed_password(&mut v),
        "missing_everything" => missing_everything(&mut v),
        "verified" => verified(&mut v),
        "compromise" => compromise(&mut v),
        "non_english" => non_english(&mut v),
        "lost_linked_address" => lost_linked_address(&mut v),
        "challenge_known_account" | "challenge_unknown_account" => challenge_account(&mut v, name),
        "hostile_input" => hostile_input(&mut v),
        "resolved" => resolved(&mut v),
        "wrong_code" => wrong_code(&mut v),
        "closed" => closed(&mut v),
        _ => return None,
    }
    Some(v)
}

fn seed_password(v: &mut Value) {
    set(v, "/case/id", json!("RD-4HX8PT"));
    set(v, "/case/subject_tag", json!("[Case RD-4HX8PT]"));
    set(
        v,
        "/case/reply_address",
        json!("support+RD-4HX8PT.9f2c41aa@example.org"),
    );
    set(v, "/case/state", json!("awaiting_info"));
    set(v, "/case/username", json!("pkgmaker"));
    set(v, "/staff/account", json!("pkgmaker"));
    set(
        v,
        "/case/reasons",
        json!([{"code": "forgot_password", "label": "Forgotten password"}]),
    );
    set(
        v,
        "/case/understood",
        json!([
            {"label": "Username", "value": "pkgmaker"},
            {"label": "Reason", "value": "Forgotten password (two-factor authentication was never set up)"},
            {"label": "Code of Conduct", "value": "agreed"}
        ]),
    );
    set(
        v,
        "/case/missing",
        json!([{
            "code": "email_access",
            "label": "Whether you can still read the email address linked to the account",
            "hint": "answer yes or no"
        }, {
            "code": "delay_acknowledged",
            "label": "That you understand a review can take some time",
            "hint": null
        }]),
    );
    set(v, "/case/queue_position", json!(1));
    set(v, "/case/flags", json!([]));
    set(
        v,
        "/case/proofs",
        json!([
            {"label": "Packages owned", "value": "pkgmaker-utils, tinyparse"},
            {"label": "Previous address", "value": "pm@old.example.com"},
            {"label": "Account created", "value": "around 2019"}
        ]),
    );
    set(v, "/case/secrets_found", json!([]));
}

fn missing_everything(v: &mut Value) {
    set(v, "/case/state", json!("awaiting_info"));
    set(v, "/case/username", Value::Null);
    set(v, "/case/lookup_address", Value::Null);
    set(v, "/case/reasons", json!([]));
    set(v, "/case/understood", json!([]));
    set(
        v,
        "/case/missing",
        json!([
            {"code": "username", "label": "Your account username", "hint": "the name you log in with, not your email address"},
            {"code": "reason", "label": "Why you cannot log in", "hint": "for example: lost two-factor device, recovery codes not working, forgotten password"},
            {"code": "email_access", "label": "Whether you can still read the email address linked to the account", "hint": null},
            {"code": "code_of_conduct", "label": "That you agree to the Code of Conduct", "hint": null},
            {"code": "delay_acknowledged", "label": "That you understand a review can take some time", "hint": null}
        ]),
    );
    set(v, "/case/queue_position", json!(0));
    set(v, "/case/age_days", json!(0));
    set(v, "/case/secrets_found", json!([]));
    set(v, "/case/flags", json!([]));
    set(v, "/case/proofs", json!([]));
    set(v, "/relay/staff_name", Value::Null);
    set(v, "/staff/linked_address_masked", Value::Null);
    set(v, "/staff/linked_address_status", json!("not_looked_up"));
    set(v, "/staff/account_username", Value::Null);
    set(v, "/staff/account", Value::Null);
    set(v, "/staff/trust", json!([]));
    set(v, "/staff/excerpt", json!(""));
    set(v, "/staff/events", json!([]));
    set(v, "/staff/failed_recipient", Value::Null);
    set(v, "/staff/error", Value::Null);
    set(v, "/staff/commands_help", json!(""));
    set(v, "/digest/cases", json!([]));
}

fn verified(v: &mut Value) {
    set(v, "/case/state", json!("waiting_period"));
    set(v, "/case/missing", json!([]));
    set(v, "/case/flags", json!(["verified"]));
    set(v, "/case/age_days", json!(9));
    set(
        v,
        "/staff/verification",
        json!("Verified: the code sent to the linked address came back"),
    );
}

fn compromise(v: &mut Value) {
    set(v, "/case/priority", json!("high"));
    set(v, "/case/state", json!("awaiting_staff"));
    set(
        v,
        "/case/reasons",
        json!([
            {"code": "suspected_compromise", "label": "Suspected compromise"},
            {"code": "recovery_codes_lost_or_not_working", "label": "Recovery codes lost or not working"}
        ]),
    );
    set(
        v,
        "/case/understood",
        json!([
            {"label": "Username", "value": "iineolineii"},
            {"label": "Reason", "value": "Recovery codes were reset without my knowledge"}
        ]),
    );
    set(v, "/case/queue_position", json!(1));
    set(v, "/case/flags", json!(["suspected_compromise"]));
    set(
        v,
        "/case/secrets_found",
        json!([
            {"code": "api_token", "label": "an API token (pypi-AgE…)"},
            {"code": "recovery_code", "label": "a recovery code"}
        ]),
    );
    set(
        v,
        "/staff/reason",
        json!("The requester reports recovery codes reset without their knowledge."),
    );
}

fn non_english(v: &mut Value) {
    set(v, "/case/language", json!("es"));
    set(v, "/case/username", json!("mgarcia"));
    set(v, "/staff/account", json!("mgarcia"));
    set(v, "/case/requester", json!("maria.garcia@example.es"));
    set(
        v,
        "/case/understood",
        json!([
            {"label": "Usuario", "value": "mgarcia"},
            {"label": "Motivo", "value": "Perdí el teléfono con la aplicación de autenticación"}
        ]),
    );
    set(
        v,
        "/case/missing",
        json!([{"code": "code_of_conduct", "label": "Que aceptas el Código de Conducta", "hint": null}]),
    );
    set(v, "/case/state", json!("awaiting_info"));
    set(v, "/staff/requesters", json!(["maria.garcia@example.es"]));
}

fn lost_linked_address(v: &mut Value) {
    set(v, "/case/state", json!("awaiting_staff"));
    set(v, "/case/lookup_address", Value::Null);
    set(
        v,
        "/case/reasons",
        json!([{"code": "lost_email_access", "label": "Lost access to the linked email address"}]),
    );
    set(v, "/staff/linked_address_masked", json!("j***@o***.com"));
    set(v, "/staff/linked_address_status", json!("known"));
    set(
        v,
        "/staff/verification",
        json!("Not challenged: the requester no longer reads the linked address"),
    );
}

fn challenge_account(v: &mut Value, name: &str) {
    set(v, "/case/state", json!("awaiting_verification"));
    set(v, "/case/missing", json!([]));
    // Everything the requester could observe is identical in both;
    // only staff-side facts differ, and the requester-facing
    // templates must not show them (checked by `templates check`).
    if name == "challenge_known_account" {
        set(v, "/staff/linked_address_masked", json!("j***@e***.org"));
        set(v, "/staff/linked_address_status", json!("known"));
        set(
            v,
            "/staff/verification",
            json!("Challenge sent to the linked address"),
        );
        set(v, "/case/flags", json!(["account_found"]));
    } else {
        set(v, "/staff/linked_address_masked", Value::Null);
        set(v, "/staff/linked_address_status", json!("none_found"));
        set(
            v,
            "/staff/verification",
            json!("No account matches this username"),
        );
        set(v, "/case/flags", json!(["account_not_found"]));
    }
}

fn hostile_input(v: &mut Value) {
    // Requester-controlled text that must come out escaped in HTML.
    set(v, "/case/username", json!("<script>alert(1)</script>"));
    set(v, "/staff/account", json!("<script>alert(1)</script>"));
    set(
        v,
        "/case/understood",
        json!([{"label": "Username", "value": "<script>alert(1)</script> & \"friends\""}]),
    );
    set(
        v,
        "/relay/text",
        json!("Hi,\n<b>bold?</b> & more\n\nThanks"),
    );
    set(v, "/staff/excerpt", json!("<img src=x onerror=alert(1)>"));
    set(v, "/staff/error", json!("unknown command `/clsoe`"));
}

fn resolved(v: &mut Value) {
    set(v, "/case/state", json!("resolved"));
    set(v, "/case/missing", json!([]));
    set(v, "/case/age_days", json!(12));
    set(v, "/case/queue_position", json!(0));
}

fn wrong_code(v: &mut Value) {
    // The requester sent a code that did not match; `challenge_sent`
    // is sent again with the attempts left.
    set(v, "/case/state", json!("awaiting_verification"));
    set(v, "/challenge/wrong_code", json!(true));
    set(v, "/challenge/attempts_left", json!(3));
}

fn closed(v: &mut Value) {
    set(v, "/case/state", json!("closed"));
    set(v, "/case/age_days", json!(40));
    set(v, "/case/queue_position", json!(0));
    set(v, "/relay/staff_name", Value::Null);
}

/// Trims a full context to what the worker passes for `kind`: `challenge`
/// only for the challenge kinds and the acknowledgement (without `code`
/// and `reply_address` in what the requester gets),
/// `relay` only for `staff_relay`, `staff` only for staff kinds, `digest`
/// only for `digest`, `limits` only for `too_large`, `flood` only for
/// `staff_flood`.
pub fn for_kind(context: &Value, kind: TemplateKind) -> Value {
    let mut v = context.clone();
    let Some(map) = v.as_object_mut() else {
        return v;
    };
    if !kind.has_challenge() {
        map.remove("challenge");
    } else if kind.audience() != Audience::LinkedAddress {
        // The requester learns when and where, never the code or the
        // challenge thread's address (a "yes" sent there verifies).
        if let Some(challenge) = map.get_mut("challenge").and_then(Value::as_object_mut) {
            challenge.remove("code");
            challenge.remove("reply_address");
        }
    }
    if kind != TemplateKind::StaffRelay {
        map.remove("relay");
    }
    if !kind.is_staff_facing() {
        map.remove("staff");
    }
    if kind != TemplateKind::Digest {
        map.remove("digest");
    }
    if kind != TemplateKind::TooLarge {
        map.remove("limits");
    }
    if kind != TemplateKind::StaffFlood {
        map.remove("flood");
    }
    v
}

/// Every context `templates check` renders `kind` with: each scenario
/// trimmed by [`for_kind`], then [`null_shape`].
pub fn contexts_for(kind: TemplateKind) -> Vec<(&'static str, Value)> {
    let mut contexts: Vec<(&'static str, Value)> = all()
        .iter()
        .map(|(name, context)| (*name, for_kind(context, kind)))
        .collect();
    contexts.push((NULL_SHAPE, null_shape(kind)));
    contexts
}

/// `missing_everything` in the other shape a worker may build: every object
/// present for every kind, with the values that do not apply set to null
/// (no code outside the challenge mail, no relay text, no size, no excerpt).
/// Templates must cope with both shapes, so they test with `{% if %}`
/// before doing arithmetic or filtering on an optional value.
pub fn null_shape(kind: TemplateKind) -> Value {
    let mut v = scenario("missing_everything").unwrap_or_default();
    set(&mut v, "/challenge/attempts_left", Value::Null);
    set(&mut v, "/limits/size_bytes", Value::Null);
    set(&mut v, "/staff/excerpt", Value::Null);
    set(&mut v, "/staff/reason", Value::Null);
    set(&mut v, "/staff/changed", json!([]));
    set(&mut v, "/staff/done", json!([]));
    set(&mut v, "/staff/assignee", Value::Null);
    set(&mut v, "/staff/earlier_cases", json!([]));
    set(&mut v, "/staff/attachments", json!([]));
    if !matches!(
        kind,
        TemplateKind::Challenge | TemplateKind::ChallengeReminder
    ) {
        set(&mut v, "/challenge/code", Value::Null);
    }
    if kind != TemplateKind::StaffRelay {
        set(&mut v, "/relay/text", Value::Null);
    }
    if !kind.is_staff_facing() {
        if let Some(map) = v.as_object_mut() {
            map.remove("staff");
        }
    }
    v
}

/// Sets a value at a JSON pointer that exists in [`base`].
fn set(v: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    }
}

/// The `seed_2fa` scenario: the first seed's requester, everything present.
fn base() -> Value {
    json!({
        "case": {
            "id": "RD-7K3M9Q",
            "subject_tag": "[Case RD-7K3M9Q]",
            "state": "new",
            "priority": "normal",
            "language": "en",
            "username": "iineolineii",
            "lookup_address": SAMPLE_REQUESTER,
            "reasons": [
                {"code": "lost_2fa_device", "label": "Lost two-factor device"},
                {"code": "recovery_codes_lost_or_not_working", "label": "Recovery codes lost or not working"}
            ],
            "understood": [
                {"label": "Username", "value": "iineolineii"},
                {"label": "Reason", "value": "Lost the authentication app; recovery codes do not work"},
                {"label": "Still reads the linked address", "value": "yes"},
                {"label": "Code of Conduct", "value": "agreed"},
                {"label": "Review takes time", "value": "acknowledged"}
            ],
            "missing": [],
            "queue_position": 14,
            "expected_wait": "one to two weeks",
            "created": "2026-11-20",
            "age_days": 3,
            "reply_address": "support+RD-7K3M9Q.5d1e0b7c@example.org",
            "requester": SAMPLE_REQUESTER,
            "secrets_found": [],
            "flags": [],
            "proofs": [{"label": "Packages owned", "value": "iine-tools"}]
        },
        "support": {
            "name": "Example Package Index Support",
            "address": "support@example.org",
            "code_of_conduct_url": "https://example.org/code-of-conduct",
            "team": "The Example support team"
        },
        "now": "2026-11-23",
        "challenge": {
            "code": "K7QF-3MZP",
            "expires": "2026-11-25 16:30 UTC",
            "requested": "2026-11-23",
            "requester_masked": "j***@e***.org",
            "reply_address": "support+ch-RD-7K3M9Q.a41c9e02@example.org",
            "account": "iineolineii",
            "wrong_code": false,
            "attempts_left": 5
        },
        "relay": {
            "text": "Hello,\n\nThanks for your patience. Could you tell us the name of one package you uploaded last year?",
            "staff_name": "Dana"
        },
        "staff": {
            "account": "iineolineii",
            "linked_address_masked": "j***@e***.org",
            "linked_address_status": "known",
            "verification": "Challenge sent, not answered yet",
            "trust": [
                {"label": "Sender matches the linked address", "value": "yes"},
                {"label": "DKIM", "value": "pass"}
            ],
            "excerpt": "I lost my phone with the authenticator app and my recovery codes do not work.",
            "requesters": [SAMPLE_REQUESTER, "someone.else@example.com"],
            "commands_help": "/note LINE · /internal · /close · /resolve · /verify · /ask FIELDS · /reopen · /priority high|normal · /assign me",
            "events": [
                {"at": "2026-11-20 09:12", "what": "Request received"},
                {"at": "2026-11-20 09:12", "what": "Acknowledgement sent"},
                {"at": "2026-11-21 10:03", "what": "Challenge sent to the linked address"}
            ],
            "reason": "Waiting on staff for 8 days",
            "failed_recipient": SAMPLE_REQUESTER,
            "error": "`/ask` needs at least one field name",
            "held": [
                {"template": "verified", "to": SAMPLE_REQUESTER, "until": "Friday 20 November 2026, 10:12 UTC", "why": "10 replies to this address in the last hour (limit 10 per hour)", "merged": ["request_info"]}
            ],
            "changed": ["email_access", "proofs"],
            "done": ["set the priority to high", "added your internal note to the case log"],
            "assignee": "dana@example.org",
            "attachments": [
                {"number": 1, "name": "passport.jpg", "content_type": "image/jpeg", "size": "182.4 KB"}
            ],
            "attachments_total": 1,
            "earlier_cases": [
                {"id": "RD-2QW7EN", "state": "closed", "opened": "Monday 3 August 2026, 10:00 UTC", "closed": "Friday 14 August 2026, 16:20 UTC", "shares": "same username and address"}
            ]
        },
        "digest": {
            "cases": [
                {"id": "RD-7K3M9Q", "state": "awaiting_staff", "age_days": 3, "username": "iineolineii", "priority": "high"},
                {"id": "RD-4HX8PT", "state": "awaiting_info", "age_days": 11, "username": null, "priority": "normal"}
            ]
        },
        "limits": {"size_bytes": 31600000, "limit_bytes": 10485760},
        "flood": {"kind": "staff_forged", "label": "unauthenticated mail from a staff address", "count": 11, "interval_minutes": 60, "threshold": 10},
        "policy": {"reopen_days": 30, "close_after_days": 14, "waiting_period_days": 7},
        "extra": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_a_scenario() {
        assert_eq!(all().len(), NAMES.len());
        assert!(scenario("nope").is_none());
    }

    #[test]
    fn every_case_state_is_covered() {
        let states: Vec<String> = all()
            .iter()
            .map(|(_, v)| v["case"]["state"].as_str().unwrap().to_string())
            .collect();
        for state in [
            "new",
            "awaiting_info",
            "awaiting_verification",
            "awaiting_staff",
            "waiting_period",
            "resolved",
            "closed",
        ] {
            assert!(states.iter().any(|s| s == state), "{state} not covered");
        }
    }

    #[test]
    fn challenge_sent_gets_no_code() {
        let v = for_kind(&scenario("seed_2fa").unwrap(), TemplateKind::ChallengeSent);
        assert!(v["challenge"].get("code").is_none());
        assert!(v.get("staff").is_none());
    }
}
