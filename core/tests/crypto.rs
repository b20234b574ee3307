//! The crypto core against independent known answers, and its properties.
//!
//! `data/kat.json` comes from `data/gen_kat.py`: HKDF written out from RFC 5869 with
//! Python's `hmac`/`hashlib`, AES-256-CBC by `openssl enc`, the MAC by Python's `hmac`.

use aes::cipher::{BlockEncryptMut, KeyIvInit};
use hmac::Mac;
use serde::Deserialize;
use wamedia::*;
use wamedia::{body_len, CHECKPOINT_INTERVAL, LANES, LANE_GROUP};

mod support;
/// splitmix64: a tiny seeded generator, so failures reproduce.
use support::Rng;

#[derive(Deserialize)]
struct Kat {
    r#type: String,
    media_key: String,
    plaintext: String,
    iv: String,
    cipher_key: String,
    mac_key: String,
    ref_key: String,
    body: String,
    file_sha256: String,
    file_enc_sha256: String,
    file_length: u64,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn kats() -> Vec<Kat> {
    serde_json::from_str(include_str!("data/kat.json")).unwrap()
}

fn key(seed: u8) -> MediaKey {
    MediaKey::from_bytes(core::array::from_fn(|i| seed.wrapping_add(i as u8)))
}

/// Encrypts `data` fed in random chunks (including empty ones).
fn encrypt_chunked(
    rng: &mut Rng,
    k: MediaKey,
    t: &MediaType,
    data: &[u8],
) -> (Vec<u8>, EncryptedMedia) {
    let mut enc = Encryptor::new(k, t).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = (rng.below(70_000) as usize).min(data.len() - pos);
        enc.update(&data[pos..pos + n], &mut out);
        pos += n;
    }
    let meta = enc.finish(&mut out);
    (out, meta)
}

fn decrypt_chunked(
    rng: &mut Rng,
    k: &MediaKey,
    t: &MediaType,
    body: &[u8],
    expected: Expected,
) -> Result<(Vec<u8>, Verified), IntegrityError> {
    let mut dec = Decryptor::new(k, t, expected).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let n = (rng.below(40) as usize + if rng.below(4) == 0 { 70_000 } else { 0 })
            .min(body.len() - pos);
        dec.update_unverified(&body[pos..pos + n], &mut out);
        pos += n;
    }
    let v = dec.finish(&mut out)?;
    Ok((out, v))
}

#[test]
fn known_answers_for_every_media_type() {
    let kats = kats();
    assert_eq!(
        kats.len(),
        MediaType::ALL.iter().filter(|t| t.is_encrypted()).count(),
        "one vector per encrypted media type"
    );
    let e = encrypt(key(1), &MediaType::ProductCatalogImage, b"x").unwrap_err();
    assert_eq!(e.what, Unsupported::Encryption);
    assert!(Encryptor::new(key(1), &MediaType::ProductCatalogImage).is_err());
    assert!(matches!(
        decrypt(
            &key(1),
            &MediaType::ProductCatalogImage,
            &[0; 26],
            &Expected::default()
        ),
        Err(IntegrityError::NotEncrypted(_))
    ));
    let mut rng = Rng(1);
    for kat in kats {
        let t: MediaType = kat.r#type.parse().unwrap();
        let k: MediaKey = kat.media_key.parse().unwrap();
        let keys = k.expand(&t).unwrap();
        assert_eq!(keys.iv.to_vec(), hex(&kat.iv), "{}", kat.r#type);
        assert_eq!(keys.cipher_key.to_vec(), hex(&kat.cipher_key));
        assert_eq!(keys.mac_key.to_vec(), hex(&kat.mac_key));
        assert_eq!(keys.ref_key.to_vec(), hex(&kat.ref_key));
        let plain = hex(&kat.plaintext);
        let (body, meta) = encrypt(k.clone(), &t, &plain).unwrap();
        assert_eq!(body, hex(&kat.body), "{}", kat.r#type);
        assert_eq!(b64::std(&meta.file_sha256), kat.file_sha256);
        assert_eq!(b64::std(&meta.file_enc_sha256), kat.file_enc_sha256);
        assert_eq!(meta.file_length, kat.file_length);
        let (body2, _) = encrypt_chunked(&mut rng, k.clone(), &t, &plain);
        assert_eq!(body2, body);
        let expected = Expected {
            file_enc_sha256: Some(b64::decode_sha256(&kat.file_enc_sha256).unwrap()),
            file_sha256: Some(b64::decode_sha256(&kat.file_sha256).unwrap()),
            file_length: Some(kat.file_length),
        };
        let (p, v) = decrypt(&k, &t, &body, &expected).unwrap();
        assert_eq!(p, plain);
        assert_eq!(v.file_length, kat.file_length);
        let (p2, _) = decrypt_chunked(&mut rng, &k, &t, &body, expected).unwrap();
        assert_eq!(p2, plain);
    }
}

#[test]
fn round_trip_every_length_0_to_300() {
    let mut rng = Rng(2);
    for len in 0..=300usize {
        let encrypted: Vec<&MediaType> =
            MediaType::ALL.iter().filter(|t| t.is_encrypted()).collect();
        let t = encrypted[len % encrypted.len()];
        let plain = rng.bytes(len);
        let k = key(len as u8);
        let (body, meta) = encrypt(k.clone(), t, &plain).unwrap();
        assert_eq!(body.len() as u64, body_len(len as u64));
        assert_eq!((body.len() - 10) % 16, 0);
        // Byte-at-a-time and random chunkings give the same body.
        let mut enc = Encryptor::new(k.clone(), t).unwrap();
        let mut out = Vec::new();
        for b in &plain {
            enc.update(std::slice::from_ref(b), &mut out);
        }
        enc.finish(&mut out);
        assert_eq!(out, body, "len {len}");
        let expected = Expected {
            file_enc_sha256: Some(meta.file_enc_sha256),
            file_sha256: Some(meta.file_sha256),
            file_length: Some(len as u64),
        };
        assert_eq!(decrypt(&k, t, &body, &expected).unwrap().0, plain);
        assert_eq!(
            decrypt_chunked(&mut rng, &k, t, &body, expected).unwrap().0,
            plain
        );
    }
}

#[test]
fn random_chunkings_of_larger_inputs_agree() {
    let mut rng = Rng(3);
    for len in [
        65_536usize,
        65_537,
        1_000_003,
        2 * CHECKPOINT_INTERVAL as usize + 5,
    ] {
        let plain = rng.bytes(len);
        let (one, meta) = encrypt(key(9), &MediaType::Video, &plain).unwrap();
        for _ in 0..3 {
            let (chunked, meta2) = encrypt_chunked(&mut rng, key(9), &MediaType::Video, &plain);
            assert_eq!(chunked, one);
            assert_eq!(meta2.file_enc_sha256, meta.file_enc_sha256);
            let (p, _) = decrypt_chunked(
                &mut rng,
                &key(9),
                &MediaType::Video,
                &one,
                Expected::default(),
            )
            .unwrap();
            assert_eq!(p, plain);
        }
    }
}

/// Regenerates `body[offset..]` the way a resumed upload does.
fn regenerate(
    meta: &EncryptedMedia,
    t: &MediaType,
    plain: &[u8],
    offset: u64,
    chunk: usize,
) -> Vec<u8> {
    regenerate_with(meta, t, plain, offset, chunk, false)
}

/// The same, `in_place` or not: with `update_in_place` each chunk of plaintext becomes
/// the body bytes it completes.
fn regenerate_with(
    meta: &EncryptedMedia,
    t: &MediaType,
    plain: &[u8],
    offset: u64,
    chunk: usize,
    in_place: bool,
) -> Vec<u8> {
    let (from, mut gen) = meta.body_from(t, offset).unwrap();
    assert!(
        from <= offset && offset - from <= CHECKPOINT_INTERVAL + 16,
        "reads from {from} for {offset}"
    );
    let mut out = Vec::new();
    for c in plain[from as usize..].chunks(chunk) {
        if in_place {
            let mut buf = c.to_vec();
            gen.update_in_place(&mut buf).unwrap();
            out.append(&mut buf);
        } else {
            gen.update(c, &mut out).unwrap();
        }
    }
    gen.finish(&mut out).unwrap();
    out
}

#[test]
fn body_regenerates_from_any_offset() {
    let mut rng = Rng(4);
    let plain = rng.bytes(3 * CHECKPOINT_INTERVAL as usize + 100);
    let t = MediaType::Document;
    let (body, meta) = encrypt(key(4), &t, &plain).unwrap();
    assert_eq!(meta.checkpoints.len(), 3);
    let n = body.len() as u64;
    let i = CHECKPOINT_INTERVAL;
    let mut offsets = vec![
        0,
        1,
        15,
        16,
        17,
        i - 1,
        i,
        i + 1,
        2 * i + 7,
        3 * i,
        n - 27,
        n - 26,
        n - 11,
        n - 10,
        n - 9,
        n - 1,
        n,
    ];
    offsets.extend((0..20).map(|_| rng.below(n + 1)));
    for off in offsets {
        let chunk = 1 + rng.below(200_000) as usize;
        assert_eq!(
            regenerate(&meta, &t, &plain, off, chunk),
            &body[off as usize..],
            "offset {off}"
        );
    }
    assert!(meta.body_from(&t, n + 1).is_err());
    // Small bodies too, every offset.
    let small = rng.bytes(40);
    let (body, meta) = encrypt(key(5), &t, &small).unwrap();
    for off in 0..=body.len() as u64 {
        assert_eq!(regenerate(&meta, &t, &small, off, 7), &body[off as usize..]);
    }
}

#[test]
fn body_regenerates_on_lanes_as_on_one_chain() {
    let mut rng = Rng(8);
    let i = CHECKPOINT_INTERVAL;
    let len = (2 * LANES as u64 + 3) * i + 777;
    let plain = rng.bytes(len as usize);
    let t = MediaType::Video;
    let (body, meta) = encrypt(key(8), &t, &plain).unwrap();
    let n = body.len() as u64;
    let mut offsets = vec![
        0,
        1,
        16,
        i,
        i + 5,
        8 * i,
        9 * i - 1,
        16 * i,
        n - 30,
        n - 10,
        n,
    ];
    offsets.extend((0..12).map(|_| rng.below(n + 1)));
    for off in offsets {
        // Whole groups (the lanes), groups off by a block, and odd sizes (one chain).
        for chunk in [
            LANE_GROUP,
            2 * LANE_GROUP + 16,
            LANE_GROUP + 16,
            1 + rng.below(300_000) as usize,
        ] {
            assert!(
                regenerate(&meta, &t, &plain, off, chunk) == body[off as usize..],
                "offset {off}, chunk {chunk}"
            );
            assert!(
                regenerate_with(&meta, &t, &plain, off, chunk, true) == body[off as usize..],
                "in place: offset {off}, chunk {chunk}"
            );
        }
    }
}

#[test]
fn regeneration_notices_a_plaintext_changed_in_place() {
    let i = CHECKPOINT_INTERVAL as usize;
    let plain = vec![5u8; 10 * i + 3];
    let t = MediaType::Document;
    let (_, meta) = encrypt(key(10), &t, &plain).unwrap();
    let mut changed = plain.clone();
    changed[3 * i + 100] ^= 0x80;
    for chunk in [LANE_GROUP, 4096, 333] {
        let (from, mut gen) = meta.body_from(&t, 0).unwrap();
        let mut out = Vec::new();
        let mut seen = Ok(());
        for c in changed[from as usize..].chunks(chunk) {
            seen = gen.update(c, &mut out);
            if seen.is_err() {
                break;
            }
        }
        assert_eq!(seen, Err(BodyError::PlaintextChanged), "chunk {chunk}");
    }
}

#[test]
fn regeneration_notices_a_changed_plaintext_length() {
    let plain = vec![7u8; 100];
    let (_, meta) = encrypt(key(6), &MediaType::Image, &plain).unwrap();
    let (_, mut gen) = meta.body_from(&MediaType::Image, 0).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        gen.update(&[0u8; 101], &mut out),
        Err(BodyError::PlaintextChanged)
    );
    let (_, mut gen) = meta.body_from(&MediaType::Image, 0).unwrap();
    gen.update(&plain[..99], &mut out).unwrap();
    assert_eq!(gen.finish(&mut out), Err(BodyError::PlaintextChanged));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let plain: Vec<u8> = (0..37u8).collect();
    let k = key(7);
    let t = MediaType::Image;
    let (body, _) = encrypt(k.clone(), &t, &plain).unwrap();
    let mut rng = Rng(5);
    for bit in 0..body.len() * 8 {
        let mut bad = body.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            decrypt(&k, &t, &bad, &Expected::default()).unwrap_err(),
            IntegrityError::MacMismatch,
            "bit {bit}"
        );
        assert_eq!(
            decrypt_chunked(&mut rng, &k, &t, &bad, Expected::default()).unwrap_err(),
            IntegrityError::MacMismatch
        );
    }
}

#[test]
fn wrong_key_wrong_type_truncated_and_bad_shape() {
    let plain = vec![1u8; 64];
    let k = key(8);
    let t = MediaType::Audio;
    let (body, meta) = encrypt(k.clone(), &t, &plain).unwrap();
    let none = Expected::default();
    assert_eq!(
        decrypt(&key(9), &t, &body, &none).unwrap_err(),
        IntegrityError::MacMismatch
    );
    assert_eq!(
        decrypt(&k, &MediaType::Video, &body, &none).unwrap_err(),
        IntegrityError::MacMismatch
    );
    // Ptt shares Audio's keys, so it decrypts.
    assert!(decrypt(&k, &MediaType::Ptt, &body, &none).is_ok());
    assert_eq!(
        decrypt(&k, &t, &body[..body.len() - 16], &none).unwrap_err(),
        IntegrityError::MacMismatch
    );
    assert_eq!(
        decrypt(&k, &t, &body[..body.len() - 1], &none).unwrap_err(),
        IntegrityError::BadLength {
            len: body.len() as u64 - 1
        }
    );
    assert_eq!(
        decrypt(&k, &t, &body[..25], &none).unwrap_err(),
        IntegrityError::TooShort { len: 25 }
    );
    assert_eq!(
        decrypt(&k, &t, &[], &none).unwrap_err(),
        IntegrityError::TooShort { len: 0 }
    );
    let mut rng = Rng(6);
    assert_eq!(
        decrypt_chunked(&mut rng, &k, &t, &body[..25], none.clone()).unwrap_err(),
        IntegrityError::TooShort { len: 25 }
    );
    assert_eq!(
        decrypt_chunked(&mut rng, &k, &t, &body[..body.len() - 3], none.clone()).unwrap_err(),
        IntegrityError::BadLength {
            len: body.len() as u64 - 3
        }
    );
    // Expected values are each checked, in order.
    let enc_wrong = Expected {
        file_enc_sha256: Some([0; 32]),
        ..none.clone()
    };
    assert_eq!(
        decrypt(&k, &t, &body, &enc_wrong).unwrap_err(),
        IntegrityError::EncHashMismatch
    );
    let plain_wrong = Expected {
        file_sha256: Some([0; 32]),
        ..none.clone()
    };
    assert_eq!(
        decrypt(&k, &t, &body, &plain_wrong).unwrap_err(),
        IntegrityError::PlainHashMismatch
    );
    let len_wrong = Expected {
        file_sha256: Some(meta.file_sha256),
        file_length: Some(63),
        ..none.clone()
    };
    assert_eq!(
        decrypt(&k, &t, &body, &len_wrong).unwrap_err(),
        IntegrityError::LengthMismatch {
            expected: 63,
            actual: 64
        }
    );
    assert_eq!(
        decrypt_chunked(&mut rng, &k, &t, &body, len_wrong).unwrap_err(),
        IntegrityError::LengthMismatch {
            expected: 63,
            actual: 64
        }
    );
    // The enc hash is checked before the MAC.
    let mut tampered = body.clone();
    tampered[0] ^= 1;
    let both = Expected {
        file_enc_sha256: Some(meta.file_enc_sha256),
        ..none
    };
    assert_eq!(
        decrypt(&k, &t, &tampered, &both).unwrap_err(),
        IntegrityError::EncHashMismatch
    );
}

#[test]
fn bad_padding_with_a_valid_mac_is_rejected() {
    // Build a body whose last block decrypts to padding byte 0x11 (invalid), with a correct MAC.
    let k = key(10);
    let t = MediaType::Document;
    let keys = k.expand(&t).unwrap();
    for last in [0u8, 17, 0x10] {
        let mut block = [last; 16];
        if last == 0x10 {
            block[3] = 9; // 0x10 padding with one wrong byte
        }
        let mut enc =
            cbc::Encryptor::<aes::Aes256>::new((&keys.cipher_key).into(), (&keys.iv).into());
        enc.encrypt_block_mut((&mut block).into());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&keys.mac_key).unwrap();
        mac.update(&keys.iv);
        mac.update(&block);
        let mut body = block.to_vec();
        body.extend_from_slice(&mac.finalize().into_bytes()[..10]);
        assert_eq!(
            decrypt(&k, &t, &body, &Expected::default()).unwrap_err(),
            IntegrityError::BadPadding
        );
        assert_eq!(
            decrypt_chunked(&mut Rng(7), &k, &t, &body, Expected::default()).unwrap_err(),
            IntegrityError::BadPadding
        );
    }
}

#[test]
fn newsletter_metadata_is_plain_hash_and_length() {
    let (h, n) = newsletter_metadata(b"abc");
    assert_eq!(b64::std(&h), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    assert_eq!(n, 3);
}
