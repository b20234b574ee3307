//! Errors, split by whose fault they are (PROTOCOL §6): bad input from the caller, misuse
//! of a machine by its driver, integrity failures of media, and the CDN or network.

use std::fmt;

use crate::media_type::MEDIA_TYPE_NAMES;

/// A media type name that is not one of [`MEDIA_TYPE_NAMES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown media type {name:?}; known types: {}", MEDIA_TYPE_NAMES.join(", "))]
pub struct UnknownMediaType {
    /// The name given.
    pub name: String,
}

/// A media key that is not 32 bytes of hex or base64. Never contains the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad media key: {reason}")]
pub struct BadMediaKey {
    /// What was wrong.
    pub reason: String,
}

/// A downloaded (or given) body failed verification. Variants follow PROTOCOL §5's order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// Shorter than one block and the MAC (26 bytes).
    #[error("integrity: body too short ({len} bytes, at least 26 needed)")]
    TooShort {
        /// Bytes received.
        len: u64,
    },
    /// `(len - 10) % 16 != 0`.
    #[error("integrity: body length {len} is not 16*k + 10")]
    BadLength {
        /// Bytes received.
        len: u64,
    },
    /// SHA-256 of the body differs from `file_enc_sha256`.
    #[error("integrity: file_enc_sha256 mismatch")]
    EncHashMismatch,
    /// The 10-byte HMAC does not match: wrong key, wrong media type, or tampering.
    #[error("integrity: MAC mismatch (wrong media key or type, or tampered body)")]
    MacMismatch,
    /// PKCS#7 padding is invalid.
    #[error("integrity: bad PKCS#7 padding")]
    BadPadding,
    /// SHA-256 of the plaintext differs from `file_sha256`.
    #[error("integrity: file_sha256 mismatch")]
    PlainHashMismatch,
    /// Plaintext length differs from `file_length`.
    #[error("integrity: file_length mismatch (expected {expected}, got {actual})")]
    LengthMismatch {
        /// What the message said.
        expected: u64,
        /// What was decrypted.
        actual: u64,
    },
    /// The body grew past the configured maximum.
    #[error("integrity: body exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The configured maximum.
        max: u64,
    },
}

/// Regenerating an upload body went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The offset lies past the end of the body.
    #[error("body offset {offset} is past the body's end ({body_len})")]
    OffsetOutOfRange {
        /// Asked for.
        offset: u64,
        /// The body's length.
        body_len: u64,
    },
    /// The plaintext read now differs in length from the first pass: the file changed.
    #[error("the plaintext changed since it was encrypted (length differs)")]
    PlaintextChanged,
}

/// The driver of a machine broke the contract. These are bugs in the caller, reported
/// instead of panicking; the machine's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// A response or failure for a request id this machine never issued.
    #[error("no request with id {0} was issued by this machine")]
    UnknownRequest(u64),
    /// Input given after the machine reached its outcome.
    #[error("the transfer is already finished")]
    Finished,
    /// Input that the machine is not waiting for (e.g. a body chunk before its head).
    #[error("unexpected input: {0}")]
    Unexpected(&'static str),
}

/// Why one host failed one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostFailureReason {
    /// The transport failed (connect, TLS, reset, timeout...).
    Transport(String),
    /// No answer before the request's deadline.
    Timeout,
    /// An HTTP status the machine could not use, with at most 4 KiB of the body.
    Status {
        /// HTTP status.
        status: u16,
        /// The first bytes of the body, lossily decoded.
        body: String,
    },
    /// A 200 whose body was not what the protocol promises.
    Malformed(String),
}

impl fmt::Display for HostFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostFailureReason::Transport(e) => write!(f, "transport error: {e}"),
            HostFailureReason::Timeout => f.write_str("timed out"),
            HostFailureReason::Status { status, body } if body.is_empty() => {
                write!(f, "HTTP {status}")
            }
            HostFailureReason::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            HostFailureReason::Malformed(why) => write!(f, "malformed answer: {why}"),
        }
    }
}

/// One host's failure on one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFailure {
    /// The host as given in the media connection (or the URL's host).
    pub host: String,
    /// What went wrong.
    pub reason: HostFailureReason,
}

impl fmt::Display for HostFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.host, self.reason)
    }
}

struct Failures<'a>(&'a [HostFailure]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{h}")?;
        }
        Ok(())
    }
}

/// How an upload failed for good.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The media connection has no hosts.
    #[error("the media connection has no hosts")]
    NoHosts,
    /// The driver answered a renewal request with a connection that is already expired.
    #[error("the media connection expired and could not be renewed")]
    ConnExpired,
    /// The CDN rejected the auth token again after a forced renewal.
    #[error("auth rejected by {host} (HTTP {status}) after renewing the media connection")]
    AuthRejected {
        /// The host that said no.
        host: String,
        /// 401 or 403.
        status: u16,
    },
    /// A final (non-retryable) CDN status, with at most 4 KiB of the body.
    #[error("CDN {host} answered HTTP {status}: {body}")]
    Status {
        /// The host.
        host: String,
        /// The HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Every host failed until the attempt limit or the deadline; each failure is listed.
    #[error("every host failed ({why}): {}", Failures(.failures))]
    AllHostsFailed {
        /// "attempt limit reached" or "deadline passed".
        why: &'static str,
        /// Each host's failures, in order.
        failures: Vec<HostFailure>,
    },
}

/// How a download failed for good.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The media connection has no hosts (and no full URL was given).
    #[error("the media connection has no hosts")]
    NoHosts,
    /// The driver answered a renewal request with a connection that is already expired.
    #[error("the media connection expired and could not be renewed")]
    ConnExpired,
    /// Every host said 403/404/410: the media is gone; ask the sender to re-upload it.
    #[error("media gone from every host; ask the sender to re-upload it: {}", Failures(.failures))]
    MediaGone {
        /// Each host's answer.
        failures: Vec<HostFailure>,
    },
    /// A final (non-retryable) CDN status.
    #[error("CDN {host} answered HTTP {status}: {body}")]
    Status {
        /// The host.
        host: String,
        /// The HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Every host failed until the attempt limit or the deadline.
    #[error("every host failed ({why}): {}", Failures(.failures))]
    AllHostsFailed {
        /// "attempt limit reached" or "deadline passed".
        why: &'static str,
        /// Each host's failures, in order.
        failures: Vec<HostFailure>,
    },
    /// The media arrived but failed verification.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
}

impl DownloadError {
    /// True for integrity failures (exit code 4 in the CLI).
    pub fn is_integrity(&self) -> bool {
        matches!(self, DownloadError::Integrity(_))
    }
}
