//! Single-threaded throughput of streaming encryption (with all hashes and the MAC) and of
//! verified decryption, at 1 KiB, 1 MiB and 64 MiB. Run: `cargo bench -p wamedia`.

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use wamedia::{Decryptor, Encryptor, Expected, MediaKey, MediaType};

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
