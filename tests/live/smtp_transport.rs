//! The SMTP transport against a real Postfix on loopback (delivering into
//! Dovecot), started by `scripts/mailstack.sh up $MAILSTACK_DIR`.
//!
//! Tests use distinct users or unique subjects and run in parallel; the
//! one that stops Postfix takes the write side of `GATE`. Set
//! `RD_SKIP_MAILSTACK=1` to skip them (they say so); otherwise a stack that
//! fails to start fails the tests.

use crate::stack;
use stack::{script, unique};
use stack::{shared as stack, Stack};

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use recoverydesk::error::Error;
use recoverydesk::secret::SecretSource;
use recoverydesk::transport::smtp::{self, SmtpSettings, SmtpTls};
use recoverydesk::transport::{OutgoingMessage, Transport};

use crate::stack::GATE;

/// STARTTLS on the SMTP port with the test CA and AUTH as `user`.
fn starttls(stack: &Stack, user: &str) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: stack.smtp_port,
        tls: SmtpTls::Starttls,
        allow_plaintext: false,
        ca_file: Some(stack.ca_file.clone()),
        tls_server_name: None,
        username: Some(user.into()),
        password: Some(SecretSource {
            env: None,
            file: Some("good".into()),
        }),
        timeout: Duration::from_secs(10),
        connections: 1,
    }
}

fn outgoing(to: &str, subject: &str) -> OutgoingMessage {
    let message_id = format!("{}@support.mailstack.test", unique("out"));
    let bytes = format!(
        "From: Support <support@mailstack.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nAuto-Submitted: auto-replied\r\n\r\nWe got your request.\r\n"
    )
    .into_bytes();
    OutgoingMessage {
        message_id,
        envelope_from: "support@mailstack.test".into(),
        envelope_to: vec![to.into()],
        bytes,
    }
}

/// Waits until `user`'s INBOX holds a message with `subject`.
async fn arrives(stack: &Stack, user: &str, subject: &str) -> bool {
    let mut session = stack::imap_login(stack.imap_port, user)
        .await
        .unwrap_or_else(|e| panic!("imap login {user}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        session.select("INBOX").await.expect("select");
        let found: HashSet<u32> = session
            .uid_search(format!("HEADER Subject \"{subject}\""))
            .await
            .expect("search");
        if !found.is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn starttls_with_auth_and_the_test_ca_delivers() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let transport = smtp::build(&starttls(stack, "bob"), stack.secrets.path()).expect("build");
    assert!(transport
        .describe()
        .starts_with("smtp+starttls://bob@127.0.0.1:"));
    let subject = unique("starttls");
    transport
        .send(&outgoing("bob@mailstack.test", &subject))
        .await
        .expect("send");
    assert!(arrives(stack, "bob", &subject).await, "delivered to bob");
}

#[tokio::test]
async fn implicit_tls_on_the_submission_port_delivers() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mut settings = starttls(stack, "carol");
    settings.tls = SmtpTls::Implicit;
    settings.port = stack.smtps_port;
    let report = smtp::check(&settings, stack.secrets.path())
        .await
        .expect("check");
    assert!(report.contains("AUTH ok"), "{report}");
    let transport = smtp::build(&settings, stack.secrets.path()).expect("build");
    let subject = unique("implicit");
    transport
        .send(&outgoing("carol@mailstack.test", &subject))
        .await
        .expect("send");
    assert!(
        arrives(stack, "carol", &subject).await,
        "delivered to carol"
    );
}

#[tokio::test]
async fn a_wrong_password_is_config_at_check_and_transient_at_send() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mut settings = starttls(stack, "dave");
    settings.password = Some(SecretSource {
        env: None,
        file: Some("bad".into()),
    });
    let err = smtp::check(&settings, stack.secrets.path())
        .await
        .expect_err("bad password");
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("authentication refused"), "{err}");
    // At send time the message must stay queued, not be given up on.
    let transport = smtp::build(&settings, stack.secrets.path()).expect("build");
    let err = transport
        .send(&outgoing("dave@mailstack.test", "never"))
        .await
        .expect_err("bad password");
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_5xx_is_permanent_and_a_4xx_transient_with_the_servers_words() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let transport = smtp::build(&starttls(stack, "agent"), stack.secrets.path()).expect("build");
    let err = transport
        .send(&outgoing("rejected@mailstack.test", "no"))
        .await
        .expect_err("550");
    assert!(matches!(err, Error::Permanent(_)), "{err}");
    assert!(
        err.to_string()
            .contains("Rejected by the mailstack test rule"),
        "{err}"
    );
    let err = transport
        .send(&outgoing("deferred@mailstack.test", "later"))
        .await
        .expect_err("450");
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains("Deferred by the mailstack test rule"),
        "{err}"
    );
    // The pooled connection is still good for the next message.
    let subject = unique("after-reject");
    transport
        .send(&outgoing("agent@mailstack.test", &subject))
        .await
        .expect("send after a rejection");
    assert!(arrives(stack, "agent", &subject).await);
}

#[tokio::test]
async fn tls_with_the_wrong_name_fails_clearly() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.read().await;
    let mut settings = starttls(stack, "alice");
    settings.tls_server_name = Some("wrong.example".into());
    let err = smtp::check(&settings, stack.secrets.path())
        .await
        .expect_err("name mismatch");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("wrong.example") && text.contains("certificate"),
        "{text}"
    );
    let transport = smtp::build(&settings, stack.secrets.path()).expect("build");
    let err = transport
        .send(&outgoing("alice@mailstack.test", "never"))
        .await
        .expect_err("name mismatch");
    assert!(err.is_transient(), "kept for retry: {err}");
}

#[tokio::test]
async fn a_stopped_postfix_is_transient_and_sending_resumes_after_restart() {
    let Some(stack) = stack() else { return };
    let _gate = GATE.write().await;
    let transport = smtp::build(&starttls(stack, "staff"), stack.secrets.path()).expect("build");
    let warm = unique("warm");
    transport
        .send(&outgoing("staff@mailstack.test", &warm))
        .await
        .expect("send before stop");

    let run = |cmd: &str| {
        let status = Command::new("bash")
            .arg(script())
            .arg(cmd)
            .arg(&stack.dir)
            .status()
            .expect("run mailstack.sh");
        assert!(status.success(), "mailstack.sh {cmd}");
    };
    run("stop-postfix");
    let started = Instant::now();
    let err = transport
        .send(&outgoing("staff@mailstack.test", "while down"))
        .await
        .expect_err("postfix is down");
    let took = started.elapsed();
    run("start-postfix");
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", stack.smtp_port)),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "failed fast: {took:?}");

    let subject = unique("after-restart");
    let mut sent = false;
    for _ in 0..3 {
        // A pooled connection from before the restart may be dead once.
        if transport
            .send(&outgoing("staff@mailstack.test", &subject))
            .await
            .is_ok()
        {
            sent = true;
            break;
        }
    }
    assert!(sent, "sending works again after start-postfix");
    assert!(arrives(stack, "staff", &subject).await);
}
