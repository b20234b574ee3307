//! One error type for a whole transfer, and whose fault it was.

use std::io;

use wamedia::{DownloadError, Misuse, UploadError};

/// Whose fault a failed transfer was, and so what a caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The CDN refused or broke the exchange for good (a final 4xx, a malformed answer):
    /// retrying the same thing is unlikely to help.
    Cdn,
    /// The network failed (connections refused or cut, timeouts): a later retry may work.
    Network,
    /// The media connection was refused, or none could be had: renew it, then retry.
    Auth,
    /// The media is gone or its URL expired: ask the sender to re-upload (media retry).
    Expired,
    /// The media failed verification (MAC, hash, length): it is not what the message
    /// names. Never retried; never published.
    Media,
    /// The caller asked for something that cannot be done (a bad option, an unsupported
    /// type for the operation, a range without a sidecar), or a local file failed.
    Caller,
    /// The transfer was cancelled (a [`Cancel`](crate::Cancel) token).
    Cancelled,
}

/// Why a transfer failed.
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
    /// The media connection source had none to give.
    #[error("media connection unavailable: {0}")]
    MediaConn(String),
    /// The transfer was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The driver broke the machine's contract (a bug in wamedia-driver).
    #[error("driver bug: {0}")]
    Misuse(#[from] Misuse),
}

impl From<wamedia::driver::Error> for Error {
    fn from(e: wamedia::driver::Error) -> Self {
        use wamedia::driver::Error as C;
        match e {
            C::Upload(u) => Error::Upload(u),
            C::Download(d) => Error::Download(d),
            C::Io(io) => Error::Io(io),
            C::MediaConn(m) => Error::MediaConn(m),
            C::Cancelled => Error::Cancelled,
            C::Misuse(m) => Error::Misuse(m),
            other => Error::Io(io::Error::other(other.to_string())),
        }
    }
}

impl Error {
    /// Whose fault it was: see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Upload(e) => upload_kind(e),
            Error::Download(e) => download_kind(e),
            Error::Io(_) | Error::Misuse(_) => ErrorKind::Caller,
            Error::MediaConn(_) => ErrorKind::Auth,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }

    /// True when running the same transfer again later may succeed (network failures,
    /// a CDN that was down, a media connection that could not be had); false for
    /// failures that will repeat (verification, refusals, misuse, cancellation).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Network | ErrorKind::Auth)
            || matches!(self, Error::Upload(e) if upload_retryable(e))
            || matches!(self, Error::Download(e) if download_retryable(e))
    }
}

fn upload_kind(e: &UploadError) -> ErrorKind {
    use UploadError as U;
    match e {
        U::AuthRejected { .. } | U::ConnExpired => ErrorKind::Auth,
        U::HashMismatch { .. } | U::Malformed { .. } | U::Status { .. } | U::TooLarge { .. } => {
            ErrorKind::Cdn
        }
        U::Throttled { .. } | U::AllHostsFailed { .. } => ErrorKind::Network,
        _ => ErrorKind::Caller,
    }
}

fn upload_retryable(e: &UploadError) -> bool {
    matches!(
        e,
        UploadError::AllHostsFailed { .. } | UploadError::Throttled { .. }
    )
}

fn download_kind(e: &DownloadError) -> ErrorKind {
    use DownloadError as D;
    match e {
        D::Integrity(_) => ErrorKind::Media,
        D::MediaExpired { .. } | D::MediaGone { .. } => ErrorKind::Expired,
        D::AuthRejected { .. } | D::ConnExpired => ErrorKind::Auth,
        D::Status { .. } => ErrorKind::Cdn,
        D::Throttled { .. } | D::AllHostsFailed { .. } => ErrorKind::Network,
        _ => ErrorKind::Caller,
    }
}

fn download_retryable(e: &DownloadError) -> bool {
    matches!(
        e,
        DownloadError::AllHostsFailed { .. } | DownloadError::Throttled { .. }
    )
}
