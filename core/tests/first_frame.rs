//! The first-frame sidecar of animated stickers (PROTOCOL §2.8) against the rule written
//! out by hand here: HKDF, AES-256-CBC block by block with PKCS#7, and one HMAC over
//! `D[0 .. min(16 + ⌈L/16⌉·16, |D|)]` (`WAWebCryptoCalculateFirstFrameSidecar` slices, and
//! a JavaScript slice stops at the buffer's end).

use aes::cipher::{BlockEncrypt, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wamedia::sidecar::{first_frame_sidecar, first_frame_sidecar_of_plaintext, first_frame_span};
use wamedia::*;
use wamedia_driver::UploadJob;

/// `D = iv ‖ ciphertext ‖ mac10` and the MAC key, made without wamedia's code.
fn by_hand(key: &[u8; 32], info: &str, plain: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let mut okm = [0u8; 112];
    Hkdf::<Sha256>::new(None, key)
        .expand(info.as_bytes(), &mut okm)
        .unwrap();
    let (iv, cipher_key, mac_key) = (&okm[..16], &okm[16..48], &okm[48..80]);
    let aes = aes::Aes256::new(cipher_key.into());
    let pad = 16 - plain.len() % 16;
    let mut padded = plain.to_vec();
    padded.extend(std::iter::repeat_n(pad as u8, pad));
    let mut d = iv.to_vec();
    let mut chain: [u8; 16] = iv.try_into().unwrap();
    for block in padded.chunks(16) {
        let mut b = [0u8; 16];
        for i in 0..16 {
            b[i] = block[i] ^ chain[i];
        }
        let mut ga = b.into();
        aes.encrypt_block(&mut ga);
        chain = ga.into();
        d.extend_from_slice(&chain);
    }
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).unwrap();
    h.update(&d);
    d.extend_from_slice(&h.finalize().into_bytes()[..10]);
    (d, mac_key.try_into().unwrap())
}

fn rule(mac_key: &[u8; 32], d: &[u8], l: u64) -> [u8; 10] {
    let end = (16u128 + u128::from(l).div_ceil(16) * 16).min(d.len() as u128) as usize;
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).unwrap();
    h.update(&d[..end]);
    h.finalize().into_bytes()[..10].try_into().unwrap()
}

fn plain(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 29 + 3) % 251) as u8).collect()
}

#[test]
fn the_span_rounds_l_up_to_a_block_and_adds_the_iv() {
    assert_eq!(first_frame_span(0), 16);
    assert_eq!(first_frame_span(1), 32);
    assert_eq!(first_frame_span(16), 32);
    assert_eq!(first_frame_span(17), 48);
    assert_eq!(first_frame_span(u64::MAX), u64::MAX, "saturates");
}

#[test]
fn every_way_of_computing_it_matches_the_rule_by_hand() {
    let key = [0x5au8; 32];
    let mk = MediaKey::from_bytes(key);
    for len in [1usize, 15, 16, 17, 100, 1000, 4096, 70_000] {
        let p = plain(len);
        let (d, mac_key) = by_hand(&key, "WhatsApp Image Keys", &p);
        let body = &d[16..];
        // L a multiple of 16, L not, L at the end, just past it, and far past it.
        for l in [
            0u64,
            16,
            44,
            45,
            48,
            len as u64,
            len as u64 + 1,
            1 << 40,
            u64::MAX,
        ] {
            let want = rule(&mac_key, &d, l);
            let lib = first_frame_sidecar(&mk, &MediaType::Sticker, l, body).unwrap();
            assert_eq!(lib, want, "body, len {len}, L {l}");
            let need = first_frame_span(l)
                .saturating_sub(16)
                .min(body.len() as u64) as usize;
            let prefix = first_frame_sidecar(&mk, &MediaType::Sticker, l, &body[..need]).unwrap();
            assert_eq!(prefix, want, "prefix, len {len}, L {l}");
            let of_plain =
                first_frame_sidecar_of_plaintext(&mk, &MediaType::Sticker, l, &p).unwrap();
            assert_eq!(of_plain, want, "plaintext, len {len}, L {l}");
            for chunk in [1usize, 16, 4096] {
                let mut e = Encryptor::new(mk.clone(), &MediaType::Sticker)
                    .unwrap()
                    .with_first_frame_sidecar(l);
                let mut out = Vec::new();
                for c in p.chunks(chunk) {
                    e.update(c, &mut out);
                }
                let m = e.finish(&mut out);
                assert_eq!(out, body, "the same body");
                assert_eq!(
                    m.first_frame_sidecar,
                    Some(want),
                    "len {len}, L {l}, chunk {chunk}"
                );
                assert_eq!(m.first_frame_length, Some(l));
            }
        }
    }
}

#[test]
fn past_the_end_the_range_is_all_of_d_mac_included() {
    let key = [3u8; 32];
    let p = plain(40);
    let (d, mac_key) = by_hand(&key, "WhatsApp Image Keys", &p);
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
    h.update(&d);
    let whole: [u8; 10] = h.finalize().into_bytes()[..10].try_into().unwrap();
    // |D| = 16 + 48 + 10: a span of 80 covers it all.
    let got = first_frame_sidecar(
        &MediaKey::from_bytes(key),
        &MediaType::Sticker,
        60,
        &d[16..],
    );
    assert_eq!(got.unwrap(), whole);
}

#[test]
fn the_upload_job_computes_it_in_the_first_pass_and_the_result_prints_it() {
    let p = plain(3000);
    let key = MediaKey::from_bytes([9; 32]);
    let job = UploadJob::new(MediaType::Sticker)
        .with_media_key(key.clone())
        .with_first_frame_length(1234);
    let prepared = job.prepare(&p[..]).unwrap();
    let want = first_frame_sidecar_of_plaintext(&key, &MediaType::Sticker, 1234, &p).unwrap();
    assert_eq!(prepared.spec.first_frame_sidecar, Some(want));
    assert_eq!(prepared.spec.first_frame_length, Some(1234));
    // Without the length there is none; other types never get one unasked.
    let plain_job = UploadJob::new(MediaType::Sticker).with_media_key(key);
    assert_eq!(
        plain_job.prepare(&p[..]).unwrap().spec.first_frame_sidecar,
        None
    );
    // Its Debug output never shows key material.
    let dbg = format!("{:?}", prepared.spec);
    assert!(dbg.contains("redacted"), "{dbg}");
}
