//! Builds the network edges (IMAP source, SMTP transport) from settings.

use std::sync::Arc;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::source::{CursorReader, Source};
use crate::transport::Transport;

/// Connects the IMAP source (fails at once on a wrong password or mailbox).
pub async fn open_imap(settings: &Settings, cursor: CursorReader) -> Result<Box<dyn Source>> {
    let imap = settings.raw.source.imap.as_ref().ok_or_else(|| Error::Config("source.imap: missing".into()))?;
    Ok(Box::new(crate::source::imap::connect(imap, &settings.base_dir, cursor).await?))
}

/// Builds the SMTP transport.
pub fn open_smtp(settings: &Settings) -> Result<Arc<dyn Transport>> {
    let smtp = settings.raw.transport.smtp.as_ref().ok_or_else(|| Error::Config("transport.smtp: missing".into()))?;
    Ok(Arc::new(crate::transport::smtp::build(smtp, &settings.base_dir)?))
}
