#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/.

    python3 fuzz/make_corpus.py

The upload and download seeds are scripts in the byte format of
fuzz-targets/src/{script,conns,drive,upload,download}.rs: one decision per byte, in the
order the driver asks for them (options and spec first; then, as the machine asks, a
media connection per NeedMediaConn, an answer per request, an interjection per Wait).
Every table's first entry is the cooperative choice, so a zero byte (or the end of the
input) means "behave". The scenarios below mirror the machines' documented paths; a
seed that drifts from its intent is still a valid input, only a less pointed one.
media_conn seeds are connection JSON; cassette seeds are copies of library cassettes;
media_info seeds are the small media-info/tests/data fixtures and hostile files built here
(tiny boxes, empty Ogg pages, a WAV of many channels, a huge lossless WebP header, a PDF of
repeated page trees, a sticker that panics image-webp 0.2.4);
the inputs in fuzz/artifacts-found/ are copied in as found-* regression seeds.
"""

import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)
CORPUS = os.path.join(ROOT, "corpus")

UPLOAD_STATUSES = [200, 201, 401, 403, 404, 408, 413, 415, 429, 500, 503, 507, 400, 206,
                   0, 999, 599, 299, 100, 204, 502]
DOWNLOAD_STATUSES = [200, 206, 401, 403, 404, 410, 429, 500, 503, 507, 408, 400, 0, 999,
                     599, 204, 301, 416]
# Indices into MediaType::ALL.
IMAGE, STICKER, VIDEO, GIF, AUDIO, PTT, PTV, DOCUMENT = range(8)
PRODUCT_CATALOG_IMAGE = 13
RAW = 18


def u16(n):
    return struct.pack("<H", n)


def u64(n):
    return struct.pack("<Q", n)


def retry(attempts=4, rounds=3, backoff=0, backoff_max=0, total=0, request=0, min_bps=0):
    """RetryPolicy: table indices (see upload::retry)."""
    return bytes([attempts - 1, rounds - 1, backoff, backoff_max, total, request, min_bps])


# --- the drive stream -------------------------------------------------------------

CONN = b"\x00"  # the default connection: mmg.whatsapp.net, 300 s
WAIT = b"\x00"  # no interjection at a Wait: deliver the next action, or let time come


def conn(hosts, ttl=0, auth_ttl=0, age=0):
    """A decoded connection; hosts are bytes (bit 7: typed, low nibble: name index)."""
    out = bytes([len(hosts)])
    for h in hosts:
        out += h
    return out + bytes([ttl, auth_ttl, age])


def typed(name, role=0, fallback=None, upload=None, download=None):
    def lst(types):
        if types is None:
            return u16(0)
        bits = 1
        for t in types:
            bits |= 2 << t
        return u16(bits)
    fb = 0 if fallback is None else 1 | (fallback << 1)
    return bytes([0x80 | name, role, fb]) + lst(upload) + lst(download)


def waits(n):
    return WAIT * n


def jump(index, silent=False):
    """An interjection at a Wait: time jumps (JUMPS[index]), with or without Timeout."""
    return bytes([208 if silent else 192, index])


# --- uploads ----------------------------------------------------------------------

def upload_spec(media_type=IMAGE, length=1000, flags=0, threshold=0, resume=True,
                thumb=False, policy=None, length_kind=0):
    """length_kind: 0 a u16 (length), 1 zero, 2 5 MiB, 3 u64::MAX, 4 2^40."""
    out = policy or retry()
    out += bytes([0 if resume else 1, threshold, 1 if thumb else 0, flags, media_type])
    out += bytes([length_kind]) + (u16(length) if length_kind == 0 else b"")
    out += b"\x01" + u16(4242)    # file_sha256 byte, media_id
    if flags & 1 == 0:
        out += b"\x07\x02"        # key seed, file_enc_sha256 byte
    return out


def up_answer(status=200, body=0, flags=0, extra=b""):
    """A whole answer: head, one body piece, end (a Wait before each)."""
    s = UPLOAD_STATUSES.index(status)
    n = 2 if body == 1 else 3  # an empty body is not sent
    return bytes([0, s, flags]) + extra + bytes([body, 0]) + waits(n)


def up_sent_answer(sent=0, status=200, body=0):
    """Sent (SENTS[sent]: 0 is the whole body), then a whole answer: four Waits."""
    return bytes([5, sent, UPLOAD_STATUSES.index(status), 0, body, 0]) + waits(4)


UP_OK = up_answer()
BACKOFF = waits(1)  # the Wait of a backoff, answered by Timeout at its time


def uploads():
    yield "happy-image", upload_spec() + CONN + UP_OK
    yield "happy-video-thumb", upload_spec(VIDEO, thumb=True) + CONN + up_answer(body=10)
    yield "503-then-ok", upload_spec() + CONN + up_answer(503, 11) + BACKOFF + UP_OK
    yield "401-renewal", upload_spec() + CONN + up_answer(401, 1) + CONN + UP_OK
    yield "401-twice", upload_spec() + CONN + up_answer(401, 1) + CONN + up_answer(403, 1)
    yield "429-retry-after", (upload_spec() + CONN
                              + up_answer(429, 11, flags=1, extra=b"\x00") + BACKOFF + UP_OK)
    yield "429-retry-after-huge", upload_spec() + CONN + up_answer(429, 1, flags=1, extra=b"\x04")
    yield "413-final", upload_spec() + CONN + up_answer(413, 11)
    yield "200-garbage", upload_spec() + CONN + up_answer(200, 9)
    yield "200-no-url", upload_spec() + CONN + up_answer(200, 2)
    yield "silence-then-ok", (upload_spec() + CONN + b"\x03" + waits(1) + BACKOFF + UP_OK)
    yield "failed-then-ok", upload_spec() + CONN + b"\x02" + waits(1) + BACKOFF + UP_OK
    # A reused key probes first; the CDN holds half; the rest goes up from there.
    yield "reused-key-resume", (upload_spec(flags=4) + CONN
                                + up_answer(200, 7) + up_sent_answer())
    yield "reused-key-complete", upload_spec(flags=4) + CONN + up_answer(200, 3)
    # A large body cut mid-way: the next attempt probes.
    big = upload_spec(length=60000, threshold=3)
    yield "cut-then-probe", (big + CONN + b"\x04\x03" + waits(2) + BACKOFF
                             + up_answer(200, 5) + up_sent_answer())
    yield "newsletter-image", upload_spec(flags=1) + CONN + UP_OK
    yield "product-catalog", upload_spec(PRODUCT_CATALOG_IMAGE, flags=3) + CONN + UP_OK
    yield "encrypted-type-unencrypted", upload_spec(IMAGE, flags=3) + CONN + UP_OK
    yield "no-host-takes-type", (upload_spec(PTT) + conn([typed(0, upload=[0])]) + UP_OK)
    yield "typed-hosts", (upload_spec(PTT, policy=retry(attempts=5)) + conn([
        typed(0, role=1, fallback=3), typed(3, role=2), typed(1, upload=[3])])
        + up_answer(500, 1) + BACKOFF + up_answer(500, 1) + BACKOFF
        + up_answer(503, 1) + BACKOFF + UP_OK)
    yield "empty-host-list", upload_spec() + conn([]) + UP_OK
    yield "expired-conn", upload_spec() + conn([b"\x00"], ttl=1) + CONN + UP_OK
    yield "stale-conn-twice", upload_spec() + conn([b"\x00"], ttl=1) + conn([b"\x00"], ttl=1)
    yield "every-attempt-fails", (upload_spec(policy=retry(attempts=3)) + CONN
                                  + (up_answer(500, 1) + BACKOFF) * 3)
    yield "stray-ids", (upload_spec() + CONN + bytes([0, 0, 0, 0, 0])
                        + bytes([216, 5, 0]) + bytes([224, 0, 1]) + bytes([240]) + waits(3))
    yield "time-jumps", (upload_spec() + CONN + bytes([0, 0, 0, 0, 0])
                         + jump(1) + jump(3, silent=True) + waits(3))
    yield "deadline-passes", upload_spec(policy=retry(total=2)) + CONN + b"\x03" + jump(2)
    yield "zero-timeouts", (upload_spec(policy=retry(backoff=1, total=1, request=1)) + CONN
                            + b"\x03" + waits(4))
    yield "huge-length", upload_spec(length_kind=3) + CONN + UP_OK
    yield "five-mib-reused", upload_spec(length_kind=2, flags=4) + CONN + up_answer(200, 18) + up_sent_answer()


# --- downloads --------------------------------------------------------------------

def download_spec(media_type=IMAGE, flags=0, plain=0, plain_len=None, seed=1, max_body=0,
                  wall=0, source=b"\x00\x00", sidecar=0, policy=None):
    """plain: 0 1000 bytes, 1 none, 2 15, 3 16, 4 17, 6 64 KiB + 100, 7 192 KiB + 1;
    or plain_len bytes. sidecar (encrypted only): 0 none, 1 the real one, 2 a byte
    flipped, 3 cut short, 4 empty, 5 extended."""
    out = (policy or retry()) + bytes([flags, media_type])
    out += bytes([5]) + u16(plain_len) if plain_len is not None else bytes([plain])
    out += bytes([seed])
    if flags & 1 == 0 and media_type != PRODUCT_CATALOG_IMAGE:
        out += b"\x09"  # key seed
    out += bytes([max_body, wall]) + source
    if flags & 1 == 0 and media_type != PRODUCT_CATALOG_IMAGE:
        out += bytes([sidecar])
    return out


def dl_ok(pieces=0):
    """The cooperative answer: head, the body (in one piece), end."""
    return bytes([0, pieces]) + waits(3)


def dl_answer(status=200, piece=0, flags=0, extra=b""):
    s = DOWNLOAD_STATUSES.index(status)
    # head, one piece, end; an empty piece is not sent
    n = 2 if piece == 8 else 3
    return bytes([1, s, flags]) + extra + bytes([piece, 0]) + waits(n)


def downloads():
    yield "happy-image", download_spec() + CONN + dl_ok()
    yield "happy-in-pieces", (download_spec(plain_len=3000) + CONN + bytes([0, 3])
                              + u16(100) + u16(700) + u16(20) + waits(6))
    yield "range-resume-after-cut", (download_spec() + CONN + b"\x02" + u16(500) + waits(3)
                                     + dl_ok())
    yield "200-restart-after-cut", (download_spec() + CONN + b"\x02" + u16(500) + waits(3)
                                    + b"\x06\x00" + waits(3))
    yield "404-then-next-host", (download_spec() + conn([b"\x01", b"\x02"])
                                 + dl_answer(404, 8) + dl_ok())
    yield "410-everywhere", download_spec() + conn([b"\x01", b"\x02"]) + dl_answer(410, 8) * 2
    yield "401-renewal", download_spec() + CONN + dl_answer(401, 8) + CONN + dl_ok()
    yield "403-signature-expired", download_spec() + CONN + dl_answer(403, 7)
    yield "tampered-mac", download_spec() + CONN + dl_answer(200, 9, flags=1, extra=b"\x00")
    yield "flipped-byte", download_spec() + CONN + dl_answer(200, 3, flags=0)
    yield "truncated", download_spec() + CONN + dl_answer(200, 4)
    yield "extended", download_spec() + CONN + dl_answer(200, 5)
    yield "block-dropped", download_spec() + CONN + dl_answer(200, 10)
    yield "content-range-overflow", (download_spec() + CONN + b"\x02" + u16(500) + waits(3)
                                     + dl_answer(206, 0, flags=2, extra=b"\x01") + dl_ok())
    yield "content-length-lies", download_spec() + CONN + dl_answer(200, 0, flags=1, extra=b"\x05")
    yield "retry-after-huge", download_spec() + CONN + dl_answer(503, 8, flags=4, extra=b"\x04")
    yield "429-then-ok", download_spec() + CONN + dl_answer(429, 8, flags=4, extra=b"\x00") + waits(1) + dl_ok()
    yield "silence-then-ok", download_spec() + CONN + b"\x04" + waits(2) + dl_ok()
    yield "url-whatsapp", download_spec(source=b"\x02\x00") + dl_ok()
    yield "url-foreign-host", download_spec(source=b"\x02\x02") + CONN + dl_ok()
    yield "url-connection-host", download_spec(source=b"\x02\x03") + conn([b"\x01"]) + dl_ok()
    yield "url-trusted", download_spec(flags=0x10, source=b"\x02\x02") + dl_ok()
    yield "url-at-sign", download_spec(source=b"\x02\x04") + dl_ok()
    yield "url-http", download_spec(source=b"\x02\x01") + CONN + dl_ok()
    for i, name in [(2, "at-sign"), (3, "double-slash"), (4, "backslash"), (6, "no-slash")]:
        yield "path-" + name, download_spec(source=bytes([0, i])) + CONN + dl_ok()
    yield "path-expires-mid-transfer", (download_spec(source=b"\x03") + CONN + b"\x04"
                                        + jump(2) + dl_ok())
    yield "wall-past-oe", download_spec(wall=5) + CONN + dl_ok()
    yield "newsletter-plain", download_spec(flags=1) + CONN + dl_ok()
    yield "product-catalog", download_spec(PRODUCT_CATALOG_IMAGE, flags=1) + CONN + dl_ok()
    yield "nothing-to-verify", download_spec(flags=5) + CONN + dl_ok()
    yield "wrong-length", download_spec(flags=0x40) + CONN + dl_ok()
    yield "max-body-too-small", download_spec(max_body=4) + CONN + dl_ok()
    yield "empty-plaintext", download_spec(plain=1) + CONN + dl_ok()
    yield "sidecar-video", download_spec(VIDEO, plain=7, sidecar=1) + CONN + dl_ok(3) + u16(60000) + u16(9) + u16(30000) + waits(3)
    yield "sidecar-resume", (download_spec(VIDEO, plain=6, sidecar=1) + CONN + b"\x02" + u16(40000)
                             + waits(3) + dl_ok())
    yield "sidecar-tampered-body", download_spec(AUDIO, plain=6, sidecar=1) + CONN + dl_answer(200, 3)
    yield "sidecar-wrong", download_spec(VIDEO, plain=6, sidecar=2) + b"\x00\x00\x01" + CONN + dl_ok()
    yield "sidecar-short", download_spec(IMAGE, sidecar=3) + b"\x05" + CONN + dl_ok()
    yield "typed-hosts-video", (download_spec(VIDEO) + conn([
        typed(0, download=[1], fallback=3), typed(1, fallback=2)]) + dl_answer(404, 8)
        + dl_answer(404, 8) + dl_ok())
    yield "stray-and-late", (download_spec() + CONN + b"\x07" + u16(300) + b"\x05\x01"
                             + bytes([216, 3, 2]) + bytes([248]) + waits(4))
    yield "push-conn-mid-answer", (download_spec() + CONN + b"\x00\x00" + bytes([232, 0])
                                   + waits(3))


# --- the rest ---------------------------------------------------------------------

def decryptors():
    def case(key, mtype, arm, mutation, m1, m2, offset, plain, chunks):
        return (u64(key) + bytes([mtype, arm, mutation]) + u16(m1) + bytes([m2]) + u16(offset)
                + u16(len(plain)) + plain + bytes([len(chunks)]) + bytes(chunks))
    text = b"a picture worth a thousand words " * 8
    yield "image-untouched", case(1, IMAGE, 7, 0, 0, 0, 0, text, [])
    yield "video-chunked", case(2, VIDEO, 7, 0, 0, 0, 17, text, [3, 4, 5, 8, 2])
    yield "empty", case(3, AUDIO, 7, 0, 0, 0, 0, b"", [])
    yield "one-block", case(4, PTT, 7, 0, 0, 0, 10, bytes(16), [2, 2])
    yield "flip", case(5, DOCUMENT, 0, 1, 40, 1, 0, text, [6])
    yield "truncate", case(6, STICKER, 1, 2, 0, 0, 0, text, [])
    yield "extend", case(7, GIF, 0, 3, 15, 0, 0, text, [7])
    yield "drop-block", case(8, IMAGE, 0, 4, 2, 0, 0, text, [])
    yield "swap-blocks", case(9, IMAGE, 0, 5, 0, 0, 0, text, [])
    yield "insert", case(10, IMAGE, 0, 6, 7, 0x41, 0, text, [])
    yield "wrong-length", case(11, IMAGE, 0x84, 0, 0, 0, 0, text, [])
    yield "product-catalog", case(12, PRODUCT_CATALOG_IMAGE, 7, 0, 0, 0, 0, text, [])
    yield "raw-type", case(13, RAW, 7, 0, 0, 0, 0, text, [1, 2])


def media_conns():
    yield "plain", {"auth": "a", "ttl": 300, "hosts": ["mmg.whatsapp.net"]}
    yield "full", {"auth": "s3cr3t", "ttl": 300, "auth_ttl": 60, "max_buckets": 12,
                   "hosts": ["a.net", {"hostname": "b.net"}]}
    yield "typed", {"auth": "a", "ttl": 300, "hosts": [
        {"hostname": "p.net", "type": "primary", "fallback_hostname": "pf.net",
         "upload": ["image", "video"], "download": ["image"]},
        {"hostname": "f.net", "type": "fallback"}]}
    yield "huge-ttl", {"auth": "a", "ttl": 18446744073709551615,
                       "auth_ttl": 18446744073709551615, "hosts": ["h"]}
    yield "zero-ttl", {"auth": "a", "ttl": 0, "hosts": []}
    yield "loopback", {"auth": "REDACTED-AUTH", "ttl": 300,
                       "hosts": ["http://127.0.0.1:8080", {"hostname": "h", "type": None}]}
    yield "bad-type", {"auth": "tok", "ttl": 1, "hosts": [{"hostname": "x", "type": "main"}]}
    yield "bad-ttl", {"auth": "tok", "ttl": -1, "hosts": []}
    yield "space", {"auth": "tok", "ttl": 1, "hosts": ["a b"]}
    yield "lists", {"auth": "tok", "ttl": 1, "hosts": [{"hostname": "x", "upload": "image"}]}
    # PROTOCOL v3 §3: the IQ answer as a decoded binary node, as clients hand it over.
    pop = {"tag": "host", "attrs": {"hostname": "media-fra5-1.cdn.whatsapp.net", "type": "primary",
                                    "class": "pop", "fallback_hostname": "media-fra5-2.cdn.whatsapp.net"},
           "content": [{"tag": "upload", "content": []},
                       {"tag": "download", "content": [{"tag": "image"}, {"tag": "video"}]},
                       {"tag": "download_buckets", "content": [{"tag": "0"}]}]}
    mmg = {"tag": "host", "attrs": {"hostname": "mmg.whatsapp.net", "type": "primary"}}
    fb = {"tag": "host", "attrs": {"hostname": "mmg-fb.whatsapp.net", "type": "fallback"},
          "content": [{"tag": "upload", "content": [{"tag": "image"}, {"tag": "newsletter-image"}]}]}
    mc = {"tag": "media_conn", "attrs": {"auth": "tok", "ttl": "300", "auth_ttl": "21600",
                                         "max_buckets": "12"}, "content": [pop, mmg, fb]}
    yield "node-iq", {"tag": "iq", "attrs": {"type": "result"}, "content": [mc]}
    yield "node-media-conn", mc
    yield "node-capitalised", {"Tag": "media_conn", "Attrs": {"auth": "a", "ttl": 60},
                               "Content": [{"Tag": "host", "Attrs": {"hostname": "h"}}]}
    yield "node-error", {"tag": "iq", "attrs": {"type": "error"},
                         "content": [{"tag": "error", "attrs": {"code": "401"}}]}
    for f in ["download-typed-hosts", "upload-typed-hosts-order", "upload-pop-hosts-real-shape"]:
        c = json.load(open(os.path.join(REPO, "conformance/cassettes", f + ".json")))
        for e in c["events"]:
            if "media_conn" in e:
                m = dict(e["media_conn"])
                m.pop("at_ms", None)
                yield "cassette-" + f, m
                break


CASSETTES = ["download-happy-path", "download-typed-hosts", "upload-5xx-then-success",
             "upload-resume-bytestart", "download-range-resume-after-drop"]


MEDIA_FIXTURES = ["alpha.png", "animated.webp", "sticker.webp", "rotated.jpg", "photo.jpg",
                  "doc.pdf", "audio.m4a", "noxing.mp3", "audio.wav", "video.mp4"]


def mp4_box(kind, body):
    return struct.pack(">I", len(body) + 8) + kind + body


def ogg_crc(page):
    crc = 0
    for b in page:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def ogg_page(flags, granule, seq, packets):
    lacing = b""
    for p in packets:
        n = len(p)
        while n >= 255:
            lacing += b"\xff"
            n -= 255
        lacing += bytes([n])
    page = (b"OggS\0" + bytes([flags]) + struct.pack("<QII", granule, 7, seq) + b"\0" * 4
            + bytes([len(lacing)]) + lacing + b"".join(packets))
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def media_infos():
    data = os.path.join(REPO, "media-info/tests/data")
    for f in MEDIA_FIXTURES:
        with open(os.path.join(data, f), "rb") as fh:
            yield f, fh.read()
    with open(os.path.join(data, "voice.ogg"), "rb") as fh:
        voice = fh.read()
    # About a second of voice: short enough for the in-process decoder under the fuzz limits.
    yield "voice-cut.ogg", voice[:len(voice) // 4]
    with open(os.path.join(data, "animated.webp"), "rb") as fh:
        webp = bytearray(fh.read())
    webp[850] = 0  # image-webp 0.2.4 panics on this frame (image-webp#182)
    yield "animated-panics-image-webp.webp", bytes(webp)
    ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2")
    yield "tiny-boxes.mp4", ftyp + mp4_box(b"moov", mp4_box(b"free", b"") * 300)
    trak = mp4_box(b"trak", mp4_box(b"free", b"") * 40)
    yield "nested-boxes.mp4", ftyp + mp4_box(b"moov", mp4_box(b"mvhd", bytes(100)) + trak * 40)
    head = b"OpusHead\x01\x01" + struct.pack("<HI", 312, 48000) + b"\0\0\0"
    ogg = ogg_page(2, 0, 0, [head]) + ogg_page(0, 0, 1, [b"OpusTags" + bytes(8)])
    ogg += b"".join(ogg_page(0, 0, s, []) for s in range(2, 120))
    yield "empty-pages.ogg", ogg + ogg_page(4, 48312, 120, [b"\xf8\xff\xfe"])
    channels, frames = 300, 70
    frame = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, 8000, 8000 * frame, frame, 16)
    samples = b"".join(struct.pack("<h", f * 400) + bytes(frame - 2) for f in range(frames))
    yield "many-channels.wav", (b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt "
                                + struct.pack("<I", 16) + fmt + b"data"
                                + struct.pack("<I", len(samples)) + samples)
    bits = (7000 - 1) | ((7000 - 1) << 14)
    body = b"\x2f" + struct.pack("<I", bits) + bytes(64)
    yield "huge-lossless.webp", (b"RIFF" + struct.pack("<I", 12 + len(body)) + b"WEBPVP8L"
                                 + struct.pack("<I", len(body)) + body)
    yield "repeated-pages.pdf", b"%PDF-1.4\n" + b"/Type/Pages" * 300 + b"<</Type/Pages/Count 5>>"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    for name, data in uploads():
        write("upload", name, data)
    for name, data in downloads():
        write("download", name, data)
    for name, data in decryptors():
        write("decryptor", name, data)
    for name, doc in media_conns():
        write("media_conn", name + ".json", json.dumps(doc).encode())
    write("media_conn", "not-json", b"{\"auth\":")
    for name, data in media_infos():
        write("media_info", name, data)
    # Inputs that once broke the core (fuzz/artifacts-found/), now regression seeds.
    found = os.path.join(ROOT, "artifacts-found")
    for name in sorted(os.listdir(found)):
        target = name.split("-")[0]
        if target in ("upload", "download", "decryptor", "cassette") and "." not in name:
            with open(os.path.join(found, name), "rb") as f:
                write(target, "found-" + name[len(target) + 1:], f.read())
    for c in CASSETTES:
        with open(os.path.join(REPO, "conformance/cassettes", c + ".json"), "rb") as f:
            write("cassette", c + ".json", f.read())
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))), "files")


if __name__ == "__main__":
    main()
