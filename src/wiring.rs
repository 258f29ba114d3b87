//! Builds the network edges (IMAP source, SMTP transport) from settings.

use std::sync::Arc;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::source::{CursorReader, Source};
use crate::transport::Transport;

/// Opens the IMAP source. `eager` connects now, so `once` fails at once
/// on a wrong password or an unreachable server; otherwise the first fetch
/// connects, so a daemon can start while the server is down and retry.
pub async fn open_imap(
    settings: &Settings,
    cursor: CursorReader,
    eager: bool,
) -> Result<Box<dyn Source>> {
    let imap = settings
        .raw
        .source
        .imap
        .as_ref()
        .ok_or_else(|| Error::Config("source.imap: missing".into()))?;
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
pub fn open_smtp(settings: &Settings) -> Result<Arc<dyn Transport>> {
    let smtp = settings
        .raw
        .transport
        .smtp
        .as_ref()
        .ok_or_else(|| Error::Config("transport.smtp: missing".into()))?;
    Ok(Arc::new(crate::transport::smtp::build(
        smtp,
        &settings.base_dir,
    )?))
}
