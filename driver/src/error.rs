//! One error type for a whole transfer.

use std::io;

use wamedia::error::{DownloadError, Misuse, UploadError};

/// Why a transfer run by a transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The upload failed for good.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The download failed for good.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// Reading the source or writing the destination failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The media connection provider had none to give.
    #[error("media connection unavailable: {0}")]
    MediaConn(String),
    /// The transfer was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The transport broke the machine's contract (a bug in the transport).
    #[error("transport bug: {0}")]
    Misuse(#[from] Misuse),
}
