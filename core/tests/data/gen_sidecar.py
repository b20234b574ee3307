#!/usr/bin/env python3
"""Streaming sidecar known-answer vectors, computed independently of the Rust code.

HKDF-SHA256 from RFC 5869 with Python's hmac/hashlib; AES-256-CBC + PKCS#7 by
`openssl enc -aes-256-cbc`; the sidecar by WhatsApp Web's rule
(`WAWebCryptoCalculateStreamingSidecar`): D = iv || ciphertext || mac10, windows
D[n*65536 : n*65536 + 65552] for n < ceil((len(D) - 16) / 65536), each the first 10 bytes
of HMAC-SHA256(mac_key, window). Plaintext byte i is (i * 13 + 7) % 251.
Run: python3 gen_sidecar.py > sidecar.json
"""
import base64, hashlib, hmac, json, math, subprocess


def hkdf(ikm, info, length):
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


out = []
for name, info, length in [
    ("video", "WhatsApp Video Keys", 200_000),
    ("audio", "WhatsApp Audio Keys", 65_504),   # |D| = 65536 + 10: one window, not two
    ("ptt", "WhatsApp Audio Keys", 65_520),
    ("gif", "WhatsApp Video Keys", 10),
]:
    key = hashlib.sha256(name.encode()).digest()
    plain = bytes((i * 13 + 7) % 251 for i in range(length))
    okm = hkdf(key, info.encode(), 112)
    iv, ck, mk = okm[:16], okm[16:48], okm[48:80]
    ct = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", ck.hex(), "-iv", iv.hex()],
                        input=plain, capture_output=True, check=True).stdout
    mac = hmac.new(mk, iv + ct, hashlib.sha256).digest()[:10]
    d = iv + ct + mac
    sidecar = b""
    for n in range(math.ceil((len(d) - 16) / 65536)):
        sidecar += hmac.new(mk, d[n * 65536:n * 65536 + 65552], hashlib.sha256).digest()[:10]
    out.append({
        "type": name,
        "media_key": key.hex(),
        "plaintext_len": length,
        "file_enc_sha256": base64.b64encode(hashlib.sha256(ct + mac).digest()).decode(),
        "streaming_sidecar": base64.b64encode(sidecar).decode(),
    })
print(json.dumps(out, indent=1))
