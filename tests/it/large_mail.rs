//! A message large enough to be kept as a file of its own in the store's
//! folder (`store/raw/`): `cases attachment` writes its attachment out, a backup
//! restored into a new folder still holds it, and an erasure deletes the
//! file.

use crate::common;
use common::conversation::Conversation;
use common::T0;

const JO: &str = "jo@requester.example";

/// The files kept in the store's `raw/` folder.
fn raw_files(conv: &Conversation) -> Vec<String> {
    let dir = conv.dir.path().join("store/raw");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A request with a 300 KB text attachment (printable, so stdout is text).
fn large_request(attachment: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: {JO}\r\nTo: support@pypi.example\r\nSubject: Lost my 2FA device\r\n\
         Message-ID: <jo-large@requester.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nUsername: alice\r\nI lost my phone. My ID is attached.\r\n\
         --b\r\nContent-Type: text/plain; name=\"id.txt\"\r\nContent-Disposition: attachment; filename=\"id.txt\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
}

#[test]
fn a_large_message_kept_as_a_file_is_written_out_backed_up_and_erased() {
    let attachment: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut conv = Conversation::start("");
    conv.write(&large_request(&attachment));
    conv.step(T0);
    let case = conv.case(T0)["id"].as_str().unwrap().to_owned();
    assert_eq!(raw_files(&conv).len(), 1, "the message went to a file");
    assert_eq!(
        conv.run(T0, &["cases", "attachment", &case, "1"]),
        attachment
    );

    // A backup restored into a fresh store still holds the message.
    let backup = conv.dir.path().join("store.backup");
    conv.run(T0, &["backup", backup.to_str().unwrap()]);
    let restored = Conversation::start("");
    restored.run(T0, &["restore", backup.to_str().unwrap()]);
    assert_eq!(
        restored.run(T0, &["cases", "attachment", &case, "1"]),
        attachment
    );

    conv.run(T0, &["cases", "erase", "--address", JO, "--yes"]);
    assert_eq!(raw_files(&conv), Vec::<String>::new(), "the file is gone");
}
