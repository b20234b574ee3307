#!/usr/bin/env python3
"""Media retry vectors, computed independently of the Rust code (whatsmeow mediaretry.go,
Baileys messages-media.ts): key = HKDF-SHA256(media_key, no salt,
"WhatsApp Media Retry Notification", 32 bytes); AES-256-GCM with a 12-byte IV and the
message id as AAD, over hand-encoded protobuf:
  ServerErrorReceipt      { 1: stanza_id (string) }
  MediaRetryNotification  { 1: stanza_id (string), 2: direct_path (string), 3: result (enum) }
HKDF from RFC 5869 with hmac/hashlib; AES-GCM from the `cryptography` package.
Run: python3 gen_retry.py > retry.json
"""
import base64, hashlib, hmac, json
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def hkdf(ikm, info, length):
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def field(num, wire, payload):
    return bytes([(num << 3) | wire]) + payload


def string(num, s):
    b = s.encode()
    assert len(b) < 128
    return field(num, 2, bytes([len(b)]) + b)


media_key = bytes(range(32))
message_id = "3EB0C431B7F5A2D5E7A9"
key = hkdf(media_key, b"WhatsApp Media Retry Notification", 32)
receipt_iv = bytes(range(100, 112))
receipt = string(1, message_id)
notif_iv = bytes(range(200, 212))
direct_path = "/v/t62.7118-24/12345_67890_n.enc?ccb=11-4&oh=01_AbC&oe=6A000000"
notification = string(1, message_id) + string(2, direct_path) + field(3, 0, bytes([1]))
g = AESGCM(key)
print(json.dumps({
    "media_key": media_key.hex(),
    "message_id": message_id,
    "receipt_iv": base64.b64encode(receipt_iv).decode(),
    "receipt_plaintext": receipt.hex(),
    "receipt_ciphertext": base64.b64encode(g.encrypt(receipt_iv, receipt, message_id.encode())).decode(),
    "notification_iv": base64.b64encode(notif_iv).decode(),
    "notification_ciphertext": base64.b64encode(g.encrypt(notif_iv, notification, message_id.encode())).decode(),
    "notification_direct_path": direct_path,
    "notification_result": 1,
}, indent=1))
