//! Faststart remuxing: ffmpeg's own files (moov last, extra tracks, MOV, already faststart)
//! come out with moov first, one video and one audio track and the same decoded frames;
//! hand-built boxes cover the 64-bit offsets and every way a file can lie.

use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use wamedia_info::faststart::{self, FaststartReader, Plan, Refusal, Segment, MAX_MOOV};

// ---- boxes by hand ----

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn tkhd(id: u32) -> Vec<u8> {
    let mut b = vec![0u8; 84];
    b[12..16].copy_from_slice(&id.to_be_bytes());
    bx(b"tkhd", &b)
}

fn hdlr(h: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    b.extend_from_slice(h);
    b.extend_from_slice(&[0; 13]);
    bx(b"hdlr", &b)
}

fn stco(offsets: &[u32]) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(&(offsets.len() as u32).to_be_bytes());
    for o in offsets {
        b.extend_from_slice(&o.to_be_bytes());
    }
    bx(b"stco", &b)
}

fn trak(id: u32, handler: &[u8; 4], offsets: &[u32], extra: &[Vec<u8>]) -> Vec<u8> {
    let stbl = bx(b"stbl", &stco(offsets));
    let minf = bx(b"minf", &stbl);
    let mdia = bx(b"mdia", &cat(&[hdlr(handler), minf]));
    let mut parts = vec![tkhd(id)];
    parts.extend_from_slice(extra);
    parts.push(mdia);
    bx(b"trak", &cat(&parts))
}

fn moov(traks: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![bx(b"mvhd", &[0u8; 100])];
    parts.extend_from_slice(traks);
    bx(b"moov", &cat(&parts))
}

fn ftyp() -> Vec<u8> {
    bx(b"ftyp", b"isom\0\0\x02\0isomiso2")
}

fn plan_of(bytes: &[u8]) -> Result<Plan, Refusal> {
    faststart::plan(&mut Cursor::new(bytes), bytes.len() as u64)
}

fn remux_bytes<R: Read + Seek>(src: R, plan: Plan) -> Vec<u8> {
    let Plan::Remux(r) = plan else {
        panic!("expected a remux")
    };
    let mut out = Vec::new();
    let mut reader = FaststartReader::new(src, r);
    let len = reader.len();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out.len() as u64, len);
    out
}

// ---- a box walk of our own ----

/// (type, start, end) of the boxes between `from` and `to`.
fn walk(b: &[u8], from: usize, to: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos + 8 <= to {
        let size32 = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = b[pos + 4..pos + 8].try_into().unwrap();
        let size = match size32 {
            0 => to - pos,
            1 => u64::from_be_bytes(b[pos + 8..pos + 16].try_into().unwrap()) as usize,
            n => n,
        };
        assert!(size >= 8 && pos + size <= to, "box {kind:?} at {pos}");
        out.push((kind, pos, pos + size));
        pos += size;
    }
    assert_eq!(pos, to, "boxes fill their parent");
    out
}

fn top_kinds(b: &[u8]) -> Vec<String> {
    walk(b, 0, b.len())
        .iter()
        .map(|(k, _, _)| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// Every chunk offset table in `moov` (kind, offsets), walking trak/mdia/minf/stbl.
fn chunk_tables(b: &[u8]) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    fn go(b: &[u8], from: usize, to: usize, out: &mut Vec<(String, Vec<u64>)>) {
        for (k, s, e) in walk(b, from, to) {
            match &k {
                b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" => go(b, s + 8, e, out),
                b"stco" | b"co64" => {
                    let n = u32::from_be_bytes(b[s + 12..s + 16].try_into().unwrap()) as usize;
                    let w = if &k == b"co64" { 8 } else { 4 };
                    let v = (0..n)
                        .map(|i| {
                            let at = s + 16 + i * w;
                            if w == 8 {
                                u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
                            } else {
                                u64::from(u32::from_be_bytes(b[at..at + 4].try_into().unwrap()))
                            }
                        })
                        .collect();
                    out.push((String::from_utf8_lossy(&k).into_owned(), v));
                }
                _ => {}
            }
        }
    }
    let (_, s, e) = walk(b, 0, b.len())
        .into_iter()
        .find(|(k, _, _)| k == b"moov")
        .unwrap();
    go(b, s, e, &mut out);
    out
}

// ---- hand-built files ----

#[test]
fn moov_last_moves_first_and_every_chunk_offset_moves_with_the_data() {
    // ftyp (24) | mdat header (8) + 100 bytes | moov
    let mut data = vec![0u8; 100];
    data.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let f = ftyp();
    let mdat = bx(b"mdat", &data);
    let first = (f.len() + 8) as u32;
    let file = cat(&[
        f.clone(),
        mdat.clone(),
        moov(&[
            trak(1, b"vide", &[first, first + 50], &[]),
            trak(2, b"soun", &[first + 10], &[]),
        ]),
    ]);
    let plan = plan_of(&file).unwrap();
    let Plan::Remux(r) = &plan else { panic!() };
    assert!(r.moov_moved());
    assert_eq!((r.kept_tracks(), r.dropped_tracks()), (2, 0));
    assert_eq!(r.len(), file.len() as u64);
    let out = remux_bytes(Cursor::new(&file), plan.clone());
    assert_eq!(top_kinds(&out), ["ftyp", "moov", "mdat"]);
    let moov_len = walk(&out, 0, out.len())[1].2 - walk(&out, 0, out.len())[1].1;
    let shift = moov_len as u64;
    let tables = chunk_tables(&out);
    assert_eq!(
        tables,
        [
            (
                "stco".into(),
                vec![u64::from(first) + shift, u64::from(first + 50) + shift]
            ),
            ("stco".into(), vec![u64::from(first + 10) + shift]),
        ]
    );
    // The bytes the offsets point at are the same bytes.
    for (_, offs) in &tables {
        for o in offs {
            let o = *o as usize;
            assert_eq!(out[o], file[o - moov_len]);
        }
    }
}

#[test]
fn extra_tracks_are_dropped_and_references_to_them_too() {
    let mdat = bx(b"mdat", &[7u8; 64]);
    let base = (ftyp().len() + 8) as u32;
    // Track 1 (video) refers to 3 (timecode) and 2 (audio); 4 is a second audio track.
    let mut tref_body = bx(b"tmcd", &3u32.to_be_bytes());
    tref_body.extend(bx(
        b"sync",
        &cat(&[2u32.to_be_bytes().to_vec(), 4u32.to_be_bytes().to_vec()]),
    ));
    let tref = bx(b"tref", &tref_body);
    let file = cat(&[
        ftyp(),
        mdat,
        moov(&[
            trak(1, b"vide", &[base], &[tref]),
            trak(2, b"soun", &[base + 8], &[]),
            trak(3, b"tmcd", &[base + 16], &[]),
            trak(4, b"soun", &[base + 24], &[]),
            trak(5, b"sbtl", &[base + 32], &[]),
        ]),
    ]);
    let plan = plan_of(&file).unwrap();
    let Plan::Remux(r) = &plan else { panic!() };
    assert_eq!((r.kept_tracks(), r.dropped_tracks()), (2, 3));
    let out = remux_bytes(Cursor::new(&file), plan);
    let boxes = walk(&out, 0, out.len());
    let (_, ms, me) = boxes[1];
    let traks: Vec<_> = walk(&out, ms + 8, me)
        .into_iter()
        .filter(|(k, _, _)| k == b"trak")
        .collect();
    assert_eq!(traks.len(), 2);
    let (_, ts, te) = traks[0];
    let tref = walk(&out, ts + 8, te)
        .into_iter()
        .find(|(k, _, _)| k == b"tref")
        .unwrap();
    // tmcd (to a dropped track) is gone; sync keeps only track 2.
    assert_eq!(
        &out[tref.1..tref.2],
        &bx(b"tref", &bx(b"sync", &2u32.to_be_bytes()))[..]
    );
    assert_eq!(chunk_tables(&out).len(), 2);
}

#[test]
fn moov_first_with_only_one_video_and_one_audio_track_is_left_alone() {
    let f = ftyp();
    let m = moov(&[trak(1, b"vide", &[0], &[]), trak(2, b"soun", &[0], &[])]);
    let first = (f.len() + m.len() + 8) as u32;
    let file = cat(&[
        f,
        moov(&[
            trak(1, b"vide", &[first], &[]),
            trak(2, b"soun", &[first + 4], &[]),
        ]),
        bx(b"mdat", &[1; 16]),
    ]);
    assert_eq!(plan_of(&file).unwrap(), Plan::NothingToDo);
}

#[test]
fn moov_first_with_a_track_to_drop_shrinks_and_offsets_move_back() {
    let f = ftyp();
    let m = moov(&[
        trak(1, b"vide", &[0], &[]),
        trak(2, b"text", &[0], &[]),
        trak(3, b"soun", &[0], &[]),
    ]);
    let first = (f.len() + m.len() + 8) as u32;
    let file = cat(&[
        f,
        moov(&[
            trak(1, b"vide", &[first], &[]),
            trak(2, b"text", &[first + 4], &[]),
            trak(3, b"soun", &[first + 8], &[]),
        ]),
        bx(b"mdat", &(0..16).collect::<Vec<u8>>()),
    ]);
    let plan = plan_of(&file).unwrap();
    let Plan::Remux(r) = &plan else { panic!() };
    assert!(!r.moov_moved());
    let out = remux_bytes(Cursor::new(&file), plan);
    assert_eq!(top_kinds(&out), ["ftyp", "moov", "mdat"]);
    let tables = chunk_tables(&out);
    let v = tables[0].1[0] as usize;
    let a = tables[1].1[0] as usize;
    assert_eq!((out[v], out[a]), (0, 8));
}

/// A file mostly of zeros that is never stored: `parts` at their offsets.
struct Sparse {
    parts: Vec<(u64, Vec<u8>)>,
    len: u64,
    pos: u64,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        for (at, bytes) in &self.parts {
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let p = self.pos + i as u64;
                if p >= *at && p < at + bytes.len() as u64 {
                    *b = bytes[(p - at) as usize];
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn offsets_pushed_past_4_gib_turn_stco_into_co64_and_the_layout_settles() {
    // ftyp | mdat (largesize) to 2^32 + 1000 | moov: the last chunk sits 100 bytes below
    // 2^32, so any moov put in front pushes it past 32 bits.
    let f = ftyp();
    let mdat_start = f.len() as u64;
    let moov_start = (1u64 << 32) + 1000;
    let mut mdat_head = 1u32.to_be_bytes().to_vec();
    mdat_head.extend_from_slice(b"mdat");
    mdat_head.extend_from_slice(&(moov_start - mdat_start).to_be_bytes());
    let low = (mdat_start + 16) as u32;
    let high = u32::MAX - 100;
    let m = moov(&[
        trak(1, b"vide", &[low, high], &[]),
        trak(2, b"soun", &[low + 1], &[]),
    ]);
    let len = moov_start + m.len() as u64;
    let sparse = || Sparse {
        parts: vec![
            (0, f.clone()),
            (mdat_start, mdat_head.clone()),
            (u64::from(high), b"HIGH".to_vec()),
            (moov_start, m.clone()),
        ],
        len,
        pos: 0,
    };
    let plan = faststart::plan(&mut sparse(), len).unwrap();
    let Plan::Remux(r) = plan else { panic!() };
    assert_eq!(
        r.upgraded_to_co64(),
        1,
        "only the video's table needs 64 bits"
    );
    let Segment::Owned(new_moov) = &r.segments()[1] else {
        panic!("{:?}", r.segments())
    };
    let shift = new_moov.len() as u64;
    // The video's table grew by 4 bytes an entry: the shift counts the grown moov.
    assert_eq!(shift, m.len() as u64 + 2 * 4);
    let mut head = f.clone();
    head.extend_from_slice(new_moov);
    assert_eq!(
        chunk_tables(&head),
        [
            (
                "co64".into(),
                vec![u64::from(low) + shift, u64::from(high) + shift]
            ),
            ("stco".into(), vec![u64::from(low + 1) + shift]),
        ]
    );
    // The reader serves the data where the new offset says.
    let mut reader = FaststartReader::new(sparse(), r);
    assert_eq!(reader.len(), len + 8);
    reader
        .seek(SeekFrom::Start(u64::from(high) + shift))
        .unwrap();
    let mut four = [0u8; 4];
    reader.read_exact(&mut four).unwrap();
    assert_eq!(&four, b"HIGH");
}

// ---- hostile files ----

fn refused(bytes: &[u8]) -> Refusal {
    match plan_of(bytes) {
        Err(r) => {
            assert!(!r.to_string().is_empty());
            r
        }
        Ok(p) => panic!("planned {p:?}"),
    }
}

#[test]
fn lying_and_cut_files_are_refused_with_a_reason_never_a_panic() {
    let good = cat(&[
        ftyp(),
        bx(b"mdat", &[0; 32]),
        moov(&[trak(1, b"vide", &[40], &[])]),
    ]);
    assert!(matches!(plan_of(&good), Ok(Plan::Remux(_))));
    // Cut anywhere: a refusal (or, cut before the moov, no moov), never a panic.
    for cut in 0..good.len() {
        let _ = plan_of(&good[..cut]);
    }
    assert!(matches!(
        refused(&good[..good.len() - 3]),
        Refusal::BadBox { .. }
    ));
    assert!(matches!(
        refused(b"hello world, not a movie"),
        Refusal::NotMp4
    ));
    assert!(matches!(refused(&[]), Refusal::NotMp4));
    // A size smaller than its header.
    let mut small = good.clone();
    small[24..28].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(refused(&small), Refusal::BadBox { .. }));
    // A size past the end of the file.
    let mut past = good.clone();
    past[24..28].copy_from_slice(&100_000u32.to_be_bytes());
    assert!(matches!(refused(&past), Refusal::BadBox { .. }));
    // A largesize past the end, and one that overflows.
    for large in [1u64 << 40, u64::MAX] {
        let mut f = ftyp();
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(b"mdat");
        f.extend_from_slice(&large.to_be_bytes());
        assert!(matches!(refused(&f), Refusal::BadBox { .. }));
    }
    // An stco claiming more entries than its box holds.
    let mut lying = stco(&[40]);
    lying[12..16].copy_from_slice(&0x4000_0000u32.to_be_bytes());
    let stbl = bx(b"stbl", &lying);
    let t = bx(
        b"trak",
        &cat(&[
            tkhd(1),
            bx(b"mdia", &cat(&[hdlr(b"vide"), bx(b"minf", &stbl)])),
        ]),
    );
    let file = cat(&[ftyp(), bx(b"mdat", &[0; 32]), moov(&[t])]);
    assert!(matches!(refused(&file), Refusal::BadChunkOffsets { .. }));
    // A chunk offset outside the media data (into the moov, past the end).
    for off in [10_000u32, (24 + 40 + 20) as u32] {
        let file = cat(&[
            ftyp(),
            bx(b"mdat", &[0; 32]),
            moov(&[trak(1, b"vide", &[off], &[])]),
        ]);
        assert!(matches!(refused(&file), Refusal::ChunkOffsetOutside { .. }));
    }
    // No moov, two moovs, fragments, no audio or video.
    assert!(matches!(
        refused(&cat(&[ftyp(), bx(b"mdat", &[0; 8])])),
        Refusal::NoMoov
    ));
    let m = moov(&[trak(1, b"vide", &[], &[])]);
    assert!(matches!(
        refused(&cat(&[ftyp(), m.clone(), m.clone()])),
        Refusal::TwoMoovs
    ));
    let frag = cat(&[
        ftyp(),
        bx(b"moov", &cat(&[bx(b"mvhd", &[0; 100]), bx(b"mvex", &[])])),
    ]);
    assert!(matches!(refused(&frag), Refusal::Fragmented));
    assert!(matches!(
        refused(&cat(&[ftyp(), m.clone(), bx(b"moof", &[])])),
        Refusal::Fragmented
    ));
    assert!(matches!(
        refused(&cat(&[ftyp(), moov(&[trak(1, b"text", &[], &[])])])),
        Refusal::NoAudioOrVideo
    ));
    // A box header inside moov that lies about its size.
    let mut inner = m.clone();
    inner[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    assert!(matches!(
        refused(&cat(&[ftyp(), inner])),
        Refusal::BadBox { .. }
    ));
}

#[test]
fn every_byte_of_a_small_file_changed_gives_a_plan_or_a_refusal() {
    let file = cat(&[
        ftyp(),
        bx(b"mdat", &[0; 32]),
        moov(&[
            trak(1, b"vide", &[40, 50], &[]),
            trak(2, b"soun", &[60], &[]),
        ]),
    ]);
    for i in 0..file.len() {
        for v in [0u8, 1, 8, 0x7F, 0xFF] {
            let mut f = file.clone();
            f[i] = v;
            if let Ok(Plan::Remux(r)) = plan_of(&f) {
                let len = r.len();
                let mut out = Vec::new();
                FaststartReader::new(Cursor::new(&f), r)
                    .read_to_end(&mut out)
                    .unwrap();
                assert_eq!(out.len() as u64, len);
            }
        }
    }
}

#[test]
fn random_damage_gives_a_refusal_or_a_remux_that_needs_no_second_one() {
    let base = (ftyp().len() + 8) as u32;
    let tref = bx(b"tref", &bx(b"sync", &[0, 0, 0, 2, 0, 0, 0, 3]));
    let file = cat(&[
        ftyp(),
        bx(b"mdat", &[3; 64]),
        moov(&[
            trak(1, b"vide", &[base, base + 9], &[tref]),
            trak(2, b"text", &[base + 20], &[]),
            trak(3, b"soun", &[base + 30], &[]),
        ]),
        bx(b"free", &[0; 4]),
    ]);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut remuxed = 0;
    for _ in 0..3000 {
        let mut f = file.clone();
        for _ in 0..1 + next() % 3 {
            let i = (next() % f.len() as u64) as usize;
            f[i] = next() as u8;
        }
        if next() % 8 == 0 {
            f.truncate((next() % f.len() as u64) as usize);
        }
        let Ok(Plan::Remux(r)) = plan_of(&f) else {
            continue;
        };
        remuxed += 1;
        let out = remux_bytes(Cursor::new(&f), Plan::Remux(r));
        // What came out is faststart with at most one video and one audio track.
        assert_eq!(plan_of(&out).unwrap(), Plan::NothingToDo, "{f:?}");
    }
    assert!(remuxed > 100, "only {remuxed} damaged files were remuxed");
}

#[test]
fn a_huge_moov_is_refused_before_it_is_read() {
    let f = ftyp();
    let size = MAX_MOOV + 1;
    let mut head = (size as u32).to_be_bytes().to_vec();
    head.extend_from_slice(b"moov");
    let len = f.len() as u64 + size;
    let mut src = Sparse {
        parts: vec![(0, f.clone()), (f.len() as u64, head)],
        len,
        pos: 0,
    };
    assert!(matches!(
        faststart::plan(&mut src, len),
        Err(Refusal::MoovTooLarge { .. })
    ));
}

// ---- ffmpeg's files ----

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const V: [&str; 4] = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=64x48:rate=10:duration=1.5",
];

fn sine(freq: u32) -> [String; 4] {
    [
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=frequency={freq}:duration=1.5"),
    ]
}

fn make(dir: &Path, name: &str, extra_inputs: &[&str], out_args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args: Vec<String> = V.iter().map(|s| s.to_string()).collect();
    args.extend(sine(440));
    args.extend(extra_inputs.iter().map(|s| s.to_string()));
    args.extend(
        [
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5", "-c:a", "aac",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(out_args.iter().map(|s| s.to_string()));
    args.push(out.to_str().unwrap().into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&refs);
    out
}

fn framemd5(file: &Path, stream: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-map", stream, "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.lines().filter(|l| !l.starts_with('#')).count() > 3, "{s}");
    s
}

fn stream_types(file: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether ffprobe's trace meets `moov` before `mdat`.
fn ffprobe_says_moov_first(file: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args(["-v", "trace"])
        .arg(file)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let moov = log.find("type:'moov'").expect("ffprobe saw a moov");
    let mdat = log.find("type:'mdat'").expect("ffprobe saw an mdat");
    moov < mdat
}

fn plan_file(file: &Path) -> Result<Plan, Refusal> {
    let mut f = std::fs::File::open(file).unwrap();
    let len = f.seek(SeekFrom::End(0)).unwrap();
    faststart::plan(&mut f, len)
}

/// Remuxes `file` to `out` through the reader; checks the result against the original.
fn remux_and_check(file: &Path, out: &Path, dropped: usize) {
    let original = std::fs::read(file).unwrap();
    assert!(
        !ffprobe_says_moov_first(file),
        "ffmpeg's default is moov last"
    );
    let plan = plan_file(file).unwrap();
    let Plan::Remux(r) = &plan else {
        panic!("{plan:?}")
    };
    assert_eq!(r.dropped_tracks(), dropped);
    assert_eq!(r.upgraded_to_co64(), 0);
    let bytes = remux_bytes(std::fs::File::open(file).unwrap(), plan.clone());
    std::fs::write(out, &bytes).unwrap();
    let kinds = top_kinds(&bytes);
    let at = |k: &str| kinds.iter().position(|x| x == k).unwrap();
    assert!(at("moov") < at("mdat"), "{kinds:?}");
    assert!(ffprobe_says_moov_first(out));
    assert_eq!(stream_types(out), ["video", "audio"]);
    assert_eq!(plan_file(out).unwrap(), Plan::NothingToDo, "idempotent");
    for s in ["0:v:0", "0:a:0"] {
        assert_eq!(framemd5(file, s), framemd5(out, s), "{s} decodes the same");
    }
    // Random reads and seeks give the materialised output's bytes.
    let Plan::Remux(r) = plan else { unreachable!() };
    let mut reader = FaststartReader::new(std::fs::File::open(file).unwrap(), r);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..300 {
        let from = next() % (bytes.len() as u64 + 10);
        let n = (next() % 5000) as usize;
        let pos = match next() % 3 {
            0 => reader.seek(SeekFrom::Start(from)).unwrap(),
            1 => reader
                .seek(SeekFrom::End(from as i64 - bytes.len() as i64))
                .unwrap(),
            _ => {
                let cur = reader.stream_position().unwrap() as i64;
                reader.seek(SeekFrom::Current(from as i64 - cur)).unwrap()
            }
        };
        assert_eq!(pos, from);
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            let k = reader.read(&mut buf[got..]).unwrap();
            if k == 0 {
                break;
            }
            got += k;
        }
        let start = (from as usize).min(bytes.len());
        let end = (start + n).min(bytes.len());
        assert_eq!(&buf[..got], &bytes[start..end]);
    }
    assert!(original.len() > 1000);
}

#[test]
fn ffmpeg_files_come_out_faststart_with_the_same_frames() {
    if !have("ffmpeg") || !have("ffprobe") {
        eprintln!("skipped: ffmpeg not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // (a) H.264 + AAC, moov last (no -movflags +faststart).
    let a = make(d, "a.mp4", &[], &[]);
    remux_and_check(&a, &d.join("a-fast.mp4"), 0);

    // (b) a second audio track and a mov_text subtitle track.
    let srt = d.join("s.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nhello\n").unwrap();
    let mut extra: Vec<String> = sine(880).to_vec();
    extra.extend(["-i".into(), srt.to_str().unwrap().into()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let b = make(
        d,
        "b.mp4",
        &extra,
        &[
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-c:s", "mov_text",
        ],
    );
    assert_eq!(stream_types(&b), ["video", "audio", "audio", "subtitle"]);
    remux_and_check(&b, &d.join("b-fast.mp4"), 2);

    // (c) already faststart: nothing to do.
    let c = make(d, "c.mp4", &[], &["-movflags", "+faststart"]);
    assert_eq!(plan_file(&c).unwrap(), Plan::NothingToDo);

    // (d) QuickTime.
    let m = make(d, "d.mov", &[], &[]);
    remux_and_check(&m, &d.join("d-fast.mov"), 0);

    // A fragmented file is refused.
    let f = make(d, "f.mp4", &[], &["-movflags", "frag_keyframe+empty_moov"]);
    assert!(matches!(plan_file(&f), Err(Refusal::Fragmented)));
}
