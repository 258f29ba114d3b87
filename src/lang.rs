//! Language of a message's new text, as an ISO 639-1 code.
//!
//! Pure. Placeholder; the reading issue replaces it.

/// Detects the language; `None` when the text is too short to tell.
pub fn detect(_text: &str) -> Option<String> {
    None
}
