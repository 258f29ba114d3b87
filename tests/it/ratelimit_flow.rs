//! Automatic mail is capped per case as well as per address: a case whose
//! mail goes to several addresses still cannot become a spam cannon. Mail
//! over a cap is held on the case and sent later, never dropped.

use crate::common;
use common::*;

#[tokio::test]
async fn the_per_case_limit_holds_back_mail_to_a_new_address_and_logs_why() {
    let limits = "[policy.rate_limit_per_case]\nper_hour = 2\nper_day = 5\n";
    let mut app = TestApp::spawn_with(limits, FILE_DIRECTORY).await;
    // Two automatic mails on the case: the acknowledgement and the challenge.
    app.deliver(&complete_request(
        "jo@requester.example",
        "r1@requester.example",
    ));
    app.pass(T0).await;
    assert_eq!(app.sent_to("jo@requester.example").len(), 1);
    assert_eq!(app.sent_to("alice@linked.example").len(), 1);
    // A second address asks about the same account within the hour: its
    // neutral note would be the case's third automatic mail.
    app.deliver(&complete_request(
        "mallory@elsewhere.example",
        "r2@elsewhere.example",
    ));
    let report = app.pass(T0 + 600).await;
    assert!(
        app.sent_to("mallory@elsewhere.example").is_empty(),
        "held back by the per-case limit"
    );
    let notes: Vec<&String> = report.handled.iter().flat_map(|h| h.notes.iter()).collect();
    assert!(notes.iter().any(|n| n.contains("rate limit")), "{notes:?}");
    let case = app.case_of("jo@requester.example");
    let events = app.store().events(&case.id).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.what.contains("held back by the rate limit")),
        "logged on the case"
    );
    assert_eq!(case.held.len(), 1, "held on the case, not dropped");
    assert_eq!(case.held[0].mail.template.to_string(), "neutral");

    // An hour later the window has moved on: the next automatic mail goes out.
    app.deliver(&mail(
        "jo@requester.example",
        &app.reply_address(&case.id),
        "Re: Lost my 2FA device",
        "r3@requester.example",
        "",
        "Any update on my request?\r\n",
    ));
    app.pass(T0 + 2 * 3600).await;
    assert_eq!(
        app.sent_to("jo@requester.example").len(),
        2,
        "the status reply is sent"
    );
    assert_eq!(
        app.sent_to("mallory@elsewhere.example").len(),
        1,
        "the held note goes out once the window allows"
    );
    assert!(app.case_of("jo@requester.example").held.is_empty());
}
