//! Throughput of streaming encryption (with all hashes and the MAC) and of verified
//! decryption, on one thread at 1 KiB, 1 MiB and 64 MiB and through the two-thread
//! pipeline at 64 MiB; the upload's second pass (body regeneration) on 8 CBC chains and on
//! one. Run: `cargo bench -p wamedia`.

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use wamedia::{Decryptor, Encryptor, Expected, MediaKey, MediaType};
use wamedia_driver::{decrypt_stream, encrypt_stream, Threads};

const SIZES: &[usize] = &[1 << 10, 1 << 20, 64 << 20];
const CHUNK: usize = 1 << 20;

fn main() {
    divan::main();
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

fn encrypt_with(bencher: Bencher, len: usize, sidecar: bool) {
    let plain = plaintext(len);
    let mut out = Vec::with_capacity(CHUNK + 32);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let mut enc = Encryptor::new(MediaKey::from_bytes([1; 32]), &MediaType::Video)
            .unwrap()
            .with_streaming_sidecar(sidecar);
        for chunk in plain.chunks(CHUNK) {
            out.clear();
            enc.update(chunk, &mut out);
        }
        out.clear();
        black_box(enc.finish(&mut out));
    });
}

/// Encryption with its three hashes and the MAC, no sidecar.
#[divan::bench(args = SIZES, sample_count = 10)]
fn encrypt(bencher: Bencher, len: usize) {
    encrypt_with(bencher, len, false);
}

/// The same with the streaming sidecar (a fourth SHA-256 chain) in the same pass.
#[divan::bench(args = SIZES, sample_count = 10)]
fn encrypt_with_sidecar(bencher: Bencher, len: usize) {
    encrypt_with(bencher, len, true);
}

#[divan::bench(args = SIZES, sample_count = 10)]
fn decrypt_verify(bencher: Bencher, len: usize) {
    let plain = plaintext(len);
    let (body, meta) =
        wamedia::encrypt(MediaKey::from_bytes([1; 32]), &MediaType::Video, &plain).unwrap();
    let expected = Expected {
        file_enc_sha256: Some(meta.file_enc_sha256),
        file_sha256: Some(meta.file_sha256),
        file_length: Some(meta.file_length),
    };
    let key = MediaKey::from_bytes([1; 32]);
    let mut out = Vec::with_capacity(CHUNK + 64);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let mut dec = Decryptor::new(&key, &MediaType::Video, expected.clone()).unwrap();
        for chunk in body.chunks(CHUNK) {
            out.clear();
            dec.update_unverified(chunk, &mut out);
        }
        out.clear();
        black_box(dec.finish(&mut out).unwrap());
    });
}

/// Encryption through the two-thread pipeline (`Threads::Two`), body to a sink.
#[divan::bench(args = [64 << 20], sample_count = 10)]
fn encrypt_two_threads(bencher: Bencher, len: usize) {
    let plain = plaintext(len);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let enc = Encryptor::new(MediaKey::from_bytes([1; 32]), &MediaType::Document).unwrap();
        black_box(encrypt_stream(enc, &plain[..], std::io::sink(), Threads::Two).unwrap());
    });
}

/// Verified decryption through the two-thread pipeline, plaintext to a sink.
#[divan::bench(args = [64 << 20], sample_count = 10)]
fn decrypt_verify_two_threads(bencher: Bencher, len: usize) {
    let plain = plaintext(len);
    let key = MediaKey::from_bytes([1; 32]);
    let (body, meta) = wamedia::encrypt(key.clone(), &MediaType::Document, &plain).unwrap();
    let expected = Expected {
        file_enc_sha256: Some(meta.file_enc_sha256),
        file_sha256: Some(meta.file_sha256),
        file_length: Some(meta.file_length),
    };
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let dec = Decryptor::new(&key, &MediaType::Document, expected.clone()).unwrap();
        black_box(decrypt_stream(dec, &body[..], std::io::sink(), Threads::Two).unwrap());
    });
}

fn regenerate_with(bencher: Bencher, len: usize, chunk: usize) {
    let plain = plaintext(len);
    let (_, meta) =
        wamedia::encrypt(MediaKey::from_bytes([1; 32]), &MediaType::Document, &plain).unwrap();
    let mut out = Vec::with_capacity(chunk + 32);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let (_, mut gen) = meta.body_from(&MediaType::Document, 0).unwrap();
        for c in plain.chunks(chunk) {
            out.clear();
            gen.update(c, &mut out).unwrap();
        }
        out.clear();
        gen.finish(&mut out).unwrap();
        black_box(&out);
    });
}

/// The upload's second pass: the body regenerated from the plaintext, fed in groups of
/// `LANE_GROUP` bytes, so AES runs on 8 CBC chains at once.
#[divan::bench(args = [64 << 20], sample_count = 10)]
fn regenerate_body_lanes(bencher: Bencher, len: usize) {
    regenerate_with(bencher, len, wamedia::LANE_GROUP);
}

/// The same fed 4 KiB at a time: one CBC chain, block after block (the first pass's AES).
#[divan::bench(args = [64 << 20], sample_count = 10)]
fn regenerate_body_one_chain(bencher: Bencher, len: usize) {
    regenerate_with(bencher, len, 4096);
}

/// The SHA-256 kernel alone (the `sha2` crate), to set beside `openssl speed -evp sha256`.
#[divan::bench(args = [64 << 20], sample_count = 10)]
fn kernel_sha256(bencher: Bencher, len: usize) {
    use sha2::Digest;
    let plain = plaintext(len);
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| black_box(sha2::Sha256::digest(&plain)));
}

/// The AES-256-CBC encryption kernel alone (the `aes` and `cbc` crates), in place.
#[divan::bench(args = [64 << 20], sample_count = 10)]
fn kernel_aes256_cbc_encrypt(bencher: Bencher, len: usize) {
    use cbc::cipher::{BlockEncryptMut, KeyIvInit};
    let mut buf = plaintext(len);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let mut c = cbc::Encryptor::<aes::Aes256>::new(&[1u8; 32].into(), &[2u8; 16].into());
        let (blocks, _) = cbc::cipher::inout::InOutBuf::from(&mut buf[..]).into_chunks();
        c.encrypt_blocks_inout_mut(blocks);
        black_box(&buf);
    });
}
