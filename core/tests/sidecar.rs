//! The streaming sidecar against vectors computed by an independent implementation
//! (`tests/data/gen_sidecar.py`: Python `hmac`/`hashlib`, `openssl enc`), in every chunking.

use wamedia::*;
use wamedia_driver::UploadJob;

#[derive(serde::Deserialize)]
struct Kat {
    r#type: String,
    media_key: String,
    plaintext_len: usize,
    file_enc_sha256: String,
    streaming_sidecar: String,
}

fn kats() -> Vec<Kat> {
    serde_json::from_str(include_str!("data/sidecar.json")).unwrap()
}

fn plain(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 13 + 7) % 251) as u8).collect()
}

#[test]
fn sidecars_match_the_independent_vectors_in_any_chunking() {
    for k in kats() {
        let t: MediaType = k.r#type.parse().unwrap();
        let key: MediaKey = k.media_key.parse().unwrap();
        let p = plain(k.plaintext_len);
        let want = b64::decode_any(&k.streaming_sidecar).unwrap();
        let (_, m) = encrypt(key.clone(), &t, &p).unwrap();
        assert_eq!(
            b64::std(&m.file_enc_sha256),
            k.file_enc_sha256,
            "{}",
            k.r#type
        );
        // PROTOCOL v3: video and audio get one by default; ptt and gif only on request
        // (the vectors hold for them too: the algorithm is the type's keys').
        assert_eq!(
            m.streaming_sidecar.as_deref(),
            t.has_streaming_sidecar().then_some(&want[..]),
            "{}",
            k.r#type
        );
        for chunk in [1usize, 15, 16, 4096, 65_536, 100_000] {
            let mut e = Encryptor::new(key.clone(), &t)
                .unwrap()
                .with_streaming_sidecar(true);
            let mut out = Vec::new();
            for c in p.chunks(chunk) {
                e.update(c, &mut out);
            }
            assert_eq!(
                e.finish(&mut out).streaming_sidecar.unwrap(),
                want,
                "{} chunk {chunk}",
                k.r#type
            );
        }
    }
}

#[test]
fn a_sidecar_is_made_for_video_and_audio_only_and_on_request() {
    let key = MediaKey::from_bytes([4; 32]);
    let with: Vec<&MediaType> = MediaType::ALL
        .iter()
        .filter(|t| t.has_streaming_sidecar())
        .collect();
    assert_eq!(
        with,
        [&MediaType::Video, &MediaType::Audio],
        "PROTOCOL v3 §1"
    );
    for t in MediaType::ALL.iter().filter(|t| t.is_encrypted()) {
        let (_, m) = encrypt(key.clone(), t, b"x").unwrap();
        assert_eq!(
            m.streaming_sidecar.is_some(),
            t.has_streaming_sidecar(),
            "{t}"
        );
    }
    let mut out = Vec::new();
    let m = Encryptor::new(key.clone(), &MediaType::Document)
        .unwrap()
        .with_streaming_sidecar(true)
        .finish(&mut out);
    assert_eq!(m.streaming_sidecar.map(|s| s.len()), Some(10));
    let m = Encryptor::new(key, &MediaType::Video)
        .unwrap()
        .with_streaming_sidecar(false)
        .finish(&mut out);
    assert!(m.streaming_sidecar.is_none());
}

#[test]
fn a_sidecar_without_the_iv_as_whatsapp_rust_computes_it_never_matches() {
    use hmac::{Hmac, Mac};
    let k = &kats()[0];
    let t: MediaType = k.r#type.parse().unwrap();
    let key: MediaKey = k.media_key.parse().unwrap();
    let (body, m) = encrypt(key.clone(), &t, &plain(k.plaintext_len)).unwrap();
    let keys = key.expand(&t).unwrap();
    // D without the iv: windows over ciphertext || mac10 only.
    let mut wrong = Vec::new();
    for n in 0..body.len().div_ceil(65_536) {
        let mut h = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&keys.mac_key).unwrap();
        h.update(&body[n * 65_536..(n * 65_536 + 65_552).min(body.len())]);
        wrong.extend_from_slice(&h.finalize().into_bytes()[..10]);
    }
    let ours = m.streaming_sidecar.unwrap();
    assert_ne!(wrong, ours);
    assert!(
        wrong.chunks(10).zip(ours.chunks(10)).all(|(a, b)| a != b),
        "no window agrees"
    );
}

#[test]
fn an_upload_job_can_leave_a_video_without_its_sidecar() {
    let key = MediaKey::from_bytes([5; 32]);
    let job = UploadJob::new(MediaType::Video).with_media_key(key);
    let with = job.prepare(&plain(200_000)[..]).unwrap().spec;
    let without = job
        .with_streaming_sidecar(false)
        .prepare(&plain(200_000)[..])
        .unwrap()
        .spec;
    assert!(with.streaming_sidecar.is_some());
    assert!(without.streaming_sidecar.is_none());
    // The body is the same: only the sidecar is left out.
    assert_eq!(with.file_enc_sha256, without.file_enc_sha256);
    assert_eq!(with.file_sha256, without.file_sha256);
}
