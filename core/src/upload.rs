//! The upload machine (PROTOCOL §3–4): which host, which request, when to retry, resume
//! or renew. It never touches the network; see the crate docs for the drive loop.
//!
//! Transitions live in [`Upload::poll_output`] (deciding the next request) and
//! `on_answer` / `on_failure` (classifying what came back), after WhatsApp Web's
//! `WAWebMmsClientMmsUpload` and `WAWebMmsClientIsErrorRetryable`:
//!
//! | answer | next |
//! |---|---|
//! | 2xx with `url` and `direct_path` | done |
//! | 2xx without them, or not JSON | final: [`UploadError::Malformed`] |
//! | 401 / 403 | forced media connection renewal, once; then [`UploadError::AuthRejected`] |
//! | 413 / 415 / 507 | final: [`UploadError::TooLarge`] / [`UploadError::HashMismatch`] / [`UploadError::Throttled`] |
//! | 415 after a resumed (partial) send | once: the whole body again from 0 |
//! | 429 with `Retry-After` ≤ the backoff cap | wait once on the same host; else [`UploadError::Throttled`] |
//! | 5xx (not 507), transport failure, deadline | next attempt (host per §3), after a backoff; a 503's `Retry-After` is honoured |
//! | any other status | final: [`UploadError::Status`] |
//! | resume probe: `"complete"` | done, no body sent |
//! | resume probe: `n`, `0 < n < len` | send `body[n..]` with `bytestart=n&byteend=len` |
//! | resume probe: anything else | send the whole body |
//!
//! A probe (`resume=1`) is sent only when the key is reused (an interrupted upload run
//! again) or on the attempt after a body of at least the resume threshold was cut mid-way,
//! never on the first attempt of a fresh key: the CDN cannot have it.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::b64;
use crate::conn::{form_encode, host_base, MediaConn};
use crate::encrypt::{body_len, EncryptedMedia};
use crate::error::{HostFailureReason, Misuse, Unsupported, UnsupportedMediaType, UploadError};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::transfer::{
    base_headers, push_capped, BodySpec, Exchange, HostCursor, Input, Output, Request, RequestId,
    RetryPolicy, ERROR_BODY_CAP,
};

/// The `media_id` query value of an upload: a random integer below 2^53, drawn once per
/// upload (WhatsApp Web draws it per upload; the machine takes it as an input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MediaId(u64);

impl MediaId {
    /// The largest value plus one: 2^53 (a JavaScript safe integer).
    pub const LIMIT: u64 = 1 << 53;

    /// `id` when it lies in `1..2^53` (WhatsApp Web draws
    /// `1 + floor(MAX_SAFE_INTEGER · random())`).
    pub fn new(id: u64) -> Option<Self> {
        (1..Self::LIMIT).contains(&id).then_some(MediaId(id))
    }

    /// A fresh id from the OS CSPRNG (for convenience layers; the machine never draws).
    ///
    /// # Errors
    /// When the OS has no randomness to give.
    pub fn generate() -> Result<Self, crate::error::NoRandomness> {
        // `r % (2^53 - 1)` lies in 0..2^53-1, so adding 1 stays below 2^53.
        let r = (getrandom::u64().map_err(crate::error::NoRandomness::from_os)? >> 11)
            % (Self::LIMIT - 1);
        Ok(MediaId(r.saturating_add(1)))
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What is being uploaded: the facts of the body, never the body itself.
#[derive(Clone, Debug)]
pub struct UploadSpec {
    /// The media type (upload path, and the key expansion already done).
    pub media_type: MediaType,
    /// The media key; `None` for unencrypted media (newsletter media, product images).
    pub media_key: Option<MediaKey>,
    /// True when the key was used before (an interrupted upload run again): the CDN may
    /// hold the body or part of it, so the first attempt asks (a resume probe).
    pub key_reused: bool,
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the upload body; `None` for unencrypted media.
    pub file_enc_sha256: Option<[u8; 32]>,
    /// Plaintext length.
    pub file_length: u64,
    /// When the media key was made (Unix seconds), for the message's `mediaKeyTimestamp`.
    pub media_key_timestamp: Option<i64>,
    /// The upload's `media_id`.
    pub media_id: MediaId,
    /// Newsletter (channel) media: unencrypted, on the type's newsletter path.
    pub newsletter: bool,
    /// The streaming sidecar the encryption pass made (PROTOCOL §2.7), for the message.
    pub streaming_sidecar: Option<Vec<u8>>,
    /// An animated sticker's first-frame sidecar (PROTOCOL §2.8), for the message's
    /// `firstFrameSidecar`.
    pub first_frame_sidecar: Option<[u8; crate::sidecar::ENTRY]>,
    /// The `firstFrameLength` it was computed for.
    pub first_frame_length: Option<u64>,
}

impl UploadSpec {
    /// An encrypted upload, from the summary of an [`Encryptor`](crate::Encryptor) pass.
    pub fn encrypted(media_type: MediaType, media: &EncryptedMedia, media_id: MediaId) -> Self {
        UploadSpec {
            media_type,
            media_key: Some(media.media_key.clone()),
            key_reused: false,
            file_sha256: media.file_sha256,
            file_enc_sha256: Some(media.file_enc_sha256),
            file_length: media.file_length,
            media_key_timestamp: None,
            media_id,
            newsletter: false,
            streaming_sidecar: media.streaming_sidecar.clone(),
            first_frame_sidecar: media.first_frame_sidecar,
            first_frame_length: media.first_frame_length,
        }
    }

    /// A newsletter (channel) upload: the plaintext goes up as is, on the type's
    /// newsletter path.
    pub fn newsletter(
        media_type: MediaType,
        file_sha256: [u8; 32],
        file_length: u64,
        media_id: MediaId,
    ) -> Self {
        UploadSpec {
            newsletter: true,
            ..Self::unencrypted(media_type, file_sha256, file_length, media_id)
        }
    }

    /// An unencrypted upload on the type's own path: product catalog images
    /// (`/product/image`). Any type that is encrypted fails with
    /// [`UploadError::Unsupported`].
    pub fn unencrypted(
        media_type: MediaType,
        file_sha256: [u8; 32],
        file_length: u64,
        media_id: MediaId,
    ) -> Self {
        UploadSpec {
            media_type,
            media_key: None,
            key_reused: false,
            file_sha256,
            file_enc_sha256: None,
            file_length,
            media_key_timestamp: None,
            media_id,
            newsletter: false,
            streaming_sidecar: None,
            first_frame_sidecar: None,
            first_frame_length: None,
        }
    }

    /// Sets the media key's creation time (Unix seconds).
    pub fn with_media_key_timestamp(mut self, unix_seconds: i64) -> Self {
        self.media_key_timestamp = Some(unix_seconds);
        self
    }

    /// Marks the key as used before: the first attempt probes for a stored body.
    pub fn with_key_reused(mut self, reused: bool) -> Self {
        self.key_reused = reused;
        self
    }

    /// True for unencrypted media (newsletter media, product images).
    pub fn is_unencrypted(&self) -> bool {
        self.file_enc_sha256.is_none()
    }

    /// Length of what is sent: `16k + 10` encrypted bytes, or the plaintext's length.
    pub fn body_len(&self) -> u64 {
        if self.is_unencrypted() {
            self.file_length
        } else {
            body_len(self.file_length)
        }
    }

    /// The upload token `T`: base64url **with** padding of `file_enc_sha256` (of
    /// `file_sha256` for unencrypted media), as `WABase64UrlSafe` makes it.
    pub fn token(&self) -> String {
        b64::url(self.file_enc_sha256.as_ref().unwrap_or(&self.file_sha256))
    }

    /// The upload path: the newsletter path, or the type's path (PROTOCOL §1).
    ///
    /// # Errors
    /// When WhatsApp has no such path for the type, or an encrypted type is to go up
    /// unencrypted outside a newsletter.
    pub fn upload_path(&self) -> Result<&str, UnsupportedMediaType> {
        if self.newsletter {
            return self.media_type.newsletter_upload_path();
        }
        if self.is_unencrypted() && self.media_type.is_encrypted() {
            return Err(UnsupportedMediaType {
                media_type: self.media_type.to_string(),
                what: Unsupported::Unencrypted,
            });
        }
        self.media_type.upload_path()
    }
}

/// How an upload behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadOptions {
    /// Attempts, deadlines, backoff.
    pub retry: RetryPolicy,
    /// Use the resumable flow (probes) at all.
    pub resume: bool,
    /// After a cut, bodies of at least this many bytes probe before sending again
    /// (WhatsApp Web: 5 MiB).
    pub resume_threshold: u64,
    /// Ask the CDN to make a thumbnail (`server_thumb_gen=1`); its answer's
    /// `thumbnail_info` lands in [`UploadResult::thumbnail_info`].
    pub server_thumb_gen: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            // WhatsApp Web: 4 attempts, 1 s, 2 s, 4 s apart (`WAWebMmsClientMmsBackoffOptions`).
            retry: RetryPolicy {
                max_attempts: 4,
                backoff_base: Duration::from_secs(1),
                ..RetryPolicy::default()
            },
            resume: true,
            resume_threshold: 5 << 20,
            server_thumb_gen: false,
        }
    }
}

/// The media's larger thumbnail: the one the CDN made when asked with
/// `server_thumb_gen=1` (its answer's `thumbnail_info`), or one uploaded under the
/// media's key ([`UploadResult::attach_thumbnail`]). The message's `thumbnailDirectPath`,
/// `thumbnailSha256`, `thumbnailEncSha256`, `thumbnailWidth` and `thumbnailHeight`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThumbnailInfo {
    /// `thumbnail_direct_path`.
    pub direct_path: Option<String>,
    /// `thumbnail_sha256`, as the CDN gave it (base64): the thumbnail's plaintext SHA-256.
    pub sha256: Option<String>,
    /// The uploaded thumbnail's `file_enc_sha256` (base64); the CDN gives none for its own.
    pub enc_sha256: Option<String>,
    /// The thumbnail's width in pixels, when known.
    pub width: Option<u32>,
    /// The thumbnail's height in pixels, when known.
    pub height: Option<u32>,
}

/// What a message needs to reference the uploaded media.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadResult {
    /// Full URL of the media.
    pub url: String,
    /// The path (with its query) on any media host.
    pub direct_path: String,
    /// The media type uploaded.
    pub media_type: MediaType,
    /// The media key (`None` for unencrypted media). Redacted in `Debug`.
    pub media_key: Option<MediaKey>,
    /// SHA-256 of the upload body (`None` for unencrypted media).
    pub file_enc_sha256: Option<[u8; 32]>,
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// Plaintext length.
    pub file_length: u64,
    /// When the media key was made (Unix seconds), as the spec said.
    pub media_key_timestamp: Option<i64>,
    /// The streaming sidecar (PROTOCOL §2.7): the message's `streamingSidecar`.
    pub streaming_sidecar: Option<Vec<u8>>,
    /// An animated sticker's first-frame sidecar (PROTOCOL §2.8): the message's
    /// `firstFrameSidecar`.
    pub first_frame_sidecar: Option<[u8; crate::sidecar::ENTRY]>,
    /// The message's `firstFrameLength`, when a first-frame sidecar was computed.
    pub first_frame_length: Option<u64>,
    /// The CDN's `handle` (newsletter media needs it to send the message).
    pub handle: Option<String>,
    /// The CDN's `thumbnail_info` (when `server_thumb_gen` was asked).
    pub thumbnail_info: Option<ThumbnailInfo>,
    /// The CDN's `metadata_url`.
    pub metadata_url: Option<String>,
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
    /// True when a resume probe answered `complete`: the CDN already held this body
    /// (same key, same hash) and not a byte of it was sent.
    pub already_stored: bool,
    /// True when an upload cache answered from an earlier upload (the CDN confirmed it
    /// still holds the body); set by the cache, never by the machine.
    pub cached: bool,
}

impl UploadResult {
    /// What a receiver needs to download this media back, every check armed.
    pub fn download_spec(&self) -> crate::DownloadSpec {
        crate::DownloadSpec {
            media_type: self.media_type.clone(),
            media_key: self.media_key.clone(),
            source: crate::Source::DirectPath(self.direct_path.clone()),
            expected: crate::Expected {
                file_enc_sha256: self.file_enc_sha256,
                file_sha256: Some(self.file_sha256),
                file_length: Some(self.file_length),
            },
            streaming_sidecar: self.streaming_sidecar.clone(),
        }
    }

    /// Records `thumbnail`, the upload of this media's larger thumbnail under its key
    /// (see `wamedia_driver::UploadJob::thumbnail_for`), `width` ×
    /// `height` pixels, as this result's [`thumbnail_info`](Self::thumbnail_info): the
    /// message's `thumbnailDirectPath`, `thumbnailSha256` (the plaintext's),
    /// `thumbnailEncSha256`, `thumbnailWidth` and `thumbnailHeight`
    /// (`WAWebMediaPrepHelpers.maybeGetThumbnailData`).
    pub fn attach_thumbnail(&mut self, thumbnail: &UploadResult, width: u32, height: u32) {
        self.thumbnail_info = Some(ThumbnailInfo {
            direct_path: Some(thumbnail.direct_path.clone()),
            sha256: Some(b64::std(&thumbnail.file_sha256)),
            enc_sha256: thumbnail.file_enc_sha256.as_ref().map(|h| b64::std(h)),
            width: Some(width),
            height: Some(height),
        });
    }

    /// The result as one JSON object: binary fields in standard base64 with padding,
    /// optional fields only when present.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("url".into(), self.url.clone().into());
        m.insert("direct_path".into(), self.direct_path.clone().into());
        if let Some(n) = self.media_type.name() {
            m.insert("media_type".into(), n.into());
        }
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
        if let Some(s) = &self.streaming_sidecar {
            m.insert("streaming_sidecar".into(), b64::std(s).into());
        }
        if let Some(s) = &self.first_frame_sidecar {
            m.insert("first_frame_sidecar".into(), b64::std(s).into());
        }
        if let Some(l) = self.first_frame_length {
            m.insert("first_frame_length".into(), l.into());
        }
        for (k, v) in [
            ("handle", &self.handle),
            ("metadata_url", &self.metadata_url),
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
        if self.cached {
            m.insert("cached".into(), true.into());
        }
        if let Some(t) = &self.thumbnail_info {
            let mut o = serde_json::Map::new();
            if let Some(p) = &t.direct_path {
                o.insert("thumbnail_direct_path".into(), p.clone().into());
            }
            if let Some(s) = &t.sha256 {
                o.insert("thumbnail_sha256".into(), s.clone().into());
            }
            if let Some(s) = &t.enc_sha256 {
                o.insert("thumbnail_enc_sha256".into(), s.clone().into());
            }
            if let Some(w) = t.width {
                o.insert("thumbnail_width".into(), w.into());
            }
            if let Some(h) = t.height {
                o.insert("thumbnail_height".into(), h.into());
            }
            m.insert("thumbnail_info".into(), Value::Object(o));
        }
        Value::Object(m)
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    url: Option<Value>,
    direct_path: Option<Value>,
    handle: Option<Value>,
    thumbnail_info: Option<Value>,
    metadata_url: Option<Value>,
    object_id: Option<Value>,
    meta_hmac: Option<Value>,
    ts: Option<Value>,
    fbid: Option<Value>,
    resume: Option<Value>,
}

fn value_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A resume probe's `resume` value as `parseInt` reads it: leading digits of a string,
/// or a whole number.
fn resume_offset(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim_start();
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Probe,
    Body { from: u64 },
}

#[derive(Debug)]
struct InFlight {
    ex: Exchange,
    kind: Kind,
    body: Vec<u8>,
    sent: u64,
}

#[derive(Debug)]
enum State {
    /// Decide the next request on the next poll.
    Ready,
    /// Waiting for a media connection.
    NeedConn { force: bool },
    /// A request is out.
    InFlight(InFlight),
    /// Waiting before the next request.
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
    /// The host of the current attempt, kept between its probe and its body.
    host: Option<String>,
    /// The previous attempt's host, and whether it stays pinned (cut mid-body, and the
    /// next attempt may resume it).
    previous: Option<(String, bool)>,
    /// Hosts of unknown upload capability that answered 415 to a whole body: "no uploads
    /// here" (PROTOCOL v3 §3); never chosen again by this upload.
    no_uploads: Vec<String>,
    auth_renewed: bool,
    throttle_waited: bool,
    fresh_after_415: bool,
    probe_due: bool,
    next_from: u64,
    progress: Option<u64>,
    outcome: Option<Result<UploadResult, UploadError>>,
}

impl Upload {
    /// A new upload of `spec`, started at `now`. It asks for a media connection first
    /// unless one is pushed with [`Input::MediaConn`].
    pub fn new(spec: UploadSpec, opts: UploadOptions, now: Instant) -> Self {
        let probe_due = opts.resume && spec.key_reused && !spec.is_unencrypted();
        let mut cursor = HostCursor::default();
        if let Some(k) = &spec.media_key {
            cursor.secrets.add_key(k);
        }
        Upload {
            spec,
            opts,
            started: now,
            conn: None,
            state: State::Ready,
            cursor,
            next_id: 0,
            host: None,
            previous: None,
            no_uploads: Vec::new(),
            auth_renewed: false,
            throttle_waited: false,
            fresh_after_415: false,
            probe_due,
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

    fn deadline_of_transfer(&self) -> Option<Instant> {
        self.started.checked_add(self.opts.retry.total_timeout)
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
            State::Done => return self.give_up("finished"),
        }
        self.state = State::Ready;
        if self.deadline_of_transfer().is_some_and(|d| now >= d) {
            return self.give_up("deadline passed");
        }
        let path = match self.spec.upload_path() {
            Ok(p) => p.to_owned(),
            Err(e) => return self.finish(Err(UploadError::Unsupported(e))),
        };
        let conn = match &self.conn {
            Some(c) if !c.is_expired(now) => c,
            _ => {
                self.state = State::NeedConn { force: false };
                return Output::NeedMediaConn { force: false };
            }
        };
        let host = match &self.host {
            Some(h) => h.clone(),
            None => {
                let prev = self.previous.as_ref().map(|(h, m)| (h.as_str(), *m));
                let name = self
                    .spec
                    .media_type
                    .host_type_name(self.spec.newsletter)
                    .ok();
                match conn.upload_host_named(
                    name.as_deref(),
                    self.cursor.attempts,
                    prev,
                    &self.no_uploads,
                ) {
                    Some(h) => h,
                    None => {
                        return self.finish(Err(UploadError::NoHosts {
                            media_type: self.spec.media_type.to_string(),
                        }))
                    }
                }
            }
        };
        self.host = Some(host.clone());
        let token = self.spec.token();
        let mut url = format!(
            "{}{path}/{token}?auth={}&token={}",
            host_base(&host),
            form_encode(&conn.auth),
            form_encode(&token),
        );
        let len = self.body_len();
        let (kind, body) = if self.probe_due {
            url.push_str("&resume=1");
            (Kind::Probe, BodySpec::Empty)
        } else {
            let from = self.next_from;
            if from > 0 {
                url.push_str(&format!("&bytestart={from}&byteend={len}"));
            }
            (Kind::Body { from }, BodySpec::UploadBody { from, to: len })
        };
        url.push_str(&format!("&media_id={}", self.spec.media_id.get()));
        if self.opts.server_thumb_gen {
            url.push_str("&server_thumb_gen=1");
        }
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let deadline = self
            .opts
            .retry
            .deadline(now, body.len(), self.deadline_of_transfer());
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
            sent: 0,
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
                        self.on_failure(now, &f, HostFailureReason::Timeout, None);
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
                    200..=299 => 64 * 1024,
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
                self.on_failure(now, &f, HostFailureReason::Transport(reason), None);
                Ok(())
            }
            Input::Sent { id, bytes } => {
                let body_len = self.spec.body_len();
                let Some(f) = self.in_flight(id)? else {
                    return Ok(());
                };
                let Kind::Body { from } = f.kind else {
                    return match bytes {
                        0 => Ok(()),
                        _ => Err(Misuse::Unexpected(
                            "body bytes sent for a body-less request",
                        )),
                    };
                };
                let done = from
                    .checked_add(bytes)
                    .filter(|&d| d <= body_len)
                    .ok_or(Misuse::Unexpected("more body bytes sent than the body has"))?;
                f.sent = bytes;
                self.progress = Some(done);
                Ok(())
            }
        }
    }

    fn take_in_flight(&mut self) -> InFlight {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::InFlight(f) => f,
            other => {
                // Callers check first; keep the state if they did not.
                self.state = other;
                InFlight {
                    ex: Exchange::new(RequestId(u64::MAX), String::new(), self.started),
                    kind: Kind::Probe,
                    body: Vec::new(),
                    sent: 0,
                }
            }
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
        if let State::NeedConn { .. } = self.state {
            self.state = State::Ready;
        }
        self.cursor.secrets.add_auth(&c.auth);
        self.conn = Some(c);
    }

    /// The current attempt failed: record why, and start the next one (after a backoff,
    /// or `wait` when the CDN asked for longer), or give up.
    fn on_failure(
        &mut self,
        now: Instant,
        f: &InFlight,
        reason: HostFailureReason,
        wait: Option<Duration>,
    ) {
        let cut = matches!(
            reason,
            HostFailureReason::Transport(_) | HostFailureReason::Timeout
        );
        self.cursor.record(&f.ex.host, reason);
        let moved = f.sent > 0;
        // A large body cut mid-way may be partly stored: ask before sending it again, on
        // the same host. An attempt that got an HTTP answer never pins its host
        // (PROTOCOL v3 §3: WhatsApp Web's loops reset the flag).
        self.probe_due = cut && moved && self.resumable();
        self.next_from = 0;
        self.previous = Some((f.ex.host.clone(), self.probe_due));
        self.host = None;
        self.cursor.attempts = self.cursor.attempts.saturating_add(1);
        if self.cursor.attempts >= self.opts.retry.max_attempts {
            self.give_up("attempt limit reached");
            return;
        }
        let pause = self
            .opts
            .retry
            .backoff(self.cursor.attempts)
            .max(wait.unwrap_or_default());
        self.wait_then_ready(now, pause);
    }

    fn wait_then_ready(&mut self, now: Instant, pause: Duration) {
        let until = now.checked_add(pause).unwrap_or(now);
        let until = match self.deadline_of_transfer() {
            Some(d) => until.min(d),
            None => until,
        };
        self.state = if until > now {
            State::Backoff { until }
        } else {
            State::Ready
        };
    }

    /// True when a 415 from `host` to a whole body should move the upload to another host:
    /// the host's upload capability is unknown, it has not taken part of this body before
    /// (a resumed send's 415 is answered by one fresh send instead), no host was skipped
    /// for this before, and another host takes the type.
    fn may_skip_host_after_415(&self, host: &str) -> bool {
        let Some(conn) = &self.conn else {
            return false;
        };
        if !self.no_uploads.is_empty()
            || self.fresh_after_415
            || !conn
                .hosts
                .iter()
                .any(|h| h.hostname == host && h.upload_capability_unknown())
        {
            return false;
        }
        let name = self
            .spec
            .media_type
            .host_type_name(self.spec.newsletter)
            .ok();
        let skip = [host.to_owned()];
        conn.upload_host_named(name.as_deref(), 0, None, &skip)
            .is_some()
    }

    fn resumable(&self) -> bool {
        self.opts.resume
            && !self.spec.is_unencrypted()
            && self.body_len() >= self.opts.resume_threshold
    }

    fn on_answer(&mut self, now: Instant, f: InFlight) {
        let status = f.ex.status.unwrap_or(0);
        let host = f.ex.host.clone();
        let cap = self.opts.retry.backoff_max;
        match (f.kind, status) {
            (_, 401 | 403) => {
                if self.auth_renewed {
                    self.finish(Err(UploadError::AuthRejected { host, status }));
                } else {
                    self.auth_renewed = true;
                    self.conn = None;
                    self.host = None;
                    self.state = State::NeedConn { force: true };
                }
            }
            (_, 500..=599) if status != 507 => match f.ex.retry_after {
                // Never hammer a CDN that asks for more than we would wait.
                Some(w) if w > cap => {
                    self.finish(Err(UploadError::Throttled {
                        host,
                        status,
                        retry_after: Some(w),
                    }));
                }
                wait => {
                    let reason = HostFailureReason::Status {
                        status,
                        body: self.cursor.secrets.body_text(&f.body),
                    };
                    self.on_failure(now, &f, reason, wait);
                }
            },
            (Kind::Probe, 200..=299) => {
                self.probe_due = false;
                self.next_from = 0;
                let Ok(answer) = serde_json::from_slice::<Answer>(&f.body) else {
                    return;
                };
                match &answer.resume {
                    Some(Value::String(s)) if s == "complete" => {
                        if let Some(mut r) = self.result(&host, &answer) {
                            r.already_stored = true;
                            self.finish(Ok(r));
                        }
                    }
                    Some(v) => {
                        if let Some(n) = resume_offset(v).filter(|&n| n > 0 && n < self.body_len())
                        {
                            self.next_from = n;
                        }
                    }
                    None => {}
                }
            }
            (Kind::Probe, 413 | 415 | 429 | 507) => self.final_status(host, status, &f),
            (Kind::Probe, _) => {
                // 404 or anything else: nothing stored; send the whole body.
                self.probe_due = false;
                self.next_from = 0;
            }
            (Kind::Body { .. }, 200..=299) => {
                let parsed = serde_json::from_slice::<Answer>(&f.body);
                match parsed.ok().and_then(|a| self.result(&host, &a)) {
                    Some(r) => {
                        self.finish(Ok(r));
                    }
                    None => {
                        // WhatsApp Web does not retry an invalid answer either
                        // (`HttpInvalidResponseError`).
                        let why = if serde_json::from_slice::<Value>(&f.body).is_ok() {
                            format!("HTTP {status} without a url and a direct_path")
                        } else {
                            format!(
                                "HTTP {status} with a body that is not JSON: {:?}",
                                self.cursor.secrets.body_text(&f.body)
                            )
                        };
                        self.finish(Err(UploadError::Malformed { host, why }));
                    }
                }
            }
            (Kind::Body { from: 0 }, 415) if self.may_skip_host_after_415(&host) => {
                // A host that never said what it takes: its 415 to a whole body may mean
                // "no uploads here" (a download-only pop host). One try elsewhere
                // before 415 is final (PROTOCOL v3 §3).
                self.no_uploads.push(host);
                self.on_failure(
                    now,
                    &f,
                    HostFailureReason::Status {
                        status,
                        body: self.cursor.secrets.body_text(&f.body),
                    },
                    None,
                );
            }
            (Kind::Body { from }, 415) if from > 0 && !self.fresh_after_415 => {
                // The resumed part did not complete the body the CDN holds: send it all.
                self.fresh_after_415 = true;
                self.cursor.record_status(&host, status, &f.body);
                self.next_from = 0;
                self.state = State::Ready;
            }
            (Kind::Body { .. }, 429) => match f.ex.retry_after.filter(|w| *w <= cap) {
                Some(w) if !self.throttle_waited && self.cursor.may_retry(&self.opts.retry) => {
                    self.throttle_waited = true;
                    self.cursor.record_status(&host, status, &f.body);
                    self.wait_then_ready(now, w);
                }
                _ => self.final_status(host, status, &f),
            },
            (Kind::Body { .. }, _) => self.final_status(host, status, &f),
        }
    }

    fn final_status(&mut self, host: String, status: u16, f: &InFlight) {
        let body = self.cursor.secrets.body_text(&f.body);
        let e = match status {
            413 => UploadError::TooLarge { host, body },
            415 => UploadError::HashMismatch { host, body },
            429 | 503 | 507 => UploadError::Throttled {
                host,
                status,
                retry_after: f.ex.retry_after,
            },
            _ => UploadError::Status { host, status, body },
        };
        self.finish(Err(e));
    }

    fn result(&self, host: &str, a: &Answer) -> Option<UploadResult> {
        let url = non_empty(a.url.as_ref())?;
        let direct_path = non_empty(a.direct_path.as_ref())?;
        let thumbnail_info = match &a.thumbnail_info {
            Some(Value::Object(o)) => Some(ThumbnailInfo {
                direct_path: value_text(o.get("thumbnail_direct_path")),
                sha256: value_text(o.get("thumbnail_sha256")),
                ..ThumbnailInfo::default()
            }),
            _ => None,
        };
        Some(UploadResult {
            url,
            direct_path,
            media_type: self.spec.media_type.clone(),
            media_key: self.spec.media_key.clone(),
            file_enc_sha256: self.spec.file_enc_sha256,
            file_sha256: self.spec.file_sha256,
            file_length: self.spec.file_length,
            media_key_timestamp: self.spec.media_key_timestamp,
            streaming_sidecar: self.spec.streaming_sidecar.clone(),
            first_frame_sidecar: self.spec.first_frame_sidecar,
            first_frame_length: self.spec.first_frame_length,
            handle: value_text(a.handle.as_ref()),
            thumbnail_info,
            metadata_url: value_text(a.metadata_url.as_ref()),
            object_id: value_text(a.object_id.as_ref()),
            meta_hmac: value_text(a.meta_hmac.as_ref()),
            ts: value_text(a.ts.as_ref()).and_then(|t| t.parse().ok()),
            fbid: value_text(a.fbid.as_ref()),
            host: host.to_owned(),
            already_stored: false,
            cached: false,
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
