//! `wamedia upload`'s upload cache (wamedia-cache, PROTOCOL v3 §9): a file sent before is
//! sent again under the key it went up with, and the CDN's `complete` answers it with no
//! body. The store is a redb file in the user's cache folder unless `--cache` names
//! another (a path, or a `redis://` URL a fleet shares); `--no-cache` skips it. The
//! embedded local CDN (no media connection) is new in every run: nothing to look up.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use wamedia::UploadResult;
use wamedia_cache::{DiskStore, Event, Lookup, Policy, UploadCache};
use wamedia_driver::{PreparedUpload, UploadJob};

use crate::files::cannot_read;
use crate::net::Inspect;
use crate::{progress, Fail, UploadArgs};

/// A lookup made, and the cache to finish it in.
pub struct Cached {
    cache: UploadCache,
    lookup: Lookup,
}

/// The store `args` ask for; `None` with `--no-cache`, or (with a note) when the default
/// store cannot be opened. A store named with `--cache` that cannot be opened fails.
fn open(args: &UploadArgs) -> Result<Option<UploadCache>, Fail> {
    let quiet = args.net.quiet;
    let policy = Policy {
        on_event: Some(Arc::new(move |e: &Event| {
            if quiet {
                return;
            }
            let note = match e {
                Event::Waiting => {
                    "another upload of this file is under way: waiting for it".to_string()
                }
                Event::WaitedTooLong => {
                    "the other upload of this file takes too long: uploading it here".into()
                }
                Event::StoreFailed(why) => format!("upload cache: {why}; going on without it"),
                Event::Unusable(why) => format!("upload cache: {why}"),
                _ => return,
            };
            eprintln!("wamedia: {}", wamedia::escape(&note));
        })),
        ..Policy::default()
    };
    let given = args.cache.as_deref();
    let store: Box<dyn FnOnce() -> Result<UploadCache, String>> = match given {
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Box::new(move || redis_cache(url))
        }
        Some(path) => Box::new(move || {
            let p = Path::new(path);
            let s = if p.is_dir() {
                DiskStore::in_dir(p)
            } else {
                DiskStore::open(p)
            };
            s.map(UploadCache::new).map_err(|e| e.to_string())
        }),
        None => {
            let Some(dir) = crate::resume::cache_dir() else {
                return Ok(None);
            };
            Box::new(move || {
                DiskStore::in_dir(&dir)
                    .map(UploadCache::new)
                    .map_err(|e| e.to_string())
            })
        }
    };
    match store() {
        Ok(c) => Ok(Some(c.with_policy(policy))),
        Err(why) if given.is_some() => Err(Fail::usage(format!("--cache: {why}"))),
        Err(why) => {
            if !quiet {
                eprintln!(
                    "wamedia: upload cache: {}; going on without it (--no-cache skips it)",
                    wamedia::escape(&why)
                );
            }
            Ok(None)
        }
    }
}

#[cfg(feature = "redis")]
fn redis_cache(url: &str) -> Result<UploadCache, String> {
    wamedia_cache::RedisStore::open(url)
        .map(UploadCache::new)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "redis"))]
fn redis_cache(_url: &str) -> Result<UploadCache, String> {
    Err("this wamedia was built without Redis (feature `redis`)".into())
}

/// Looks the source up when `usable` (a real CDN, no interrupted upload being resumed)
/// and the cache applies to `job`: one SHA-256 pass (shown as "hash"), then the store.
/// `src` is back at its start afterwards.
pub fn begin<R: Read + Seek>(
    args: &UploadArgs,
    usable: bool,
    job: &UploadJob,
    src: &mut R,
    len: u64,
) -> Result<Option<Cached>, Fail> {
    if args.no_cache || !usable || !UploadCache::consults(job) {
        return Ok(None);
    }
    let Some(cache) = open(args)? else {
        return Ok(None);
    };
    let shown = Path::new(if args.file == "-" {
        "stdin"
    } else {
        &args.file
    });
    let bar = progress::Bar::new(args.net.quiet, "hash", "");
    let mut done = 0u64;
    let hashed = wamedia::hash_reader(Inspect(&mut *src, |n: usize| {
        done = done.saturating_add(n as u64);
        bar.update(done, Some(len));
    }));
    bar.finish(hashed.is_ok());
    let (sha, hashed_len) = hashed.map_err(|e| cannot_read(shown, e))?;
    src.seek(SeekFrom::Start(0))
        .map_err(|e| cannot_read(shown, e))?;
    let lookup = cache.begin_hashed(job, sha, hashed_len);
    Ok(Some(Cached { cache, lookup }))
}

impl Cached {
    /// On a hit, the upload to run under the stored key (no first pass).
    pub fn take_prepared(&mut self) -> Option<PreparedUpload> {
        self.lookup.take_prepared()
    }

    /// After a successful upload: marks a confirmed hit `cached`, remembers a full one,
    /// releases the lease.
    pub fn finish(self, prepared: &PreparedUpload, result: &mut UploadResult, quiet: bool) {
        self.cache.finish(self.lookup, prepared, result);
        if result.cached && !quiet {
            eprintln!("wamedia: the CDN still holds this file from an earlier upload under the same key: nothing sent");
        }
    }
}
