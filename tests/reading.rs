//! Measured reading: recovery fields on a labelled set of requests of our
//! own writing (`tests/fixtures/requests/`), and reply stripping against the
//! crisp reply-parser corpus when it is present on this machine.

use std::path::Path;

use recoverydesk::quote;

/// Where the shared corpus lives, relative to the crate root.
const CRISP_DIR: &str = "../shared/corpus/crisp-email-reply-parser";

/// Whitespace normalisation for the crisp comparison: CRLF to LF, trailing
/// spaces removed on each line, runs of blank lines collapsed to one, blank
/// lines at both ends dropped. The corpus records its expectations from a
/// parser that keeps trailing blank lines and spaces; those carry no
/// meaning for a support desk, so they are not held against us.
fn normalise(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

#[test]
fn reply_stripping_matches_most_of_the_crisp_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CRISP_DIR);
    let Ok(expected) = std::fs::read_to_string(dir.join("expected.json")) else {
        println!("crisp corpus not found at {}; skipping", dir.display());
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_str(&expected).expect("expected.json parses");
    let cases = expected["expectations"]
        .as_object()
        .expect("expectations object");
    let (mut total, mut exact) = (0usize, 0usize);
    let mut misses = Vec::new();
    for (name, case) in cases {
        let Some(want) = case["new_text"]["text"].as_str() else {
            continue;
        };
        let Ok(body) = std::fs::read_to_string(dir.join("fixtures").join(name)) else {
            continue;
        };
        total += 1;
        let got = quote::new_text(&body, None);
        if normalise(&got) == normalise(want) {
            exact += 1;
        } else {
            misses.push((name.clone(), got));
        }
    }
    for (name, got) in &misses {
        println!("--- miss {name}:\n{got}\n");
    }
    let rate = exact as f64 / total.max(1) as f64;
    println!(
        "crisp reply stripping: {exact}/{total} exact ({:.1}%)",
        rate * 100.0
    );
    assert!(
        total >= 40,
        "expected at least 40 cases with new_text, found {total}"
    );
    // 49/49 when this floor was set; a few points of slack for rule changes
    // that trade a corpus case for a real-mail case.
    assert!(rate >= 0.95, "exact-match rate {rate:.3} below the floor");
}
