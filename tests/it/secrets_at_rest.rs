//! Secrets at rest: a token or password pasted into a request never reaches
//! the store in clear (not in the kept raw message, not in the subject on
//! the case), nor `cases show` or `cases export`; de-duplication still
//! works on the original bytes.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::*;
use futures::future::{BoxFuture, FutureExt};
use recoverydesk::error::Result;
use recoverydesk::report;
use recoverydesk::source::{Fetched, Source};

const TOKEN: &str = "pypi-AgEIcHlwaS5vcmcCJGI4ZTU5ZmJhLWY0NmUtNDVkYy04NjY2ZDhmNzg1";
const PASSWORD: &str = "Hunter2-Hunter2";

/// A request with the token in the subject and the plain part, and the
/// password in a base64 HTML part.
fn request() -> String {
    let html = STANDARD.encode(format!(
        "<p>Username: alice</p><p>my password is {PASSWORD}</p>"
    ));
    format!(
        "From: Jo <jo@example.org>\r\nTo: support@pypi.example\r\nSubject: Lost 2FA, token {TOKEN}\r\nMessage-ID: <secret-1@example.org>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nUsername: alice\r\nI lost my phone. Here is my token: {TOKEN}\r\nmy password is {PASSWORD}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{html}\r\n--b1--\r\n"
    )
}

/// Every file under `dir`, read whole.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_store_show_and_export_never_hold_the_secret_in_clear() {
    let mut app = TestApp::spawn().await;
    app.deliver(&request());
    let report = app.pass(T0).await;
    assert_eq!(report.errors, 0);
    let case = app.case_of("jo@example.org");
    assert!(!case.secrets_found.is_empty(), "the requester is told");

    // The kept raw message is there, redacted.
    let kept: Vec<Vec<u8>> = files_under(&app.dir.path().join("store"))
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert!(
        kept.iter().any(|b| holds(b, "[redacted api_token]")),
        "the redacted copy is stored"
    );
    let html_b64 = STANDARD.encode(format!(
        "<p>Username: alice</p><p>my password is {PASSWORD}</p>"
    ));
    for bytes in &kept {
        assert!(!holds(bytes, TOKEN), "the token is in the store");
        assert!(!holds(bytes, PASSWORD), "the password is in the store");
        assert!(!holds(bytes, &html_b64), "the base64 part is in the store");
    }

    let show = report::show(app.store(), &case, T0).unwrap();
    let export = report::export(app.store(), &case).unwrap().to_string();
    for (what, text) in [("cases show", &show), ("cases export", &export)] {
        assert!(!text.contains(TOKEN), "{what}: {text}");
        assert!(!text.contains(PASSWORD), "{what}: {text}");
    }
    assert!(
        export.contains("Lost 2FA, token [redacted api_token]"),
        "{export}"
    );

    // The same bytes again are recognised by the original's content hash.
    app.deliver(&request());
    let again = app.pass(T0 + 60).await;
    assert!(again.handled[0].repeat, "{:?}", again.handled);
}

/// A source that hands out one batch and records how each id was marked.
struct Recording {
    batch: Vec<Fetched>,
    marks: Arc<Mutex<Vec<(String, &'static str)>>>,
}

impl Recording {
    fn mark(&self, ids: &[String], how: &'static str) {
        let mut marks = self.marks.lock().unwrap();
        marks.extend(ids.iter().map(|id| (id.clone(), how)));
    }
}

impl Source for Recording {
    fn fetch_batch(&mut self, _max: usize) -> BoxFuture<'_, Result<Vec<Fetched>>> {
        let batch = std::mem::take(&mut self.batch);
        async move { Ok(batch) }.boxed()
    }
    fn mark_done<'a>(&'a mut self, ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        self.mark(ids, "done");
        async { Ok(()) }.boxed()
    }
    fn mark_secret<'a>(&'a mut self, ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        self.mark(ids, "secret");
        async { Ok(()) }.boxed()
    }
    fn wait_for_new(&mut self, _timeout: Duration) -> BoxFuture<'_, Result<()>> {
        async { Ok(()) }.boxed()
    }
    fn describe(&self) -> String {
        "recording".into()
    }
}

#[tokio::test]
async fn the_worker_marks_mail_that_held_a_secret_apart() {
    let mut app = TestApp::spawn().await;
    let fetched = |id: &str, raw: String| Fetched {
        source_id: id.into(),
        raw: raw.into_bytes().into(),
        oversize: None,
        cursor: None,
    };
    let plain = complete_request("Ann <ann@example.org>", "plain-1@example.org");
    let marks = Arc::new(Mutex::new(Vec::new()));
    app.worker.source = Box::new(Recording {
        batch: vec![fetched("plain", plain), fetched("secret", request())],
        marks: marks.clone(),
    });
    let report = app.pass(T0).await;
    assert_eq!(report.errors, 0);
    let mut marks = marks.lock().unwrap().clone();
    marks.sort();
    assert_eq!(
        marks,
        vec![("plain".into(), "done"), ("secret".into(), "secret")]
    );
}
