//! # wamedia — WhatsApp media, encrypted, uploaded, downloaded, verified
//!
//! Put media on WhatsApp's CDN with end-to-end encryption, and take it off again,
//! verified. Most programs use a transport crate, which runs this crate's machines:
//!
//! ```no_run
//! use std::time::Instant;
//! use wamedia_reqwest::{Client, DownloadSpec, MediaConn, MediaType};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Your WhatsApp client's media-connection query; a fresh answer when `force`.
//! let client = Client::new(|force: bool| async move {
//!     let json = r#"{"auth":"…","ttl":3600,"hosts":["mmg.whatsapp.net"]}"#;
//!     MediaConn::from_json(json, Instant::now())
//! });
//! let up = client.upload(std::path::Path::new("photo.jpg"), MediaType::Image).await?;
//! println!("{}", up.to_json()); // url, direct_path, media_key, hashes, file_length, …
//!
//! // Receiving: straight from the message (`{"imageMessage": {…}}`).
//! # let message_json = "";
//! let spec = DownloadSpec::from_message_json(message_json)?;
//! client.download(spec).to_path("photo.jpg").await?; // verified, then renamed into place
//! # Ok(()) }
//! ```
//!
//! | crate | runs on |
//! |---|---|
//! | `wamedia-reqwest` | Tokio |
//! | `wamedia-surf` | async-std or smol |
//! | `wamedia-ureq` | blocking, the calling thread (`client.upload(data, MediaType::Document)?`) |
//! | `wamedia-info` | (no network) the message's mimetype, size, duration, thumbnail, waveform from the file |
//!
//! ```toml
//! [dependencies]
//! wamedia-reqwest = "0.1"  # or wamedia-surf, or wamedia-ureq
//! wamedia-info = "0.1"     # if you build messages
//!
//! # Debug builds: the crypto crates run at ~5 MB/s unoptimised (215 MB/s at opt-level 2).
//! [profile.dev.package."*"]
//! opt-level = 2
//! ```
//!
//! ## This crate: the protocol, sans-IO
//!
//! This crate never opens a socket or a file, never reads a clock and never draws
//! randomness inside its machines. Time (`now: Instant`), the media key and the bytes
//! come in as arguments; requests to send come out as values. `wamedia-driver` runs the
//! machines once for every transport; you need this crate directly for the types, for
//! the crypto alone, or to drive a machine over your own I/O:
//!
//! - [`MediaType`]: HKDF info, upload path, download `mms-type` and newsletter path of
//!   every kind of media (PROTOCOL §1); where WhatsApp has none, a typed error.
//! - [`MediaKey`]: 32 secret bytes, redacted in `Debug`, zeroized on drop.
//! - [`Encryptor`] / [`Decryptor`]: streaming encryption and verified decryption;
//!   [`encrypt()`] / [`decrypt()`] for data in memory.
//! - [`EncryptedMedia::body_from`]: regenerate the upload body from any offset.
//! - [`Upload`] / [`Download`]: one state machine per transfer (PROTOCOL §3–5). They
//!   decide every request, host, retry, resume and renewal; you move the bytes. The
//!   random `media_id` of an upload ([`MediaId`]) and the wall-clock time a download
//!   checks URL expiry against come in as inputs, like the key.
//! - [`DownloadSpec::from_message_json`]: the download a received message refers to,
//!   from the WAProto JSON a WhatsApp client gives (`{"imageMessage": {...}}`, wrappers
//!   included) or from what `wamedia upload` prints ([`message`]).
//!
//! The protocol is the one WhatsApp Web speaks (`docs/PROTOCOL.md` in the repository, v3
//! of the contract, built from WhatsApp Web's `WAWebMmsClient*` modules).
//!
//! ## The drive loop
//!
//! After every input, drain `poll_output` until it says `Wait` or `Done`. The same loop
//! serves blocking and async drivers (await the HTTP call and the timer instead). This
//! example runs for real against a stand-in `send` that answers like the CDN:
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use wamedia::*;
//! # fn send(_req: &Request, _body: &[u8]) -> (u16, http::HeaderMap, Vec<u8>) {
//! #     (200, http::HeaderMap::new(), br#"{"url":"https://mmg.whatsapp.net/d/x","direct_path":"/d/x"}"#.to_vec())
//! # }
//! # fn media_conn(_force: bool) -> MediaConn {
//! #     MediaConn::new("token", vec!["mmg.whatsapp.net".into()], Duration::from_secs(300), Instant::now())
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (body, media) = encrypt(MediaKey::generate()?, &MediaType::Image, b"a picture")?;
//! let spec = UploadSpec::encrypted(MediaType::Image, &media, MediaId::generate()?);
//! let mut up = Upload::new(spec, UploadOptions::default(), Instant::now());
//! let result = loop {
//!     match up.poll_output(Instant::now()) {
//!         Output::Transmit(req) => {
//!             let BodySpec::UploadBody { from, to } = req.body else { unreachable!() };
//!             let (status, headers, answer) = send(&req, &body[from as usize..to as usize]);
//!             up.handle_response(Instant::now(), req.id, status, &headers, &answer)?;
//!         }
//!         Output::NeedMediaConn { force } => up.handle_input(Instant::now(), Input::MediaConn(media_conn(force)))?,
//!         Output::Wait(t) => {
//!             std::thread::sleep(t.saturating_duration_since(Instant::now()));
//!             up.handle_input(Instant::now(), Input::Timeout)?;
//!         }
//!         Output::Done(outcome) => break outcome?,
//!         _ => {} // progress, and outputs of later versions: nothing to do
//!     }
//! };
//! assert_eq!(result.direct_path, "/d/x");
//! # Ok(())
//! # }
//! ```
//!
//! An async driver is the same loop with `.await` on the HTTP call and on the runtime's
//! timer (this is what `wamedia-driver` does, once, for every transport):
//!
//! ```text
//! loop {
//!     match up.poll_output(Instant::now()) {
//!         Output::Transmit(req) => {
//!             let (status, headers, answer) = http.send(&req).await;
//!             up.handle_response(Instant::now(), req.id, status, &headers, &answer)?;
//!         }
//!         Output::NeedMediaConn { force } => up.handle_input(Instant::now(), Input::MediaConn(conn(force).await))?,
//!         Output::Wait(t) => { timer::sleep_until(t).await; up.handle_input(Instant::now(), Input::Timeout)?; }
//!         Output::Done(outcome) => break outcome?,
//!         _ => {}
//!     }
//! }
//! ```
//!
//! A download is driven the same way, writing each `Output::Plaintext` (or, with a
//! streaming sidecar, each window-verified `Output::Verified`) to a temporary
//! place and publishing it only when `Done(Ok(_))` arrives. `wamedia-driver` is that
//! driver, generic over the HTTP client and the runtime.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::arithmetic_side_effects)]

pub mod b64;
mod body;
mod conn;
mod decrypt;
mod delete;
mod download;
mod encrypt;
mod error;
mod keys;
mod media_type;
pub mod message;
mod range;
pub mod retry;
pub mod sidecar;
mod transfer;
mod upload;

pub use body::{hash_reader, BodyReader, ReadBuffer};
pub use conn::{form_encode, host_base};
pub use conn::{Host, HostRole, MediaConn};
pub use decrypt::{decrypt, BodyHalf, Decryptor, Expected, PlainHalf, PlainVerifier, Verified};
pub use delete::{Delete, DeleteResult, DeleteSpec};
pub use download::{Download, DownloadOptions, DownloadResult, DownloadSpec, Source};
pub use encrypt::{
    body_len, encrypt, newsletter_metadata, AuthHalf, BodyGenerator, CipherHalf, EncryptedMedia,
    Encryptor, PlainHasher, CHECKPOINT_INTERVAL, LANES, LANE_GROUP, MAC_LEN,
};
pub use error::{
    BadMediaKey, BodyError, DeleteError, DownloadError, ErrorKind, HostFailure, HostFailureReason,
    IntegrityError, Misuse, NoRandomness, NotBase64, UnknownMediaType, Unsupported,
    UnsupportedMediaType, UploadError,
};
pub use keys::{MediaKey, MediaKeys};
pub use media_type::{MediaType, MEDIA_TYPE_NAMES};
pub use message::{MessageError, MAX_DEPTH, MAX_MESSAGE_LEN, MAX_WRAPPERS};
pub use range::RangePlan;
pub use transfer::{
    escape, redact_auth, BodySpec, Input, Machine, Output, Request, RequestId, RetryPolicy,
    ERROR_BODY_CAP,
};
pub use upload::{MediaId, ThumbnailInfo, Upload, UploadOptions, UploadResult, UploadSpec};
