//! A fuzz input read as a stream of decisions, and the virtual clock the drivers keep.
//!
//! Every decision reads the next byte (or a little-endian number); an exhausted input reads
//! as zeros, and every table puts its cooperative choice first, so the tail of any input
//! plays out as a well-behaved CDN and the transfer ends. `fuzz/make_corpus.py` writes
//! seeds in this format.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The rest of a fuzz input.
pub(crate) struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Script { data }
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let mut b = [0; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// An entry of `table`, the first one for a zero byte.
    pub(crate) fn pick<T: Clone>(&mut self, table: &[T]) -> T {
        table[usize::from(self.u8()) % table.len()].clone()
    }

    /// A number in `0..n` (`n` at most 256).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n.max(1)
    }

    /// Up to `n` raw bytes (fewer when the input ends).
    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Up to `max` raw bytes, the length read first (two bytes).
    pub(crate) fn blob(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.u16()) % (max + 1);
        self.bytes(n).to_vec()
    }

    /// A length-prefixed string (one byte of length), lossily decoded.
    pub(crate) fn text(&mut self) -> String {
        let n = usize::from(self.u8());
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
}

/// Time jumps: small steps, past the usual deadlines and TTLs, and to the clock's edge.
pub(crate) const JUMPS: &[Duration] = &[
    Duration::from_secs(1),
    Duration::from_millis(1),
    Duration::from_secs(61),
    Duration::from_secs(301),
    Duration::from_secs(86_400),
    Duration::from_secs(10 * 365 * 86_400),
    Duration::from_secs(1 << 40),
    Duration::MAX,
];

/// The virtual clock: one real `Instant` as a base, then only jumps.
pub(crate) struct Clock {
    pub(crate) now: Instant,
    /// Where the clock started.
    pub(crate) base: Instant,
    /// The latest instant the platform can represent from the base.
    edge: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let base = Instant::now();
        // Binary search for the largest representable offset (whole seconds).
        let (mut lo, mut hi) = (0u64, u64::MAX);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if base.checked_add(Duration::from_secs(mid)).is_some() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let edge = base.checked_add(Duration::from_secs(lo)).unwrap_or(base);
        Clock {
            now: base,
            base,
            edge,
        }
    }

    /// Moves the clock forward by `by`, stopping at the edge of what `Instant` holds.
    pub(crate) fn jump(&mut self, by: Duration) {
        self.now = self.now.checked_add(by).unwrap_or(self.edge).min(self.edge);
    }

    /// `now - ago`, or `now` when that lies before what `Instant` holds.
    pub(crate) fn ago(&self, ago: Duration) -> Instant {
        self.now.checked_sub(ago).unwrap_or(self.now)
    }
}

/// `UNIX_EPOCH + secs`, or the latest time `SystemTime` holds near it.
pub(crate) fn wall(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .or_else(|| UNIX_EPOCH.checked_add(Duration::from_secs(u64::from(u32::MAX) << 16)))
        .unwrap_or(UNIX_EPOCH)
}

/// `len` bytes of a splitmix64 stream from `seed` (the conformance `pattern`).
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    wamedia_conformance::cassette::pattern(len as u64, seed)
}

/// splitmix64, for keys and the seeded corpus run.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A media key from a seed.
pub(crate) fn key(seed: u64) -> wamedia::MediaKey {
    let mut s = seed;
    let mut k = [0u8; 32];
    for chunk in k.chunks_mut(8) {
        chunk.copy_from_slice(&splitmix(&mut s).to_le_bytes());
    }
    wamedia::MediaKey::from_bytes(k)
}

/// The media type at `i` of `MediaType::ALL`, or (one past its end) a raw type.
pub(crate) fn media_type(i: usize) -> wamedia::MediaType {
    let all = wamedia::MediaType::ALL;
    all.get(i % (all.len() + 1))
        .cloned()
        .unwrap_or_else(|| wamedia::MediaType::raw("WhatsApp Fuzz Keys", "fuzz"))
}

/// SHA-256 (the core's own, through its newsletter metadata helper).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    wamedia::newsletter_metadata(data).0
}

/// True when `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
