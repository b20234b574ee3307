//! The upload machine (PROTOCOL §3–4): which host, which request, when to retry, resume
//! or renew. It never touches the network; see the crate docs for the drive loop.
//!
//! Transitions live in [`Upload::poll_output`] (deciding the next request) and
//! `on_answer` / `on_failure` (classifying what came back):
//!
//! | answer | next |
//! |---|---|
//! | 200 with `url` or `direct_path` | done |
//! | 200 without them, or not JSON | record, next host |
//! | 401 / 403 | forced media connection renewal, once; then final |
//! | 408 / 429 | same host after `Retry-After` (or backoff) |
//! | 5xx, transport failure, deadline | record, next host; after the last, back off, next round |
//! | other 4xx | final |
//! | resume check: `"complete"` | done, no body sent |
//! | resume check: `n`, `0 < n < len` | send `body[n..]` with `file_offset=n` |
//! | resume check: anything else | send the whole body |

use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use crate::b64;
use crate::conn::{host_base, url_encode, MediaConn};
use crate::encrypt::{body_len, EncryptedMedia};
use crate::error::{HostFailureReason, Misuse, UploadError};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::transfer::{
    base_headers, error_text, push_capped, BodySpec, Exchange, HostCursor, Input, Next, Output,
    Request, RequestId, RetryPolicy, ERROR_BODY_CAP,
};

/// What is being uploaded: the facts of the body, never the body itself.
#[derive(Clone, Debug)]
pub struct UploadSpec {
    /// The media type (upload path, and the key expansion already done).
    pub media_type: MediaType,
    /// The media key; `None` for newsletter media, which is not encrypted.
    pub media_key: Option<MediaKey>,
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the upload body; `None` for newsletter media.
    pub file_enc_sha256: Option<[u8; 32]>,
    /// Plaintext length.
    pub file_length: u64,
    /// When the media key was made (Unix seconds), for the message's `mediaKeyTimestamp`.
    pub media_key_timestamp: Option<i64>,
}

impl UploadSpec {
    /// An encrypted upload, from the summary of an [`Encryptor`](crate::Encryptor) pass.
    pub fn encrypted(media_type: MediaType, media: &EncryptedMedia) -> Self {
        UploadSpec {
            media_type,
            media_key: Some(media.media_key.clone()),
            file_sha256: media.file_sha256,
            file_enc_sha256: Some(media.file_enc_sha256),
            file_length: media.file_length,
            media_key_timestamp: None,
        }
    }

    /// A newsletter (channel) upload: the plaintext goes up as is.
    pub fn newsletter(media_type: MediaType, file_sha256: [u8; 32], file_length: u64) -> Self {
        UploadSpec {
            media_type,
            media_key: None,
            file_sha256,
            file_enc_sha256: None,
            file_length,
            media_key_timestamp: None,
        }
    }

    /// Sets the media key's creation time (Unix seconds).
    pub fn with_media_key_timestamp(mut self, unix_seconds: i64) -> Self {
        self.media_key_timestamp = Some(unix_seconds);
        self
    }

    /// True for newsletter (unencrypted) media.
    pub fn is_newsletter(&self) -> bool {
        self.file_enc_sha256.is_none()
    }

    /// Length of what is sent: `16k + 10` encrypted bytes, or the plaintext's length.
    pub fn body_len(&self) -> u64 {
        if self.is_newsletter() {
            self.file_length
        } else {
            body_len(self.file_length)
        }
    }

    /// The upload token: unpadded base64url of `file_enc_sha256` (of `file_sha256` for
    /// newsletter media).
    pub fn token(&self) -> String {
        b64::url_nopad(self.file_enc_sha256.as_ref().unwrap_or(&self.file_sha256))
    }
}

/// How an upload behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadOptions {
    /// Hosts, rounds, attempts, deadlines, backoff.
    pub retry: RetryPolicy,
    /// Use the resumable flow for large bodies.
    pub resume: bool,
    /// Bodies of at least this many bytes use the resumable flow (WhatsApp Web: 5 MiB).
    pub resume_threshold: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            retry: RetryPolicy::default(),
            resume: true,
            resume_threshold: 5 << 20,
        }
    }
}

/// What a message needs to reference the uploaded media.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadResult {
    /// Full URL of the media.
    pub url: String,
    /// The path (with its query) on any media host.
    pub direct_path: String,
    /// The media key (`None` for newsletter media). Redacted in `Debug`.
    pub media_key: Option<MediaKey>,
    /// SHA-256 of the upload body (`None` for newsletter media).
    pub file_enc_sha256: Option<[u8; 32]>,
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// Plaintext length.
    pub file_length: u64,
    /// When the media key was made (Unix seconds), as the spec said.
    pub media_key_timestamp: Option<i64>,
    /// The CDN's `handle` (newsletter media needs it to send the message).
    pub handle: Option<String>,
    /// The CDN's `object_id`.
    pub object_id: Option<String>,
    /// The CDN's `meta_hmac`.
    pub meta_hmac: Option<String>,
    /// The CDN's `ts`.
    pub ts: Option<i64>,
    /// The CDN's `fbid`.
    pub fbid: Option<String>,
    /// The host that took the upload.
    pub host: String,
}

impl UploadResult {
    /// What a receiver needs to download this media back, every check armed
    /// (`None` for newsletter media, which has no key).
    pub fn download_spec(&self, media_type: MediaType) -> Option<crate::DownloadSpec> {
        Some(crate::DownloadSpec {
            media_type,
            media_key: self.media_key.clone()?,
            source: crate::Source::DirectPath(self.direct_path.clone()),
            expected: crate::Expected {
                file_enc_sha256: self.file_enc_sha256,
                file_sha256: Some(self.file_sha256),
                file_length: Some(self.file_length),
            },
        })
    }

    /// The result as one JSON object: binary fields in standard base64 with padding,
    /// optional fields only when present.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("url".into(), self.url.clone().into());
        m.insert("direct_path".into(), self.direct_path.clone().into());
        if let Some(k) = &self.media_key {
            m.insert("media_key".into(), k.to_base64().into());
        }
        if let Some(h) = &self.file_enc_sha256 {
            m.insert("file_enc_sha256".into(), b64::std(h).into());
        }
        m.insert("file_sha256".into(), b64::std(&self.file_sha256).into());
        m.insert("file_length".into(), self.file_length.into());
        if let Some(t) = self.media_key_timestamp {
            m.insert("media_key_timestamp".into(), t.into());
        }
        for (k, v) in [
            ("handle", &self.handle),
            ("object_id", &self.object_id),
            ("meta_hmac", &self.meta_hmac),
            ("fbid", &self.fbid),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        if let Some(ts) = self.ts {
            m.insert("ts".into(), ts.into());
        }
        Value::Object(m)
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    url: Option<String>,
    direct_path: Option<String>,
    handle: Option<Value>,
    object_id: Option<Value>,
    meta_hmac: Option<Value>,
    ts: Option<Value>,
    fbid: Option<Value>,
    resume: Option<Value>,
}

fn value_text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ResumeCheck,
    Body { from: u64 },
}

#[derive(Debug)]
struct InFlight {
    ex: Exchange,
    kind: Kind,
    body: Vec<u8>,
}

#[derive(Debug)]
enum State {
    /// Decide the next request on the next poll.
    Ready,
    /// Waiting for a media connection.
    NeedConn { force: bool },
    /// A request is out.
    InFlight(InFlight),
    /// Waiting before the next attempt.
    Backoff { until: Instant },
    /// The outcome is reached.
    Done,
}

/// One upload. Feed it [`Input`]s with [`handle_input`](Self::handle_input) and drain
/// [`poll_output`](Self::poll_output) after each, until `Wait` or `Done`.
#[derive(Debug)]
pub struct Upload {
    spec: UploadSpec,
    opts: UploadOptions,
    started: Instant,
    conn: Option<MediaConn>,
    state: State,
    cursor: HostCursor,
    next_id: u64,
    auth_renewed: bool,
    resume_check_due: bool,
    next_from: u64,
    progress: Option<u64>,
    outcome: Option<Result<UploadResult, UploadError>>,
}

impl Upload {
    /// A new upload of `spec`, started at `now`. It asks for a media connection first
    /// unless one is pushed with [`Input::MediaConn`].
    pub fn new(spec: UploadSpec, opts: UploadOptions, now: Instant) -> Self {
        let resume_check_due =
            opts.resume && !spec.is_newsletter() && spec.body_len() >= opts.resume_threshold;
        Upload {
            spec,
            opts,
            started: now,
            conn: None,
            state: State::Ready,
            cursor: HostCursor::default(),
            next_id: 0,
            auth_renewed: false,
            resume_check_due,
            next_from: 0,
            progress: None,
            outcome: None,
        }
    }

    /// Length of the upload body.
    pub fn body_len(&self) -> u64 {
        self.spec.body_len()
    }

    /// The outcome, once reached.
    pub fn outcome(&self) -> Option<&Result<UploadResult, UploadError>> {
        self.outcome.as_ref()
    }

    /// The next thing the driver must do.
    pub fn poll_output(
        &mut self,
        now: Instant,
    ) -> Output<'static, Result<UploadResult, UploadError>> {
        if let Some(o) = &self.outcome {
            return Output::Done(o.clone());
        }
        if let Some(done) = self.progress.take() {
            return Output::Progress {
                done,
                total: Some(self.body_len()),
            };
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
        let conn = match &self.conn {
            Some(c) if !c.is_expired(now) => c,
            _ => {
                self.state = State::NeedConn { force: false };
                return Output::NeedMediaConn { force: false };
            }
        };
        if conn.hosts.is_empty() {
            return self.finish(Err(UploadError::NoHosts));
        }
        if !self.cursor.may_retry(&self.opts.retry) {
            return self.give_up("attempt limit reached");
        }
        let host = conn.hosts[self.cursor.idx.min(conn.hosts.len() - 1)].clone();
        let token = self.spec.token();
        let path = if self.spec.is_newsletter() {
            self.spec.media_type.newsletter_upload_path()
        } else {
            self.spec.media_type.upload_path()
        };
        let mut url = format!(
            "{}{path}/{token}?auth={}&token={token}",
            host_base(&host),
            url_encode(&conn.auth)
        );
        let (kind, body) = if self.resume_check_due {
            url.push_str("&resume=1");
            (Kind::ResumeCheck, BodySpec::Empty)
        } else {
            let from = self.next_from;
            if from > 0 {
                url.push_str(&format!("&file_offset={from}"));
            }
            (
                Kind::Body { from },
                BodySpec::UploadBody {
                    from,
                    to: self.body_len(),
                },
            )
        };
        self.cursor.attempts += 1;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let deadline = self.opts.retry.deadline(now, body.len());
        let req = Request {
            id,
            host: host.clone(),
            method: http::Method::POST,
            url,
            headers: base_headers(true, body.len()),
            body,
            deadline,
        };
        self.state = State::InFlight(InFlight {
            ex: Exchange::new(id, host, deadline),
            kind,
            body: Vec::new(),
        });
        Output::Transmit(req)
    }

    /// Feeds one input at time `now`.
    ///
    /// Answers for requests this machine superseded (after their deadline, say) are
    /// ignored; answers for ids it never issued are [`Misuse::UnknownRequest`].
    ///
    /// # Errors
    /// [`Misuse`] when the driver breaks the contract; the machine is unchanged.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), Misuse> {
        if self.outcome.is_some() {
            return Err(Misuse::Finished);
        }
        match input {
            Input::MediaConn(c) => {
                self.on_conn(now, c);
                Ok(())
            }
            Input::Timeout => {
                match &self.state {
                    State::InFlight(f) if now >= f.ex.deadline => {
                        let f = self.take_in_flight();
                        self.on_failure(now, &f, HostFailureReason::Timeout);
                    }
                    State::Backoff { until } if now >= *until => self.state = State::Ready,
                    _ => {}
                }
                Ok(())
            }
            Input::Head {
                id,
                status,
                headers,
            } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                f.ex.head(status, headers)?;
                Ok(())
            }
            Input::Body { id, data } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                let cap = match f
                    .ex
                    .status_before("a body chunk before the response head")?
                {
                    200 => 64 * 1024,
                    _ => ERROR_BODY_CAP,
                };
                push_capped(&mut f.body, data, cap);
                Ok(())
            }
            Input::End { id } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                f.ex.status_before("the end of a response before its head")?;
                let f = self.take_in_flight();
                self.on_answer(now, f);
                Ok(())
            }
            Input::Failed { id, reason } => {
                if self.in_flight(id)?.is_none() {
                    return Ok(());
                }
                let f = self.take_in_flight();
                self.on_failure(now, &f, HostFailureReason::Transport(reason));
                Ok(())
            }
            Input::Sent { id, bytes } => {
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                if let Kind::Body { from } = f.kind {
                    self.progress = Some((from + bytes).min(self.spec.body_len()));
                }
                Ok(())
            }
        }
    }

    fn take_in_flight(&mut self) -> InFlight {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::InFlight(f) => f,
            _ => unreachable!("checked by the caller"),
        }
    }

    /// The in-flight request with this id; `None` for a superseded one.
    fn in_flight(&mut self, id: RequestId) -> Result<Option<&mut InFlight>, Misuse> {
        if id.0 >= self.next_id {
            return Err(Misuse::UnknownRequest(id.0));
        }
        Ok(match &mut self.state {
            State::InFlight(f) if f.ex.id == id => Some(f),
            _ => None,
        })
    }

    fn on_conn(&mut self, now: Instant, c: MediaConn) {
        if c.is_expired(now) {
            // A stale (cached) connection: ask for a fresh one; if even that is stale,
            // it could not be renewed.
            if matches!(self.state, State::NeedConn { force: true }) {
                self.finish(Err(UploadError::ConnExpired));
            } else if matches!(self.state, State::NeedConn { .. } | State::Ready) {
                self.state = State::NeedConn { force: true };
            }
            return;
        }
        if c.hosts.is_empty() {
            self.finish(Err(UploadError::NoHosts));
            return;
        }
        if let State::NeedConn { force } = self.state {
            if force {
                self.cursor.idx = 0;
            }
            self.state = State::Ready;
        }
        self.cursor.idx = self.cursor.idx.min(c.hosts.len() - 1);
        self.conn = Some(c);
    }

    fn on_failure(&mut self, now: Instant, f: &InFlight, reason: HostFailureReason) {
        self.cursor.record(&f.ex.host, reason);
        // A large body cut short may be partly stored: ask before sending it again.
        self.resume_check_due = self.resumable();
        self.advance(now);
    }

    fn resumable(&self) -> bool {
        self.opts.resume
            && !self.spec.is_newsletter()
            && self.body_len() >= self.opts.resume_threshold
    }

    fn advance(&mut self, now: Instant) {
        let hosts = self.conn.as_ref().map_or(1, |c| c.hosts.len());
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

    fn on_answer(&mut self, now: Instant, f: InFlight) {
        let status = f.ex.status.expect("checked before");
        match (f.kind, status) {
            (_, 401 | 403) => {
                if self.auth_renewed {
                    self.finish(Err(UploadError::AuthRejected {
                        host: f.ex.host,
                        status,
                    }));
                } else {
                    self.auth_renewed = true;
                    self.conn = None;
                    self.state = State::NeedConn { force: true };
                }
            }
            (_, 408 | 429) => {
                self.cursor.record_status(&f.ex.host, status, &f.body);
                let next =
                    self.cursor
                        .same_host(&self.opts.retry, now, self.started, f.ex.retry_after);
                self.apply(next);
            }
            (_, 500..=599) => {
                self.cursor.record_status(&f.ex.host, status, &f.body);
                self.resume_check_due = self.resumable();
                self.advance(now);
            }
            (Kind::ResumeCheck, 200) => {
                self.resume_check_due = false;
                self.next_from = 0;
                let Ok(answer) = serde_json::from_slice::<Answer>(&f.body) else {
                    return;
                };
                match &answer.resume {
                    Some(Value::String(s)) if s == "complete" => {
                        if let Some(r) = self.result(&f.ex.host, &answer) {
                            self.finish(Ok(r));
                        }
                    }
                    Some(v) => {
                        let n = match v {
                            Value::Number(n) => n.as_u64(),
                            Value::String(s) => s.trim().parse::<u64>().ok(),
                            _ => None,
                        };
                        if let Some(n) = n.filter(|&n| n > 0 && n < self.body_len()) {
                            self.next_from = n;
                        }
                    }
                    None => {}
                }
            }
            (Kind::ResumeCheck, _) => {
                // The check is an optimisation; a host that does not answer it gets the body.
                self.resume_check_due = false;
                self.next_from = 0;
            }
            (Kind::Body { .. }, 200) => {
                let parsed = serde_json::from_slice::<Answer>(&f.body);
                match parsed.ok().and_then(|a| self.result(&f.ex.host, &a)) {
                    Some(r) => {
                        self.finish(Ok(r));
                    }
                    None => {
                        let why = if serde_json::from_slice::<Value>(&f.body).is_ok() {
                            "200 without url or direct_path".to_owned()
                        } else {
                            format!(
                                "200 with a body that is not JSON: {:?}",
                                error_text(&f.body)
                            )
                        };
                        self.cursor
                            .record(&f.ex.host, HostFailureReason::Malformed(why));
                        self.next_from = 0;
                        self.resume_check_due = self.resumable();
                        self.advance(now);
                    }
                }
            }
            (Kind::Body { .. }, _) => {
                self.finish(Err(UploadError::Status {
                    host: f.ex.host,
                    status,
                    body: error_text(&f.body),
                }));
            }
        }
    }

    fn result(&self, host: &str, a: &Answer) -> Option<UploadResult> {
        let (url, direct_path) = match (&a.url, &a.direct_path) {
            (Some(u), Some(d)) => (u.clone(), d.clone()),
            (Some(u), None) => {
                let path = u.split_once("://").map(|(_, rest)| rest).unwrap_or(u);
                let d = path.find('/').map(|i| path[i..].to_owned())?;
                (u.clone(), d)
            }
            (None, Some(d)) => (format!("{}{d}", host_base(host)), d.clone()),
            (None, None) => return None,
        };
        Some(UploadResult {
            url,
            direct_path,
            media_key: self.spec.media_key.clone(),
            file_enc_sha256: self.spec.file_enc_sha256,
            file_sha256: self.spec.file_sha256,
            file_length: self.spec.file_length,
            media_key_timestamp: self.spec.media_key_timestamp,
            handle: value_text(&a.handle),
            object_id: value_text(&a.object_id),
            meta_hmac: value_text(&a.meta_hmac),
            ts: value_text(&a.ts).and_then(|t| t.parse().ok()),
            fbid: value_text(&a.fbid),
            host: host.to_owned(),
        })
    }

    fn give_up(&mut self, why: &'static str) -> Output<'static, Result<UploadResult, UploadError>> {
        let failures = std::mem::take(&mut self.cursor.failures);
        self.finish(Err(UploadError::AllHostsFailed { why, failures }))
    }

    fn finish(
        &mut self,
        outcome: Result<UploadResult, UploadError>,
    ) -> Output<'static, Result<UploadResult, UploadError>> {
        self.state = State::Done;
        self.outcome = Some(outcome.clone());
        Output::Done(outcome)
    }
}
