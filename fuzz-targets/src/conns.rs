//! Media connections decoded from a script: 0–4 hosts, names or typed entries, TTLs from
//! zero to beyond the clock.

use std::time::Duration;

use wamedia::{Host, HostRole, MediaConn};

use crate::script::{Clock, Script};

/// The auth token of every connection: no CDN answer of a script contains it unless the
/// fuzzer put it there, so errors and request `Debug` can be searched for it.
pub(crate) const AUTH: &str = "fuzz-AUTH-9c1e5b7d3a";

/// Host names as `from_json` admits them (no white space or control characters),
/// hostile ones included.
pub(crate) const HOSTS: &[&str] = &[
    "mmg.whatsapp.net",
    "h0",
    "h1",
    "media-fra5-1.cdn.whatsapp.net",
    "http://127.0.0.1:1",
    "evil@x",
    "h:99999",
    "UP.WhatsApp.NET",
    "x/y",
    "[::1]",
    "evil.example",
    "https://mmg.whatsapp.net/",
];

/// `mms-type` names for hosts' upload and download lists.
const TYPES: &[&str] = &[
    "image",
    "video",
    "audio",
    "ptt",
    "document",
    "sticker",
    "gif",
    "md-msg-hist",
    "thumbnail-link",
    "fuzz",
    "",
    "IMAGE",
];

const TTLS: &[Duration] = &[
    Duration::from_secs(300),
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(60),
    Duration::from_secs(u64::MAX),
    Duration::from_secs(1 << 40),
];

const AGES: &[Duration] = &[
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(299),
    Duration::from_secs(3600),
    Duration::MAX,
];

/// The connection a cooperative session hands out.
pub(crate) fn default_conn(clock: &Clock) -> MediaConn {
    MediaConn::new(
        AUTH,
        vec![HOSTS[0].to_owned()],
        Duration::from_secs(300),
        clock.now,
    )
}

/// A connection decoded from the script (a zero byte: the default one).
pub(crate) fn decode(s: &mut Script<'_>, clock: &Clock) -> MediaConn {
    let kind = s.u8();
    if kind == 0 {
        return default_conn(clock);
    }
    let hosts = (0..kind % 5).map(|_| host(s)).collect();
    let ttl = s.pick(TTLS);
    let auth_ttl = match s.u8() % 4 {
        0 => None,
        1 => Some(Duration::ZERO),
        2 => Some(Duration::from_secs(10)),
        _ => Some(Duration::from_secs(u64::MAX)),
    };
    let max_buckets = (kind & 0x80 != 0).then(|| s.u64());
    MediaConn {
        auth: AUTH.to_owned(),
        ttl,
        auth_ttl,
        hosts,
        max_buckets,
        fetched_at: clock.ago(s.pick(AGES)),
    }
}

fn host(s: &mut Script<'_>) -> Host {
    let b = s.u8();
    let name = HOSTS[usize::from(b & 0x0f) % HOSTS.len()];
    if b & 0x80 == 0 {
        return Host::named(name);
    }
    let role = match s.u8() % 3 {
        0 => None,
        1 => Some(HostRole::Primary),
        _ => Some(HostRole::Fallback),
    };
    let f = s.u8();
    let fallback_hostname = (f & 1 == 1).then(|| HOSTS[usize::from(f >> 1) % HOSTS.len()].into());
    Host {
        role,
        fallback_hostname,
        upload: list(s),
        download: list(s),
        ..Host::named(name)
    }
}

fn list(s: &mut Script<'_>) -> Option<Vec<String>> {
    let bits = s.u16();
    (bits & 1 == 1).then(|| {
        TYPES
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (2 << i) != 0)
            .map(|(_, t)| (*t).to_owned())
            .collect()
    })
}
