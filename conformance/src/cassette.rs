//! The cassette format: one recorded scenario of CDN exchanges, as readable JSON.
//!
//! ```json
//! {
//!   "name": "upload-fallback-after-5xx",
//!   "description": "The first host answers 503; the second takes the upload.",
//!   "kind": "upload",
//!   "input": {
//!     "media_type": "image",
//!     "media_key": "<64 hex: a test key, never a real user's; absent when unencrypted>",
//!     "plaintext": { "pattern": { "len": 1000, "seed": 1 } },
//!     "newsletter": false,
//!     "options": { "resume_threshold": 5242880 }
//!   },
//!   "events": [
//!     { "media_conn": { "auth": "REDACTED-AUTH", "ttl": 300, "hosts": ["h1", {"hostname": "h2", "type": "fallback"}], "at_ms": 0 }, "force": false },
//!     { "request": { "at_ms": 0, "method": "POST", "url": "https://h1/mms/image/TOKEN=?auth=REDACTED-AUTH&token=TOKEN%3D&media_id=4242424242",
//!                    "headers": [["content-type", "application/octet-stream"], ...],
//!                    "body_len": 1018, "body_sha256": "<base64>" },
//!       "response": { "status": 503, "headers": [], "body": { "text": "busy" } } },
//!     ...
//!   ],
//!   "outcome": { "ok": { "direct_path": "/v/...", "url": "https://..." } }
//! }
//! ```
//!
//! - **Plaintext**: `{"text": "..."}`, `{"base64": "..."}`, `{"file": "relative/to/the/cassette"}`
//!   or `{"pattern": {"len": N, "seed": S}}` (a deterministic byte generator, so megabytes
//!   need no megabytes on disk).
//! - **Bodies**: requests keep only their length and SHA-256. Response bodies are
//!   `{"text"}`, `{"base64"}`, or `{"media": {"from": A, "to": B, "flip_last_bit": false}}`:
//!   bytes `A..B` of the encrypted body of the input (downloads need no stored ciphertext).
//! - **Answers**: `response` (a whole answer), `cut` (head and part of the body, then the
//!   connection drops), `failure` (a transport error before any answer) or `silence` (no
//!   answer; the request's deadline passes).
//! - **Inputs**: `key_reused` (the first attempt probes), `media_id` (default
//!   [`DEFAULT_MEDIA_ID`]), `wall_unix` (the wall clock a download starts at, default
//!   [`DEFAULT_WALL_UNIX`]), options that differ from the machines' defaults.
//! - **Time**: `at_ms` is virtual time since the start. Replaying jumps the clock to each
//!   deadline the machine announces, and checks each request is made at the recorded time.
//! - **Secrets**: the auth token is always the placeholder [`AUTH_PLACEHOLDER`]; media keys
//!   are test keys. Header order is kept, and files are written deterministically
//!   (struct field order, no maps).
//! - **Outcome**: `{"ok": {field: value, ...}}` compares the listed result fields;
//!   `{"error": {"kind": "AuthRejected", "contains": "..."}}` the error variant and text.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What recorded auth tokens are replaced by.
pub const AUTH_PLACEHOLDER: &str = "REDACTED-AUTH";

/// The `media_id` of a cassette that names none.
pub const DEFAULT_MEDIA_ID: u64 = 4_242_424_242;

/// The wall-clock time (Unix seconds, 2025-10-09) a download cassette starts at when it
/// names none: before the `oe` of the library's direct paths (`7FFFFFFF`, 2038-01-19).
pub const DEFAULT_WALL_UNIX: u64 = 1_760_000_000;

/// One scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cassette {
    /// Short kebab-case name (the file name without `.json`).
    pub name: String,
    /// What the scenario shows.
    pub description: String,
    /// `upload` or `download`.
    pub kind: Kind,
    /// The transfer's inputs.
    pub input: CassetteInput,
    /// The exchanges, in order.
    pub events: Vec<Event>,
    /// How it ends.
    pub outcome: Outcome,
    /// Captured from a real CDN by record mode: request times are not replayed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recorded: bool,
}

/// Which machine a cassette drives.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An upload.
    Upload,
    /// A download.
    Download,
    /// A delete of a history-sync blob (`input.source` is its direct path, `expected`
    /// gives its `file_enc_sha256`).
    Delete,
}

/// The inputs of a scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CassetteInput {
    /// Kebab-case media type name.
    pub media_type: String,
    /// 64 hex characters: a test key (absent for unencrypted media).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_key: Option<String>,
    /// Uploads: the key was used before (an interrupted upload run again).
    #[serde(default, skip_serializing_if = "is_false")]
    pub key_reused: bool,
    /// Uploads: the `media_id` (default [`DEFAULT_MEDIA_ID`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<u64>,
    /// Downloads: the wall-clock time (Unix seconds) at the start, for `oe` expiries
    /// (default [`DEFAULT_WALL_UNIX`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_unix: Option<u64>,
    /// The plaintext (for downloads: what the media decrypts to).
    pub plaintext: Plaintext,
    /// Newsletter (unencrypted) upload.
    #[serde(default, skip_serializing_if = "is_false")]
    pub newsletter: bool,
    /// Machine options that differ from the defaults.
    #[serde(default)]
    pub options: Options,
    /// Downloads: where the media lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
    /// Downloads: what the message says (`"auto"` fills in the true values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<ExpectedSpec>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Download source.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceSpec {
    /// A direct path, tried on each host.
    DirectPath(String),
    /// A full URL.
    Url(String),
}

/// Expected values of a download; each is `"auto"` (the true value), a base64 value, or
/// absent.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExpectedSpec {
    /// `"auto"` or base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_enc_sha256: Option<String>,
    /// `"auto"` or base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
    /// The plaintext length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_length: Option<u64>,
}

/// Options that differ from the machine defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Options {
    /// Bodies at least this long use the resumable flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_threshold: Option<u64>,
    /// Resumable flow on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<bool>,
    /// Rounds over the hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rounds: Option<u32>,
    /// Requests in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// First backoff, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// Total deadline, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_timeout_ms: Option<u64>,
    /// Per-request base timeout, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    /// Downloads: the largest body accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_len: Option<u64>,
    /// Uploads: ask for `server_thumb_gen=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_thumb_gen: Option<bool>,
    /// Downloads: use a full URL whatever its host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_url: Option<bool>,
}

/// Plaintext, inline or generated.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Plaintext {
    /// UTF-8 text.
    Text(String),
    /// Standard base64.
    Base64(String),
    /// A file, relative to the cassette's folder.
    File(String),
    /// `len` bytes from a seeded generator.
    Pattern {
        /// Length in bytes.
        len: u64,
        /// Seed.
        seed: u64,
    },
}

impl Plaintext {
    /// The bytes. `dir` is the cassette's folder, for `file`.
    ///
    /// # Errors
    /// An unreadable file or bad base64.
    pub fn bytes(&self, dir: &Path) -> Result<Vec<u8>, String> {
        match self {
            Plaintext::Text(t) => Ok(t.as_bytes().to_vec()),
            Plaintext::Base64(b) => STANDARD
                .decode(b)
                .map_err(|e| format!("plaintext base64: {e}")),
            Plaintext::File(f) => {
                std::fs::read(dir.join(f)).map_err(|e| format!("plaintext file {f}: {e}"))
            }
            Plaintext::Pattern { len, seed } => Ok(pattern(*len, *seed)),
        }
    }
}

/// `len` bytes of a splitmix64 stream seeded with `seed`.
pub fn pattern(len: u64, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len as usize + 8);
    while (out.len() as u64) < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

/// One step of the exchange.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Event {
    /// The machine asked for a media connection; this one was given.
    MediaConn {
        /// The connection given.
        media_conn: ConnSpec,
        /// Whether the machine asked for a forced renewal.
        force: bool,
    },
    /// A request and its whole answer.
    Response {
        /// The request the machine must make.
        request: RequestSpec,
        /// The answer.
        response: ResponseSpec,
    },
    /// A request answered in part, then cut.
    Cut {
        /// The request the machine must make.
        request: RequestSpec,
        /// The head and the bytes that arrived.
        cut: ResponseSpec,
    },
    /// A request that failed in the transport.
    Failure {
        /// The request the machine must make.
        request: RequestSpec,
        /// The transport's error text.
        failure: String,
    },
    /// A request never answered.
    Silence {
        /// The request the machine must make.
        request: RequestSpec,
        /// Always `true`.
        silence: bool,
    },
}

impl Event {
    /// The request of this event, if it has one.
    pub fn request(&self) -> Option<&RequestSpec> {
        match self {
            Event::MediaConn { .. } => None,
            Event::Response { request, .. }
            | Event::Cut { request, .. }
            | Event::Failure { request, .. }
            | Event::Silence { request, .. } => Some(request),
        }
    }
}

/// A media connection as given.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnSpec {
    /// Always [`AUTH_PLACEHOLDER`] or a test value.
    pub auth: String,
    /// Seconds.
    pub ttl: u64,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_ttl: Option<u64>,
    /// `max_buckets`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buckets: Option<u64>,
    /// Hosts in order: names, or typed entries.
    pub hosts: Vec<HostSpec>,
    /// Virtual time it was fetched at.
    pub at_ms: u64,
}

impl ConnSpec {
    /// A connection to plain host names.
    pub fn named(auth: &str, ttl: u64, hosts: &[&str]) -> Self {
        ConnSpec {
            auth: auth.into(),
            ttl,
            auth_ttl: None,
            max_buckets: None,
            hosts: hosts.iter().map(|h| HostSpec::Name((*h).into())).collect(),
            at_ms: 0,
        }
    }

    /// The connection the machine is given, fetched at `fetched_at`.
    pub fn to_media_conn(&self, fetched_at: std::time::Instant) -> wamedia::MediaConn {
        wamedia::MediaConn {
            auth: self.auth.clone(),
            ttl: std::time::Duration::from_secs(self.ttl),
            auth_ttl: self.auth_ttl.map(std::time::Duration::from_secs),
            hosts: self.hosts.iter().map(HostSpec::to_host).collect(),
            max_buckets: self.max_buckets,
            fetched_at,
        }
    }

    /// Every host name it mentions (fallback host names included), in order.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for h in &self.hosts {
            let (name, fallback) = match h {
                HostSpec::Name(n) => (n.clone(), None),
                HostSpec::Typed(t) => (t.hostname.clone(), t.fallback_hostname.clone()),
            };
            out.push(name);
            out.extend(fallback);
        }
        out
    }

    /// The same connection with every host name passed through `f`.
    pub fn map_names(&self, f: impl Fn(&str) -> String) -> ConnSpec {
        let hosts = self
            .hosts
            .iter()
            .map(|h| match h {
                HostSpec::Name(n) => HostSpec::Name(f(n)),
                HostSpec::Typed(t) => HostSpec::Typed(TypedHost {
                    hostname: f(&t.hostname),
                    fallback_hostname: t.fallback_hostname.as_deref().map(&f),
                    ..t.clone()
                }),
            })
            .collect();
        ConnSpec {
            hosts,
            ..self.clone()
        }
    }
}

/// A host of a media connection: a plain name, or the IQ reply's typed entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum HostSpec {
    /// A host name.
    Name(String),
    /// A typed host.
    Typed(TypedHost),
}

/// A typed host entry (PROTOCOL §3).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TypedHost {
    /// The host name.
    pub hostname: String,
    /// `primary` or `fallback`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Its fallback host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_hostname: Option<String>,
    /// Upload types it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<Vec<String>>,
    /// Download types it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Vec<String>>,
    /// Its `class` (`pop`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Its `download_buckets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_buckets: Option<Vec<String>>,
}

impl HostSpec {
    /// The cassette form of a machine's host: a plain name when it has nothing else.
    pub fn from_host(h: &wamedia::Host) -> Self {
        if h.role.is_none()
            && h.fallback_hostname.is_none()
            && h.upload.is_none()
            && h.download.is_none()
            && h.class.is_none()
            && h.download_buckets.is_none()
        {
            return HostSpec::Name(h.hostname.clone());
        }
        HostSpec::Typed(TypedHost {
            hostname: h.hostname.clone(),
            role: h.role.and_then(|r| match r {
                wamedia::HostRole::Primary => Some("primary".to_owned()),
                wamedia::HostRole::Fallback => Some("fallback".to_owned()),
                // A role this cassette format has no name for yet.
                _ => None,
            }),
            fallback_hostname: h.fallback_hostname.clone(),
            upload: h.upload.clone(),
            download: h.download.clone(),
            class: h.class.clone(),
            download_buckets: h.download_buckets.clone(),
        })
    }

    fn to_host(&self) -> wamedia::Host {
        match self {
            HostSpec::Name(n) => wamedia::Host::named(n.clone()),
            HostSpec::Typed(t) => wamedia::Host {
                role: match t.role.as_deref() {
                    Some("fallback") => Some(wamedia::HostRole::Fallback),
                    Some(_) => Some(wamedia::HostRole::Primary),
                    None => None,
                },
                fallback_hostname: t.fallback_hostname.clone(),
                upload: t.upload.clone(),
                download: t.download.clone(),
                class: t.class.clone(),
                download_buckets: t.download_buckets.clone(),
                ..wamedia::Host::named(t.hostname.clone())
            },
        }
    }
}

/// A request the machine must make.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestSpec {
    /// Virtual time it is made at.
    pub at_ms: u64,
    /// `GET` or `POST`.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Headers, in order, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body length.
    pub body_len: u64,
    /// SHA-256 of the body, standard base64 (absent for empty bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
}

/// An answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResponseSpec {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: BodySpec,
}

/// A response body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodySpec {
    /// UTF-8 text.
    Text(String),
    /// Standard base64.
    Base64(String),
    /// Bytes of the encrypted body of the input.
    Media {
        /// First byte.
        from: u64,
        /// End (exclusive); absent: the end of the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<u64>,
        /// Flip the lowest bit of the body's last byte (a tampered MAC).
        #[serde(default, skip_serializing_if = "is_false")]
        flip_last_bit: bool,
    },
}

impl BodySpec {
    /// The bytes, given the encrypted body of the input.
    ///
    /// # Errors
    /// Bad base64 or a range outside the body.
    pub fn bytes(&self, media_body: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            BodySpec::Text(t) => Ok(t.as_bytes().to_vec()),
            BodySpec::Base64(b) => STANDARD.decode(b).map_err(|e| format!("body base64: {e}")),
            BodySpec::Media {
                from,
                to,
                flip_last_bit,
            } => {
                let mut body = media_body.to_vec();
                if *flip_last_bit {
                    if let Some(b) = body.last_mut() {
                        *b ^= 1;
                    }
                }
                let to = to.unwrap_or(body.len() as u64) as usize;
                body.get(*from as usize..to)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        format!(
                            "media range {from}..{to} outside a {}-byte body",
                            media_body.len()
                        )
                    })
            }
        }
    }
}

/// How a scenario ends.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Success: these result fields (as in the CLI's JSON) must match.
    Ok(Vec<(String, serde_json::Value)>),
    /// Failure of this kind.
    Error {
        /// The error variant, e.g. `AuthRejected`, `MediaGone`, `Integrity.MacMismatch`.
        kind: String,
        /// Text the error message must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contains: Option<String>,
    },
}

/// The error's variant, e.g. `AuthRejected` or `Integrity.MacMismatch`, from its `Debug`.
pub fn error_kind(debug: &str) -> String {
    let name: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
    if name == "Integrity" {
        let inner: String = debug["Integrity(".len().min(debug.len())..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        return format!("Integrity.{inner}");
    }
    name
}

impl Cassette {
    /// Reads a cassette file.
    ///
    /// # Errors
    /// Unreadable or malformed.
    pub fn load(path: &Path) -> Result<Cassette, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The cassette as pretty, deterministic JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }
}
