//! Media retry crypto against vectors computed by an independent implementation
//! (`tests/data/gen_retry.py`: RFC 5869 HKDF in Python, AES-GCM from the `cryptography`
//! package, hand-encoded protobuf bytes).

use wamedia::retry::*;
use wamedia::*;

#[derive(serde::Deserialize)]
struct Vectors {
    media_key: String,
    message_id: String,
    receipt_iv: String,
    receipt_ciphertext: String,
    notification_iv: String,
    notification_ciphertext: String,
    notification_direct_path: String,
}

fn v() -> Vectors {
    serde_json::from_str(include_str!("data/retry.json")).unwrap()
}

fn iv12(s: &str) -> [u8; 12] {
    b64::decode_any(s).unwrap().try_into().unwrap()
}

#[test]
fn the_receipt_matches_the_independent_vector() {
    let v = v();
    let key: MediaKey = v.media_key.parse().unwrap();
    let ct = encrypt_retry_receipt(&key, &v.message_id, &iv12(&v.receipt_iv));
    assert_eq!(b64::std(&ct), v.receipt_ciphertext);
}

#[test]
fn the_notification_decrypts_to_its_new_direct_path() {
    let v = v();
    let key: MediaKey = v.media_key.parse().unwrap();
    let ct = b64::decode_any(&v.notification_ciphertext).unwrap();
    let iv = b64::decode_any(&v.notification_iv).unwrap();
    let n = decrypt_retry_notification(&key, &v.message_id, &iv, &ct).unwrap();
    assert_eq!(n.result, RetryResult::Success);
    assert_eq!(
        n.direct_path.as_deref(),
        Some(v.notification_direct_path.as_str())
    );
    assert_eq!(n.stanza_id.as_deref(), Some(v.message_id.as_str()));
}

#[test]
fn a_wrong_key_message_id_iv_or_byte_is_a_typed_error() {
    let v = v();
    let key: MediaKey = v.media_key.parse().unwrap();
    let ct = b64::decode_any(&v.notification_ciphertext).unwrap();
    let iv = b64::decode_any(&v.notification_iv).unwrap();
    let other = MediaKey::from_bytes([9; 32]);
    assert_eq!(
        decrypt_retry_notification(&other, &v.message_id, &iv, &ct),
        Err(RetryError::Decrypt)
    );
    assert_eq!(
        decrypt_retry_notification(&key, "3EB0OTHER", &iv, &ct),
        Err(RetryError::Decrypt)
    );
    assert_eq!(
        decrypt_retry_notification(&key, &v.message_id, &iv[..11], &ct),
        Err(RetryError::BadIv(11))
    );
    let mut bad = ct.clone();
    bad[3] ^= 1;
    assert_eq!(
        decrypt_retry_notification(&key, &v.message_id, &iv, &bad),
        Err(RetryError::Decrypt)
    );
    assert_eq!(
        decrypt_retry_notification(&key, &v.message_id, &iv, &[]),
        Err(RetryError::Decrypt)
    );
}
