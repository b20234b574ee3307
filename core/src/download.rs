//! The download machine (PROTOCOL §5): host choice, retries, `Range` resumption and
//! streaming verified decryption.
//!
//! | answer | next |
//! |---|---|
//! | 200, or 206 starting where asked | stream, decrypt, verify |
//! | 403 / 404 / 410 | next host; all of a round gone → [`DownloadError::MediaGone`] |
//! | 408 / 429 | same host after `Retry-After` (or backoff) |
//! | 5xx, transport failure, deadline | next host; after the last, back off, next round |
//! | body cut short | same host, `Range: bytes={last whole block}-` |
//! | other status | final |

use std::time::Instant;

use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, RANGE};

use crate::b64;
use crate::conn::{host_base, MediaConn};
use crate::decrypt::{Decryptor, Expected, Verified};
use crate::encrypt::body_len;
use crate::error::{DownloadError, HostFailureReason, IntegrityError, Misuse};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::transfer::{
    base_headers, error_text, push_capped, BodySpec, Exchange, HostCursor, Input, Next, Output,
    Request, RequestId, RetryPolicy, ERROR_BODY_CAP,
};

/// Where the media lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `direct_path` from a message, tried on each host of the media connection.
    DirectPath(String),
    /// A full URL from a message, used as is (no media connection needed).
    Url(String),
}

/// What is being downloaded.
#[derive(Clone, Debug)]
pub struct DownloadSpec {
    /// The media type (key expansion and `mms-type`).
    pub media_type: MediaType,
    /// The media key from the message.
    pub media_key: MediaKey,
    /// Where it lives.
    pub source: Source,
    /// What the message says about it, each checked when given.
    pub expected: Expected,
}

/// How a download behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Hosts, rounds, attempts, deadlines, backoff.
    pub retry: RetryPolicy,
    /// Refuse bodies larger than this (guards against endless answers).
    pub max_body_len: u64,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            retry: RetryPolicy::default(),
            max_body_len: 4 << 30,
        }
    }
}

/// A verified download.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadResult {
    /// What verification established.
    pub verified: Verified,
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

/// One download. Drive it like an [`Upload`](crate::Upload); it also yields
/// [`Output::Plaintext`], which stays unverified until `Done(Ok(_))`.
#[derive(Debug)]
pub struct Download {
    spec: DownloadSpec,
    opts: DownloadOptions,
    started: Instant,
    conn: Option<MediaConn>,
    state: State,
    cursor: HostCursor,
    next_id: u64,
    decryptor: Option<Decryptor>,
    /// Body bytes handed to the decryptor: always whole blocks.
    fed: u64,
    /// Bytes of a partial block, waiting for the rest.
    carry: Vec<u8>,
    plain: Vec<u8>,
    plain_shown: bool,
    progress: Option<u64>,
    total: Option<u64>,
    outcome: Option<Result<DownloadResult, DownloadError>>,
}

type Out<'a> = Output<'a, Result<DownloadResult, DownloadError>>;

impl Download {
    /// A new download of `spec`, started at `now`.
    pub fn new(spec: DownloadSpec, opts: DownloadOptions, now: Instant) -> Self {
        let decryptor = Decryptor::new(&spec.media_key, &spec.media_type, spec.expected.clone());
        let total = spec.expected.file_length.map(body_len);
        Download {
            spec,
            opts,
            started: now,
            conn: None,
            state: State::Ready,
            cursor: HostCursor::default(),
            next_id: 0,
            decryptor: Some(decryptor),
            fed: 0,
            carry: Vec::new(),
            plain: Vec::new(),
            plain_shown: false,
            progress: None,
            total,
            outcome: None,
        }
    }

    /// The outcome, once reached.
    pub fn outcome(&self) -> Option<&Result<DownloadResult, DownloadError>> {
        self.outcome.as_ref()
    }

    fn hosts(&self) -> Option<Vec<String>> {
        match &self.spec.source {
            Source::Url(u) => Some(vec![url_host(u)]),
            Source::DirectPath(_) => self.conn.as_ref().map(|c| c.hosts.clone()),
        }
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self, now: Instant) -> Out<'_> {
        if self.plain_shown {
            self.plain.clear();
            self.plain_shown = false;
        }
        if !self.plain.is_empty() {
            self.plain_shown = true;
            return Output::Plaintext(&self.plain);
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
            State::Backoff { .. } | State::Ready => {}
            State::Done => unreachable!("Done always has an outcome"),
        }
        self.state = State::Ready;
        if now >= self.started + self.opts.retry.total_timeout {
            return self.give_up("deadline passed");
        }
        let direct_path = match &self.spec.source {
            Source::DirectPath(p) => {
                match &self.conn {
                    Some(c) if !c.is_expired(now) => {}
                    _ => {
                        self.state = State::NeedConn { force: false };
                        return Output::NeedMediaConn { force: false };
                    }
                }
                Some(p.clone())
            }
            Source::Url(_) => None,
        };
        let hosts = self.hosts().unwrap_or_default();
        if hosts.is_empty() {
            return self.finish(Err(DownloadError::NoHosts));
        }
        if !self.cursor.may_retry(&self.opts.retry) {
            return self.give_up("attempt limit reached");
        }
        let host = hosts[self.cursor.idx.min(hosts.len() - 1)].clone();
        let url = match (&self.spec.source, direct_path) {
            (Source::Url(u), _) => u.clone(),
            (_, Some(p)) => self.download_url(&host, &p),
            (_, None) => unreachable!("a direct path source has a path"),
        };
        let mut headers: HeaderMap = base_headers(false, 0);
        if self.fed > 0 {
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={}-", self.fed)).expect("ASCII"),
            );
        }
        self.cursor.attempts += 1;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let deadline = self
            .opts
            .retry
            .deadline(now, self.total.unwrap_or(0).saturating_sub(self.fed));
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

    /// `https://{host}{direct_path}` plus `hash`, `mms-type` and `__wa-mms`, joined with
    /// `&` when the path already has a query (PROTOCOL §5).
    fn download_url(&self, host: &str, direct_path: &str) -> String {
        let sep = if direct_path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{direct_path}{sep}", host_base(host));
        if let Some(h) = &self.spec.expected.file_enc_sha256 {
            url.push_str(&format!("hash={}&", b64::url_nopad(h)));
        }
        url.push_str(&format!(
            "mms-type={}&__wa-mms=",
            self.spec.media_type.mms_type()
        ));
        url
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
                } else if c.hosts.is_empty() && matches!(self.spec.source, Source::DirectPath(_)) {
                    self.finish(Err(DownloadError::NoHosts));
                } else {
                    if matches!(self.state, State::NeedConn { .. }) {
                        self.state = State::Ready;
                    }
                    self.conn = Some(c);
                }
            }
            Input::Timeout => match &self.state {
                State::InFlight(f) if now >= f.ex.deadline => {
                    let f = self.take_in_flight();
                    self.on_failure(now, &f, HostFailureReason::Timeout);
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
                    200 | 206 => self.on_body(data),
                    _ => push_capped(&mut f.error_body, data, ERROR_BODY_CAP),
                }
            }
            Input::End { id } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                f.ex.status_before("the end of a response before its head")?;
                let f = self.take_in_flight();
                self.on_end(now, f);
            }
            Input::Failed { id, reason } => {
                if self.in_flight(id)?.is_none() {
                    return Ok(());
                }
                let f = self.take_in_flight();
                self.on_failure(now, &f, HostFailureReason::Transport(reason));
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

    fn take_in_flight(&mut self) -> InFlight {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::InFlight(f) => f,
            _ => unreachable!("checked by the caller"),
        }
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
            let range = header(CONTENT_RANGE).and_then(parse_content_range);
            match range {
                Some((start, end)) if start == f.asked_from => {
                    f.declared_end = Some(end);
                }
                _ => {
                    let f = self.take_in_flight();
                    self.cursor.record(
                        &f.ex.host,
                        HostFailureReason::Malformed(format!(
                            "206 whose Content-Range does not start at {}",
                            f.asked_from
                        )),
                    );
                    self.advance(now);
                }
            }
        } else {
            // A 200 to a ranged request carries the whole body: drop what we have.
            f.skip = f.asked_from;
            f.declared_end = len;
        }
        if let State::InFlight(f) = &self.state {
            if let Some(end) = f.declared_end {
                if self.total.is_none() {
                    self.total = Some(end);
                }
                if end > self.opts.max_body_len {
                    self.finish(Err(IntegrityError::TooLarge {
                        max: self.opts.max_body_len,
                    }
                    .into()));
                }
            }
        }
    }

    fn on_body(&mut self, mut data: &[u8]) {
        let State::InFlight(f) = &mut self.state else {
            return;
        };
        if f.skip > 0 {
            let n = f.skip.min(data.len() as u64) as usize;
            f.skip -= n as u64;
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        let received = self.fed + (self.carry.len() + data.len()) as u64;
        if received > self.opts.max_body_len {
            self.finish(Err(IntegrityError::TooLarge {
                max: self.opts.max_body_len,
            }
            .into()));
            return;
        }
        let dec = self.decryptor.as_mut().expect("present until the end");
        // Feed whole blocks only, so that a cut leaves `fed` on a block boundary.
        let whole = (self.carry.len() + data.len()) / 16 * 16;
        if whole > 0 {
            if self.carry.is_empty() {
                dec.update_unverified(&data[..whole], &mut self.plain);
                self.carry.extend_from_slice(&data[whole..]);
            } else {
                let from_data = whole - self.carry.len();
                self.carry.extend_from_slice(&data[..from_data]);
                dec.update_unverified(&self.carry, &mut self.plain);
                self.carry.clear();
                self.carry.extend_from_slice(&data[from_data..]);
            }
            self.fed += whole as u64;
        } else {
            self.carry.extend_from_slice(data);
        }
        self.progress = Some(received);
    }

    fn on_end(&mut self, now: Instant, f: InFlight) {
        let status = f.ex.status.expect("checked by the caller");
        match status {
            200 | 206 => {
                let received = self.fed + self.carry.len() as u64;
                if let Some(end) = f.declared_end {
                    if received < end {
                        self.on_failure(
                            now,
                            &f,
                            HostFailureReason::Transport("body cut short".into()),
                        );
                        return;
                    }
                }
                let mut dec = self.decryptor.take().expect("present until the end");
                dec.update_unverified(&self.carry, &mut self.plain);
                self.carry.clear();
                let mut tail = Vec::new();
                match dec.finish(&mut tail) {
                    Ok(verified) => {
                        self.plain.extend_from_slice(&tail);
                        self.finish(Ok(DownloadResult {
                            verified,
                            host: f.ex.host,
                        }));
                    }
                    Err(e) => {
                        self.plain.clear();
                        self.finish(Err(e.into()));
                    }
                }
            }
            403 | 404 | 410 => {
                self.cursor.record_status(&f.ex.host, status, &f.error_body);
                self.cursor.gone_in_round += 1;
                let hosts = self.hosts().map_or(1, |h| h.len());
                if self.cursor.gone_in_round >= hosts {
                    let failures = std::mem::take(&mut self.cursor.failures);
                    self.finish(Err(DownloadError::MediaGone { failures }));
                } else {
                    self.advance(now);
                }
            }
            408 | 429 => {
                self.cursor.record_status(&f.ex.host, status, &f.error_body);
                let next =
                    self.cursor
                        .same_host(&self.opts.retry, now, self.started, f.ex.retry_after);
                self.apply(next);
            }
            500..=599 => {
                self.cursor.record_status(&f.ex.host, status, &f.error_body);
                self.advance(now);
            }
            _ => {
                self.finish(Err(DownloadError::Status {
                    host: f.ex.host,
                    status,
                    body: error_text(&f.error_body),
                }));
            }
        }
    }

    fn on_failure(&mut self, now: Instant, f: &InFlight, reason: HostFailureReason) {
        // Keep the whole blocks already verified-in-progress; drop a partial block.
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
        let hosts = self.hosts().map_or(1, |h| h.len());
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
        if outcome.is_err() {
            self.plain.clear();
        }
        self.state = State::Done;
        self.outcome = Some(outcome.clone());
        Output::Done(outcome)
    }
}

/// `bytes a-b/c` → `(a, b + 1)`.
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, _) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse::<u64>().ok()? + 1))
}

/// The host part (with scheme when not https) of a full URL, for error reports.
fn url_host(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if scheme == "https" {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}
