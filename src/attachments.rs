//! The attachments of a kept raw message: what staff see listed (name,
//! type, size) and the bytes `cases attachment` writes out. The raw
//! message as stored (`at_rest`) leaves attachments untouched, so reading
//! them from it gives what the requester sent.
//!
//! Pure: bytes in, values out; broken mail lists what can be read.

use mail_parser::{MessageParser, MimeHeaders};

/// One attachment as listed for staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The file name the sender gave, or `attachment-N` without one.
    pub name: String,
    /// `type/subtype`, `application/octet-stream` when the mail names none.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
}

/// The attachments of `raw`, in the order the message holds them (the
/// worker lists them from reading's parse: [`list_parsed`]).
#[cfg(test)]
pub fn list(raw: &[u8]) -> Vec<Listed> {
    match MessageParser::default().parse(raw) {
        Some(message) => list_parsed(&message),
        None => Vec::new(),
    }
}

/// [`list`] of a message already parsed (reading parses it once for the
/// copy kept at rest and this listing: a second parse of a 10 MB message
/// held another decoded copy of it).
pub fn list_parsed(message: &mail_parser::Message<'_>) -> Vec<Listed> {
    message
        .attachments()
        .enumerate()
        .map(|(i, part)| Listed {
            name: part
                .attachment_name()
                .map(one_line)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("attachment-{}", i + 1)),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                    None => ct.ctype().to_owned(),
                })
                .map(|t| one_line(&t).to_ascii_lowercase())
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: part.contents().len() as u64,
        })
        .collect()
}

/// The decoded bytes of the attachment at `index` (0-based, as [`list`]).
pub fn content(raw: &[u8], index: usize) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let part = message.attachments().nth(index)?;
    Some(part.contents().to_vec())
}

/// A size people read: bytes, KB or MB.
pub fn human_size(size: u64) -> String {
    match size {
        s if s < 1024 => format!("{s} bytes"),
        s if s < 1024 * 1024 => format!("{:.1} KB", s as f64 / 1024.0),
        s => format!("{:.1} MB", s as f64 / (1024.0 * 1024.0)),
    }
}

/// Names come from the sender: no line breaks or control characters in a
/// listing line, and at most 200 characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "From: jo@example.org\r\nTo: support@example.org\r\nSubject: proof\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHere is my ID.\r\n--b\r\nContent-Type: image/png; name=\"id.png\"\r\nContent-Disposition: attachment; filename=\"id\r\n .png\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";

    #[test]
    fn attachments_are_listed_with_name_type_and_size_and_read_back() {
        let listed = list(MAIL.as_bytes());
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0].content_type, "image/png");
        assert_eq!(listed[0].size, 11);
        assert!(!listed[0].name.contains('\n') && listed[0].name.contains("png"));
        assert_eq!(listed[1].name, "attachment-2");
        assert_eq!(listed[1].content_type, "application/pdf");
        assert_eq!(content(MAIL.as_bytes(), 0).unwrap(), b"hello world");
        assert_eq!(content(MAIL.as_bytes(), 1).unwrap(), b"%PDF-");
        assert!(content(MAIL.as_bytes(), 2).is_none());
        assert!(list(b"").is_empty() && list(b"garbage\r\n\r\nbody").is_empty());
        assert_eq!(human_size(11), "11 bytes");
        assert_eq!(human_size(2048), "2.0 KB");
    }
}
