//! Faststart without a copy: an MP4 or MOV with its `moov` box moved before `mdat`, and only
//! its first video and first audio track, read through a virtual file.
//!
//! WhatsApp Web remuxes every video, gif and video note before it uploads it
//! (`mp4repairmux --keep-first-av-track-only`, PROTOCOL §8): `moov` first ("faststart"),
//! one video and one audio track. A camera's or ffmpeg's file keeps `moov` at the end, and
//! uploaded as is with a streaming sidecar it fails on the receiver's streaming player
//! (PROTOCOL §2.7). This module does the same remux without writing a second file:
//!
//! 1. [`plan`] walks the top-level boxes of a seekable source (sizes checked: a 32-bit size,
//!    `1` for a 64-bit largesize, `0` for "to the end of the file"), reads the `moov` box
//!    (at most [`MAX_MOOV`] bytes) and decides:
//!    - [`Plan::NothingToDo`]: `moov` already comes before the first `mdat`, and the movie
//!      has at most one video track (handler `vide`), at most one audio track (`soun`) and
//!      no other track;
//!    - [`Plan::Remux`]: a new `moov` and the list of [`Segment`]s the output is made of;
//!    - a [`Refusal`] saying why the file cannot be remuxed safely.
//! 2. [`FaststartReader`] is `Read + Seek` over those segments: byte ranges of the original
//!    file and the new `moov` held in memory, so memory is bounded by the `moov`, not by
//!    the file.
//!
//! # The output
//!
//! The top-level boxes that came before the first `mdat` (`ftyp`, `free`, `wide`, …; not
//! the old `moov`), as they were; the new `moov`; then every other top-level box of the
//! original in its order (`mdat`, `free`, a trailing `udta`, …), the old `moov` left out.
//! No byte of any box other than `moov` changes.
//!
//! The new `moov` keeps, in their order, the first `trak` whose `mdia/hdlr` says `vide` and
//! the first that says `soun`; every other `trak` (a second audio track, subtitles, timecode
//! and data tracks, a track without a handler) is dropped. Everything else in `moov`
//! (`mvhd`, `udta`, `meta`, `iods`, …) is kept byte for byte. In the kept tracks:
//! - every chunk offset (`stbl/stco`, 32-bit, and `stbl/co64`, 64-bit) is moved with the box
//!   it points into (each offset must point into a top-level box other than `moov`, or the
//!   file is refused); an `stco` whose moved offsets no longer fit 32 bits becomes a
//!   `co64`, which makes `moov` larger and moves the data again, so the layout is computed
//!   again until it no longer changes;
//! - a `tref` keeps only the references to kept tracks (a reference type left with none is
//!   dropped, and an empty `tref` too);
//! - every enclosing box (`stbl`, `minf`, `mdia`, `trak`, `moov`) gets its new size.
//!
//! `mvhd.next_track_ID` is left as it was: it is still larger than every kept track's ID,
//! which is all the specification asks of it.
//!
//! # What is refused
//!
//! Not an ISO base media file ([`Refusal::NotMp4`]); no `moov` or two of them; a
//! fragmented file (`mvex` in `moov`, or a top-level `moof` or `mfra`): its samples are
//! found through the fragments, not through chunk offsets; a `moov` larger than
//! [`MAX_MOOV`]; a box whose size is smaller than its header or runs past its parent or the
//! end of the file; a `stco`/`co64` whose entry count does not fit its box; a chunk offset
//! outside the file's top-level boxes (or inside `moov`); a compressed `moov` (`cmov`) or
//! sample auxiliary information offsets (`saio`, encrypted media), which this module does
//! not rewrite; a movie with neither a video nor an audio track. Nothing read from a file
//! panics; every size meets checked arithmetic.
//!
//! ```no_run
//! use std::fs::File;
//! use std::io::{self, Seek, SeekFrom};
//! use wamedia_info::faststart::{self, FaststartReader, Plan};
//!
//! let mut f = File::open("camera.mp4")?;
//! let len = f.seek(SeekFrom::End(0))?;
//! match faststart::plan(&mut f, len) {
//!     Ok(Plan::NothingToDo) => println!("already faststart"),
//!     Ok(Plan::Remux(remux)) => {
//!         let mut out = FaststartReader::new(f, remux);
//!         io::copy(&mut out, &mut File::create("faststart.mp4")?)?;
//!     }
//!     Err(why) => println!("left as it is: {why}"),
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

use crate::bytes::{be_u32, be_u64, read_exact_at, read_vec_at};

/// The largest `moov` box remuxed, in bytes (64 MiB: hours of video at 60 frames a second).
pub const MAX_MOOV: u64 = 64 << 20;
/// The most top-level boxes a file may have.
const MAX_TOP_BOXES: usize = 1 << 16;
/// The most child boxes of one box inside `moov`.
const MAX_CHILDREN: usize = 1 << 16;

/// Why a file cannot be remuxed to faststart (it is then best uploaded as it is, without a
/// streaming sidecar).
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// The file does not start like an ISO base media file (MP4, MOV, 3GP, M4A).
    NotMp4,
    /// There is no `moov` box (a recording cut short, or not a movie).
    NoMoov,
    /// More than one top-level `moov` box.
    TwoMoovs,
    /// A fragmented MP4 (`mvex` in `moov`, or a top-level `moof`/`mfra`).
    Fragmented,
    /// The `moov` box is larger than [`MAX_MOOV`].
    MoovTooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// A box's size is impossible: smaller than its header, past its parent or the end of
    /// the file, or too many boxes.
    BadBox {
        /// The box's type, as text.
        kind: String,
        /// Where the box starts in the file.
        at: u64,
        /// What is wrong with it.
        why: String,
    },
    /// A chunk offset table (`stco`, `co64`) is malformed.
    BadChunkOffsets {
        /// `stco` or `co64`.
        kind: String,
        /// What is wrong with it.
        why: String,
    },
    /// A chunk offset points outside every top-level box but `moov`.
    ChunkOffsetOutside {
        /// The offset.
        offset: u64,
    },
    /// Something this module does not rewrite (`cmov`, `saio`, …).
    Unsupported(String),
    /// The movie has neither a video nor an audio track.
    NoAudioOrVideo,
    /// The source could not be read.
    Read(io::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotMp4 => write!(f, "not an MP4 or MOV file"),
            Refusal::NoMoov => write!(f, "no 'moov' box (an incomplete recording?)"),
            Refusal::TwoMoovs => write!(f, "more than one 'moov' box"),
            Refusal::Fragmented => write!(f, "a fragmented MP4 (moof/mvex)"),
            Refusal::MoovTooLarge { size } => write!(
                f,
                "its 'moov' box is {size} bytes, more than the {MAX_MOOV} remuxed"
            ),
            Refusal::BadBox { kind, at, why } => write!(f, "box '{kind}' at byte {at}: {why}"),
            Refusal::BadChunkOffsets { kind, why } => write!(f, "'{kind}' box: {why}"),
            Refusal::ChunkOffsetOutside { offset } => {
                write!(f, "a chunk offset ({offset}) points outside the media data")
            }
            Refusal::Unsupported(what) => write!(f, "{what} is not rewritten"),
            Refusal::NoAudioOrVideo => write!(f, "no video or audio track"),
            Refusal::Read(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// What to do with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `moov` comes first and the tracks are as WhatsApp wants them: upload it as it is.
    NothingToDo,
    /// Remux through a [`FaststartReader`].
    Remux(Remux),
}

/// A piece of the remuxed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `len` bytes of the original at `offset`.
    Original {
        /// Where they start in the original.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// Bytes made by the plan (the new `moov`).
    Owned(Vec<u8>),
}

impl Segment {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Segment::Original { len, .. } => *len,
            Segment::Owned(b) => b.len() as u64,
        }
    }
    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How to make the faststart file: its segments, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remux {
    segments: Vec<Segment>,
    len: u64,
    moov_moved: bool,
    dropped_tracks: usize,
    kept_tracks: usize,
    upgraded_to_co64: usize,
}

impl Remux {
    /// The segments the output is made of, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
    /// The output's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether the output is empty (never, for a plan that was made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Whether `moov` came after the media data in the original.
    pub fn moov_moved(&self) -> bool {
        self.moov_moved
    }
    /// How many tracks were dropped.
    pub fn dropped_tracks(&self) -> usize {
        self.dropped_tracks
    }
    /// How many tracks were kept (1 or 2).
    pub fn kept_tracks(&self) -> usize {
        self.kept_tracks
    }
    /// How many `stco` boxes became `co64` because their moved offsets needed 64 bits.
    pub fn upgraded_to_co64(&self) -> usize {
        self.upgraded_to_co64
    }
}

/// A top-level box of the original.
#[derive(Debug, Clone, Copy)]
struct TopBox {
    kind: [u8; 4],
    start: u64,
    end: u64,
}

fn text(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

fn bad_box(kind: &[u8; 4], at: u64, why: impl Into<String>) -> Refusal {
    Refusal::BadBox {
        kind: text(kind),
        at,
        why: why.into(),
    }
}

/// A box header parsed from `h` (at least 8 bytes, 16 when the size is 1): (size, header
/// length), with size 0 resolved to `room` (the bytes left in the parent).
fn header_size(h: &[u8], room: u64, at: u64) -> Result<(u64, u64), Refusal> {
    let size32 = be_u32(h, 0).unwrap_or(0);
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, header) = match size32 {
        0 => (room, 8),
        1 => {
            let large =
                be_u64(h, 8).ok_or_else(|| bad_box(&kind, at, "cut short in its header"))?;
            (large, 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header {
        return Err(bad_box(
            &kind,
            at,
            format!("a size of {size}, smaller than its {header}-byte header"),
        ));
    }
    if size > room {
        return Err(bad_box(
            &kind,
            at,
            format!("a size of {size} runs past the end of its parent or the file (cut short?)"),
        ));
    }
    Ok((size, header))
}

/// The top-level boxes of a source of `len` bytes, and the length of trailing bytes too
/// few for a box header.
fn top_boxes<R: Read + Seek>(src: &mut R, len: u64) -> Result<(Vec<TopBox>, u64), Refusal> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while len.saturating_sub(pos) >= 8 {
        if out.len() >= MAX_TOP_BOXES {
            return Err(bad_box(b"....", pos, "too many top-level boxes"));
        }
        let mut h = [0u8; 16];
        let room = len - pos;
        let want = if room >= 16 { 16 } else { 8 };
        read_exact_at(src, pos, &mut h[..want]).map_err(read_error)?;
        let kind = [h[4], h[5], h[6], h[7]];
        if out.is_empty() && !plausible_first(&kind) {
            return Err(Refusal::NotMp4);
        }
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(bad_box(&kind, pos, "not a box type (garbage in the file?)"));
        }
        let (size, _) = header_size(&h[..want], room, pos)?;
        let end = pos
            .checked_add(size)
            .ok_or_else(|| bad_box(&kind, pos, "size overflows"))?;
        out.push(TopBox {
            kind,
            start: pos,
            end,
        });
        pos = end;
    }
    if out.is_empty() {
        return Err(Refusal::NotMp4);
    }
    Ok((out, len - pos))
}

fn plausible_first(kind: &[u8; 4]) -> bool {
    matches!(
        kind,
        b"ftyp" | b"moov" | b"mdat" | b"free" | b"skip" | b"wide" | b"pnot" | b"uuid" | b"styp"
    )
}

fn read_error(e: String) -> Refusal {
    Refusal::Read(io::Error::new(io::ErrorKind::UnexpectedEof, e))
}

/// A box of the parsed `moov`.
#[derive(Debug, Clone)]
enum Node {
    /// Kept byte for byte, header included.
    Raw(Vec<u8>),
    /// A container whose children are parsed.
    Container { kind: [u8; 4], children: Vec<Node> },
    /// `stco` or `co64`: version/flags and the offsets as they were in the original.
    ChunkOffsets {
        co64: bool,
        version_flags: [u8; 4],
        offsets: Vec<u64>,
    },
    /// `tref`'s children: reference type and track IDs.
    TrackRefs(Vec<([u8; 4], Vec<u32>)>),
}

fn is_container(kind: &[u8; 4], depth: usize) -> bool {
    matches!(
        (depth, kind),
        (0, b"moov") | (1, b"trak") | (2, b"mdia") | (3, b"minf") | (4, b"stbl")
    )
}

/// The boxes in `b` (the body of a box at `base` in the file).
fn parse_children(b: &[u8], base: u64, depth: usize) -> Result<Vec<Node>, Refusal> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while b.len().saturating_sub(pos) >= 8 {
        if out.len() >= MAX_CHILDREN {
            return Err(bad_box(b"....", base, "too many boxes"));
        }
        let rest = &b[pos..];
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let at = base.saturating_add(pos as u64);
        let (size, header) = header_size(rest, rest.len() as u64, at)?;
        // Both fit `rest.len()`, a usize: checked by header_size.
        let size = usize::try_from(size).map_err(|_| bad_box(&kind, at, "too large"))?;
        let header = header as usize;
        let whole = &rest[..size];
        let body = &whole[header..];
        let body_at = at.saturating_add(header as u64);
        let node = match &kind {
            b"mvex" => return Err(Refusal::Fragmented),
            b"cmov" => return Err(Refusal::Unsupported("a compressed 'moov' (cmov)".into())),
            b"saio" => {
                return Err(Refusal::Unsupported(
                    "sample auxiliary information offsets (saio)".into(),
                ))
            }
            b"stco" | b"co64" if depth == 5 => chunk_offsets(&kind, body)?,
            b"tref" if depth == 2 => track_refs(body, body_at)?,
            k if is_container(k, depth) => Node::Container {
                kind,
                children: parse_children(body, body_at, depth + 1)?,
            },
            _ => Node::Raw(whole.to_vec()),
        };
        out.push(node);
        pos += size;
    }
    if pos < b.len() {
        // Fewer than 8 bytes left: padding some writers leave; kept.
        out.push(Node::Raw(b[pos..].to_vec()));
    }
    Ok(out)
}

fn chunk_offsets(kind: &[u8; 4], body: &[u8]) -> Result<Node, Refusal> {
    let co64 = kind == b"co64";
    let bad = |why: String| Refusal::BadChunkOffsets {
        kind: text(kind),
        why,
    };
    let count = be_u32(body, 4).ok_or_else(|| bad("cut short before its entry count".into()))?;
    let width: usize = if co64 { 8 } else { 4 };
    let need = (count as usize)
        .checked_mul(width)
        .and_then(|n| n.checked_add(8))
        .ok_or_else(|| bad(format!("{count} entries overflow")))?;
    if need > body.len() {
        return Err(bad(format!(
            "{count} entries need {need} bytes, the box has {}",
            body.len()
        )));
    }
    let offsets = body[8..need]
        .chunks_exact(width)
        .map(|c| {
            if co64 {
                be_u64(c, 0).unwrap_or(0)
            } else {
                u64::from(be_u32(c, 0).unwrap_or(0))
            }
        })
        .collect();
    Ok(Node::ChunkOffsets {
        co64,
        version_flags: [body[0], body[1], body[2], body[3]],
        offsets,
    })
}

fn track_refs(body: &[u8], base: u64) -> Result<Node, Refusal> {
    let mut refs = Vec::new();
    for child in parse_children(body, base, 99)? {
        let Node::Raw(raw) = child else { continue };
        if raw.len() < 8 {
            continue;
        }
        let kind = [raw[4], raw[5], raw[6], raw[7]];
        let ids = raw[8..]
            .chunks_exact(4)
            .filter_map(|c| be_u32(c, 0))
            .collect();
        refs.push((kind, ids));
    }
    Ok(Node::TrackRefs(refs))
}

fn find<'a>(nodes: &'a [Node], want: &[u8; 4]) -> Option<&'a Node> {
    nodes.iter().find(|n| match n {
        Node::Container { kind, .. } => kind == want,
        Node::Raw(r) => r.get(4..8) == Some(&want[..]),
        _ => false,
    })
}

fn children(n: Option<&Node>) -> &[Node] {
    match n {
        Some(Node::Container { children, .. }) => children,
        _ => &[],
    }
}

/// Body of a raw box (after an 8-byte header; `None` for largesize leaves, which these
/// small boxes never are).
fn raw_body(n: Option<&Node>) -> Option<&[u8]> {
    match n {
        Some(Node::Raw(r)) if be_u32(r, 0) != Some(1) => r.get(8..),
        _ => None,
    }
}

/// A trak's handler type (`vide`, `soun`, …).
fn handler(trak: &[Node]) -> Option<[u8; 4]> {
    let mdia = children(find(trak, b"mdia"));
    let b = raw_body(find(mdia, b"hdlr"))?;
    b.get(8..12)?.try_into().ok()
}

/// A trak's track ID (`tkhd`).
fn track_id(trak: &[Node]) -> Option<u32> {
    let b = raw_body(find(trak, b"tkhd"))?;
    match b.first()? {
        0 => be_u32(b, 12),
        1 => be_u32(b, 20),
        _ => None,
    }
}

/// The serialised size of a node, with `co64` where `upgrade` says (indexed by the
/// `stco` boxes' order of appearance).
fn node_size(n: &Node, upgrade: &[bool], idx: &mut usize) -> u64 {
    match n {
        Node::Raw(r) => r.len() as u64,
        Node::Container { children, .. } => {
            let body: u64 = children
                .iter()
                .map(|c| node_size(c, upgrade, idx))
                .fold(0u64, u64::saturating_add);
            with_header(body)
        }
        Node::ChunkOffsets { co64, offsets, .. } => {
            let i = *idx;
            *idx += 1;
            let wide = *co64 || upgrade.get(i).copied().unwrap_or(false);
            let width = if wide { 8 } else { 4 };
            with_header(
                (offsets.len() as u64)
                    .saturating_mul(width)
                    .saturating_add(8),
            )
        }
        Node::TrackRefs(refs) => with_header(
            refs.iter()
                .map(|(_, ids)| 8u64.saturating_add((ids.len() as u64).saturating_mul(4)))
                .fold(0u64, u64::saturating_add),
        ),
    }
}

fn with_header(body: u64) -> u64 {
    if body.saturating_add(8) > u64::from(u32::MAX) {
        body.saturating_add(16)
    } else {
        body.saturating_add(8)
    }
}

fn put_header(out: &mut Vec<u8>, kind: &[u8; 4], body: u64) {
    let size = with_header(body);
    if size > u64::from(u32::MAX) {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&size.to_be_bytes());
    } else {
        out.extend_from_slice(&(size as u32).to_be_bytes());
        out.extend_from_slice(kind);
    }
}

/// Where each original top-level box lands in the output: (start, end, new start).
struct Moves(Vec<(u64, u64, u64)>);

impl Moves {
    fn map(&self, offset: u64) -> Result<u64, Refusal> {
        // The boxes are in the original's order: a binary search, so a large table over
        // many boxes stays cheap.
        let i = self.0.partition_point(|(s, _, _)| *s <= offset);
        i.checked_sub(1)
            .and_then(|i| self.0.get(i))
            .filter(|(_, e, _)| offset < *e)
            .and_then(|(s, _, to)| to.checked_add(offset - s))
            .ok_or(Refusal::ChunkOffsetOutside { offset })
    }
}

fn write_node(
    n: &Node,
    out: &mut Vec<u8>,
    moves: &Moves,
    upgrade: &[bool],
    idx: &mut usize,
) -> Result<(), Refusal> {
    match n {
        Node::Raw(r) => out.extend_from_slice(r),
        Node::Container { kind, children } => {
            let mut probe = *idx;
            let body: u64 = children
                .iter()
                .map(|c| node_size(c, upgrade, &mut probe))
                .fold(0u64, u64::saturating_add);
            put_header(out, kind, body);
            for c in children {
                write_node(c, out, moves, upgrade, idx)?;
            }
        }
        Node::ChunkOffsets {
            co64,
            version_flags,
            offsets,
        } => {
            let i = *idx;
            *idx += 1;
            let wide = *co64 || upgrade.get(i).copied().unwrap_or(false);
            let width: u64 = if wide { 8 } else { 4 };
            let body = (offsets.len() as u64)
                .saturating_mul(width)
                .saturating_add(8);
            put_header(out, if wide { b"co64" } else { b"stco" }, body);
            out.extend_from_slice(version_flags);
            out.extend_from_slice(&(offsets.len() as u32).to_be_bytes());
            for &o in offsets {
                let moved = moves.map(o)?;
                if wide {
                    out.extend_from_slice(&moved.to_be_bytes());
                } else {
                    let v = u32::try_from(moved)
                        .map_err(|_| Refusal::ChunkOffsetOutside { offset: o })?;
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        Node::TrackRefs(refs) => {
            let body: u64 = refs.iter().map(|(_, ids)| 8 + 4 * ids.len() as u64).sum();
            put_header(out, b"tref", body);
            for (kind, ids) in refs {
                put_header(out, kind, 4 * ids.len() as u64);
                for id in ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
            }
        }
    }
    Ok(())
}

/// Which `stco` boxes (in order of appearance) would overflow 32 bits once moved.
fn overflowing(nodes: &[Node], moves: &Moves, out: &mut Vec<bool>) -> Result<(), Refusal> {
    for n in nodes {
        match n {
            Node::Container { children, .. } => overflowing(children, moves, out)?,
            Node::ChunkOffsets { co64, offsets, .. } => {
                let mut over = false;
                for &o in offsets {
                    over |= moves.map(o)? > u64::from(u32::MAX);
                }
                out.push(!*co64 && over);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decides what to do with the ISO base media file `src` of `len` bytes (see the module
/// docs). Reads the top-level box headers and the `moov` box only.
///
/// # Errors
/// A [`Refusal`] when the file cannot be remuxed safely.
pub fn plan<R: Read + Seek>(src: &mut R, len: u64) -> Result<Plan, Refusal> {
    let (top, trailing) = top_boxes(src, len)?;
    if top.iter().any(|b| matches!(&b.kind, b"moof" | b"mfra")) {
        return Err(Refusal::Fragmented);
    }
    let mut moovs = top.iter().enumerate().filter(|(_, b)| &b.kind == b"moov");
    let (moov_i, moov) = moovs.next().ok_or(Refusal::NoMoov)?;
    if moovs.next().is_some() {
        return Err(Refusal::TwoMoovs);
    }
    let moov = *moov;
    let size = moov.end - moov.start;
    if size > MAX_MOOV {
        return Err(Refusal::MoovTooLarge { size });
    }
    let bytes = read_vec_at(src, moov.start, size as usize).map_err(read_error)?;
    let parsed = parse_children(&bytes, moov.start, 0)?;
    let Some(Node::Container {
        children: moov_children,
        ..
    }) = parsed.into_iter().next()
    else {
        return Err(bad_box(b"moov", moov.start, "unreadable"));
    };

    // The first video and the first audio track stay.
    let mut keep_video = None;
    let mut keep_audio = None;
    let mut tracks = 0usize;
    for (i, n) in moov_children.iter().enumerate() {
        let Node::Container {
            kind: [b't', b'r', b'a', b'k'],
            children,
        } = n
        else {
            continue;
        };
        tracks += 1;
        match &handler(children) {
            Some(h) if h == b"vide" && keep_video.is_none() => keep_video = Some(i),
            Some(h) if h == b"soun" && keep_audio.is_none() => keep_audio = Some(i),
            _ => {}
        }
    }
    let kept = usize::from(keep_video.is_some()) + usize::from(keep_audio.is_some());
    if kept == 0 {
        return Err(Refusal::NoAudioOrVideo);
    }
    let first_mdat = top.iter().position(|b| &b.kind == b"mdat");
    let moov_first = first_mdat.is_none_or(|m| moov_i < m);
    if moov_first && kept == tracks {
        return Ok(Plan::NothingToDo);
    }

    // The new moov's children: dropped tracks out, references to them out.
    let kept_ids: Vec<u32> = moov_children
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) == keep_video || Some(*i) == keep_audio)
        .filter_map(|(_, n)| match n {
            Node::Container { children, .. } => track_id(children),
            _ => None,
        })
        .collect();
    let new_children: Vec<Node> = moov_children
        .into_iter()
        .enumerate()
        .filter(|(i, n)| {
            !matches!(n, Node::Container { kind: k, .. } if k == b"trak")
                || Some(*i) == keep_video
                || Some(*i) == keep_audio
        })
        .map(|(_, n)| prune_refs(n, &kept_ids))
        .collect();
    let new_moov = Node::Container {
        kind: *b"moov",
        children: new_children,
    };

    // Output order: the boxes before the first mdat, the new moov, the rest.
    let split = first_mdat.unwrap_or(top.len());
    let before: Vec<TopBox> = top[..split]
        .iter()
        .filter(|b| &b.kind != b"moov")
        .copied()
        .collect();
    let after: Vec<TopBox> = top[split..]
        .iter()
        .filter(|b| &b.kind != b"moov")
        .copied()
        .collect();
    let (moov_bytes, upgraded_to_co64) = settle(&new_moov, &before, &after)?;
    let segments = segments(&before, moov_bytes, &after, len - trailing, trailing);
    let out_len = segments
        .iter()
        .try_fold(0u64, |a, s| a.checked_add(s.len()))
        .ok_or_else(|| bad_box(b"moov", moov.start, "the output's size overflows"))?;
    Ok(Plan::Remux(Remux {
        segments,
        len: out_len,
        moov_moved: !moov_first,
        dropped_tracks: tracks - kept,
        kept_tracks: kept,
        upgraded_to_co64,
    }))
}

/// The new `moov`'s bytes, its chunk offsets moved to where `before`, the new `moov` and
/// `after` put the data, and how many `stco` had to become `co64`. Widening a table grows
/// `moov` and moves the data again, so the layout is computed until no table changes
/// (at most once per table, since a table is never narrowed).
fn settle(
    new_moov: &Node,
    before: &[TopBox],
    after: &[TopBox],
) -> Result<(Vec<u8>, usize), Refusal> {
    let head_len: u64 = before.iter().map(|b| b.end - b.start).sum();
    let mut upgrade: Vec<bool> = Vec::new();
    loop {
        let moov_len = node_size(new_moov, &upgrade, &mut 0);
        if moov_len > MAX_MOOV.saturating_mul(2) {
            return Err(Refusal::MoovTooLarge { size: moov_len });
        }
        let mut moves = Vec::with_capacity(before.len() + after.len());
        let mut at = 0u64;
        for b in before {
            moves.push((b.start, b.end, at));
            at += b.end - b.start;
        }
        at = head_len
            .checked_add(moov_len)
            .ok_or(Refusal::MoovTooLarge { size: moov_len })?;
        for b in after {
            moves.push((b.start, b.end, at));
            at = at
                .checked_add(b.end - b.start)
                .ok_or_else(|| bad_box(&b.kind, b.start, "size overflows"))?;
        }
        let moves = Moves(moves);
        let mut now = Vec::new();
        overflowing(std::slice::from_ref(new_moov), &moves, &mut now)?;
        let merged: Vec<bool> = now
            .iter()
            .enumerate()
            .map(|(i, o)| *o || upgrade.get(i).copied().unwrap_or(false))
            .collect();
        if merged == upgrade || (upgrade.is_empty() && !merged.iter().any(|u| *u)) {
            let mut out = Vec::with_capacity(usize::try_from(moov_len).unwrap_or(0));
            write_node(new_moov, &mut out, &moves, &upgrade, &mut 0)?;
            debug_assert_eq!(out.len() as u64, moov_len);
            return Ok((out, upgrade.iter().filter(|u| **u).count()));
        }
        upgrade = merged;
    }
}

/// The output: `before` as it was, the new `moov`, `after`, then `trailing` bytes at
/// `tail` (too few for a box); neighbouring ranges of the original in one segment.
fn segments(
    before: &[TopBox],
    moov: Vec<u8>,
    after: &[TopBox],
    tail: u64,
    trailing: u64,
) -> Vec<Segment> {
    fn push(segments: &mut Vec<Segment>, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Some(Segment::Original { offset: o, len: l }) = segments.last_mut() {
            if *o + *l == offset {
                *l += len;
                return;
            }
        }
        segments.push(Segment::Original { offset, len });
    }
    let mut out = Vec::new();
    for b in before {
        push(&mut out, b.start, b.end - b.start);
    }
    out.push(Segment::Owned(moov));
    for b in after {
        push(&mut out, b.start, b.end - b.start);
    }
    push(&mut out, tail, trailing);
    out
}

/// Drops, in a kept trak, the `tref` references to tracks that are not kept.
fn prune_refs(n: Node, kept: &[u32]) -> Node {
    let Node::Container {
        kind: k @ [b't', b'r', b'a', b'k'],
        children,
    } = n
    else {
        return n;
    };
    let children = children
        .into_iter()
        .filter_map(|c| match c {
            Node::TrackRefs(refs) => {
                let refs: Vec<_> = refs
                    .into_iter()
                    .map(|(t, ids)| (t, ids.into_iter().filter(|i| kept.contains(i)).collect()))
                    .filter(|(_, ids): &([u8; 4], Vec<u32>)| !ids.is_empty())
                    .collect();
                (!refs.is_empty()).then_some(Node::TrackRefs(refs))
            }
            c => Some(c),
        })
        .collect();
    Node::Container { kind: k, children }
}

/// The remuxed file as `Read + Seek`, read from the original on demand.
#[derive(Debug)]
pub struct FaststartReader<R> {
    inner: R,
    remux: Remux,
    /// Where each segment starts in the output.
    starts: Vec<u64>,
    pos: u64,
    /// Where `inner` is, when known (saves a seek per read).
    inner_pos: Option<u64>,
}

impl<R: Read + Seek> FaststartReader<R> {
    /// The output of `remux` over `inner`, the source `remux` was planned from.
    pub fn new(inner: R, remux: Remux) -> Self {
        let mut starts = Vec::with_capacity(remux.segments.len());
        let mut at = 0u64;
        for s in &remux.segments {
            starts.push(at);
            at = at.saturating_add(s.len());
        }
        FaststartReader {
            inner,
            remux,
            starts,
            pos: 0,
            inner_pos: None,
        }
    }
    /// The output's length in bytes.
    pub fn len(&self) -> u64 {
        self.remux.len
    }
    /// Whether the output is empty.
    pub fn is_empty(&self) -> bool {
        self.remux.len == 0
    }
    /// The plan it reads.
    pub fn remux(&self) -> &Remux {
        &self.remux
    }
    /// The original source back.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read + Seek> Read for FaststartReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.remux.len {
            return Ok(0);
        }
        let Some(i) = self
            .starts
            .partition_point(|&s| s <= self.pos)
            .checked_sub(1)
        else {
            return Ok(0);
        };
        let within = self.pos - self.starts[i];
        let seg = &self.remux.segments[i];
        let left = seg.len() - within;
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let got = match seg {
            Segment::Owned(b) => {
                let from = within as usize;
                buf[..n].copy_from_slice(&b[from..from + n]);
                n
            }
            Segment::Original { offset, .. } => {
                let at = offset + within;
                if self.inner_pos != Some(at) {
                    self.inner_pos = None;
                    self.inner.seek(SeekFrom::Start(at))?;
                }
                let got = match self.inner.read(&mut buf[..n]) {
                    Ok(got) => got,
                    Err(e) => {
                        self.inner_pos = None;
                        return Err(e);
                    }
                };
                self.inner_pos = Some(at + got as u64);
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the original file ended early (changed since it was planned?)",
                    ));
                }
                got
            }
        };
        self.pos += got as u64;
        Ok(got)
    }
}

impl<R: Read + Seek> Seek for FaststartReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.remux.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let to = to.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        self.pos = to;
        Ok(to)
    }
}
