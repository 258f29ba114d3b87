//! The daily staff digest: open cases by age, status chases marked, once a
//! day at the configured time.

use crate::common;
use common::*;

fn digests(app: &TestApp) -> Vec<Sent> {
    app.sent_to("admins@pypi.example")
        .into_iter()
        .filter(|s| s.file.starts_with("digest."))
        .collect()
}

#[tokio::test]
async fn the_digest_lists_open_cases_marks_update_requests_and_goes_once_a_day() {
    let config =
        config_text("", FILE_DIRECTORY).replace("[staff]\n", "[staff]\ndigest_at = \"08:00\"\n");
    let mut app = TestApp::spawn_with_config(config).await;
    // T0 is 09:00 UTC: two requests arrive before the digest hour of the next day.
    app.deliver(&complete_request(
        "jo@requester.example",
        "d1@requester.example",
    ));
    app.deliver(&mail(
        "kim@other.example",
        "support@pypi.example",
        "help",
        "d2@other.example",
        "",
        "I forgot my password.\r\n",
    ));
    app.pass(T0).await;
    assert_eq!(
        digests(&app).len(),
        0,
        "the first start after 08:00 sends none: the first digest is tomorrow's"
    );
    let jo = app.case_of("jo@requester.example");
    app.deliver(&mail(
        "jo@requester.example",
        &app.reply_address(&jo.id),
        "Re: Lost my 2FA device",
        "d3@requester.example",
        "",
        "Any update on my request?\r\n",
    ));
    app.pass(T0 + 3600).await;
    assert_eq!(digests(&app).len(), 0, "nor later that day");
    // Next morning, 08:30: the first digest marks the chase.
    app.pass(T0 + 86_400 - 1800).await;
    assert_eq!(digests(&app).len(), 1);
    app.pass(T0 + 86_400).await;
    assert_eq!(digests(&app).len(), 1, "not twice on one day");
    let all = digests(&app);
    assert_eq!(all.len(), 1);
    let latest = all
        .iter()
        .find(|d| d.text.contains("asked for an update"))
        .expect("the chase is marked");
    assert!(latest.text.contains(jo.id.as_str()), "{}", latest.text);
    assert!(
        latest.subject.starts_with("2 open recovery cases"),
        "{}",
        latest.subject
    );
    assert!(latest.raw.contains("Auto-Submitted: auto-generated"));
}

#[tokio::test]
async fn a_first_start_before_the_digest_hour_sends_that_day_at_the_hour() {
    let config =
        config_text("", FILE_DIRECTORY).replace("[staff]\n", "[staff]\ndigest_at = \"08:00\"\n");
    let mut app = TestApp::spawn_with_config(config).await;
    // T0 is 09:00 UTC; start at 07:00.
    app.pass(T0 - 2 * 3600).await;
    assert_eq!(digests(&app).len(), 0);
    app.pass(T0 - 1800).await;
    assert_eq!(digests(&app).len(), 1, "08:30 the same day");
}
