//! The crypto target: encrypt a plaintext, maybe mutate the body, then decrypt it
//! streaming (in the input's chunking) and in memory; both must agree, and a mutated body
//! must never verify.

use wamedia::{decrypt, encrypt, Decryptor, Encryptor, Expected, IntegrityError, Verified};

use crate::script::{self, Script};

/// Chunk sizes around the block, the hold-back (26) and nothing at all.
const CHUNKS: &[usize] = &[4096, 0, 1, 15, 16, 17, 25, 26, 27, 31, 32, 33, 100, 255];

/// See [`crate::decryptor`].
pub(crate) fn run(data: &[u8]) {
    let mut s = Script::new(data);
    let key = script::key(s.u64());
    let media_type = script::media_type(s.below(256));
    let arm = s.u8();
    let mutation = s.u8() % 7;
    let (m1, m2) = (s.u16(), s.u8());
    let offset = s.u16();
    let len = usize::from(s.u16()) % 4097;
    let mut plain = s.bytes(len).to_vec();
    plain.resize(len, 0xa5);
    let chunks: Vec<usize> = (0..s.below(32)).map(|_| s.pick(CHUNKS)).collect();

    let Ok((body, media)) = encrypt(key.clone(), &media_type, &plain) else {
        // Not an encrypted type: no key expansion, nothing decrypts.
        assert!(!media_type.is_encrypted());
        assert!(Decryptor::new(&key, &media_type, Expected::default()).is_err());
        assert!(decrypt(&key, &media_type, &[0; 42], &Expected::default()).is_err());
        return;
    };
    assert!(media_type.is_encrypted());
    assert_eq!(body.len() as u64, wamedia::body_len(plain.len() as u64));
    assert_eq!(media.file_enc_sha256, script::sha256(&body));
    assert_eq!(media.file_sha256, script::sha256(&plain));

    // Streaming encryption in the same chunking gives the same body.
    let mut enc = Encryptor::new(key.clone(), &media_type).expect("an encrypted type");
    let mut streamed = Vec::new();
    for part in split(&plain, &chunks) {
        enc.update(part, &mut streamed);
    }
    let meta = enc.finish(&mut streamed);
    assert!(
        streamed == body,
        "streaming encryption differs from encrypt()"
    );
    assert_eq!(meta.file_enc_sha256, media.file_enc_sha256);

    // The body regenerated from any offset is the body's tail.
    let offset = u64::from(offset) % (body.len() as u64 + 1);
    let (start, mut generator) = media
        .body_from(&media_type, offset)
        .expect("offset within the body");
    let mut tail = Vec::new();
    let from = usize::try_from(start).expect("small");
    for part in split(&plain[from..], &chunks) {
        generator
            .update(part, &mut tail)
            .expect("the same plaintext");
    }
    generator.finish(&mut tail).expect("the same length");
    assert!(
        tail == body[offset as usize..],
        "body_from({offset}) is not the body's tail"
    );

    let mut mutated = body.clone();
    match mutation {
        1 => {
            let i = usize::from(m1) % mutated.len();
            mutated[i] ^= m2.max(1);
        }
        2 => mutated.truncate(mutated.len() - (1 + usize::from(m1) % mutated.len())),
        3 => mutated.extend(std::iter::repeat_n(m2, 1 + usize::from(m1 % 64))),
        4 if mutated.len() >= 42 => {
            let at = 16 * (usize::from(m1) % (mutated.len() / 16 - 1));
            mutated.drain(at..at + 16);
        }
        5 if mutated.len() >= 42 && mutated[..16] != mutated[16..32] => {
            let (x, y) = mutated.split_at_mut(16);
            x.swap_with_slice(&mut y[..16]);
        }
        6 => mutated.insert(usize::from(m1) % (mutated.len() + 1), m2),
        _ => {}
    }
    let mutated_body = mutated != body;

    let wrong = arm & 0x80 != 0;
    let expected = Expected {
        file_enc_sha256: (arm & 1 != 0).then(|| {
            let mut h = media.file_enc_sha256;
            h[31] ^= u8::from(wrong);
            h
        }),
        file_sha256: (arm & 2 != 0).then_some(media.file_sha256),
        file_length: (arm & 4 != 0).then_some(plain.len() as u64 + u64::from(wrong)),
    };
    let wrong = wrong && (arm & 5 != 0);

    let whole = decrypt(&key, &media_type, &mutated, &expected);
    let streamed = stream(&key, &media_type, &mutated, &expected, &chunks);
    match (&whole, &streamed) {
        (Ok((p1, v1)), (Ok(v2), p2)) => {
            assert!(p1 == p2, "streaming and in-memory plaintexts differ");
            assert_eq!(v1, v2);
        }
        (Err(e1), (Err(e2), _)) => assert_eq!(e1, e2, "streaming and in-memory errors differ"),
        _ => panic!(
            "decrypt() says {:?}, the Decryptor {:?}",
            whole.as_ref().map(|(_, v)| v),
            streamed.0
        ),
    }
    if mutated_body || wrong {
        assert!(
            whole.is_err(),
            "a mutated body or a wrong expectation verified"
        );
    } else {
        let (p, v) = whole.expect("the untouched body verifies");
        assert!(p == plain, "the round trip changed the plaintext");
        assert_eq!(v.file_length, plain.len() as u64);
        assert_eq!(v.file_sha256, media.file_sha256);
        assert_eq!(v.file_enc_sha256, media.file_enc_sha256);
    }
}

/// `data` in pieces of the given sizes, the rest in one piece.
fn split<'a>(mut data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for &n in sizes {
        let (a, b) = data.split_at(n.min(data.len()));
        out.push(a);
        data = b;
    }
    out.push(data);
    out
}

fn stream(
    key: &wamedia::MediaKey,
    media_type: &wamedia::MediaType,
    body: &[u8],
    expected: &Expected,
    chunks: &[usize],
) -> (Result<Verified, IntegrityError>, Vec<u8>) {
    let mut d = Decryptor::new(key, media_type, expected.clone()).expect("an encrypted type");
    let mut out = Vec::new();
    for part in split(body, chunks) {
        d.update_unverified(part, &mut out);
        assert_eq!(
            out.len() % 16,
            0,
            "unverified plaintext comes in whole blocks"
        );
    }
    assert_eq!(d.body_len(), body.len() as u64);
    let r = d.finish(&mut out);
    (r, out)
}
