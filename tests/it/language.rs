//! A request in another language is processed, never refused, and answered
//! in that language where templates exist (templates/README.md, "Languages
//! and fallback").

use crate::common;
use common::*;

#[tokio::test]
async fn a_spanish_request_is_answered_in_spanish_with_spanish_labels() {
    let mut app = TestApp::spawn().await;
    app.deliver(&mail(
        "ana@correo.example",
        "support@pypi.example",
        "Perdí mi teléfono",
        "es1@correo.example",
        "",
        "Hola,\r\n\r\nPerdí mi teléfono con la aplicación de autenticación y no puedo entrar en mi cuenta.\r\nMi nombre de usuario es alice.\r\nMuchas gracias por su ayuda.\r\n",
    ));
    app.pass(T0).await;
    let case = app.case_of("ana@correo.example");
    assert_eq!(case.language, "es");
    let acks = app.sent_to("ana@correo.example");
    assert_eq!(acks.len(), 1, "one acknowledgement");
    let ack = &acks[0];
    assert!(ack.subject.contains(case.id.as_str()), "{}", ack.subject);
    assert!(
        ack.text.contains("Nombre de usuario"),
        "Spanish labels expected:\n{}",
        ack.text
    );
    assert!(
        !ack.text.contains("Your account username"),
        "no English labels:\n{}",
        ack.text
    );
}

#[tokio::test]
async fn a_request_in_a_language_without_templates_is_answered_in_english() {
    let mut app = TestApp::spawn().await;
    app.deliver(&mail(
        "wei@mail.example",
        "support@pypi.example",
        "账户恢复",
        "zh1@mail.example",
        "",
        "你好，我丢失了双重验证设备，恢复码也不能用了。我的用户名是 alice。谢谢你们的帮助。\r\n",
    ));
    app.pass(T0).await;
    let case = app.case_of("wei@mail.example");
    assert_eq!(case.language, "zh");
    let acks = app.sent_to("wei@mail.example");
    assert_eq!(acks.len(), 1, "never refused: one acknowledgement");
    assert!(acks[0].text.contains(case.id.as_str()));
    assert_eq!(case.fields.username.as_deref(), Some("alice"));
}
