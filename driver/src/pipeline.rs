//! Encryption and verified decryption of a whole stream, on one thread or two.
//!
//! Every byte of WhatsApp media goes through AES-CBC once and through three SHA-256
//! chains: the plaintext's hash, the HMAC and the body's hash. The chains do not depend on
//! each other, so on a machine with two cores [`encrypt_stream`] and [`decrypt_stream`]
//! run them as a two-stage pipeline:
//!
//! | | the calling thread (reads) | the second thread (writes) |
//! |---|---|---|
//! | encryption | plaintext SHA-256, AES-CBC | HMAC, body SHA-256, sidecar, checkpoints |
//! | decryption | body SHA-256, HMAC | AES-CBC, plaintext SHA-256 |
//!
//! Decryption's split leaves two of its three SHA-256 chains on one side, so its two-core
//! bound is 1.62× its one-core bound. Two ways past that were measured and left: handing
//! the HMAC from side to side every buffer (its state travelling with the buffer) ties the
//! threads in lockstep and came out bimodal (medians of 282 to 562 MB/s against a steady
//! ~490 for this split); a thread per chain on two cores was steady but no faster.
//!
//! It is the same computation split in two, so the output and the summary are
//! byte-identical to the one-thread path whatever the chunking (the tests check it on
//! random lengths and read sizes). Memory stays flat: [`IN_FLIGHT`] buffers of at most
//! 256 KiB travel between the threads.
//!
//! These are conveniences beside the machines: they own a reader and a writer and may
//! start a thread. The machines ([`Upload`](wamedia::Upload), [`Download`](wamedia::Download))
//! stay single-threaded and sans-IO.
//!
//! ```
//! use wamedia_driver::pipeline::{decrypt_stream, encrypt_stream, Threads};
//! use wamedia::{Decryptor, Encryptor, Expected, MediaKey, MediaType};
//!
//! let plain = vec![7u8; 3 << 20];
//! let mut body = Vec::new();
//! let enc = Encryptor::new(MediaKey::from_bytes([1; 32]), &MediaType::Document)?;
//! let media = encrypt_stream(enc, &plain[..], &mut body, Threads::Two)?;
//!
//! let expected = Expected { file_sha256: Some(media.file_sha256), ..Expected::default() };
//! let dec = Decryptor::new(&media.media_key, &MediaType::Document, expected)?;
//! let mut back = Vec::new();
//! // `back` is unverified until decrypt_stream returns Ok.
//! decrypt_stream(dec, &body[..], &mut back, Threads::Auto)?;
//! assert_eq!(back, plain);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::sync::mpsc::sync_channel;
use std::thread;

use wamedia::IntegrityError;
use wamedia::MediaKey;
use wamedia::MediaType;
use wamedia::ReadBuffer as Grow;
use wamedia::{Decryptor, Verified};
use wamedia::{EncryptedMedia, Encryptor};

/// From how many bytes [`Threads::Auto`] moves half of the work to a second thread.
/// Below it a thread costs more than it saves (and thousands of small concurrent
/// transfers should not each start one).
pub const TWO_THREADS_FROM: u64 = 8 << 20;

/// Buffers travelling between the two threads at once.
pub const IN_FLIGHT: usize = 4;

/// How many threads a stream's crypto may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Threads {
    /// Everything on the calling thread: the least CPU per byte. For servers that
    /// already keep every core busy.
    One,
    /// A second thread from the first byte (mostly for tests; small inputs lose by it).
    Two,
    /// One thread for the first [`TWO_THREADS_FROM`] bytes, then two if the machine has
    /// more than one core: the least wall time.
    #[default]
    Auto,
}

impl Threads {
    /// The byte count from which the second thread starts, if ever.
    fn switch_at(self) -> u64 {
        match self {
            Threads::One => u64::MAX,
            Threads::Two => 0,
            Threads::Auto => TWO_THREADS_FROM,
        }
    }
}

/// Whether `Auto` may really use a second thread here.
fn second_core() -> bool {
    thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// What went wrong in a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The reader failed.
    #[error("read: {0}")]
    Read(io::Error),
    /// The writer failed.
    #[error("write: {0}")]
    Write(io::Error),
    /// Decryption's checks failed: everything written is to be discarded.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        match e {
            StreamError::Read(e) | StreamError::Write(e) => e,
            StreamError::Integrity(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Encrypts everything `reader` gives, writes the upload body (ciphertext and MAC) to
/// `writer`, flushes it and returns the summary.
///
/// # Errors
/// [`StreamError::Read`] or [`StreamError::Write`]; what was written by then is a prefix
/// of the body.
pub fn encrypt_stream<R: Read, W: Write + Send>(
    mut enc: Encryptor,
    mut reader: R,
    mut writer: W,
    threads: Threads,
) -> Result<EncryptedMedia, StreamError> {
    let mut buf = Grow::new();
    let mut out = Vec::new();
    let mut switch_at = threads.switch_at();
    loop {
        if enc.file_length() >= switch_at {
            if (threads == Threads::Two || second_core())
                && encrypt_two(&mut enc, &mut reader, &mut writer, &mut buf)?
            {
                break;
            }
            switch_at = u64::MAX;
        }
        let chunk = buf.read(&mut reader).map_err(StreamError::Read)?;
        if chunk.is_empty() {
            out.clear();
            enc.finish_cipher(&mut out);
            writer.write_all(&out).map_err(StreamError::Write)?;
            break;
        }
        out.clear();
        enc.update(chunk, &mut out);
        writer.write_all(&out).map_err(StreamError::Write)?;
    }
    out.clear();
    let media = enc.seal(&mut out);
    writer.write_all(&out).map_err(StreamError::Write)?;
    writer.flush().map_err(StreamError::Write)?;
    Ok(media)
}

/// Runs the rest of an encryption on two threads, up to and including the padded last
/// block. `Ok(false)`: no thread could be started and nothing was read.
fn encrypt_two<R: Read, W: Write + Send>(
    enc: &mut Encryptor,
    reader: &mut R,
    writer: &mut W,
    buf: &mut Grow,
) -> Result<bool, StreamError> {
    let (cipher, auth) = enc.split();
    two_stages(
        "wamedia-mac",
        |out| {
            let chunk = buf.read(reader)?;
            if chunk.is_empty() {
                cipher.finish(out);
                return Ok(Step::SendLast);
            }
            cipher.update(chunk, out);
            Ok(Step::Send)
        },
        |ct| {
            auth.absorb(ct);
            writer.write_all(ct)
        },
    )
}

/// What the reading side made of a buffer.
enum Step {
    /// Hand it over; more follow.
    Send,
    /// Hand it over; it is the last.
    SendLast,
    /// Nothing more (the buffer is empty).
    End,
}

/// The two-stage pipeline: `produce` fills buffers on the calling thread (reading),
/// `consume` takes them in order on a second thread (writing), [`IN_FLIGHT`] buffers
/// going round. `Ok(false)`: no thread could be started and `produce` never ran.
fn two_stages(
    name: &str,
    mut produce: impl FnMut(&mut Vec<u8>) -> io::Result<Step>,
    mut consume: impl FnMut(&mut Vec<u8>) -> io::Result<()> + Send,
) -> Result<bool, StreamError> {
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    thread::scope(|s| {
        let worker =
            thread::Builder::new()
                .name(name.into())
                .spawn_scoped(s, move || -> io::Result<()> {
                    for mut b in full_rx {
                        consume(&mut b)?;
                        // Never blocks: the channel holds every buffer there is.
                        let _ = free_tx.send(b);
                    }
                    Ok(())
                });
        let Ok(worker) = worker else {
            return Ok(false);
        };
        let mut unallocated = IN_FLIGHT;
        let read = loop {
            let mut out = if unallocated > 0 {
                unallocated = unallocated.saturating_sub(1);
                Vec::new()
            } else {
                match free_rx.recv() {
                    Ok(b) => b,
                    // The worker stopped: its error says why.
                    Err(_) => break Ok(()),
                }
            };
            out.clear();
            match produce(&mut out) {
                Err(e) => break Err(e),
                Ok(Step::End) => break Ok(()),
                Ok(Step::SendLast) => {
                    let _ = full_tx.send(out);
                    break Ok(());
                }
                Ok(Step::Send) => {
                    if full_tx.send(out).is_err() {
                        break Ok(());
                    }
                }
            }
        };
        drop(full_tx);
        let wrote = worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        wrote.map_err(StreamError::Write)?;
        read.map_err(StreamError::Read)?;
        Ok(true)
    })
}

/// Decrypts everything `reader` gives, writes the plaintext to `writer` as it goes,
/// flushes it, and checks everything `dec` expects at the end.
///
/// **What `writer` receives is unverified until this returns `Ok`**: write it somewhere
/// temporary and publish it only then.
///
/// # Errors
/// [`StreamError::Read`], [`StreamError::Write`], or the first failed check
/// ([`StreamError::Integrity`], in PROTOCOL order).
pub fn decrypt_stream<R: Read, W: Write + Send>(
    mut dec: Decryptor,
    mut reader: R,
    mut writer: W,
    threads: Threads,
) -> Result<Verified, StreamError> {
    let mut buf = Grow::new();
    let mut out = Vec::new();
    let mut switch_at = threads.switch_at();
    loop {
        if dec.body_len() >= switch_at {
            if (threads == Threads::Two || second_core())
                && decrypt_two(&mut dec, &mut reader, &mut writer, &mut buf)?
            {
                break;
            }
            switch_at = u64::MAX;
        }
        let chunk = buf.read(&mut reader).map_err(StreamError::Read)?;
        if chunk.is_empty() {
            break;
        }
        out.clear();
        dec.update_unverified(chunk, &mut out);
        writer.write_all(&out).map_err(StreamError::Write)?;
    }
    out.clear();
    let verified = dec.finish(&mut out)?;
    writer.write_all(&out).map_err(StreamError::Write)?;
    writer.flush().map_err(StreamError::Write)?;
    Ok(verified)
}

/// Runs the rest of a decryption's stream on two threads, up to the reader's end.
/// `Ok(false)`: no thread could be started and nothing was read.
fn decrypt_two<R: Read, W: Write + Send>(
    dec: &mut Decryptor,
    reader: &mut R,
    writer: &mut W,
    buf: &mut Grow,
) -> Result<bool, StreamError> {
    let (body, plain) = dec.split();
    two_stages(
        "wamedia-aes",
        |out| {
            let chunk = buf.read(reader)?;
            if chunk.is_empty() {
                return Ok(Step::End);
            }
            body.absorb(chunk, out);
            Ok(Step::Send)
        },
        |region| {
            plain.decrypt(region);
            writer.write_all(region)
        },
    )
}

/// One encryption pass over `reader`, keeping only the summary (hashes, MAC,
/// checkpoints): the ciphertext is produced and dropped chunk by chunk.
///
/// # Errors
/// Read errors of `reader`.
pub fn encrypt_reader<R: Read>(
    media_key: MediaKey,
    media_type: &MediaType,
    reader: R,
) -> io::Result<EncryptedMedia> {
    encrypt_reader_threads(media_key, media_type, reader, Threads::Auto)
}

/// [`encrypt_reader`] on as many threads as `threads` allows (see the [module](self)).
///
/// # Errors
/// Read errors of `reader`.
pub fn encrypt_reader_threads<R: Read>(
    media_key: MediaKey,
    media_type: &MediaType,
    reader: R,
    threads: Threads,
) -> io::Result<EncryptedMedia> {
    let enc = Encryptor::new(media_key, media_type).map_err(io::Error::other)?;
    Ok(encrypt_stream(enc, reader, io::sink(), threads)?)
}
