//! Builds the network edges (IMAP source, SMTP transport) from settings.

use std::sync::Arc;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::source::{CursorReader, Source};
use crate::transport::Transport;

/// Connects the IMAP source.
pub async fn open_imap(_settings: &Settings, _cursor: CursorReader) -> Result<Box<dyn Source>> {
    Err(Error::Config("source.imap: the IMAP source is not available in this build".into()))
}

/// Builds the SMTP transport.
pub fn open_smtp(_settings: &Settings) -> Result<Arc<dyn Transport>> {
    Err(Error::Config("transport.smtp: the SMTP transport is not available in this build".into()))
}
