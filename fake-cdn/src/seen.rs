//! The request log behind [`FakeCdn::seen`](crate::FakeCdn::seen): entries numbered in
//! arrival order, only the last few kept, each cut to a few KiB, so that a long-running
//! `wamedia serve` holds a bounded amount of it whatever its clients send.

use std::collections::VecDeque;

use crate::SeenRequest;

/// The longest method kept.
const MAX_METHOD: usize = 32;
/// The longest target kept.
const MAX_TARGET: usize = 4 * 1024;
/// The longest header value kept.
const MAX_HEADER_VALUE: usize = 1024;
/// Most header bytes (names and values) kept per entry; later headers are left out.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The last `limit` requests, numbered from 0 in arrival order.
#[derive(Debug)]
pub(super) struct SeenLog {
    /// The number of `entries[0]`.
    first: u64,
    entries: VecDeque<SeenRequest>,
    limit: usize,
}

impl SeenLog {
    /// An empty log keeping at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        SeenLog {
            first: 0,
            entries: VecDeque::new(),
            limit,
        }
    }

    /// Appends an entry (cut to size) and returns its number; the oldest entries beyond
    /// the limit drop off.
    pub fn push(&mut self, entry: SeenRequest) -> u64 {
        let n = self.total();
        self.entries.push_back(cut(entry));
        while self.entries.len() > self.limit {
            self.entries.pop_front();
            self.first = self.first.saturating_add(1);
        }
        n
    }

    /// Replaces entry `n` (cut to size), if it is still kept.
    pub fn fill(&mut self, n: u64, entry: SeenRequest) {
        let slot = n
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.entries.get_mut(i));
        if let Some(slot) = slot {
            *slot = cut(entry);
        }
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> Vec<SeenRequest> {
        self.entries.iter().cloned().collect()
    }

    /// How many entries were ever logged.
    pub fn total(&self) -> u64 {
        self.first.saturating_add(self.entries.len() as u64)
    }
}

/// `s` cut to at most `max` bytes, at a character boundary; whether it was cut.
fn cut_str(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// An entry cut to the log's bounds, marked `truncated` when anything was cut.
pub(super) fn cut(mut e: SeenRequest) -> SeenRequest {
    let mut truncated = cut_str(&mut e.method, MAX_METHOD);
    truncated |= cut_str(&mut e.target, MAX_TARGET);
    let mut budget = MAX_HEADER_BYTES;
    let mut kept = 0;
    for (k, v) in &mut e.headers {
        truncated |= cut_str(k, MAX_HEADER_VALUE);
        truncated |= cut_str(v, MAX_HEADER_VALUE);
        let size = k.len().saturating_add(v.len());
        if size > budget {
            break;
        }
        budget -= size;
        kept += 1;
    }
    if kept < e.headers.len() {
        e.headers.truncate(kept);
        truncated = true;
    }
    e.headers.shrink_to_fit();
    e.truncated |= truncated;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> SeenRequest {
        SeenRequest {
            method: "GET".into(),
            target: format!("/{i}"),
            headers: vec![("x".into(), "é".repeat(2000))],
            body_len: 0,
            status: 0,
            truncated: false,
        }
    }

    #[test]
    fn keeps_the_last_entries_and_fills_only_those_still_kept() {
        let mut log = SeenLog::new(3);
        let numbers: Vec<u64> = (0..5).map(|i| log.push(entry(i))).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4]);
        log.fill(0, entry(99));
        log.fill(
            4,
            SeenRequest {
                status: 200,
                ..entry(4)
            },
        );
        let kept = log.entries();
        let targets: Vec<&str> = kept.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(targets, ["/2", "/3", "/4"]);
        assert_eq!(kept[2].status, 200);
        assert_eq!(log.total(), 5);
        assert!(kept
            .iter()
            .all(|e| e.truncated && e.headers[0].1.len() <= MAX_HEADER_VALUE));
        assert!(SeenLog::new(0).push(entry(0)) == 0);
    }
}
