//! The download machine (PROTOCOL §5): URL checks, host choice, retries, `Range`
//! resumption and streaming verification (decryption, or the SHA-256 of unencrypted
//! media), after WhatsApp Web's `WAWebMmsClientFormatDownloadUrl` and
//! `WAWebMmsClientMmsDownload`.
//!
//! Before any request: a `direct_path` that would change the host is refused
//! ([`DownloadError::MaliciousPath`]), a full URL that is not `https` on a WhatsApp host or
//! a media connection host is refused ([`DownloadError::UntrustedUrl`]). A URL whose `oe`
//! expiry has passed by the local clock is still fetched (a clock running ahead must not
//! kill live media, PROTOCOL v3 §5): its 403 is then [`DownloadError::MediaExpired`];
//! [`DownloadOptions::refuse_expired_locally`] refuses it without a request instead.
//!
//! | answer | next |
//! |---|---|
//! | 200, or 206 starting where asked | stream, verify |
//! | 401 | forced media connection renewal, once; then [`DownloadError::AuthRejected`] |
//! | 403 "URL signature expired" (or `oe` passed) | [`DownloadError::MediaExpired`] |
//! | 403 / 404 / 410 | next host; all of them → [`DownloadError::MediaGone`] |
//! | 429 with `Retry-After` ≤ the cap | wait once on the same host; else [`DownloadError::Throttled`] |
//! | 507 | [`DownloadError::Throttled`] |
//! | 5xx, transport failure, deadline | next host (a `Retry-After` honoured); after the last, back off, next round |
//! | body cut short | same host, `Range: bytes={last whole block}-` |
//! | other status | final |

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, RANGE};

use crate::b64;
use crate::conn::{form_encode, host_base, MediaConn};
use crate::decrypt::{Decryptor, Expected, PlainVerifier, Verified};
use crate::encrypt::{body_len, Encryptor};
use crate::error::{DownloadError, HostFailureReason, IntegrityError, Misuse};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::range::{RangePlan, RangeVerifier};
use crate::sidecar::{self, SidecarHasher};
use crate::transfer::{
    base_headers, push_capped, BodySpec, Exchange, HostCursor, Input, Next, Output, Request,
    RequestId, RetryPolicy, ERROR_BODY_CAP,
};

/// Where the media lives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A `direct_path` from a message, tried on each host of the media connection.
    DirectPath(String),
    /// A full URL from a message: used only when `https` on a `whatsapp.net` host or one
    /// of the media connection's hosts (or when [`DownloadOptions::trust_url`] says so).
    Url(String),
}

/// What is being downloaded. `Debug` redacts the key (see [`MediaKey`]).
#[derive(Clone, Debug)]
pub struct DownloadSpec {
    /// The media type (key expansion and `mms-type`).
    pub media_type: MediaType,
    /// The media key from the message; `None` for unencrypted media (newsletter media,
    /// product images), which is then verified by `expected.file_sha256`.
    pub media_key: Option<MediaKey>,
    /// Where it lives.
    pub source: Source,
    /// What the message says about it, each checked when given.
    pub expected: Expected,
    /// The message's `streamingSidecar`: each 64 KiB window is verified as it arrives
    /// and released as [`Output::Verified`] (PROTOCOL §2.7).
    pub streaming_sidecar: Option<Vec<u8>>,
}

impl DownloadSpec {
    /// A name for this exact download (type, key, source and expected values), for
    /// telling a resumable partial file of it from a stale one: SHA-256 over them, hex.
    /// It reveals nothing about the key.
    pub fn resume_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"wamedia resume id v1\0");
        h.update(self.media_type.to_string().as_bytes());
        h.update([0]);
        if let Some(k) = &self.media_key {
            h.update(k.as_bytes());
        }
        h.update([0]);
        match &self.source {
            Source::DirectPath(p) | Source::Url(p) => h.update(p.as_bytes()),
        }
        h.update([0]);
        for v in [&self.expected.file_enc_sha256, &self.expected.file_sha256] {
            h.update(v.map_or([0; 32], |v| v));
        }
        h.update(self.expected.file_length.unwrap_or(u64::MAX).to_be_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How a download behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Hosts, rounds, attempts, deadlines, backoff.
    pub retry: RetryPolicy,
    /// Refuse bodies larger than this, whatever the message says; with a `file_length`
    /// the bound is that length's exact body size when smaller. Default 2 GiB,
    /// WhatsApp's own limit.
    pub max_body_len: u64,
    /// Use a full [`Source::Url`] whatever its host (the caller vouches for the message).
    pub trust_url: bool,
    /// Refuse a source whose `oe` expiry has passed by the local wall clock before any
    /// request ([`DownloadError::MediaExpired`]). Off by default: WhatsApp Web reads `oe`
    /// only after a 403, and a clock running ahead must not kill live media (PROTOCOL v3
    /// §5).
    pub refuse_expired_locally: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            retry: RetryPolicy::default(),
            max_body_len: 2 << 30,
            trust_url: false,
            refuse_expired_locally: false,
        }
    }
}

/// A verified download.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadResult {
    /// What verification established. For a ranged download
    /// ([`Download::with_plaintext_range`]) the sidecar verified the windows fetched; the
    /// whole-body values here are then the message's own, not recomputed.
    pub verified: Verified,
    /// The plaintext range released, for a ranged download.
    pub range: Option<std::ops::Range<u64>>,
    /// The host that served it.
    pub host: String,
}

#[derive(Debug)]
struct InFlight {
    ex: Exchange,
    /// Body offset asked for with `Range` (0: none).
    asked_from: u64,
    /// Body bytes of this answer still to drop (a 200 to a ranged request).
    skip: u64,
    /// The end of the body as the answer declared it.
    declared_end: Option<u64>,
    error_body: Vec<u8>,
}

#[derive(Debug)]
enum State {
    Ready,
    NeedConn { force: bool },
    InFlight(InFlight),
    Backoff { until: Instant },
    Done,
}

/// With a streaming sidecar: the windows' checker, and the plaintext waiting for its
/// window to be checked.
struct Windows {
    expected: Vec<u8>,
    hasher: SidecarHasher,
    checked: u64,
    pending: Vec<u8>,
    /// Plaintext offset of `pending[0]`.
    pending_at: u64,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("checked", &self.checked)
            .field("pending_bytes", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Windows {
    /// Feeds body bytes (`D` after the iv); `Err(window)` when a completed window fails.
    fn feed(&mut self, body: &[u8]) -> Result<(), u64> {
        self.hasher.update(body);
        let done = self.hasher.completed();
        while let Some(mac) = usize::try_from(self.checked.saturating_mul(sidecar::ENTRY as u64))
            .ok()
            .and_then(|at| done.get(at..at.saturating_add(sidecar::ENTRY)))
        {
            if !sidecar::entry_matches(&self.expected, self.checked, mac) {
                return Err(self.checked);
            }
            self.checked = self.checked.saturating_add(1);
        }
        Ok(())
    }

    /// Moves the plaintext its checked windows cover into `out`.
    fn release(&mut self, out: &mut Vec<u8>) {
        let end = self.checked.saturating_mul(sidecar::WINDOW);
        let n = usize::try_from(end.saturating_sub(self.pending_at))
            .unwrap_or(usize::MAX)
            .min(self.pending.len());
        out.extend(self.pending.drain(..n));
        self.pending_at = self.pending_at.saturating_add(n as u64);
    }

    /// The body is complete: the remaining windows must match too, and the sidecar must
    /// have exactly as many windows as the body. Returns the plaintext still waiting.
    fn finish(self) -> Result<Vec<u8>, u64> {
        let checked = self.checked;
        let all = self.hasher.finish();
        let n = (all.len() / sidecar::ENTRY) as u64;
        for w in checked..n {
            let at = usize::try_from(w)
                .unwrap_or(usize::MAX)
                .saturating_mul(sidecar::ENTRY);
            if !sidecar::entry_matches(
                &self.expected,
                w,
                &all[at..at.saturating_add(sidecar::ENTRY)],
            ) {
                return Err(w);
            }
        }
        if self.expected.len() != all.len() {
            return Err(n);
        }
        Ok(self.pending)
    }
}

/// Decrypts and verifies, or (unencrypted media) hashes the body as it is.
#[derive(Debug)]
enum Verifier {
    Encrypted(Box<Decryptor>),
    Plain(PlainVerifier),
}

impl Verifier {
    /// Body bytes are fed in multiples of this, so that a cut leaves a resumable offset.
    fn align(&self) -> usize {
        match self {
            Verifier::Encrypted(_) => 16,
            Verifier::Plain(_) => 1,
        }
    }

    fn update(&mut self, body: &[u8], out: &mut Vec<u8>) {
        match self {
            Verifier::Encrypted(d) => d.update_unverified(body, out),
            Verifier::Plain(p) => {
                p.update(body);
                out.extend_from_slice(body);
            }
        }
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<Verified, IntegrityError> {
        match self {
            Verifier::Encrypted(d) => (*d).finish(out),
            Verifier::Plain(p) => p.finish(),
        }
    }
}

/// One download. Drive it like an [`Upload`](crate::Upload); it also yields
/// [`Output::Plaintext`], which stays unverified until `Done(Ok(_))`.
pub struct Download {
    spec: DownloadSpec,
    opts: DownloadOptions,
    started: Instant,
    /// Wall-clock time at `started`, for `oe` expiries.
    wall: SystemTime,
    conn: Option<MediaConn>,
    state: State,
    cursor: HostCursor,
    next_id: u64,
    verifier: Option<Verifier>,
    /// Body bytes handed to the verifier: always whole blocks when encrypted.
    fed: u64,
    /// Bytes of a partial block, waiting for the rest.
    carry: Vec<u8>,
    plain: Vec<u8>,
    plain_shown: bool,
    progress: Option<u64>,
    /// The body's length when the message (or, failing that, the first answer) says it.
    total: Option<u64>,
    /// The most body bytes accepted.
    limit: u64,
    auth_renewed: bool,
    throttle_waited: bool,
    /// Re-encrypts a resumed plaintext prefix into the body prefix it came from.
    prefix: Option<Encryptor>,
    /// With a streaming sidecar: plaintext is released window by window, verified.
    windows: Option<Windows>,
    /// Whether released plaintext is [`Output::Verified`] (a sidecar was given).
    verified_output: bool,
    /// Ranged playback: the plan and its window checker.
    range: Option<(RangePlan, RangeVerifier)>,
    /// Plaintext of the prefix already released to (and kept by) the driver.
    prefix_kept: u64,
    outcome: Option<Result<DownloadResult, DownloadError>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Pending plaintext is unverified and the spec holds the key: neither is shown.
        f.debug_struct("Download")
            .field("media_type", &self.spec.media_type)
            .field("state", &self.state)
            .field("fed", &self.fed)
            .field("total", &self.total)
            .field("pending_plaintext_bytes", &self.plain.len())
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

type Out<'a> = Output<'a, Result<DownloadResult, DownloadError>>;

impl Download {
    /// A new download of `spec`, started at `now`; `wall` is the wall-clock time at `now`
    /// (the machine never reads a clock; it needs the time to tell an expired URL).
    pub fn new(spec: DownloadSpec, opts: DownloadOptions, now: Instant, wall: SystemTime) -> Self {
        let mut outcome = None;
        let verifier = match (&spec.media_key, spec.media_type.is_encrypted()) {
            (Some(k), _) => match Decryptor::new(k, &spec.media_type, spec.expected.clone()) {
                Ok(d) => Some(Verifier::Encrypted(Box::new(d))),
                Err(e) => {
                    outcome = Some(Err(DownloadError::Unsupported(e)));
                    None
                }
            },
            (None, _) if spec.expected.file_sha256.is_none() => {
                outcome = Some(Err(DownloadError::NothingToVerify));
                None
            }
            (None, _) => Some(Verifier::Plain(PlainVerifier::new(spec.expected.clone()))),
        };
        let total = spec.expected.file_length.map(|len| match &verifier {
            Some(Verifier::Plain(_)) => len,
            _ => body_len(len),
        });
        // The exact size the message implies, and never more than the cap, whatever a
        // message (or an answer) claims.
        let mut cursor = HostCursor::default();
        if let Some(k) = &spec.media_key {
            cursor.secrets.add_key(k);
        }
        let windows = match (&spec.streaming_sidecar, &spec.media_key, &verifier) {
            (Some(expected), Some(k), Some(Verifier::Encrypted(_))) => {
                k.expand(&spec.media_type).ok().map(|keys| {
                    let mut hasher = SidecarHasher::new(&keys.mac_key);
                    hasher.update(&keys.iv);
                    Windows {
                        expected: expected.clone(),
                        hasher,
                        checked: 0,
                        pending: Vec::new(),
                        pending_at: 0,
                    }
                })
            }
            _ => None,
        };
        let verified_output = windows.is_some();
        let limit = total.map_or(opts.max_body_len, |t| t.min(opts.max_body_len));
        Download {
            spec,
            opts,
            started: now,
            wall,
            conn: None,
            state: if outcome.is_some() {
                State::Done
            } else {
                State::Ready
            },
            cursor,
            next_id: 0,
            verifier,
            fed: 0,
            carry: Vec::new(),
            plain: Vec::new(),
            plain_shown: false,
            progress: None,
            total,
            limit,
            auth_renewed: false,
            throttle_waited: false,
            prefix: None,
            prefix_kept: 0,
            windows,
            verified_output,
            range: None,
            outcome,
        }
    }

    /// Resumes from plaintext an earlier, interrupted run of the same download already
    /// released (a `.wamedia-partial` file), fed in order, in any pieces, before the first
    /// request. The machine re-encrypts it into the body prefix it came from (CBC is
    /// deterministic for a key and IV) and feeds that to verification, so the MAC and
    /// hashes still cover the whole body: a resumed download is verified exactly like a
    /// fresh one, and a changed partial fails it. The first request then asks for the
    /// rest with `Range`. Keep the first [`prefix_kept`](Self::prefix_kept) bytes of that
    /// plaintext; the machine's [`Output::Plaintext`] continues right after them.
    ///
    /// # Errors
    /// [`Misuse`] after the first request or the outcome.
    pub fn feed_prefix(&mut self, plaintext: &[u8]) -> Result<(), Misuse> {
        if self.outcome.is_some() {
            return Err(Misuse::Finished);
        }
        if self.next_id > 0 {
            return Err(Misuse::Unexpected(
                "a resumed prefix after the first request",
            ));
        }
        let mut body = Vec::new();
        let chunk: &[u8] = match (&mut self.verifier, &self.spec.media_key) {
            (Some(Verifier::Encrypted(_)), Some(key)) => {
                if self.prefix.is_none() {
                    self.prefix = Encryptor::new(key.clone(), &self.spec.media_type).ok();
                }
                let Some(enc) = self.prefix.as_mut() else {
                    return Err(Misuse::Unexpected("no keys for this media type"));
                };
                enc.update(plaintext, &mut body);
                &body
            }
            _ => plaintext,
        };
        let fed = self.fed.saturating_add(chunk.len() as u64);
        if fed > self.limit {
            self.too_large();
            return Ok(());
        }
        let mut released = Vec::new();
        if let Some(v) = self.verifier.as_mut() {
            v.update(chunk, &mut released);
        }
        if let Some(w) = self.windows.as_mut() {
            // The driver keeps this plaintext itself; the windows still check it.
            w.pending_at = w.pending_at.saturating_add(released.len() as u64);
            if let Err(window) = w.feed(chunk) {
                self.finish(Err(IntegrityError::SidecarMismatch { window }.into()));
                return Ok(());
            }
        }
        self.fed = fed;
        self.prefix_kept = self.prefix_kept.saturating_add(released.len() as u64);
        Ok(())
    }

    /// Makes this a ranged download (a player seeking): only plaintext `start..end` is
    /// fetched — the ciphertext windows covering it and the block before the first —
    /// and each window is checked against the streaming sidecar before its plaintext is
    /// released as [`Output::Verified`]. Needs the sidecar and `file_length` from the
    /// message; call it before the first poll.
    ///
    /// # Errors
    /// [`DownloadError::BadRange`] without a sidecar, a key or a length, or for an empty
    /// range.
    pub fn with_plaintext_range(mut self, start: u64, end: u64) -> Result<Self, DownloadError> {
        let bad = DownloadError::BadRange;
        let sidecar = self.spec.streaming_sidecar.clone().ok_or(bad(
            "a ranged download needs the message's streaming sidecar",
        ))?;
        let len = self
            .spec
            .expected
            .file_length
            .ok_or(bad("a ranged download needs the message's file_length"))?;
        let key = self
            .spec
            .media_key
            .clone()
            .ok_or(bad("a ranged download needs the media key"))?;
        let keys = key.expand(&self.spec.media_type)?;
        let plan =
            RangePlan::new(start, end, len).ok_or(bad("the range is empty (or past the end)"))?;
        if self.next_id > 0 {
            return Err(bad("a range is set before the first request"));
        }
        self.windows = None;
        self.fed = plan.body_from;
        self.limit = plan.body_to;
        self.total = Some(plan.body_to);
        self.range = Some((plan, RangeVerifier::new(plan, &keys, sidecar)));
        self.verified_output = true;
        Ok(self)
    }

    /// How many bytes of the plaintext given to [`feed_prefix`](Self::feed_prefix) the
    /// driver keeps; the machine releases everything after them itself.
    pub fn prefix_kept(&self) -> u64 {
        self.prefix_kept
    }

    /// The outcome, once reached.
    pub fn outcome(&self) -> Option<&Result<DownloadResult, DownloadError>> {
        self.outcome.as_ref()
    }

    fn hosts(&self) -> Vec<String> {
        match &self.spec.source {
            Source::Url(u) => vec![url_origin(u)],
            Source::DirectPath(_) => self
                .conn
                .as_ref()
                .map(|c| c.download_hosts_named(self.type_name().as_deref()))
                .unwrap_or_default(),
        }
    }

    fn transfer_deadline(&self) -> Option<Instant> {
        self.started.checked_add(self.opts.retry.total_timeout)
    }

    /// Unix seconds at `now`.
    fn unix_at(&self, now: Instant) -> u64 {
        let wall = self
            .wall
            .checked_add(now.saturating_duration_since(self.started))
            .unwrap_or(self.wall);
        wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    /// The media type name hosts are filtered by and `mms-type` says: `newsletter-{type}`
    /// for channel media (no key, and a type channels carry; PROTOCOL v3 §1), else the
    /// type's `mms-type`; `None` for a type without one (product images).
    fn type_name(&self) -> Option<String> {
        let t = &self.spec.media_type;
        if self.spec.media_key.is_none() {
            if let Ok(n) = t.host_type_name(true) {
                return Some(n);
            }
        }
        t.mms_type().ok().map(str::to_owned)
    }

    /// True when the source's `oe` expiry has passed by the local clock at `now`.
    fn expired_locally(&self, now: Instant) -> bool {
        self.expiry().is_some_and(|oe| self.unix_at(now) >= oe)
    }

    /// The `oe` expiry (hex Unix seconds) of the source, when it carries one.
    fn expiry(&self) -> Option<u64> {
        let s = match &self.spec.source {
            Source::DirectPath(p) | Source::Url(p) => p,
        };
        query_value(s, "oe").and_then(|v| u64::from_str_radix(v, 16).ok())
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self, now: Instant) -> Out<'_> {
        if self.plain_shown {
            self.plain.clear();
            self.plain_shown = false;
        }
        if !self.plain.is_empty() {
            self.plain_shown = true;
            return if self.verified_output {
                Output::Verified(&self.plain)
            } else {
                Output::Plaintext(&self.plain)
            };
        }
        if let Some(done) = self.progress.take() {
            return Output::Progress {
                done,
                total: self.total,
            };
        }
        if let Some(o) = &self.outcome {
            return Output::Done(o.clone());
        }
        match &self.state {
            State::NeedConn { force } => return Output::NeedMediaConn { force: *force },
            State::InFlight(f) => return Output::Wait(f.ex.deadline),
            State::Backoff { until } if now < *until => return Output::Wait(*until),
            State::Backoff { .. } | State::Ready | State::Done => {}
        }
        self.state = State::Ready;
        if self.transfer_deadline().is_some_and(|d| now >= d) {
            return self.give_up("deadline passed");
        }
        if self.opts.refuse_expired_locally && self.expired_locally(now) {
            return self.finish(Err(DownloadError::MediaExpired {
                expired_at: self.expiry(),
            }));
        }
        let url = match self.spec.source.clone() {
            Source::DirectPath(p) => {
                if let Err(e) = check_direct_path(&p) {
                    return self.finish(Err(e));
                }
                if self.conn.as_ref().is_none_or(|c| c.is_expired(now)) {
                    self.state = State::NeedConn { force: false };
                    return Output::NeedMediaConn { force: false };
                }
                let hosts = self.hosts();
                if hosts.is_empty() {
                    return self.finish(Err(DownloadError::NoHosts {
                        media_type: self.spec.media_type.to_string(),
                    }));
                }
                let host = hosts[self.cursor.idx.min(hosts.len().saturating_sub(1))].clone();
                match self.download_url(&host, &p) {
                    Ok(u) => (host, u),
                    Err(e) => return self.finish(Err(e)),
                }
            }
            Source::Url(u) => match self.check_url(now, &u) {
                Ok(None) => {
                    self.state = State::NeedConn { force: false };
                    return Output::NeedMediaConn { force: false };
                }
                Ok(Some(())) => (url_origin(&u), u),
                Err(e) => return self.finish(Err(e)),
            },
        };
        let (host, url) = url;
        if !self.cursor.may_retry(&self.opts.retry) {
            return self.give_up("attempt limit reached");
        }
        let mut headers: HeaderMap = base_headers(false, 0);
        let range = match &self.range {
            Some((plan, _)) => Some(format!(
                "bytes={}-{}",
                self.fed,
                plan.body_to.saturating_sub(1)
            )),
            None if self.fed > 0 => Some(format!("bytes={}-", self.fed)),
            None => None,
        };
        if let Some(v) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
            headers.insert(RANGE, v);
        }
        self.cursor.attempts = self.cursor.attempts.saturating_add(1);
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let remaining = self.total.unwrap_or(0).saturating_sub(self.fed);
        let deadline = self
            .opts
            .retry
            .deadline(now, remaining, self.transfer_deadline());
        self.state = State::InFlight(InFlight {
            ex: Exchange::new(id, host.clone(), deadline),
            asked_from: self.fed,
            skip: 0,
            declared_end: None,
            error_body: Vec::new(),
        });
        Output::Transmit(Request {
            id,
            host,
            method: http::Method::GET,
            url,
            headers,
            body: BodySpec::Empty,
            deadline,
        })
    }

    /// `Ok(Some(()))`: the URL may be fetched; `Ok(None)`: a media connection is needed
    /// to tell; `Err`: refused.
    fn check_url(&self, now: Instant, url: &str) -> Result<Option<()>, DownloadError> {
        let refuse = |why| DownloadError::UntrustedUrl {
            url: crate::transfer::escape(url.split('?').next().unwrap_or(url)),
            why,
        };
        let uri: http::Uri = url.parse().map_err(|_| refuse("not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(refuse("not an absolute URL"));
        };
        if url.contains('\\') || authority.as_str().contains('@') {
            return Err(refuse("it carries credentials or backslashes"));
        }
        if url
            .chars()
            .any(|c| c == '#' || c.is_whitespace() || c.is_control())
        {
            return Err(refuse(
                "it carries a fragment, white space or control characters",
            ));
        }
        let host = authority.host().to_ascii_lowercase();
        if self.opts.trust_url
            || (scheme == "https" && (host == "whatsapp.net" || host.ends_with(".whatsapp.net")))
        {
            return Ok(Some(()));
        }
        let Some(conn) = self.conn.as_ref().filter(|c| !c.is_expired(now)) else {
            return Ok(None);
        };
        let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
        let known = conn.hosts.iter().any(|h| {
            std::iter::once(h.hostname.as_str())
                .chain(h.fallback_hostname.as_deref())
                .any(|n| host_base(n).to_ascii_lowercase() == origin)
        });
        if known {
            Ok(Some(()))
        } else {
            Err(refuse(
                "not https on a whatsapp.net host nor a host of the media connection",
            ))
        }
    }

    /// `https://{host}{direct_path}` plus `hash`, `mms-type` and `__wa-mms`, joined with
    /// `&` when the path already has a query (PROTOCOL §5).
    fn download_url(&self, host: &str, direct_path: &str) -> Result<String, DownloadError> {
        let sep = if direct_path.contains('?') { '&' } else { '?' };
        let base = host_base(host);
        let mut url = format!("{base}{direct_path}{sep}");
        if let Some(h) = &self.spec.expected.file_enc_sha256 {
            url.push_str(&format!("hash={}&", form_encode(&b64::url(h))));
        }
        match (self.type_name(), self.spec.media_type.mms_type()) {
            (Some(t), _) => url.push_str(&format!("mms-type={}&", form_encode(&t))),
            // Unencrypted product images have no mms-type; any other type must.
            (None, Err(e)) if self.spec.media_type.is_encrypted() => {
                return Err(DownloadError::Unsupported(e))
            }
            (None, _) => {}
        }
        url.push_str("__wa-mms=");
        // Belt and braces: the resolved URL must still be on `host`.
        let same = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?.as_str())))
            .is_some_and(|origin| origin.eq_ignore_ascii_case(&base));
        if !same {
            return Err(DownloadError::MaliciousPath {
                path: crate::transfer::escape(direct_path),
            });
        }
        Ok(url)
    }

    /// Feeds one input at time `now`. Same contract as [`Upload::handle_input`](crate::Upload::handle_input).
    ///
    /// # Errors
    /// [`Misuse`] when the driver breaks the contract.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), Misuse> {
        if self.outcome.is_some() {
            return Err(Misuse::Finished);
        }
        if self.plain_shown {
            self.plain.clear();
            self.plain_shown = false;
        }
        match input {
            Input::MediaConn(c) => {
                if c.is_expired(now) {
                    // Stale: ask for a fresh one; if even that is stale, give up.
                    if matches!(self.state, State::NeedConn { force: true }) {
                        self.finish(Err(DownloadError::ConnExpired));
                    } else if matches!(self.state, State::NeedConn { .. } | State::Ready) {
                        self.state = State::NeedConn { force: true };
                    }
                } else {
                    if matches!(self.state, State::NeedConn { .. }) {
                        self.state = State::Ready;
                    }
                    self.cursor.secrets.add_auth(&c.auth);
                    self.conn = Some(c);
                }
            }
            Input::Timeout => match &self.state {
                State::InFlight(f) if now >= f.ex.deadline => {
                    if let Some(f) = self.take_in_flight() {
                        self.on_failure(now, &f, HostFailureReason::Timeout);
                    }
                }
                State::Backoff { until } if now >= *until => self.state = State::Ready,
                _ => {}
            },
            Input::Head {
                id,
                status,
                headers,
            } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                f.ex.head(status, headers)?;
                if status == 200 || status == 206 {
                    self.on_head(now, headers);
                }
            }
            Input::Body { id, data } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                match f
                    .ex
                    .status_before("a body chunk before the response head")?
                {
                    200 | 206 => self.on_body(now, data),
                    _ => push_capped(&mut f.error_body, data, ERROR_BODY_CAP),
                }
            }
            Input::End { id } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                f.ex.status_before("the end of a response before its head")?;
                if let Some(f) = self.take_in_flight() {
                    self.on_end(now, f);
                }
            }
            Input::Failed { id, reason } => {
                if self.in_flight(id)?.is_none() {
                    return Ok(());
                }
                if let Some(f) = self.take_in_flight() {
                    self.on_failure(now, &f, HostFailureReason::Transport(reason));
                }
            }
            Input::Sent { id, .. } => {
                self.in_flight(id)?;
            }
        }
        Ok(())
    }

    fn in_flight(&mut self, id: RequestId) -> Result<Option<&mut InFlight>, Misuse> {
        if id.0 >= self.next_id {
            return Err(Misuse::UnknownRequest(id.0));
        }
        Ok(match &mut self.state {
            State::InFlight(f) if f.ex.id == id => Some(f),
            _ => None,
        })
    }

    fn take_in_flight(&mut self) -> Option<InFlight> {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::InFlight(f) => Some(f),
            other => {
                self.state = other;
                None
            }
        }
    }

    fn too_large(&mut self) {
        self.finish(Err(IntegrityError::TooLarge { max: self.limit }.into()));
    }

    fn on_head(&mut self, now: Instant, headers: &HeaderMap) {
        let State::InFlight(f) = &mut self.state else {
            return;
        };
        let status = f.ex.status.unwrap_or(0);
        let header = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
        let len = header(CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        if status == 206 {
            // `bytes a-b/c`: it must start where we asked.
            match header(CONTENT_RANGE).and_then(parse_content_range) {
                Some((start, end)) if start == f.asked_from => {
                    f.declared_end = Some(end);
                }
                _ => {
                    if let Some(f) = self.take_in_flight() {
                        self.cursor.record(
                            &f.ex.host,
                            HostFailureReason::Malformed(format!(
                                "206 whose Content-Range does not start at {}",
                                f.asked_from
                            )),
                        );
                        self.advance(now);
                    }
                    return;
                }
            }
        } else {
            // A 200 to a ranged request carries the whole body: drop what we have (and,
            // for a ranged download, stop at the range's end).
            f.skip = f.asked_from;
            f.declared_end = match &self.range {
                Some((plan, _)) => Some(plan.body_to),
                None => len,
            };
        }
        if let Some(end) = f.declared_end {
            if end > self.limit {
                self.too_large();
                return;
            }
            if self.total.is_none() {
                self.total = Some(end);
            }
            // Nothing past the end the answer declared is taken (progress never passes
            // the total it reports).
            self.limit = self.limit.min(end);
        }
    }

    fn on_body(&mut self, now: Instant, mut data: &[u8]) {
        let State::InFlight(f) = &mut self.state else {
            return;
        };
        if f.skip > 0 {
            let n = usize::try_from(f.skip).map_or(data.len(), |s| s.min(data.len()));
            f.skip = f.skip.saturating_sub(n as u64);
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        if self.range.is_some() {
            // A 200 carrying the whole body: keep only what the range needs.
            let room = self
                .limit
                .saturating_sub(self.fed)
                .saturating_sub(self.carry.len() as u64);
            data = &data[..usize::try_from(room).map_or(data.len(), |r| r.min(data.len()))];
        }
        let received = self
            .fed
            .saturating_add(self.carry.len().saturating_add(data.len()) as u64);
        if received > self.limit {
            self.too_large();
            return;
        }
        let Some(align) = self.verifier.as_ref().map(Verifier::align) else {
            return;
        };
        // Feed whole blocks only, so that a cut leaves `fed` on a block boundary.
        let pending = self.carry.len().saturating_add(data.len());
        let whole = pending.saturating_sub(pending.checked_rem(align).unwrap_or(0));
        if whole > 0 {
            if self.carry.is_empty() {
                let (now, rest) = data.split_at(whole);
                if !self.absorb(now) {
                    return;
                }
                self.carry.extend_from_slice(rest);
            } else {
                let from_data = whole.saturating_sub(self.carry.len());
                self.carry.extend_from_slice(&data[..from_data]);
                let mut blocks = std::mem::take(&mut self.carry);
                if !self.absorb(&blocks) {
                    return;
                }
                blocks.clear();
                blocks.extend_from_slice(&data[from_data..]);
                self.carry = blocks;
            }
            self.fed = self.fed.saturating_add(whole as u64);
        } else {
            self.carry.extend_from_slice(data);
        }
        self.progress = Some(received);
        // A ranged download has all it asked for (a 200 may carry more): done now.
        if self.range.is_some() && received >= self.limit && self.outcome.is_none() {
            if let Some(f) = self.take_in_flight() {
                self.on_end(now, f);
            }
        }
    }

    /// Feeds whole-block body bytes to verification. Their plaintext goes out at once,
    /// or, with a sidecar, when its window has been checked. False when a window failed
    /// (the machine is then finished).
    fn absorb(&mut self, body: &[u8]) -> bool {
        if let Some((_, r)) = self.range.as_mut() {
            if let Err(window) = r.feed(body, &mut self.plain) {
                self.finish(Err(IntegrityError::SidecarMismatch { window }.into()));
                return false;
            }
            return true;
        }
        let Some(v) = self.verifier.as_mut() else {
            return true;
        };
        let Some(w) = self.windows.as_mut() else {
            v.update(body, &mut self.plain);
            return true;
        };
        v.update(body, &mut w.pending);
        match w.feed(body) {
            Ok(()) => {
                w.release(&mut self.plain);
                true
            }
            Err(window) => {
                // The windows before the failed one were checked: theirs still goes out.
                w.release(&mut self.plain);
                self.finish(Err(IntegrityError::SidecarMismatch { window }.into()));
                false
            }
        }
    }

    fn on_end(&mut self, now: Instant, f: InFlight) {
        let status = f.ex.status.unwrap_or(0);
        let cap = self.opts.retry.backoff_max;
        match status {
            200 | 206 => {
                let received = self.fed.saturating_add(self.carry.len() as u64);
                // The message's length wins over a shorter answer: a body that ends early
                // is cut short (and resumed), never handed to the MAC as if whole.
                let end = match (f.declared_end, self.total) {
                    (Some(d), Some(t)) => Some(d.max(t)),
                    (d, t) => d.or(t),
                };
                if end.is_some_and(|end| received < end) {
                    self.on_failure(
                        now,
                        &f,
                        HostFailureReason::Transport("body cut short".into()),
                    );
                    return;
                }
                let last = std::mem::take(&mut self.carry);
                if !self.absorb(&last) {
                    return;
                }
                if let Some((plan, r)) = self.range.take() {
                    self.finish_range(plan, r, f.ex.host);
                    return;
                }
                let Some(v) = self.verifier.take() else {
                    return;
                };
                let mut tail = Vec::new();
                match v.finish(&mut tail) {
                    Ok(verified) => {
                        if let Some(w) = self.windows.take() {
                            match w.finish() {
                                Ok(rest) => self.plain.extend_from_slice(&rest),
                                Err(window) => {
                                    self.finish(Err(
                                        IntegrityError::SidecarMismatch { window }.into()
                                    ));
                                    return;
                                }
                            }
                        }
                        self.plain.extend_from_slice(&tail);
                        self.finish(Ok(DownloadResult {
                            verified,
                            range: None,
                            host: f.ex.host,
                        }));
                    }
                    Err(e) => {
                        self.plain.clear();
                        self.finish(Err(e.into()));
                    }
                }
            }
            401 if matches!(self.spec.source, Source::DirectPath(_)) => {
                if self.auth_renewed {
                    self.finish(Err(DownloadError::AuthRejected {
                        host: f.ex.host,
                        status,
                    }));
                } else {
                    self.auth_renewed = true;
                    self.conn = None;
                    self.state = State::NeedConn { force: true };
                }
            }
            // WhatsApp Web reads `oe` only now, after a 403 (PROTOCOL v3 §5).
            403 if self.expired_locally(now)
                || String::from_utf8_lossy(&f.error_body)
                    .to_ascii_lowercase()
                    .contains("url signature expired") =>
            {
                self.finish(Err(DownloadError::MediaExpired {
                    expired_at: self.expiry(),
                }));
            }
            403 | 404 | 410 => {
                self.cursor.record_status(&f.ex.host, status, &f.error_body);
                self.cursor.gone_in_round = self.cursor.gone_in_round.saturating_add(1);
                if self.cursor.gone_in_round >= self.hosts().len().max(1) {
                    let failures = std::mem::take(&mut self.cursor.failures);
                    self.finish(Err(DownloadError::MediaGone { failures }));
                } else {
                    self.advance(now);
                }
            }
            429 => match f.ex.retry_after.filter(|w| *w <= cap) {
                Some(w) if !self.throttle_waited && self.cursor.may_retry(&self.opts.retry) => {
                    self.throttle_waited = true;
                    self.cursor.record_status(&f.ex.host, status, &f.error_body);
                    let next = self
                        .cursor
                        .same_host(&self.opts.retry, now, self.started, Some(w));
                    self.apply(next);
                }
                _ => self.throttled(f, status),
            },
            507 => self.throttled(f, status),
            500..=599 => {
                if f.ex.retry_after.is_some_and(|w| w > cap) {
                    self.throttled(f, status);
                    return;
                }
                self.cursor.record_status(&f.ex.host, status, &f.error_body);
                let wait = f.ex.retry_after;
                self.advance(now);
                if let (Some(w), State::Ready | State::Backoff { .. }) = (wait, &self.state) {
                    let until = now.checked_add(w).unwrap_or(now);
                    let until = self.transfer_deadline().map_or(until, |d| until.min(d));
                    let later = match self.state {
                        State::Backoff { until: b } => b.max(until),
                        _ => until,
                    };
                    if later > now {
                        self.state = State::Backoff { until: later };
                    }
                }
            }
            _ => {
                self.finish(Err(DownloadError::Status {
                    host: f.ex.host,
                    status,
                    body: self.cursor.secrets.body_text(&f.error_body),
                }));
            }
        }
    }

    /// A ranged download's bytes all arrived: the last windows are checked.
    fn finish_range(&mut self, plan: RangePlan, r: RangeVerifier, host: String) {
        if let Err(window) = r.finish(&mut self.plain) {
            self.finish(Err(IntegrityError::SidecarMismatch { window }.into()));
            return;
        }
        let e = &self.spec.expected;
        let verified = Verified {
            file_sha256: e.file_sha256.unwrap_or_default(),
            file_enc_sha256: e.file_enc_sha256.unwrap_or_default(),
            file_length: e.file_length.unwrap_or_default(),
        };
        self.finish(Ok(DownloadResult {
            verified,
            range: Some(plan.start..plan.end),
            host,
        }));
    }

    fn throttled(&mut self, f: InFlight, status: u16) {
        self.finish(Err(DownloadError::Throttled {
            host: f.ex.host,
            status,
            retry_after: f.ex.retry_after,
        }));
    }

    fn on_failure(&mut self, now: Instant, f: &InFlight, reason: HostFailureReason) {
        // Keep the whole blocks already fed; drop a partial block.
        self.carry.clear();
        let made_progress = self.fed > f.asked_from;
        self.cursor.record(&f.ex.host, reason);
        if made_progress && self.cursor.may_retry(&self.opts.retry) {
            // The host was serving: ask it again for the rest.
            self.state = State::Ready;
        } else {
            self.advance(now);
        }
    }

    fn advance(&mut self, now: Instant) {
        let hosts = self.hosts().len().max(1);
        let next = self
            .cursor
            .next_host(&self.opts.retry, hosts, now, self.started);
        self.apply(next);
    }

    fn apply(&mut self, next: Next) {
        match next {
            Next::Now => self.state = State::Ready,
            Next::Until(until) => self.state = State::Backoff { until },
            Next::GiveUp(why) => {
                self.give_up(why);
            }
        }
    }

    fn give_up(&mut self, why: &'static str) -> Out<'static> {
        let failures = std::mem::take(&mut self.cursor.failures);
        self.finish(Err(DownloadError::AllHostsFailed { why, failures }))
    }

    fn finish(&mut self, outcome: Result<DownloadResult, DownloadError>) -> Out<'static> {
        // Unverified plaintext never goes out after a failure; window-verified plaintext
        // (a sidecar download) was checked already and still does.
        if outcome.is_err() && !self.verified_output {
            self.plain.clear();
        }
        self.state = State::Done;
        self.outcome = Some(outcome.clone());
        Output::Done(outcome)
    }
}

/// Refuses a `direct_path` that would change the host when appended to `https://{host}`
/// (`WAWebMmsClientFormatDownloadUrl`'s "malicious directPath"): it must start with one
/// `/`, and carry no backslash, `#`, white space or control character.
fn check_direct_path(p: &str) -> Result<(), DownloadError> {
    let bad = !p.starts_with('/')
        || p.starts_with("//")
        || p.chars()
            .any(|c| c == '\\' || c == '#' || c.is_whitespace() || c.is_control());
    if bad {
        Err(DownloadError::MaliciousPath {
            path: crate::transfer::escape(p),
        })
    } else {
        Ok(())
    }
}

/// The value of `name` in a URL's (or path's) query, undecoded.
fn query_value<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let (_, q) = url.split_once('?')?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// `bytes a-b/c` → `(a, b + 1)`; `None` for anything else, an end before the start, or
/// numbers that do not fit.
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, _) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let end = b.trim().parse::<u64>().ok()?.checked_add(1)?;
    (end > a).then_some((a, end))
}

/// The origin of a full URL as a host string: the bare host for https, else
/// `scheme://host`.
fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if scheme == "https" {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_changing_paths_are_refused() {
        for p in [
            "@evil.example/x",
            "//evil.example/x",
            "\\\\evil.example\\x",
            "/x\\@evil",
            "v/t62/x",
            "",
            "/x y",
            "/x\n",
            "/x#frag",
        ] {
            assert!(check_direct_path(p).is_err(), "{p:?}");
        }
        for p in [
            "/v/t62.7118-24/abc?ccb=11-4&oh=01&oe=6A000000",
            "/@evil/x",
            "/m1/v/t24/x",
        ] {
            assert!(check_direct_path(p).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn content_range_is_checked() {
        assert_eq!(parse_content_range("bytes 10-19/20"), Some((10, 20)));
        assert_eq!(parse_content_range("bytes 0-18446744073709551615/*"), None);
        assert_eq!(parse_content_range("bytes 20-10/30"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn query_values() {
        assert_eq!(query_value("/x?a=1&oe=6A0&b", "oe"), Some("6A0"));
        assert_eq!(query_value("/x", "oe"), None);
    }
}
