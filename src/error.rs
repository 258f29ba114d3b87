//! The crate's error type: variants say what the caller does next.

use std::path::PathBuf;

/// What went wrong, grouped by how the caller reacts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A network or server hiccup: retry with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// The server cannot be reached or refuses everything right now
    /// (connection refused, TLS or login failure, 421): nothing is wrong
    /// with the item in hand, so it is neither backed off nor counted as
    /// an attempt, and the rest of the queue waits for the next try.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// This item can never succeed: record it, set it aside, go on.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The configuration is wrong: fail at start-up, exit code 2.
    #[error("config: {0}")]
    Config(String),
    /// The store failed (disk full, corruption): stop taking new work.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A template failed to compile or render.
    #[error("template: {0}")]
    Template(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient(_) | Error::Unavailable(_))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
