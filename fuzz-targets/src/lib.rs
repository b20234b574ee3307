//! # wamedia-fuzz-targets
//!
//! Fuzz targets for the wamedia core. Each function takes arbitrary bytes, turns them into
//! a scenario and checks the core's invariants on it — not only that nothing panics:
//!
//! - [`media_conn`]: `MediaConn::from_json` on arbitrary text, and every query of the
//!   connection it gives.
//! - [`upload`] and [`download`]: a machine driven by a hostile scripted CDN and driver on
//!   a virtual clock, checked against the drive-loop contract at every step.
//! - [`decryptor`]: streaming and in-memory decryption agree; mutated bodies never verify.
//! - [`cassette`]: the conformance cassette format parses and round-trips.
//! - [`media_info`]: `wamedia-info`'s analysis of any bytes as any media kind.
//!
//! They run three ways: `cargo test -p wamedia-fuzz-targets` replays the committed corpus
//! (`fuzz/corpus/<target>/`) and a seeded batch of random inputs; `fuzz/` wraps each in a
//! `libfuzzer_sys::fuzz_target!` for `cargo fuzz`; CI runs both. A failure panics with
//! the invariant that broke.
//!
//! Scripts for [`upload`] and [`download`] are read one decision per byte (see
//! `src/script.rs`); an input that runs out reads as zeros, which every table maps to the
//! cooperative choice, so any input ends with a well-behaved CDN.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cassette;
mod conns;
mod decryptor;
mod download;
mod drive;
mod media_conn;
mod media_info;
mod script;
mod upload;

/// A fuzz target: arbitrary bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/` file and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("media_conn", media_conn),
    ("upload", upload),
    ("download", download),
    ("decryptor", decryptor),
    ("cassette", cassette),
    ("media_info", media_info),
];

/// `MediaConn::from_json` on `data` (lossily decoded as UTF-8).
///
/// Never panics; an error reads the same whatever the `auth` value (so it never shows
/// it), and so does a parsed connection's `Debug`. A parsed connection's expiry never
/// precedes its fetch, never overflows and never un-expires; `upload_host` and
/// `download_hosts` for every `MediaType::ALL` (and a raw type) name only the
/// connection's hosts, without repeats, honouring the hosts' type lists.
///
/// # Panics
/// When an invariant breaks.
pub fn media_conn(data: &[u8]) {
    media_conn::run(data);
}

/// An [`Upload`](wamedia::Upload) driven by the script in `data`: options (attempts,
/// backoff, timeouts, resume threshold, reused key, server thumbnails), the spec
/// (type, length, encrypted, newsletter or plain), then, as the machine asks, media
/// connections (0–4 hosts, named or typed, TTLs from zero to beyond the clock) and answers
/// (any status, `Retry-After`, bodies in pieces, cuts, failures, `Sent` counts up to
/// `u64::MAX`, silence, time jumps), with stray inputs for unknown and superseded ids.
///
/// Checked at every step: `Misuse` only for genuinely wrong input (and then exactly the
/// right one); no request with a deadline before now, on a host no connection named, or
/// with a `Debug` showing the token; no `Wait` in the past, and no busy loop after a
/// `Timeout`; `Progress` within its total; `Done` within a step bound, then the same
/// `Done` on every poll and `Finished` for every input; at most `2 · max_attempts + 3`
/// requests; no error text showing the token.
///
/// # Panics
/// When an invariant breaks.
pub fn upload(data: &[u8]) {
    upload::run(data);
}

/// A [`Download`](wamedia::Download) of a real encrypted (or plain) body driven by the
/// script in `data`: options, expectations (some wrong), a direct path or URL (hostile
/// ones included), a wall clock (before and after `oe`), connections as for [`upload`],
/// and answers serving the real body (whole, resumed, sliced, in pieces), mutations of
/// it, noise, hostile `Content-Length` / `Content-Range` / `Retry-After`, cuts, failures,
/// silence and time jumps.
///
/// Checked as for [`upload`], plus: requests only to hosts the connection offers for the
/// type (or a trusted URL), `Range` on block boundaries, at most `max_attempts` requests;
/// and a download that ends `Ok` released exactly the plaintext, so never a mutated body
/// and never against a wrong expectation.
///
/// # Panics
/// When an invariant breaks.
pub fn download(data: &[u8]) {
    download::run(data);
}

/// Encrypts a plaintext from `data` (key seed, media type, plaintext, chunking and a
/// mutation all read from it), then checks: streaming encryption in the chunking equals
/// `encrypt`; `body_from` regenerates the body's tail from any offset; streaming
/// decryption with a [`Decryptor`](wamedia::Decryptor) in the chunking and in-memory
/// [`decrypt`](fn@wamedia::decrypt) agree (the same plaintext or the same error); the
/// untouched body verifies to the plaintext, and a mutated one (a byte changed, truncated,
/// extended, a block dropped or swapped) or a wrong expectation never does.
///
/// # Panics
/// When an invariant breaks.
pub fn decryptor(data: &[u8]) {
    decryptor::run(data);
}

/// Parses `data` as a conformance [`Cassette`](wamedia_conformance::cassette::Cassette):
/// never panics, and a cassette that parses survives `to_json()` unchanged (and
/// `to_json()` is stable).
///
/// # Panics
/// When an invariant breaks.
pub fn cassette(data: &[u8]) {
    cassette::run(data);
}

/// `wamedia_info::analyze_bytes` of `data` as every [`MediaKind`](wamedia_info::MediaKind),
/// with limits sized for a fuzzer (4 MP pictures, 2 s of in-process Opus, 1 MiB scans) and
/// no ffmpeg; and `identify_bytes`.
///
/// Checked: it returns; no panic inside wamedia-info (a decoder crate's panic is caught,
/// silently, and reported as a warning, which is allowed); the same bytes give the same
/// metadata twice and through a reader that hands out 13 bytes a read; a thumbnail within
/// its byte limit, a waveform of 64 bars of 0–100, a first frame within the file.
///
/// # Panics
/// When an invariant breaks.
pub fn media_info(data: &[u8]) {
    media_info::run(data);
}
