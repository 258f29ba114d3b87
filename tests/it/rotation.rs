//! Secret key rotation (issue 15 item 11): after the installation key is
//! replaced, reply addresses and challenge codes sent under the previous
//! key still work until `previous_keys_until`, and not after; new mail is
//! signed with the new key only.

use crate::common::{self, TestApp, DAY, T0};

use std::sync::Arc;

use recoverydesk::case::Verification;
use recoverydesk::config::Settings;
use recoverydesk::thread::{parse_reply_address, reply_address, Role};

const REQUESTER: &str = "ann@requester.example";
const LINKED: &str = "alice@linked.example";
const OLD_KEY: &str = "test-secret-key-0123456789abcdef";
const NEW_KEY: &str = "the-rotated-key-fedcba9876543210";

/// The code the challenge mail carries (`ABCD-EFGH`).
fn code_in(text: &str) -> String {
    let re = regex::Regex::new(r"\b[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}\b").unwrap();
    re.find(text).expect("a code").as_str().to_owned()
}

#[tokio::test]
async fn mail_sent_under_the_previous_key_still_works_until_the_rotation_ends() {
    let mut app = TestApp::spawn().await;
    app.deliver(&common::complete_request(
        REQUESTER,
        "open-1@requester.example",
    ));
    app.pass(T0).await;
    let case = app.case_of(REQUESTER);
    assert!(matches!(case.verification, Verification::Pending(_)));
    let code = code_in(&app.sent_to(LINKED)[0].text);
    let old_address = app.reply_address(&case.id);

    // Rotate: a new key, the old one accepted for ten days.
    let root = app.dir.path().to_path_buf();
    std::fs::write(root.join("new.key"), NEW_KEY).unwrap();
    let until = chrono::DateTime::from_timestamp(T0 + 10 * DAY, 0)
        .unwrap()
        .to_rfc3339();
    let config = std::fs::read_to_string(root.join("config.toml"))
        .unwrap()
        .replace(
            "secret_key = { file = \"secret.key\" }",
            &format!(
                "secret_key = {{ file = \"new.key\" }}\nprevious_secret_keys = [{{ file = \"secret.key\" }}]\nprevious_keys_until = \"{until}\""
            ),
        );
    std::fs::write(root.join("config.toml"), config).unwrap();
    app.settings = Arc::new(Settings::load(&root.join("config.toml")).unwrap());
    app.restart().await;
    assert_ne!(
        app.reply_address(&case.id),
        old_address,
        "new mail, new key"
    );

    // A reply to the address minted under the old key, with the code the
    // old key's MAC guards: it threads as a reply and verifies.
    app.deliver(&common::mail(
        REQUESTER,
        &old_address,
        "Re: Lost my 2FA device",
        "code-1@requester.example",
        "",
        &format!("Here is the code: {code}\r\n"),
    ));
    app.pass(T0 + 3600).await;
    let after = app.case_of(REQUESTER);
    assert_eq!(after.id, case.id);
    assert!(
        matches!(after.verification, Verification::Verified { .. }),
        "{:?}",
        after.verification
    );
    // What went out since is signed with the new key only.
    let support = &app.settings.support_address;
    let latest = app.sent_to(REQUESTER).pop().unwrap();
    assert_eq!(
        parse_reply_address(&latest.reply_to, support, NEW_KEY.as_bytes()),
        Some((case.id.clone(), Role::Case)),
        "{}",
        latest.reply_to
    );
    assert_eq!(
        parse_reply_address(&latest.reply_to, support, OLD_KEY.as_bytes()),
        None
    );

    // After the period the old address is just an unknown one: a stranger
    // writing to it starts a case of their own.
    let stranger = "someone@else.example";
    assert_eq!(
        old_address,
        reply_address(support, OLD_KEY.as_bytes(), &case.id, Role::Case)
    );
    app.deliver(&common::mail(
        stranger,
        &old_address,
        "Re: Lost my 2FA device",
        "late-1@else.example",
        "",
        "Username: bobby\r\nI lost my phone.\r\n",
    ));
    app.pass(T0 + 11 * DAY).await;
    let theirs = app.case_of(stranger);
    assert_ne!(theirs.id, case.id, "not threaded by the expired key");
}
