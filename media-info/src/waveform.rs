//! A voice note's waveform: 64 bytes, each 0–100.
//!
//! The rule is Baileys' (`getAudioWaveform`, after wa-js `prepareAudioWaveform`): decode to
//! PCM, take channel 0, cut it into 64 blocks of `floor(n / 64)` samples (the rest is left
//! out), take the mean of `|sample|` of each block, divide by the largest mean and keep
//! `floor(100 · v)`. Silence gives 64 zeros. WhatsApp Web's `WAWebWaveformUtils` does the
//! same on audio resampled to 8 kHz, with a running-average downsampler in place of equal
//! blocks; the bars come out the same to within a step or two.
//!
//! Opus is decoded at 48 kHz by `ffmpeg` (libopus) when the caller allows it, the file has a
//! path and ffmpeg is installed, streamed through a pipe (about 500× real time: half an
//! hour of voice in ~3 s); otherwise by the pure-Rust `opus-decoder` crate in process, one
//! packet at a time, which is slow (its MDCT runs a naive DFT: ~3 s of audio per second of
//! CPU), so only notes of at most
//! [`Options::max_in_process_waveform_seconds`](crate::Options::max_in_process_waveform_seconds)
//! are decoded there. That limit is work, not time: the number of samples is known
//! beforehand from the last page's granule position, so the same file gets the same
//! waveform (or the same warning) on a busy machine and an idle one. The block sums are
//! kept as the samples go by and memory stays flat. Decoding stops at `max_seconds` of
//! audio (longer notes get no waveform) and at the granule's end (the encoder's padding is
//! not counted); the pre-skip is dropped. The pages walked are capped by the number of
//! samples expected (an Opus packet holds at least 2.5 ms), so pages without packets cannot
//! stretch the work.
//!
//! A WAV file's samples are read 64 KiB at a time whatever its channel count (channel 0
//! of each frame is kept; a frame wider than the buffer is read two bytes at a time).

use std::io::{Read, Seek};
use std::path::Path;

use opus_decoder::OpusDecoder;

use crate::bytes::{read_exact_at, read_vec_at};
use crate::ffmpeg::{self, NoFrame};
use crate::ogg::{self, Head, Packets};
use crate::wav::Wav;
use crate::FfmpegOptions;

/// Bars in a waveform.
pub(crate) const BARS: usize = 64;

/// Running block sums over a known number of samples.
struct Blocks {
    block: u64,
    seen: u64,
    sums: [f64; BARS],
}

impl Blocks {
    fn new(total: u64) -> Result<Self, String> {
        let block = total / BARS as u64;
        if block == 0 {
            return Err(format!("{total} samples are fewer than {BARS}"));
        }
        Ok(Blocks {
            block,
            seen: 0,
            sums: [0.0; BARS],
        })
    }

    /// Adds one sample's magnitude (samples past the last whole block are left out).
    fn push(&mut self, magnitude: f64) {
        let i = usize::try_from(self.seen / self.block).unwrap_or(BARS);
        if let Some(s) = self.sums.get_mut(i) {
            *s += magnitude;
        }
        self.seen = self.seen.saturating_add(1);
    }

    fn full(&self) -> bool {
        self.seen >= self.block.saturating_mul(BARS as u64)
    }

    fn bars(&self) -> Vec<u8> {
        let means: Vec<f64> = self.sums.iter().map(|s| s / self.block as f64).collect();
        let max = means.iter().copied().fold(0.0f64, f64::max);
        means
            .iter()
            .map(|m| {
                if max > 0.0 {
                    (100.0 * (m / max)).floor().clamp(0.0, 100.0) as u8
                } else {
                    0
                }
            })
            .collect()
    }
}

/// Why ffmpeg did not decode a note: said when the note is too long for the in-process
/// decoder, so the warning names the real reason.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NoFfmpeg {
    /// The caller did not allow it (`Options::ffmpeg` is `None`).
    NotAllowed,
    /// The bytes came from a reader (`analyze_reader`, stdin), not a path.
    NoPath,
    /// The program was not found.
    Missing,
}

impl NoFfmpeg {
    fn says(self) -> &'static str {
        match self {
            NoFfmpeg::NotAllowed => "ffmpeg is not allowed: Options::ffmpeg is None",
            NoFfmpeg::NoPath => "ffmpeg needs the file's path and this came from a reader",
            NoFfmpeg::Missing => "ffmpeg is not installed",
        }
    }
}

/// Samples of 48 kHz Opus in the smallest packet (2.5 ms).
const MIN_PACKET_SAMPLES: u64 = 120;

/// The waveform of an Ogg Opus file of `len` bytes: decoded by ffmpeg when given its
/// path and options (and it is installed), else in process up to `in_process_seconds`.
pub(crate) fn opus<S: Read + Seek>(
    src: &mut S,
    len: u64,
    max_seconds: u32,
    in_process_seconds: u32,
    ffmpeg: Result<(&Path, &FfmpegOptions), NoFfmpeg>,
) -> Result<Vec<u8>, String> {
    let Head::Opus {
        channels,
        pre_skip,
        mapping_family,
    } = ogg::head(src)?
    else {
        return Err("not an Opus stream".into());
    };
    if mapping_family != 0 || channels > 2 {
        return Err(format!(
            "{channels}-channel Opus (mapping family {mapping_family}) is not decoded"
        ));
    }
    let granule = ogg::last_granule(src, len)?;
    let total = granule.saturating_sub(u64::from(pre_skip));
    let cap = u64::from(max_seconds).saturating_mul(48_000);
    if total > cap {
        return Err(format!(
            "{} s of audio, over the {max_seconds} s decoding limit",
            total / 48_000
        ));
    }
    let mut blocks = Blocks::new(total)?;
    // Every packet holds at least 2.5 ms, and one may straddle two pages; the headers
    // (a comment packet may hold cover art) get pages of their own.
    let max_pages = total
        .saturating_add(u64::from(pre_skip))
        .checked_div(MIN_PACKET_SAMPLES)
        .unwrap_or(0)
        .saturating_mul(2)
        .saturating_add(128);
    let mut why_not = ffmpeg.err();
    if let Ok((path, ff)) = ffmpeg {
        // ffmpeg is not ours to bound, so the stream is first walked here (headers only,
        // nothing decoded): its samples must arrive within the page budget, or ffmpeg is
        // not started (it took over 15 s on 256 MiB of empty pages).
        samples_within(src, max_pages, total.saturating_add(u64::from(pre_skip)))?;
        let fed = ffmpeg::pcm_channel0(path, ff, |samples| {
            for &s in samples {
                if blocks.full() {
                    break;
                }
                blocks.push(f64::from(s).abs() / 32768.0);
            }
            !blocks.full()
        });
        // Once every sample is in, how ffmpeg ended (cut off by a closed pipe) is moot.
        if blocks.full() {
            return Ok(blocks.bars());
        }
        match fed {
            Ok(()) => {
                return Err("ffmpeg's decoding ends before the last page's granule position".into())
            }
            Err(NoFrame::Failed(e)) => return Err(e),
            // Not installed: decode in process.
            Err(NoFrame::Missing) => {
                blocks = Blocks::new(total)?;
                why_not = Some(NoFfmpeg::Missing);
            }
        }
    }
    let in_process_cap = u64::from(in_process_seconds).saturating_mul(48_000);
    if total > in_process_cap {
        let why = why_not.map_or("", NoFfmpeg::says);
        return Err(format!(
            "{} s of audio, over the {in_process_seconds} s the in-process Opus decoder takes \
             ({why}; with ffmpeg, notes up to {max_seconds} s get their waveform)",
            total / 48_000
        ));
    }
    let channels_n = usize::from(channels);
    let mut decoder =
        OpusDecoder::new(48_000, channels_n).map_err(|e| format!("Opus decoder: {e}"))?;
    let mut pcm = vec![0i16; OpusDecoder::MAX_FRAME_SIZE_48K.saturating_mul(channels_n)];
    let mut packets = Packets::new(src, max_pages);
    // The identification and comment headers come first.
    for _ in 0..2 {
        packets.next_packet()?.ok_or("no Opus comment header")?;
    }
    let mut to_skip = u64::from(pre_skip);
    while !blocks.full() {
        let Some(packet) = packets.next_packet()? else {
            break;
        };
        if packet.is_empty() {
            continue;
        }
        let n = decoder
            .decode(&packet, &mut pcm, false)
            .map_err(|e| format!("Opus packet not decodable: {e}"))?;
        for frame in pcm.chunks(channels_n).take(n) {
            if to_skip > 0 {
                to_skip -= 1;
                continue;
            }
            let s = frame.first().copied().unwrap_or(0);
            blocks.push(f64::from(s).abs() / 32768.0);
        }
    }
    if !blocks.full() {
        return Err("the stream ends before its last page's granule position".into());
    }
    Ok(blocks.bars())
}

/// Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716 §3.1); 0 for an
/// empty or malformed one.
fn packet_samples(packet: &[u8]) -> u64 {
    let Some(&toc) = packet.first() else {
        return 0;
    };
    let config = toc >> 3;
    // Frame length in 1/400 s (2.5 ms = 120 samples).
    let frame_units: u64 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |&c| u64::from(c & 0x3F)),
    };
    frames * frame_units * MIN_PACKET_SAMPLES
}

/// Walks the packets after the two Opus headers until they add up to `want` samples,
/// within `max_pages` pages; an error when the pages or the stream run out first.
fn samples_within<S: Read + Seek>(src: &mut S, max_pages: u64, want: u64) -> Result<(), String> {
    let mut packets = Packets::new(src, max_pages);
    for _ in 0..2 {
        packets.next_packet()?.ok_or("no Opus comment header")?;
    }
    let mut have = 0u64;
    while have < want {
        let packet = packets
            .next_packet()?
            .ok_or("the stream ends before its last page's granule position")?;
        have = have.saturating_add(packet_samples(&packet));
    }
    Ok(())
}

/// The waveform of a 16-bit PCM WAV file, read [`WAV_CHUNK`] bytes at a time.
pub(crate) fn wav<S: Read + Seek>(
    src: &mut S,
    wav: &Wav,
    max_seconds: u32,
) -> Result<Vec<u8>, String> {
    if wav.format_tag != 1 || wav.bits != 16 || wav.channels == 0 {
        return Err("only 16-bit PCM WAV is decoded".into());
    }
    let frame = u64::from(wav.channels) * 2;
    let total = wav.data_len / frame;
    let seconds = wav.duration_ms().unwrap_or(u64::MAX) / 1000;
    if seconds > u64::from(max_seconds) {
        return Err(format!(
            "{seconds} s of audio, over the {max_seconds} s decoding limit"
        ));
    }
    let mut blocks = Blocks::new(total)?;
    let frame_len = usize::try_from(frame).map_err(|_| "frame")?;
    if frame_len > WAV_CHUNK {
        // Very wide frames (thousands of channels): two bytes of each, nothing else.
        for i in 0..total {
            if blocks.full() {
                break;
            }
            let mut s = [0u8; 2];
            read_exact_at(
                src,
                wav.data.saturating_add(i.saturating_mul(frame)),
                &mut s,
            )?;
            blocks.push(f64::from(i16::from_le_bytes(s)).abs() / 32768.0);
        }
        return Ok(blocks.bars());
    }
    let chunk_frames = (WAV_CHUNK / frame_len) as u64;
    let mut at = 0u64;
    while at < total && !blocks.full() {
        let n = chunk_frames.min(total - at);
        let bytes = read_vec_at(
            src,
            wav.data.saturating_add(at * frame),
            usize::try_from(n * frame).map_err(|_| "chunk")?,
        )?;
        for f in bytes.chunks_exact(frame_len) {
            let s = i16::from_le_bytes([f[0], f[1]]);
            blocks.push(f64::from(s).abs() / 32768.0);
        }
        at += n;
    }
    Ok(blocks.bars())
}

/// The most bytes of WAV samples read at once, whatever the channel count.
const WAV_CHUNK: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_block_means_over_the_largest() {
        let mut b = Blocks::new(64 * 2 + 1).unwrap();
        for i in 0..(64 * 2 + 1) {
            b.push(if i < 2 {
                0.5
            } else if i < 4 {
                0.25
            } else {
                0.0
            });
        }
        let bars = b.bars();
        assert_eq!(bars.len(), 64);
        assert_eq!(&bars[..3], &[100, 50, 0]);
    }

    #[test]
    fn packet_lengths_come_from_the_toc_byte() {
        assert_eq!(packet_samples(&[0xF8, 0xFF]), 960); // CELT 20 ms, one frame
        assert_eq!(packet_samples(&[0x08 | 1]), 2 * 960); // SILK 20 ms, two frames
        assert_eq!(packet_samples(&[0x80 | 3, 0x03]), 3 * 120); // CELT 2.5 ms, three
        assert_eq!(packet_samples(&[]), 0);
    }

    #[test]
    fn silence_is_all_zeros() {
        let mut b = Blocks::new(640).unwrap();
        (0..640).for_each(|_| b.push(0.0));
        assert_eq!(b.bars(), vec![0; 64]);
    }
}
