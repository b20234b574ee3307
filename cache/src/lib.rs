//! Upload once, send many (PROTOCOL v3 §9): a content-addressed cache of wamedia
//! uploads, so that a bot, or a fleet of them, never uploads the same file twice while
//! the CDN still holds it.
//!
//! WhatsApp Web keeps the media key it made for each file (`WAWebMediaInMemoryKeyCache`):
//! a re-send encrypts under the same key, so the body and its hash are the same, the
//! `resume=1` probe answers `complete`, and nothing is uploaded. This crate does the same
//! for any transport: entries are keyed by (media type, channel or not, SHA-256 of the
//! plaintext) and hold the key, its timestamp, the first pass's summary (MAC and
//! checkpoints, so a hit needs no encryption pass) and the CDN's answer.
//!
//! - **A hit** costs one SHA-256 pass over the file and one body-less probe: on
//!   `complete` the stored answer comes back with `cached: true`
//!   ([`UploadResult::cached`](wamedia::UploadResult::cached), also in `to_json`). A CDN
//!   that lost the object answers otherwise, and the body goes up in full under the same
//!   key (the entry is refreshed). A hit is never answered from the store alone.
//! - **Entries expire** at the direct path's `oe` (less a margin) or [`Policy::max_age`]
//!   (14 days) after the key was made, whichever is first: then a fresh key.
//! - **A miss** takes a lease on the file: a second worker uploading the same file at
//!   the same moment waits (bounded) and then takes the first one's result as a hit. A
//!   crashed holder's lease runs out ([`Policy::lease_ttl`]).
//! - Newsletter and unencrypted media are not cached (no key to reuse, and no probe).
//!
//! The transport stays the caller's: [`UploadCache::upload`] takes a closure that runs
//! its `upload_prepared`.
//!
//! ```no_run
//! use wamedia::MediaType;
//! use wamedia_driver::UploadJob;
//! use wamedia_cache::UploadCache;
//! use wamedia_ureq::{Client, UploadData};
//! # let conn = {
//! #     let hosts = vec!["mmg.whatsapp.net".to_owned()];
//! #     let ttl = std::time::Duration::from_secs(300);
//! #     wamedia::MediaConn::new("auth", hosts, ttl, std::time::Instant::now())
//! # };
//! let cache = UploadCache::default(); // in memory; or DiskStore / RedisStore
//! let client = Client::new(conn);
//! let job = UploadJob::new(MediaType::Video);
//! for _ in 0..2 {
//!     let file = std::fs::File::open("clip.mp4")?;
//!     let result = cache.upload(&job, file, |prepared, file| {
//!         client.upload_prepared(prepared.clone(), UploadData::seekable(file)).wait()
//!     })?;
//!     println!("{}", result.to_json()); // the second time: "cached": true, no body sent
//! }
//! # Ok::<(), wamedia_driver::Error>(())
//! ```
//!
//! # Stores and their secrets
//!
//! A [`Store`] is a few methods: values with a time to live, and leases.
//! [`MemoryStore`] (the default) serves one process; [`DiskStore`] (redb) the processes
//! of one user on one machine; `RedisStore` (feature `redis`) a fleet.
//!
//! Every entry holds a media key: whoever reads the store can decrypt the media whose
//! messages they also see, and whoever can write it can make uploads use a key of their
//! choosing. The disk store's folder is 0700 and its file 0600, never opened through a
//! symbolic link. For Redis: require a password or, better, an ACL user limited to the
//! key prefix (`ACL SETUSER wamedia on >secret ~wamedia:* +get +set +del +eval +ping`),
//! bind it to a private interface (never a public one; `protected-mode yes`), and use
//! TLS (`tls-port`, or a tunnel) when it is not on the same host; use a prefix of its own
//! (`RedisStore::with_prefix`) per deployment. No key is ever written to a log, an
//! error or a `Debug` output by this crate.

#![forbid(unsafe_code)]

mod cache;
mod disk;
mod entry;
mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;
mod store;

pub use cache::{Event, Lookup, OnEvent, Policy, UploadCache};
pub use disk::{private_dir, DiskStore};
pub use entry::{oe_of, Entry, EntryError, Extra, MAX_ENTRY_LEN};
pub use key::CacheKey;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use store::{Store, StoreError};
