//! # wamedia-driver — the one drive loop of wamedia
//!
//! The [`wamedia`] core decides every request, host, retry, resume and renewal; this
//! crate runs its machines over any HTTP client and any async runtime, once:
//!
//! - [`Http`]: one exchange — a request with a streamed body out, a status, headers and a
//!   streamed body back. `wamedia-reqwest`, `wamedia-surf` and `wamedia-ureq` implement it
//!   in a few hundred lines each.
//! - [`Runtime`]: sleep until an `Instant`, run blocking work off the executor.
//!   ([`Blocking`] is the runtime of a blocking client: the caller's own thread.)
//! - [`MediaConnSource`]: where media connections come from — your WhatsApp client's
//!   media-connection query, asked on first use, on expiry, and with `force = true`
//!   after the CDN rejected the auth.
//!
//! Everything else is here, one time: retries and backoff waits, deadlines and idle
//! timeouts, progress, cancellation (a [`Cancel`] token, or dropping the future), upload
//! bodies regenerated from the plaintext chunk by chunk off the executor, partial files
//! and resume, ranged downloads.
//!
//! You do not use this crate directly unless you write a transport: take
//! `wamedia_reqwest::Client`, `wamedia_surf::Client` or `wamedia_ureq::Client`, which are
//! this crate's [`Client`] over their adapter.
//!
//! ```no_run
//! # async fn run<H: wamedia_driver::Http, R: wamedia_driver::Runtime + Default>() -> Result<(), Box<dyn std::error::Error>> {
//! use wamedia::{MediaConn, MediaType};
//! use wamedia_driver::Client;
//!
//! let client: Client<H, R> = Client::new(|force: bool| async move {
//!     // Ask your WhatsApp client for a media connection (an IQ), fresh when `force`.
//!     let json = r#"{"auth":"…","ttl":3600,"hosts":["mmg.whatsapp.net"]}"#;
//!     MediaConn::from_json(json, std::time::Instant::now())
//! });
//! let up = client.upload(std::path::Path::new("photo.jpg"), MediaType::Image).await?;
//! println!("{} {}", up.direct_path, up.file_length);
//! # Ok(()) }
//! ```
//!
//! ## Writing a transport
//!
//! Implement [`Http`] for your HTTP client (and [`ResponseBody`] for its answers' bodies),
//! pick a [`Runtime`] (or implement it for yours), and name
//! `type Client = wamedia_driver::Client<YourHttp, YourRuntime>`. The contract of one
//! exchange is on [`Http`]; `docs/ARCHITECTURE.md` in the repository walks through it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
mod body;
mod client;
mod data;
mod drive;
mod error;
mod job;
pub mod outfile;
mod partial;
pub mod pipeline;
pub mod source;
mod traits;
mod transfer;

pub use blocking::{block_on, Blocking};
pub use body::RequestBody;
pub use client::{CallFuture, Client, DeleteCall, DownloadCall, Options, UploadCall};
pub use data::UploadData;
pub use error::Error;
pub use job::{unix_now, PreparedUpload, UploadJob};
pub use partial::Partial;
pub use pipeline::{
    decrypt_stream, encrypt_reader, encrypt_reader_threads, encrypt_stream, StreamError, Threads,
};
pub use source::{BlockingSource, FromBlocking, MediaConnSource, SourceError};
pub use traits::{Http, Incoming, Outgoing, ResponseBody, Runtime};
pub use transfer::{feed, Cancel, Observer, ProgressFn, Transfer};
pub use wamedia::ErrorKind;
