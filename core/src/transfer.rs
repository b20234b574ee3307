//! What flows in and out of the [`Upload`](crate::Upload) and
//! [`Download`](crate::Download) machines, and the host/retry bookkeeping they share.

use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH};

use crate::conn::MediaConn;
use crate::error::{HostFailure, HostFailureReason};

/// Identifies one request a machine issued; responses are matched by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The body a request carries: never a copy of the data, only which bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodySpec {
    /// No body (`Content-Length: 0` for a POST).
    Empty,
    /// Bytes `from..to` of the upload body (for newsletter uploads, the upload body is the
    /// plaintext itself).
    UploadBody {
        /// First byte, inclusive.
        from: u64,
        /// End, exclusive: always the body's length.
        to: u64,
    },
}

impl BodySpec {
    /// Number of bytes the body carries.
    pub fn len(&self) -> u64 {
        match self {
            BodySpec::Empty => 0,
            BodySpec::UploadBody { from, to } => to.saturating_sub(*from),
        }
    }

    /// True for a body of no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// "Send this request." Everything a transport needs, and nothing to decide.
/// `Debug` shows the URL with its auth token redacted.
#[derive(Clone)]
pub struct Request {
    /// Answer with this id.
    pub id: RequestId,
    /// The host (as in the media connection) this request goes to.
    pub host: String,
    /// `GET` or `POST`.
    pub method: http::Method,
    /// The full URL, query included. It may carry the auth token: do not log it.
    pub url: String,
    /// Headers to send, in order (`Content-Length` is exact).
    pub headers: HeaderMap,
    /// Which bytes to send.
    pub body: BodySpec,
    /// Give up (and report [`Input::Failed`]) if no complete answer by then.
    pub deadline: Instant,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("method", &self.method)
            .field("url", &self.redacted_url())
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &self.body)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Headers for `Debug`, secret values (the companion secret of a delete) redacted.
struct RedactedHeaders<'a>(&'a HeaderMap);

impl std::fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let secret = k.as_str().contains("secret") || k == http::header::AUTHORIZATION;
                (
                    k.as_str(),
                    if secret {
                        "<redacted>"
                    } else {
                        v.to_str().unwrap_or("<binary>")
                    },
                )
            }))
            .finish()
    }
}

impl Request {
    /// The request as an `http::Request` whose body is the [`BodySpec`].
    ///
    /// # Errors
    /// When the URL does not parse as an `http::Uri` (a host string that is not a host).
    pub fn to_http(&self) -> Result<http::Request<BodySpec>, http::Error> {
        let mut b = http::Request::builder()
            .method(self.method.clone())
            .uri(&self.url);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(self.body)
    }

    /// The URL with the `auth` query value replaced by `<redacted>`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_auth(&self.url)
    }
}

/// Replaces the value of an `auth=` query parameter with `<redacted>`.
pub fn redact_auth(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_owned();
    };
    let (base, query) = url.split_at(q.saturating_add(1));
    let parts: Vec<String> = query
        .split('&')
        .map(|p| {
            if p.starts_with("auth=") {
                "auth=<redacted>".to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect();
    format!("{base}{}", parts.join("&"))
}

/// Input to a machine, with the current time passed beside it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A media connection, asked for by [`Output::NeedMediaConn`] (or pushed unasked).
    MediaConn(MediaConn),
    /// The status line and headers of the answer to request `id`.
    Head {
        /// The request answered.
        id: RequestId,
        /// HTTP status.
        status: u16,
        /// Response headers.
        headers: &'a HeaderMap,
    },
    /// The next bytes of the answer's body, in order.
    Body {
        /// The request answered.
        id: RequestId,
        /// Bytes.
        data: &'a [u8],
    },
    /// The answer's body is complete.
    End {
        /// The request answered.
        id: RequestId,
    },
    /// The transport failed for request `id` (connect, TLS, reset, deadline...). After a
    /// `Head`, this means the body was cut short.
    Failed {
        /// The request that failed.
        id: RequestId,
        /// What happened, for the error report. Must not contain the auth token.
        reason: String,
    },
    /// So many bytes of request `id`'s body have been sent (cumulative), for progress.
    Sent {
        /// The request.
        id: RequestId,
        /// Bytes of its body sent so far.
        bytes: u64,
    },
    /// Time has passed: `now` reached a deadline announced by [`Output::Wait`].
    Timeout,
}

/// Output of a machine. After every input, drain `poll_output` until it gives
/// [`Output::Wait`] or [`Output::Done`].
///
/// Variants may be added: a driver treats one it does not know like
/// [`Output::Progress`], as nothing to do, and polls again.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output<'a, R> {
    /// Send this request, then feed its answer (or failure) back.
    Transmit(Request),
    /// Obtain a media connection (a fresh one, whatever its TTL, when `force`) and feed
    /// it back as [`Input::MediaConn`].
    NeedMediaConn {
        /// The CDN rejected the auth: a cached connection will not do.
        force: bool,
    },
    /// Nothing to do until this time, unless an answer arrives first; then feed
    /// [`Input::Timeout`].
    Wait(Instant),
    /// Bytes done of the total (body bytes for uploads and downloads).
    Progress {
        /// Done so far.
        done: u64,
        /// Total, when known.
        total: Option<u64>,
    },
    /// Downloads only: decrypted bytes, in order. **Unverified** until `Done(Ok(_))`:
    /// keep them out of sight (a temporary file) until then.
    Plaintext(&'a [u8]),
    /// Downloads with a streaming sidecar only: decrypted bytes, in order, each already
    /// checked against its 64 KiB window of the sidecar (PROTOCOL §2.7), so a player may
    /// use them at once. The whole-body MAC and hashes are still checked at the end.
    Verified(&'a [u8]),
    /// The outcome. It stays: every later poll answers it again.
    Done(R),
}

/// Retry policy shared by both machines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Rounds over the host list before giving up.
    pub max_rounds: u32,
    /// Requests sent in all, before giving up.
    pub max_attempts: u32,
    /// First backoff between rounds; doubles each round.
    pub backoff_base: Duration,
    /// Largest backoff, and largest `Retry-After` honoured.
    pub backoff_max: Duration,
    /// Give up when the transfer has taken this long.
    pub total_timeout: Duration,
    /// Time for one request with an empty body...
    pub request_timeout: Duration,
    /// ...plus one second per so many body bytes (a floor on throughput).
    pub min_bytes_per_sec: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_rounds: 3,
            max_attempts: 16,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            total_timeout: Duration::from_secs(30 * 60),
            request_timeout: Duration::from_secs(60),
            min_bytes_per_sec: 64 * 1024,
        }
    }
}

impl RetryPolicy {
    /// The deadline of one request moving `body_len` bytes, never past the transfer's
    /// own deadline (`None`: beyond what the clock can represent).
    pub(crate) fn deadline(
        &self,
        now: Instant,
        body_len: u64,
        transfer_deadline: Option<Instant>,
    ) -> Instant {
        let slack = Duration::from_secs(body_len.checked_div(self.min_bytes_per_sec).unwrap_or(0));
        let own = self
            .request_timeout
            .checked_add(slack)
            .and_then(|d| now.checked_add(d));
        match (own, transfer_deadline) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            // Both beyond the clock: a day from now is as good as never.
            (None, None) => now.checked_add(Duration::from_secs(86_400)).unwrap_or(now),
        }
    }

    /// The pause before retry number `n` (1 for the first retry): `backoff_base · 2^(n-1)`,
    /// at most `backoff_max`.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.backoff_base
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

/// `now + wait`, never past the transfer's deadline, never overflowing.
fn clamp_wait(now: Instant, wait: Duration, started: Instant, policy: &RetryPolicy) -> Instant {
    let until = now.checked_add(wait).unwrap_or(now);
    match started.checked_add(policy.total_timeout) {
        Some(d) => until.min(d),
        None => until,
    }
}

/// What to do after a host failed.
pub(crate) enum Next {
    /// Try `hosts[idx]` now.
    Now,
    /// Wait until then (backoff or `Retry-After`), then try `hosts[idx]`.
    Until(Instant),
    /// Give up, for this reason.
    GiveUp(&'static str),
}

/// The secrets a machine holds (auth tokens, the media key), in every encoding a server
/// or proxy could echo them back in, so no text from outside carries them into an error.
#[derive(Default)]
pub(crate) struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets(<{} redacted>)", self.0.len())
    }
}

impl Secrets {
    fn add(&mut self, s: String) {
        // Too short to be a secret worth a false match (test tokens such as "a").
        if s.len() >= 6 && !self.0.contains(&s) {
            self.0.push(s);
            // Longest first, so an encoding that contains another is replaced whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// An auth token: as given, form-encoded, and every byte percent-encoded.
    pub fn add_auth(&mut self, auth: &str) {
        self.add(auth.to_owned());
        self.add(crate::conn::form_encode(auth));
        self.add(auth.bytes().map(|b| format!("%{b:02X}")).collect());
    }

    /// A media key: base64 (standard, URL-safe, padded or not) and hex.
    pub fn add_key(&mut self, key: &crate::keys::MediaKey) {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine as _;
        let k = key.as_bytes();
        for e in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let s = e.encode(k);
            self.add(crate::conn::form_encode(&s));
            self.add(s);
        }
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        self.add(hex.to_ascii_uppercase());
        self.add(hex);
    }

    /// `text` without any secret, on one line, control characters escaped.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        escape(out.trim())
    }

    /// Up to 4 KiB of an error body, scrubbed.
    pub fn body_text(&self, body: &[u8]) -> String {
        self.scrub(&String::from_utf8_lossy(
            &body[..body.len().min(ERROR_BODY_CAP)],
        ))
    }
}

/// Which host is next, how many rounds and attempts are spent, and what each host said.
/// The retry rules both machines share live here.
#[derive(Debug, Default)]
pub(crate) struct HostCursor {
    pub idx: usize,
    pub round: u32,
    pub attempts: u32,
    pub failures: Vec<HostFailure>,
    /// Hosts that said "gone" (403/404/410) in this round.
    pub gone_in_round: usize,
    /// What never reaches an error text.
    pub secrets: Secrets,
}

impl HostCursor {
    /// Records one host's failure; texts from outside are scrubbed of secrets.
    pub fn record(&mut self, host: &str, reason: HostFailureReason) {
        let reason = match reason {
            HostFailureReason::Transport(t) => HostFailureReason::Transport(self.secrets.scrub(&t)),
            HostFailureReason::Malformed(t) => HostFailureReason::Malformed(self.secrets.scrub(&t)),
            other => other,
        };
        self.failures.push(HostFailure {
            host: host.to_owned(),
            reason,
        });
    }

    /// Records an HTTP status the machine could not use, with the start of its body.
    pub fn record_status(&mut self, host: &str, status: u16, body: &[u8]) {
        let body = self.secrets.body_text(body);
        self.record(host, HostFailureReason::Status { status, body });
    }

    /// After the current host failed: the next host now; after the last, a new round
    /// after an exponential backoff; or give up when the bounds are spent.
    pub fn next_host(
        &mut self,
        policy: &RetryPolicy,
        hosts: usize,
        now: Instant,
        started: Instant,
    ) -> Next {
        if self.attempts >= policy.max_attempts {
            return Next::GiveUp("attempt limit reached");
        }
        self.idx = self.idx.saturating_add(1);
        if self.idx < hosts {
            return Next::Now;
        }
        self.idx = 0;
        self.round = self.round.saturating_add(1);
        self.gone_in_round = 0;
        if self.round >= policy.max_rounds {
            return Next::GiveUp("attempt limit reached");
        }
        let wait = policy.backoff(self.round);
        Next::Until(clamp_wait(now, wait, started, policy))
    }

    /// 408/429: the same host again after `Retry-After` (or the base backoff).
    pub fn same_host(
        &self,
        policy: &RetryPolicy,
        now: Instant,
        started: Instant,
        retry_after: Option<Duration>,
    ) -> Next {
        if !self.may_retry(policy) {
            return Next::GiveUp("attempt limit reached");
        }
        let wait = retry_after
            .unwrap_or(policy.backoff_base)
            .min(policy.backoff_max);
        Next::Until(clamp_wait(now, wait, started, policy))
    }

    /// Checks the attempt bound before retrying the same host.
    pub fn may_retry(&self, policy: &RetryPolicy) -> bool {
        self.attempts < policy.max_attempts
    }
}

/// The request a machine has out, and what has come back for it so far: the part of
/// answer handling both machines share.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub id: RequestId,
    pub host: String,
    pub deadline: Instant,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

impl Exchange {
    pub fn new(id: RequestId, host: String, deadline: Instant) -> Self {
        Exchange {
            id,
            host,
            deadline,
            status: None,
            retry_after: None,
        }
    }

    /// The answer's head arrived; a second one is the driver's mistake.
    pub fn head(&mut self, status: u16, headers: &HeaderMap) -> Result<(), crate::Misuse> {
        if self.status.is_some() {
            return Err(crate::Misuse::Unexpected("a second response head"));
        }
        self.status = Some(status);
        self.retry_after = retry_after(headers);
        Ok(())
    }

    /// The status, which `what` (a body chunk, the end) needs to have arrived first.
    pub fn status_before(&self, what: &'static str) -> Result<u16, crate::Misuse> {
        self.status.ok_or(crate::Misuse::Unexpected(what))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the CDN and is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The standard headers of every request (PROTOCOL §4–5).
pub(crate) fn base_headers(post: bool, body_len: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if post {
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    h.insert(
        http::header::ORIGIN,
        HeaderValue::from_static("https://web.whatsapp.com"),
    );
    if post {
        h.insert(
            http::header::REFERER,
            HeaderValue::from_static("https://web.whatsapp.com/"),
        );
        h.insert(CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    h
}

/// Keeps at most `cap` bytes of a response body.
pub(crate) fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..room.min(data.len())]);
}

/// Text from outside made fit for a terminal and a log line: control characters (line
/// breaks, escape sequences, bidirectional overrides) escaped as `\n`, `\u{1b}`, ….
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Error bodies are kept to at most this many bytes.
pub const ERROR_BODY_CAP: usize = 4096;

/// What [`Upload`](crate::Upload) and [`Download`](crate::Download) have in common, so a
/// transport can drive both with one loop.
pub trait Machine {
    /// `Result<UploadResult, UploadError>` or `Result<DownloadResult, DownloadError>`.
    type Outcome: Clone;

    /// The next thing the driver must do.
    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Outcome>;

    /// Feeds one input at time `now`.
    ///
    /// # Errors
    /// [`Misuse`](crate::Misuse) when the driver breaks the contract.
    fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), crate::Misuse>;

    /// True once the outcome is reached; further input is [`Misuse::Finished`](crate::Misuse::Finished).
    fn is_finished(&self) -> bool;

    /// Sugar for a whole answer at once: `Head`, `Body`, `End`, stopping early when the
    /// machine finishes on the way (a body over the size limit, say).
    ///
    /// # Errors
    /// As [`handle_input`](Self::handle_input).
    fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), crate::Misuse> {
        self.handle_input(
            now,
            Input::Head {
                id,
                status,
                headers,
            },
        )?;
        if !self.is_finished() {
            self.handle_input(now, Input::Body { id, data: body })?;
        }
        if !self.is_finished() {
            self.handle_input(now, Input::End { id })?;
        }
        Ok(())
    }
}

impl Machine for crate::Upload {
    type Outcome = Result<crate::UploadResult, crate::UploadError>;
    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Outcome> {
        crate::Upload::poll_output(self, now)
    }
    fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), crate::Misuse> {
        crate::Upload::handle_input(self, now, input)
    }
    fn is_finished(&self) -> bool {
        self.outcome().is_some()
    }
}

impl Machine for crate::Download {
    type Outcome = Result<crate::DownloadResult, crate::DownloadError>;
    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Outcome> {
        crate::Download::poll_output(self, now)
    }
    fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), crate::Misuse> {
        crate::Download::handle_input(self, now, input)
    }
    fn is_finished(&self) -> bool {
        self.outcome().is_some()
    }
}
