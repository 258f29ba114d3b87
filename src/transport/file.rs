//! The file transport: one `.eml` per message in a folder, named after the
//! Message-ID so that a resend after a crash overwrites rather than doubles.

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::transport::{OutgoingMessage, Transport};

/// Writes messages into a folder.
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    /// Creates the folder if needed.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(FileTransport {
            dir: dir.to_path_buf(),
        })
    }

    /// The file a message is written to.
    pub fn path_for(&self, message_id: &str) -> PathBuf {
        let safe: String = message_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.eml"))
    }
}

impl Transport for FileTransport {
    fn send<'a>(&'a self, message: &'a OutgoingMessage) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let path = self.path_for(&message.message_id);
            let tmp = path.with_extension("eml.tmp");
            let mut bytes =
                format!("X-Envelope-To: {}\r\n", message.envelope_to.join(", ")).into_bytes();
            bytes.extend_from_slice(&message.bytes);
            // Write then rename: a reader never sees half a message. A full
            // disk stops every message alike: the outbox keeps them and
            // tries again on the next pass.
            std::fs::write(&tmp, &bytes)
                .map_err(|e| Error::Unavailable(format!("{}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, &path)
                .map_err(|e| Error::Unavailable(format!("{}: {e}", path.display())))?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("file:{}", self.dir.display())
    }
}
