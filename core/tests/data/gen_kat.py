#!/usr/bin/env python3
"""Known-answer vectors for wamedia, computed independently of the Rust code.

HKDF-SHA256 is written out from RFC 5869 with Python's hmac/hashlib; AES-256-CBC with
PKCS#7 is done by the `openssl enc -aes-256-cbc` command; the MAC is Python's hmac.
Run: python3 gen_kat.py > kat.json
"""
import base64, hashlib, hmac, json, subprocess

TYPES = [
    ("image", "WhatsApp Image Keys"), ("sticker", "WhatsApp Image Keys"),
    ("video", "WhatsApp Video Keys"), ("gif", "WhatsApp Video Keys"),
    ("audio", "WhatsApp Audio Keys"), ("ptt", "WhatsApp Audio Keys"),
    ("ptv", "WhatsApp Video Keys"), ("document", "WhatsApp Document Keys"),
    ("history", "WhatsApp History Keys"), ("app-state", "WhatsApp App State Keys"),
    ("sticker-pack", "WhatsApp Sticker Pack Keys"),
    ("sticker-pack-thumbnail", "WhatsApp Sticker Pack Thumbnail Keys"),
    ("link-thumbnail", "WhatsApp Link Thumbnail Keys"),
    # Not encrypted (PROTOCOL v2 §1): no keys, no vector; kept so the seeds stay put.
    ("product-catalog-image", None),
    ("image-thumbnail", "WhatsApp Image Thumbnail Keys"),
    ("video-thumbnail", "WhatsApp Video Thumbnail Keys"),
    ("document-thumbnail", "WhatsApp Document Thumbnail Keys"),
    ("payment-background", "WhatsApp Payment Background Keys"),
]
LENGTHS = [0, 1, 15, 16, 17, 31, 32, 100, 255, 1000]


def hkdf(ikm, info, length):
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def aes_cbc(key, iv, data):
    return subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex()],
        input=data, capture_output=True, check=True).stdout


out = []
for n, (name, info) in enumerate(TYPES):
    if info is None:
        continue
    key = bytes((n * 31 + i * 7 + 1) % 256 for i in range(32))
    length = LENGTHS[n % len(LENGTHS)]
    plain = bytes((i * 13 + n) % 251 for i in range(length))
    okm = hkdf(key, info.encode(), 112)
    iv, ck, mk, rk = okm[:16], okm[16:48], okm[48:80], okm[80:112]
    ct = aes_cbc(ck, iv, plain)
    mac = hmac.new(mk, iv + ct, hashlib.sha256).digest()[:10]
    body = ct + mac
    out.append({
        "type": name,
        "media_key": key.hex(),
        "plaintext": plain.hex(),
        "iv": iv.hex(), "cipher_key": ck.hex(), "mac_key": mk.hex(), "ref_key": rk.hex(),
        "body": body.hex(),
        "file_sha256": base64.b64encode(hashlib.sha256(plain).digest()).decode(),
        "file_enc_sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "file_length": length,
    })
print(json.dumps(out, indent=1))
