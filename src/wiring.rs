//! Builds the network edges (IMAP source, SMTP transport) from settings.

use std::sync::Arc;

use crate::config::Settings;
use crate::error::Result;
use crate::source::imap::ImapSettings;
use crate::source::{CursorReader, Source};
use crate::transport::smtp::SmtpSettings;
use crate::transport::Transport;

/// Opens the IMAP source. `eager` connects now, so `once` fails at once
/// on a wrong password or an unreachable server; otherwise the first fetch
/// connects, so a daemon can start while the server is down and retry.
pub async fn open_imap(
    settings: &Settings,
    imap: &ImapSettings,
    cursor: CursorReader,
    eager: bool,
) -> Result<Box<dyn Source>> {
    if eager {
        Ok(Box::new(
            crate::source::imap::connect(imap, &settings.base_dir, cursor).await?,
        ))
    } else {
        Ok(Box::new(crate::source::imap::prepare(
            imap,
            &settings.base_dir,
            cursor,
        )?))
    }
}

/// Builds the SMTP transport.
pub fn open_smtp(settings: &Settings, smtp: &SmtpSettings) -> Result<Arc<dyn Transport>> {
    Ok(Arc::new(crate::transport::smtp::build(
        smtp,
        &settings.base_dir,
    )?))
}
