//! Errors, split by whose fault they are (PROTOCOL §7): bad input from the caller, misuse
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

/// What a media type lacks, for [`UnsupportedMediaType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// The type is not encrypted (product catalog images): no keys, no encryption.
    Encryption,
    /// The type has no known upload path.
    Upload,
    /// The type has no newsletter (channel) upload path.
    NewsletterUpload,
    /// The type has no download `mms-type`.
    Download,
    /// The type is encrypted: it goes up unencrypted only as newsletter media.
    Unencrypted,
}

/// A media type asked for something WhatsApp has none of for it (PROTOCOL §1): never a
/// guessed path or key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .what {
    Unsupported::Encryption => format!("{} media is not encrypted: WhatsApp uploads it as is (use an unencrypted upload)", .media_type),
    Unsupported::Upload => format!("{} media has no known upload path", .media_type),
    Unsupported::NewsletterUpload => format!("{} media has no newsletter (channel) upload path", .media_type),
    Unsupported::Download => format!("{} media has no download mms-type", .media_type),
    Unsupported::Unencrypted => format!("{} media is encrypted: it goes up unencrypted only as newsletter media", .media_type),
})]
pub struct UnsupportedMediaType {
    /// The type's name (or `raw(..)`).
    pub media_type: String,
    /// What it lacks.
    pub what: Unsupported,
}

/// A media key that is not 32 bytes of hex or base64. Never contains the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad media key: {reason}")]
pub struct BadMediaKey {
    /// What was wrong.
    pub reason: String,
}

/// A downloaded (or given) body failed verification. Variants follow the order of the
/// checks (PROTOCOL §2.9).
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
    /// The media type is not encrypted (product catalog images): there is nothing to
    /// decrypt; verify it by its SHA-256.
    #[error("integrity: {0}")]
    NotEncrypted(UnsupportedMediaType),
    /// A 64 KiB window of the body does not match the message's streaming sidecar.
    #[error("integrity: window {window} of the body does not match the streaming sidecar")]
    SidecarMismatch {
        /// The window (0 for the first 64 KiB).
        window: u64,
    },
    /// The body grew past the configured maximum.
    #[error("integrity: body exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The configured maximum.
        max: u64,
    },
}

impl From<UnsupportedMediaType> for IntegrityError {
    fn from(e: UnsupportedMediaType) -> Self {
        IntegrityError::NotEncrypted(e)
    }
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
    /// The media type is not encrypted (product catalog images).
    #[error(transparent)]
    NotEncrypted(#[from] UnsupportedMediaType),
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

struct RetryAfter<'a>(&'a Option<std::time::Duration>);

impl fmt::Display for RetryAfter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, ", Retry-After {} s", d.as_secs()),
            None => Ok(()),
        }
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
    /// No host of the media connection takes this media type (or it lists none).
    #[error("no host of the media connection takes {media_type} uploads")]
    NoHosts {
        /// The media type's name.
        media_type: String,
    },
    /// WhatsApp has no upload path for this type (or it cannot go up this way).
    #[error(transparent)]
    Unsupported(#[from] UnsupportedMediaType),
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
    /// A 2xx whose body lacks `url` or `direct_path`, or is not JSON.
    #[error("CDN {host} answered the upload with a malformed answer: {why}")]
    Malformed {
        /// The host.
        host: String,
        /// What was wrong.
        why: String,
    },
    /// HTTP 413: the CDN refuses a body this large.
    #[error("CDN {host} refused the upload as too large (HTTP 413): {body}")]
    TooLarge {
        /// The host.
        host: String,
        /// Start of the body.
        body: String,
    },
    /// HTTP 415: the body the CDN received does not hash to the token.
    #[error("CDN {host} says the body does not match its hash (HTTP 415): {body}")]
    HashMismatch {
        /// The host.
        host: String,
        /// Start of the body.
        body: String,
    },
    /// HTTP 507, a 429 beyond the one wait, or a `Retry-After` longer than the backoff
    /// cap: the CDN is throttling; try again later.
    #[error("CDN {host} is throttling (HTTP {status}{}); try again later", RetryAfter(.retry_after))]
    Throttled {
        /// The host.
        host: String,
        /// 429, 503 or 507.
        status: u16,
        /// The `Retry-After` it gave.
        retry_after: Option<std::time::Duration>,
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
    /// No host of the media connection serves this media type (and no full URL was given).
    #[error("no host of the media connection serves {media_type} downloads")]
    NoHosts {
        /// The media type's name.
        media_type: String,
    },
    /// The driver answered a renewal request with a connection that is already expired.
    #[error("the media connection expired and could not be renewed")]
    ConnExpired,
    /// The CDN rejected the auth token again after a forced renewal.
    #[error("auth rejected by {host} (HTTP {status}) after renewing the media connection")]
    AuthRejected {
        /// The host that said no.
        host: String,
        /// 401.
        status: u16,
    },
    /// The media type cannot be downloaded this way (no `mms-type`, or no key for an
    /// encrypted type).
    #[error(transparent)]
    Unsupported(#[from] UnsupportedMediaType),
    /// Every host said 404/410 (or 403): the media is gone. The sender's phone can upload
    /// it again: ask it with a media retry receipt.
    #[error("media gone from every host; ask the sender's phone to re-upload it (media retry): {}", Failures(.failures))]
    MediaGone {
        /// Each host's answer.
        failures: Vec<HostFailure>,
    },
    /// The URL's signature expired (`oe` in the past, or the CDN said "URL signature
    /// expired"). The sender's phone can upload it again: ask it with a media retry receipt.
    #[error("the media URL expired{}; ask the sender's phone to re-upload it (media retry)", match .expired_at { Some(t) => format!(" at Unix time {t}"), None => String::new() })]
    MediaExpired {
        /// The `oe` expiry (Unix seconds), when the URL carried one.
        expired_at: Option<u64>,
    },
    /// A `direct_path` that would leave the CDN host (`@evil/x`, `//evil/x`, `\\evil`, no
    /// leading `/`, control characters): refused, no request sent.
    #[error("refused a malicious direct_path {path:?}: it would change the host")]
    MaliciousPath {
        /// The path, escaped.
        path: String,
    },
    /// A full URL that is not `https` on a WhatsApp host or one of the media connection's
    /// hosts: refused, no request sent (a message's URL is chosen by its sender).
    #[error("refused the URL {url:?}: {why}")]
    UntrustedUrl {
        /// The URL, without its query.
        url: String,
        /// What was wrong.
        why: &'static str,
    },
    /// A ranged download that cannot be made (no sidecar, key or length; an empty range).
    #[error("bad range: {0}")]
    BadRange(&'static str),
    /// An unencrypted download without the message's `file_sha256`: nothing could verify
    /// it, so it is refused before any request.
    #[error("an unencrypted download needs the message's file_sha256 to verify it")]
    NothingToVerify,
    /// HTTP 507, a 429 beyond the one wait, or a `Retry-After` longer than the cap.
    #[error("CDN {host} is throttling (HTTP {status}{}); try again later", RetryAfter(.retry_after))]
    Throttled {
        /// The host.
        host: String,
        /// 429, 503 or 507.
        status: u16,
        /// The `Retry-After` it gave.
        retry_after: Option<std::time::Duration>,
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
