//! The two-thread pipeline is the one-thread computation split in two: on random lengths
//! (and every boundary that matters), random read sizes and every media type family, the
//! body, the summary and the decrypted plaintext are byte-identical to the in-memory
//! reference; failures on either side end the stream with the right error and no hang.

use std::io::{self, Read, Write};

use wamedia::CHECKPOINT_INTERVAL;
use wamedia::{
    encrypt, Decryptor, EncryptedMedia, Encryptor, Expected, IntegrityError, MediaKey, MediaType,
};
use wamedia_driver::encrypt_reader_threads;
use wamedia_driver::pipeline::{
    decrypt_stream, encrypt_stream, StreamError, Threads, TWO_THREADS_FROM,
};

#[path = "../../core/tests/support/mod.rs"]
mod support;
/// splitmix64: a fixed seed keeps every run the same case list.
use support::Rng;

/// A reader that returns reads of random sizes (1 ..= max), sometimes zero-copy short.
struct Choppy<'a> {
    data: &'a [u8],
    rng: Rng,
    max: usize,
}

impl Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = 1 + self.rng.below(self.max as u64) as usize;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Runs `f` on a thread of its own and fails the test if it has not returned after five
/// minutes (a deadlock between the pipeline's threads would otherwise hang the run).
fn within_minutes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(300))
        .expect("no result after 5 minutes (or a panic): a deadlock between the threads?")
}

fn same_summary(a: &EncryptedMedia, b: &EncryptedMedia) {
    assert_eq!(a.media_key.as_bytes(), b.media_key.as_bytes());
    assert_eq!(a.file_sha256, b.file_sha256);
    assert_eq!(a.file_enc_sha256, b.file_enc_sha256);
    assert_eq!(a.file_length, b.file_length);
    assert_eq!(a.mac, b.mac);
    assert_eq!(a.checkpoints, b.checkpoints);
    assert_eq!(a.streaming_sidecar, b.streaming_sidecar);
}

/// One case: encrypt and decrypt `len` random bytes of `t` with `threads`, read in
/// random pieces of at most `max_read`, and compare with the in-memory reference.
fn check(rng: &mut Rng, t: &MediaType, len: usize, max_read: usize, threads: Threads) {
    let plain = rng.bytes(len);
    let key = MediaKey::from_bytes([rng.next() as u8; 32]);
    let (want_body, want) = encrypt(key.clone(), t, &plain).unwrap();

    let mut body = Vec::new();
    let reader = Choppy {
        data: &plain,
        rng: Rng(rng.next()),
        max: max_read,
    };
    let got = encrypt_stream(
        Encryptor::new(key.clone(), t).unwrap(),
        reader,
        &mut body,
        threads,
    )
    .unwrap();
    assert!(
        body == want_body,
        "{t} {len} bytes, {threads:?}: body differs"
    );
    same_summary(&got, &want);

    let first_pass = encrypt_reader_threads(key.clone(), t, &plain[..], threads).unwrap();
    same_summary(&first_pass, &want);

    let expected = Expected {
        file_enc_sha256: Some(want.file_enc_sha256),
        file_sha256: Some(want.file_sha256),
        file_length: Some(want.file_length),
    };
    let mut back = Vec::new();
    let reader = Choppy {
        data: &body,
        rng: Rng(rng.next()),
        max: max_read,
    };
    let dec = Decryptor::new(&key, t, expected).unwrap();
    let verified = decrypt_stream(dec, reader, &mut back, threads).unwrap();
    assert!(
        back == plain,
        "{t} {len} bytes, {threads:?}: plaintext differs"
    );
    assert_eq!(verified.file_sha256, want.file_sha256);
    assert_eq!(verified.file_enc_sha256, want.file_enc_sha256);
    assert_eq!(verified.file_length, len as u64);
}

#[test]
fn two_threads_are_byte_identical_to_one_on_random_cases() {
    within_minutes(two_threads_are_byte_identical_to_one);
}

fn two_threads_are_byte_identical_to_one() {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let interval = CHECKPOINT_INTERVAL as usize;
    let mut lengths = vec![
        0,
        1,
        15,
        16,
        17,
        31,
        32,
        33,
        1000,
        interval - 1,
        interval,
        interval + 1,
    ];
    for _ in 0..24 {
        lengths.push(rng.below(3 * interval as u64) as usize);
    }
    let types = [MediaType::Document, MediaType::Video, MediaType::Ptt];
    for (i, len) in lengths.into_iter().enumerate() {
        let t = &types[i % types.len()];
        let max_read = [1usize, 17, 4096, 300_000][i % 4];
        // A read size of 1 over a long input is slow to no purpose: cap it.
        let max_read = if len > 100_000 {
            max_read.max(4096)
        } else {
            max_read
        };
        for threads in [Threads::One, Threads::Two, Threads::Auto] {
            check(&mut rng, t, len, max_read, threads);
        }
    }
}

#[test]
fn auto_crosses_to_two_threads_mid_stream_with_the_same_result() {
    let mut rng = Rng(0x5eed_cafe_f00d_0002);
    let len = TWO_THREADS_FROM as usize + 3 * 16 + 7;
    check(&mut rng, &MediaType::Video, len, 100_003, Threads::Auto);
    check(
        &mut rng,
        &MediaType::Image,
        len + 1_000_001,
        65_536,
        Threads::Auto,
    );
}

#[test]
fn a_tampered_body_fails_on_two_threads_as_on_one() {
    within_minutes(a_tampered_body_fails);
}

fn a_tampered_body_fails() {
    let mut rng = Rng(0x5eed_cafe_f00d_0003);
    let plain = rng.bytes(2 << 20);
    let key = MediaKey::from_bytes([9; 32]);
    let (mut body, _) = encrypt(key.clone(), &MediaType::Image, &plain).unwrap();
    body[1 << 20] ^= 1;
    for threads in [Threads::One, Threads::Two] {
        let dec = Decryptor::new(&key, &MediaType::Image, Expected::default()).unwrap();
        let err = decrypt_stream(dec, &body[..], io::sink(), threads).unwrap_err();
        assert!(
            matches!(err, StreamError::Integrity(IntegrityError::MacMismatch)),
            "{threads:?}: {err}"
        );
        let dec = Decryptor::new(&key, &MediaType::Image, Expected::default()).unwrap();
        let err = decrypt_stream(dec, &body[..body.len() - 3], io::sink(), threads).unwrap_err();
        assert!(
            matches!(
                err,
                StreamError::Integrity(IntegrityError::BadLength { .. })
            ),
            "{threads:?}: {err}"
        );
    }
}

/// Gives `ok` bytes, then fails.
struct FailingReader {
    ok: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(3);
        self.ok -= n;
        Ok(n)
    }
}

/// Takes `ok` bytes, then fails.
struct FailingWriter {
    ok: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.ok);
        self.ok -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn read_and_write_failures_end_either_side_with_their_own_error() {
    within_minutes(read_and_write_failures);
}

fn read_and_write_failures() {
    let key = MediaKey::from_bytes([4; 32]);
    for threads in [Threads::One, Threads::Two] {
        let enc = Encryptor::new(key.clone(), &MediaType::Document).unwrap();
        let err =
            encrypt_stream(enc, FailingReader { ok: 3 << 20 }, io::sink(), threads).unwrap_err();
        assert!(matches!(err, StreamError::Read(_)), "{threads:?}: {err}");

        let enc = Encryptor::new(key.clone(), &MediaType::Document).unwrap();
        let err = encrypt_stream(
            enc,
            &vec![0u8; 3 << 20][..],
            FailingWriter { ok: 1 << 20 },
            threads,
        )
        .unwrap_err();
        assert!(matches!(err, StreamError::Write(_)), "{threads:?}: {err}");

        let (body, _) = encrypt(key.clone(), &MediaType::Document, &vec![1u8; 3 << 20]).unwrap();
        let dec = Decryptor::new(&key, &MediaType::Document, Expected::default()).unwrap();
        let err =
            decrypt_stream(dec, &body[..], FailingWriter { ok: 100_000 }, threads).unwrap_err();
        assert!(matches!(err, StreamError::Write(_)), "{threads:?}: {err}");

        let dec = Decryptor::new(&key, &MediaType::Document, Expected::default()).unwrap();
        let err =
            decrypt_stream(dec, FailingReader { ok: 1 << 20 }, io::sink(), threads).unwrap_err();
        assert!(matches!(err, StreamError::Read(_)), "{threads:?}: {err}");
    }
}
