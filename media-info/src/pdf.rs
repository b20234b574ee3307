//! A PDF's page count, when it can be had cheaply: a bounded scan of the file's bytes.
//!
//! The largest `/Count` of a `/Type /Pages` dictionary (the page tree's root counts every
//! page) wins; without one, the number of `/Type /Page` dictionaries. Objects inside
//! compressed object streams (PDF 1.5+) are invisible to a byte scan: then there is no
//! count, and a warning, rather than a wrong number.
//!
//! A `/Type /Pages` takes the `/Count` nearest to it (within 1 KiB). Each chunk is scanned
//! once for both tokens and each `/Pages` finds its `/Count` by a binary search, so a file
//! of nothing but `/Type/Pages` costs a pass over its bytes, not a 2 KiB search per token.

use std::io::{Read, Seek};

use crate::bytes::Window;

const CHUNK: usize = 1 << 20;
/// Bytes each chunk shares with the next, so a token cut by a chunk boundary is seen whole,
/// and how far around a `/Type /Pages` its `/Count` is looked for.
const OVERLAP: usize = 1024;

/// Counts the pages of a PDF of `len` bytes, reading at most `max_bytes` of it.
pub(crate) fn page_count<S: Read + Seek>(
    src: &mut S,
    len: u64,
    max_bytes: u64,
) -> Result<u32, String> {
    let end = len.min(max_bytes);
    let mut win = Window::new(src, len, CHUNK);
    let mut pos = 0u64;
    let mut pages = 0u32;
    let mut best_count: Option<u32> = None;
    while pos < end {
        let n = usize::try_from(end.saturating_sub(pos))
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let Some(buf) = win.get(pos, n)? else { break };
        // Tokens starting in the last OVERLAP bytes are left to the next chunk, unless
        // this is the last one.
        let last = pos.saturating_add(n as u64) >= end;
        let own = if last {
            buf.len()
        } else {
            buf.len().saturating_sub(OVERLAP)
        };
        // Every `/Count` of the chunk with its value, in order of position.
        let counts = counts_in(buf);
        let mut i = 0;
        while let Some(off) = buf.get(i..own).and_then(|b| find(b, b"/Type")) {
            let at = i.saturating_add(off);
            i = at.saturating_add(5);
            match type_name(buf.get(i..).unwrap_or_default()) {
                Some(b"Page") => pages = pages.saturating_add(1),
                Some(b"Pages") => {
                    if let Some(c) = nearest(&counts, at) {
                        best_count = best_count.max(Some(c));
                    }
                }
                _ => {}
            }
        }
        if last {
            break;
        }
        pos = pos.saturating_add(own as u64);
    }
    if len > max_bytes && best_count.is_none() {
        return Err(format!("no page tree count in the first {max_bytes} bytes"));
    }
    match (best_count, pages) {
        (Some(c), _) if c > 0 => Ok(c),
        (_, p) if p > 0 => Ok(p),
        _ => Err("no page objects outside compressed object streams".into()),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let at = hay.windows(needle.len()).position(|w| w == needle);
    #[cfg(test)]
    examined::add(at.map_or(hay.len(), |a| a.saturating_add(needle.len())));
    at
}

/// Bytes the searches looked at, on this thread: what the tests bound the work by.
#[cfg(test)]
mod examined {
    use std::cell::Cell;
    thread_local!(static BYTES: Cell<u64> = const { Cell::new(0) });
    pub(super) fn add(n: usize) {
        BYTES.with(|b| b.set(b.get().saturating_add(n as u64)));
    }
    pub(super) fn take() -> u64 {
        BYTES.with(|b| b.replace(0))
    }
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b)
}

/// The name after `/Type` (whitespace allowed): `Page` in `/Type /Page>>`.
fn type_name(rest: &[u8]) -> Option<&[u8]> {
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = rest.get(start..)?;
    let name = rest.strip_prefix(b"/")?;
    let len = name
        .iter()
        .position(|&b| is_delimiter(b))
        .unwrap_or(name.len());
    name.get(..len)
}

/// Every `/Count` in `buf` with the integer after it: (offset, value), in order.
fn counts_in(buf: &[u8]) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = buf.get(i..).and_then(|b| find(b, b"/Count")) {
        let at = i.saturating_add(off);
        i = at.saturating_add(6);
        if let Some(v) = count_after(buf.get(i..).unwrap_or_default()) {
            out.push((at, v));
        }
    }
    out
}

/// The value of the `/Count` nearest to offset `at`, if one is within [`OVERLAP`] bytes.
fn nearest(counts: &[(usize, u32)], at: usize) -> Option<u32> {
    let i = counts.partition_point(|&(p, _)| p < at);
    let after = counts.get(i).filter(|&&(p, _)| p - at <= OVERLAP);
    let before = i
        .checked_sub(1)
        .and_then(|j| counts.get(j))
        .filter(|&&(p, _)| at - p <= OVERLAP);
    match (before, after) {
        (Some(b), Some(a)) => Some(if at - b.0 < a.0 - at { b.1 } else { a.1 }),
        (b, a) => b.or(a).map(|&(_, v)| v),
    }
}

/// The integer at the start of `rest` (whitespace allowed before it).
fn count_after(rest: &[u8]) -> Option<u32> {
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let digits: Vec<u8> = rest
        .get(start..)?
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .take(9)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn count(pdf: &[u8]) -> Result<u32, String> {
        page_count(&mut Cursor::new(pdf), pdf.len() as u64, 1 << 30)
    }

    #[test]
    fn the_page_tree_count_wins_over_page_objects() {
        let pdf = b"%PDF-1.4\n1 0 obj<</Type/Pages/Kids[2 0 R]/Count 7>>endobj\n2 0 obj<</Type /Page>>endobj";
        assert_eq!(count(pdf), Ok(7));
    }

    #[test]
    fn page_objects_are_counted_without_a_tree() {
        let pdf = b"%PDF-1.4\n<</Type /Page>> <</Type\n/Page/Parent 1 0 R>> <</Type /Pages>>";
        assert_eq!(count(pdf), Ok(2));
    }

    #[test]
    fn repeated_pages_dictionaries_are_scanned_once_not_searched_around_each() {
        // 4 MiB of `/Type/Pages` (no /Count): each used to search 2 KiB around itself.
        let mut pdf = b"%PDF-1.4\n".to_vec();
        while pdf.len() < 4 << 20 {
            pdf.extend_from_slice(b"/Type/Pages");
        }
        pdf.extend_from_slice(b"<</Type/Pages/Count 5>>");
        examined::take();
        assert_eq!(count(&pdf), Ok(5));
        let work = examined::take();
        assert!(
            work <= 3 * pdf.len() as u64,
            "{work} bytes examined for {}",
            pdf.len()
        );
    }

    #[test]
    fn a_pages_dictionary_takes_the_nearest_count() {
        let pdf = b"%PDF-1.4\n<</Type/Outlines/Count 99>>\n<</Kids[]/Count 4/Type/Pages>>";
        assert_eq!(count(pdf), Ok(4));
    }

    #[test]
    fn compressed_objects_give_no_count() {
        assert!(count(b"%PDF-1.5\n<</Type/ObjStm/N 3>>stream\nx\x9c...endstream").is_err());
    }
}
