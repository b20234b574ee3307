//! One error type for a whole transfer, and whose fault it was.

use std::io;

use wamedia::{DeleteError, DownloadError, ErrorKind, Misuse, UploadError};

/// Why a transfer failed. [`kind`](Self::kind) says whose fault it was and
/// [`is_retryable`](Self::is_retryable) whether the same call may work later; match on
/// the variants for the details.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The upload failed for good.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The download failed for good.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The delete failed for good.
    #[error(transparent)]
    Delete(#[from] DeleteError),
    /// Reading the source or writing the destination failed (local I/O).
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The media connection source had none to give (its error, as text).
    #[error("media connection unavailable: {0}")]
    MediaConn(String),
    /// The transfer was cancelled (a [`Cancel`](crate::Cancel) token).
    #[error("cancelled")]
    Cancelled,
    /// The driver broke the machine's contract (a bug in wamedia-driver).
    #[error("driver bug: {0}")]
    Misuse(#[from] Misuse),
}

impl Error {
    /// Whose fault it was ([`ErrorKind`]): the CDN's, the network's, the caller's (bad
    /// input, local I/O), the media's, a cancellation, the media connection's (`Auth`), or
    /// the media expired.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Upload(e) => e.kind(),
            Error::Download(e) => e.kind(),
            Error::Delete(e) => e.kind(),
            Error::MediaConn(_) => ErrorKind::Auth,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Io(_) | Error::Misuse(_) => ErrorKind::Caller,
        }
    }

    /// True when the same call, made again later, may succeed: network failures, a CDN
    /// that was failing or throttling, a media connection the source could not give. False
    /// for verification failures, refusals, expired media, local I/O, misuse and
    /// cancellation.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Upload(e) => e.is_retryable(),
            Error::Download(e) => e.is_retryable(),
            Error::Delete(e) => e.is_retryable(),
            Error::MediaConn(_) => true,
            Error::Io(_) | Error::Cancelled | Error::Misuse(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_the_driver_own_failures() {
        assert_eq!(Error::MediaConn("offline".into()).kind(), ErrorKind::Auth);
        assert!(Error::MediaConn("offline".into()).is_retryable());
        assert_eq!(Error::Cancelled.kind(), ErrorKind::Cancelled);
        assert!(!Error::Cancelled.is_retryable());
        let io = Error::Io(io::Error::other("disk full"));
        assert_eq!(io.kind(), ErrorKind::Caller);
        assert!(!io.is_retryable());
        let gone = Error::Download(DownloadError::MediaGone { failures: vec![] });
        assert_eq!(gone.kind(), ErrorKind::Expired);
        assert!(!gone.is_retryable());
    }
}
