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

/// Whose fault a failure is, and so what the caller can do about it: the `kind()` of
/// [`UploadError`], [`DownloadError`] and [`DeleteError`]. Their `is_retryable()` says,
/// within a kind, whether the same call made again later, unchanged, may succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The CDN refused the request or broke: a final HTTP status, its hash-mismatch answer
    /// (415), a malformed answer, throttling, or hosts that answered with errors until
    /// the attempts or the deadline ran out. A retry later can help when the CDN was
    /// throttling or failing (5xx, 408, 429, a broken answer); not after a refusal.
    Cdn,
    /// No host could be reached or kept (connect, TLS, reset, timeouts) until the attempts
    /// or the deadline ran out. A retry later, once the network is back, can help.
    Network,
    /// The call could not be made as asked: a media type without a path or `mms-type` for
    /// this operation, a range that cannot be served, an unencrypted download without the
    /// `file_sha256` to verify it, a `direct_path` or URL refused before any request, a
    /// media connection without a host for the type. Retrying unchanged never helps: change
    /// the input.
    Caller,
    /// The media itself is bad: it failed verification (hashes, MAC, padding, length,
    /// sidecar), or it is larger than the CDN or the options allow. Retrying unchanged
    /// does not help: the bytes (or the message's values) are wrong; ask the sender for the
    /// media again, or send smaller media.
    Media,
    /// The media connection was refused: the auth token rejected again right after a
    /// forced renewal, or a renewal that gave an already expired connection. Have the
    /// WhatsApp session renew its media connection (reconnect it if need be), then retry:
    /// a later call asks the provider again. It stays failing while the session itself is
    /// refused (logged out).
    Auth,
    /// The media expired or is gone from the CDN (an expired URL signature, 404/410 on
    /// every host). Ask the sender's phone to upload it again (a media retry receipt, see
    /// [`retry`](crate::retry)) and download from the new `direct_path`; retrying the same
    /// download never helps.
    Expired,
    /// The caller cancelled the transfer (a driver's cancellation token). Never made by the
    /// machines themselves; a driver reports it.
    Cancelled,
}

/// The kind of "every host failed": the network, unless some host answered.
fn failures_kind(failures: &[HostFailure]) -> ErrorKind {
    let network = failures.iter().all(|f| {
        matches!(
            f.reason,
            HostFailureReason::Transport(_) | HostFailureReason::Timeout
        )
    });
    if network {
        ErrorKind::Network
    } else {
        ErrorKind::Cdn
    }
}

/// Whether a final HTTP status may be answered otherwise later: a timeout, throttling or
/// a server error.
fn status_retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
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

impl UploadError {
    /// Whose fault it is ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UploadError::NoHosts { .. } | UploadError::Unsupported(_) => ErrorKind::Caller,
            UploadError::ConnExpired | UploadError::AuthRejected { .. } => ErrorKind::Auth,
            UploadError::TooLarge { .. } => ErrorKind::Media,
            UploadError::Malformed { .. }
            | UploadError::HashMismatch { .. }
            | UploadError::Throttled { .. }
            | UploadError::Status { .. } => ErrorKind::Cdn,
            UploadError::AllHostsFailed { failures, .. } => failures_kind(failures),
        }
    }

    /// Whether the same upload, started again later, may succeed: after throttling,
    /// server errors, a broken answer, hosts that failed or could not be reached, or a
    /// refused media connection (once the session renewed it). A re-run with the same
    /// media key resumes what the CDN already holds (PROTOCOL §4).
    pub fn is_retryable(&self) -> bool {
        match self {
            UploadError::Throttled { .. }
            | UploadError::Malformed { .. }
            | UploadError::AllHostsFailed { .. }
            | UploadError::ConnExpired
            | UploadError::AuthRejected { .. } => true,
            UploadError::Status { status, .. } => status_retryable(*status),
            UploadError::NoHosts { .. }
            | UploadError::Unsupported(_)
            | UploadError::TooLarge { .. }
            | UploadError::HashMismatch { .. } => false,
        }
    }
}

impl DownloadError {
    /// True for integrity failures (exit code 4 in the CLI).
    pub fn is_integrity(&self) -> bool {
        matches!(self, DownloadError::Integrity(_))
    }

    /// Whose fault it is ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DownloadError::NoHosts { .. }
            | DownloadError::Unsupported(_)
            | DownloadError::MaliciousPath { .. }
            | DownloadError::UntrustedUrl { .. }
            | DownloadError::BadRange(_)
            | DownloadError::NothingToVerify => ErrorKind::Caller,
            DownloadError::ConnExpired | DownloadError::AuthRejected { .. } => ErrorKind::Auth,
            DownloadError::MediaGone { .. } | DownloadError::MediaExpired { .. } => {
                ErrorKind::Expired
            }
            DownloadError::Throttled { .. } | DownloadError::Status { .. } => ErrorKind::Cdn,
            DownloadError::AllHostsFailed { failures, .. } => failures_kind(failures),
            DownloadError::Integrity(_) => ErrorKind::Media,
        }
    }

    /// Whether the same download, started again later, may succeed: after throttling,
    /// server errors, hosts that failed or could not be reached (a partial file kept by
    /// the driver is then resumed), or a refused media connection (once the session
    /// renewed it).
    pub fn is_retryable(&self) -> bool {
        match self {
            DownloadError::Throttled { .. }
            | DownloadError::AllHostsFailed { .. }
            | DownloadError::ConnExpired
            | DownloadError::AuthRejected { .. } => true,
            DownloadError::Status { status, .. } => status_retryable(*status),
            DownloadError::NoHosts { .. }
            | DownloadError::Unsupported(_)
            | DownloadError::MediaGone { .. }
            | DownloadError::MediaExpired { .. }
            | DownloadError::MaliciousPath { .. }
            | DownloadError::UntrustedUrl { .. }
            | DownloadError::BadRange(_)
            | DownloadError::NothingToVerify
            | DownloadError::Integrity(_) => false,
        }
    }
}

/// How a delete of a history-sync blob failed for good (PROTOCOL §6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    /// No host of the media connection takes history-sync blobs (deletes go where their
    /// uploads go).
    #[error("no host of the media connection takes {media_type} uploads, so none deletes them")]
    NoHosts {
        /// The media type's name (`history`).
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
        /// 401 or 403.
        status: u16,
    },
    /// A final (non-retryable) CDN status, with at most 4 KiB of the body (404: the blob
    /// is not there, or no longer).
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

impl DeleteError {
    /// Whose fault it is ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeleteError::NoHosts { .. } => ErrorKind::Caller,
            DeleteError::ConnExpired | DeleteError::AuthRejected { .. } => ErrorKind::Auth,
            DeleteError::Status { .. } => ErrorKind::Cdn,
            DeleteError::AllHostsFailed { failures, .. } => failures_kind(failures),
        }
    }

    /// Whether the same delete, made again later, may succeed: after throttling, server
    /// errors, hosts that failed or could not be reached, or a refused media connection
    /// (once the session renewed it).
    pub fn is_retryable(&self) -> bool {
        match self {
            DeleteError::AllHostsFailed { .. }
            | DeleteError::ConnExpired
            | DeleteError::AuthRejected { .. } => true,
            DeleteError::Status { status, .. } => status_retryable(*status),
            DeleteError::NoHosts { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(reason: HostFailureReason) -> HostFailure {
        HostFailure {
            host: "mmg.whatsapp.net".into(),
            reason,
        }
    }

    fn status(status: u16) -> HostFailureReason {
        HostFailureReason::Status {
            status,
            body: String::new(),
        }
    }

    fn unsupported() -> UnsupportedMediaType {
        UnsupportedMediaType {
            media_type: "payment-background".into(),
            what: Unsupported::Upload,
        }
    }

    #[test]
    fn every_host_failing_is_the_network_unless_one_answered() {
        let network = vec![
            failure(HostFailureReason::Timeout),
            failure(HostFailureReason::Transport("reset".into())),
        ];
        let mut answered = network.clone();
        answered.push(failure(status(502)));
        for (failures, kind) in [
            (network, ErrorKind::Network),
            (answered, ErrorKind::Cdn),
            (vec![], ErrorKind::Network),
        ] {
            let why = "deadline passed";
            let u = UploadError::AllHostsFailed {
                why,
                failures: failures.clone(),
            };
            let d = DownloadError::AllHostsFailed {
                why,
                failures: failures.clone(),
            };
            let x = DeleteError::AllHostsFailed { why, failures };
            assert_eq!((u.kind(), d.kind(), x.kind()), (kind, kind, kind));
            assert!(u.is_retryable() && d.is_retryable() && x.is_retryable());
        }
    }

    #[test]
    fn upload_errors_say_whose_fault_and_whether_later_helps() {
        let host = || "mmg.whatsapp.net".to_string();
        let cases = [
            (
                UploadError::NoHosts {
                    media_type: "image".into(),
                },
                ErrorKind::Caller,
                false,
            ),
            (
                UploadError::Unsupported(unsupported()),
                ErrorKind::Caller,
                false,
            ),
            (UploadError::ConnExpired, ErrorKind::Auth, true),
            (
                UploadError::AuthRejected {
                    host: host(),
                    status: 401,
                },
                ErrorKind::Auth,
                true,
            ),
            (
                UploadError::Malformed {
                    host: host(),
                    why: "no url".into(),
                },
                ErrorKind::Cdn,
                true,
            ),
            (
                UploadError::TooLarge {
                    host: host(),
                    body: String::new(),
                },
                ErrorKind::Media,
                false,
            ),
            (
                UploadError::HashMismatch {
                    host: host(),
                    body: String::new(),
                },
                ErrorKind::Cdn,
                false,
            ),
            (
                UploadError::Throttled {
                    host: host(),
                    status: 507,
                    retry_after: None,
                },
                ErrorKind::Cdn,
                true,
            ),
            (
                UploadError::Status {
                    host: host(),
                    status: 404,
                    body: String::new(),
                },
                ErrorKind::Cdn,
                false,
            ),
            (
                UploadError::Status {
                    host: host(),
                    status: 503,
                    body: String::new(),
                },
                ErrorKind::Cdn,
                true,
            ),
        ];
        for (e, kind, retry) in cases {
            assert_eq!((e.kind(), e.is_retryable()), (kind, retry), "{e:?}");
        }
    }

    #[test]
    fn download_errors_say_whose_fault_and_whether_later_helps() {
        let host = || "mmg.whatsapp.net".to_string();
        let cases = [
            (
                DownloadError::NoHosts {
                    media_type: "image".into(),
                },
                ErrorKind::Caller,
                false,
            ),
            (DownloadError::ConnExpired, ErrorKind::Auth, true),
            (
                DownloadError::AuthRejected {
                    host: host(),
                    status: 401,
                },
                ErrorKind::Auth,
                true,
            ),
            (
                DownloadError::Unsupported(unsupported()),
                ErrorKind::Caller,
                false,
            ),
            (
                DownloadError::MediaGone {
                    failures: vec![failure(status(404))],
                },
                ErrorKind::Expired,
                false,
            ),
            (
                DownloadError::MediaExpired {
                    expired_at: Some(1),
                },
                ErrorKind::Expired,
                false,
            ),
            (
                DownloadError::MaliciousPath { path: "@x".into() },
                ErrorKind::Caller,
                false,
            ),
            (
                DownloadError::UntrustedUrl {
                    url: "http://x".into(),
                    why: "not https",
                },
                ErrorKind::Caller,
                false,
            ),
            (DownloadError::BadRange("empty"), ErrorKind::Caller, false),
            (DownloadError::NothingToVerify, ErrorKind::Caller, false),
            (
                DownloadError::Throttled {
                    host: host(),
                    status: 429,
                    retry_after: None,
                },
                ErrorKind::Cdn,
                true,
            ),
            (
                DownloadError::Status {
                    host: host(),
                    status: 400,
                    body: String::new(),
                },
                ErrorKind::Cdn,
                false,
            ),
            (
                DownloadError::Integrity(IntegrityError::MacMismatch),
                ErrorKind::Media,
                false,
            ),
            (
                DownloadError::Integrity(IntegrityError::TooLarge { max: 1 }),
                ErrorKind::Media,
                false,
            ),
        ];
        for (e, kind, retry) in cases {
            assert_eq!((e.kind(), e.is_retryable()), (kind, retry), "{e:?}");
        }
    }

    #[test]
    fn delete_errors_say_whose_fault_and_whether_later_helps() {
        let cases = [
            (
                DeleteError::NoHosts {
                    media_type: "history".into(),
                },
                ErrorKind::Caller,
                false,
            ),
            (DeleteError::ConnExpired, ErrorKind::Auth, true),
            (
                DeleteError::AuthRejected {
                    host: "h".into(),
                    status: 403,
                },
                ErrorKind::Auth,
                true,
            ),
            (
                DeleteError::Status {
                    host: "h".into(),
                    status: 404,
                    body: String::new(),
                },
                ErrorKind::Cdn,
                false,
            ),
            (
                DeleteError::Status {
                    host: "h".into(),
                    status: 507,
                    body: String::new(),
                },
                ErrorKind::Cdn,
                true,
            ),
        ];
        for (e, kind, retry) in cases {
            assert_eq!((e.kind(), e.is_retryable()), (kind, retry), "{e:?}");
        }
    }
}

/// The operating system gave no randomness (a media key or `media_id` could not be drawn;
/// rare: very early boot, a seccomp filter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system gave no randomness: {0}")]
pub struct NoRandomness(String);

impl NoRandomness {
    pub(crate) fn from_os(e: getrandom::Error) -> Self {
        NoRandomness(e.to_string())
    }
}

/// Text that is not base64 (standard or URL-safe, padded or not).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not base64: {0}")]
pub struct NotBase64(String);

impl NotBase64 {
    pub(crate) fn from_decode(e: base64::DecodeError) -> Self {
        NotBase64(e.to_string())
    }
}
