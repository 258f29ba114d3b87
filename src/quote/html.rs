//! HTML quote containers: what is history in an HTML body before it is
//! rendered to text.

use once_cell::sync::Lazy;
use regex::Regex;

/// Block boundaries the text renderer would run together
/// ("PyPI Usernamejodoe"): closing block tags become line breaks, list
/// items become `- ` lines and headings markdown headings, so a rendered
/// HTML form reads like the pasted markdown one.
pub(super) static BLOCK_END: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)</(?:h[1-6]|p|div|li|tr|ul|ol|table|pre|blockquote|section|article|header|footer|dd|dt)\s*>")
        .expect("valid regex")
});
pub(super) static LIST_ITEM: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?i)<li\b[^>]*>").expect("valid regex"));
pub(super) static HEADING_START: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?i)<h[1-6]\b[^>]*>").expect("valid regex"));

pub(super) fn mark_blocks(html: &str) -> String {
    let html = BLOCK_END.replace_all(html, "$0<br>");
    let html = LIST_ITEM.replace_all(&html, "<br>- ");
    HEADING_START.replace_all(&html, "<br>### ").into_owned()
}

/// Quote containers whose whole element is history.
pub(super) static HTML_QUOTE_OPEN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"(?is)<(blockquote)\b[^>]*>|<(div)\b[^>]*class\s*=\s*["']?[^"'>]*\b(?:gmail_quote|gmail_signature|yahoo_quoted|moz-cite-prefix|moz-signature|protonmail_quote|zmail_extra)\b[^>]*>"#,
    )
    .expect("valid regex")
});

/// Markers after which everything is history (Outlook puts the quoted
/// message after these, not inside them).
pub(super) static HTML_CUT_REST: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"(?is)<div\b[^>]*id\s*=\s*["']?(?:divRplyFwdMsg|appendonsend|mail-editor-reference-message-container)\b|<hr\b[^>]*id\s*=\s*["']?stopSpelling"#,
    )
    .expect("valid regex")
});

/// A horizontal rule directly above a header block's From field.
pub(super) static HR_HEADER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?is)<hr\b[^>]*>(?:\s|&nbsp;|<[^>]*>)*(?:from|von|de|da|van|fra|från|od|от|від|lähettäjä|feladó|gönderen|kimden|từ|από|afzender|avsändare|nadawca|відправник|отправитель|发件人|寄件者|差出人)(?:\s|&nbsp;|<[^>]*>)*[:：]")
        .expect("valid regex")
});

pub(super) static HTML_TAG: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?is)<(/?)([a-z][a-z0-9]*)\b[^>]*?(/?)>").expect("valid regex"));

/// Removes quote containers from HTML. Works on tags only (no DOM): finds
/// an opening container and skips to its balanced closing tag, so nested
/// quotes go with their parent. Unbalanced markup drops the rest, which is
/// the safe side for a quote that was never closed.
pub(super) fn strip_html_quotes(html: &str) -> String {
    let html = match HTML_CUT_REST.find(html) {
        Some(m) => &html[..m.start()],
        None => html,
    };
    // Outlook on the web draws a plain `<hr>` above the quoted message's
    // From line; it ends the new text only under something written.
    let html = match HR_HEADER.find(html) {
        Some(m)
            if !mail_parser::decoders::html::html_to_text(&html[..m.start()])
                .trim()
                .is_empty() =>
        {
            &html[..m.start()]
        }
        _ => html,
    };
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    while let Some(open) = HTML_QUOTE_OPEN.find_at(html, pos) {
        out.push_str(&html[pos..open.start()]);
        let tag = if open
            .as_str()
            .to_ascii_lowercase()
            .starts_with("<blockquote")
        {
            "blockquote"
        } else {
            "div"
        };
        pos = match balanced_end(html, open.end(), tag) {
            Some(end) => end,
            None => html.len(),
        };
    }
    out.push_str(&html[pos..]);
    out
}

/// Byte offset just after the closing tag that balances an opening `tag`
/// whose start tag ended at `from`.
pub(super) fn balanced_end(html: &str, from: usize, tag: &str) -> Option<usize> {
    let mut depth = 1usize;
    for caps in HTML_TAG.captures_iter(&html[from..]) {
        let name = caps.get(2).map_or("", |m| m.as_str());
        if !name.eq_ignore_ascii_case(tag) {
            continue;
        }
        let closing = caps.get(1).is_some_and(|m| !m.as_str().is_empty());
        let self_closing = caps.get(3).is_some_and(|m| !m.as_str().is_empty());
        if closing {
            depth -= 1;
            if depth == 0 {
                return caps.get(0).map(|m| from + m.end());
            }
        } else if !self_closing {
            depth += 1;
        }
    }
    None
}
