//! What the sender newly wrote: quoted history, quote headers and
//! signatures stripped.
//!
//! Pure. Placeholder rules; the reading issue replaces them.

/// The newly written part of a message body. `html` is the message's HTML
/// body when it has one (used to drop `blockquote`/`gmail_quote` history).
pub fn new_text(plain: &str, _html: Option<&str>) -> String {
    let mut out = Vec::new();
    for line in plain.lines() {
        if line.starts_with('>') {
            continue;
        }
        if line == "-- " {
            break;
        }
        out.push(line);
    }
    out.join("\n").trim().to_string()
}
