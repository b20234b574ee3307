//! Decoding pictures within limits, and the small JPEG a message carries.
//!
//! The thumbnail follows WhatsApp Web (`WAWebMediaDataUtils`, `WAWebImageUtils`,
//! `WAWebCanvasUtils`, `WAWebImageGeometry`, `WAWebMediaConstants`): the picture is drawn,
//! EXIF orientation applied, over an opaque `rgb(247,247,247)` background, scaled so its
//! longest side is at most `IMG_THUMB_MAX_EDGE` = 100 px (never enlarged; the other side
//! truncated, at least 1), and encoded as JPEG at the browser's default quality (0.92);
//! if that is over 20 000 bytes, at 0.9, 0.8, … 0.1 until one fits (`getResizedDataUrl`).

use std::io::{BufRead, Cursor, Read, Seek};

use image::codecs::jpeg::JpegEncoder;
use image::{
    imageops, DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
};

use crate::bytes::{be_u16, Window};
use crate::ThumbnailOptions;

/// The background transparent pixels are drawn on (`WAWebCanvasUtils.fillBackgroundWithGray`).
const BACKGROUND: u16 = 247;

/// A decoded picture, or why there is none.
pub(crate) enum Decoded {
    Image(DynamicImage),
    /// The header claims more pixels than allowed, or more memory to decode than
    /// [`MAX_DECODE_BYTES`](crate::MAX_DECODE_BYTES): (width, height) as displayed, and why.
    TooLarge(u32, u32, String),
}

/// How many times its decoded size a picture may take while decoding: the decoder's own
/// buffers (a JPEG's component planes, a lossless WebP's ARGB words, a lossy one's YUV
/// planes) beside the output; PNG decodes into the output. (Measured, release build: a
/// 6000 × 6000 lossless WebP peaks at 1.7 × its 144 MB of RGBA, a lossy one at 1.1 ×, a
/// JPEG at 1.0 ×.) A picture with an EXIF orientation to apply counts double.
fn decode_factor(format: ImageFormat) -> u64 {
    match format {
        ImageFormat::Png => 1,
        _ => 2,
    }
}

/// Decodes a picture, checking its claimed size against `max_pixels`, and what decoding it
/// would take (its decoded size × [`decode_factor`]) against [`crate::MAX_DECODE_BYTES`],
/// before allocating.
pub(crate) fn decode<R: BufRead + Seek>(
    src: R,
    format: ImageFormat,
    max_pixels: u64,
) -> Result<Decoded, String> {
    let reader = ImageReader::with_format(src, format);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let quarter = matches!(
        orientation,
        image::metadata::Orientation::Rotate90
            | image::metadata::Orientation::Rotate270
            | image::metadata::Orientation::Rotate90FlipH
            | image::metadata::Orientation::Rotate270FlipH
    );
    let (dw, dh) = if quarter { (h, w) } else { (w, h) };
    if w == 0 || h == 0 {
        return Err("a picture of zero size".into());
    }
    if u64::from(w).saturating_mul(u64::from(h)) > max_pixels {
        return Ok(Decoded::TooLarge(dw, dh, too_large(dw, dh, max_pixels)));
    }
    // A turned picture is copied once more when its orientation is applied.
    let copies = if orientation == image::metadata::Orientation::NoTransforms {
        1
    } else {
        2
    };
    if let Some(why) = over_ceiling(format, dw, dh, decoder.total_bytes().saturating_mul(copies)) {
        return Ok(Decoded::TooLarge(dw, dh, why));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(crate::MAX_DECODE_BYTES);
    decoder.set_limits(limits).map_err(describe)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(describe)?;
    img.apply_orientation(orientation);
    Ok(Decoded::Image(img))
}

/// Why a `w × h` picture whose decoded pixels take `decoded_bytes` is not decoded, if
/// decoding it would take more than [`crate::MAX_DECODE_BYTES`].
pub(crate) fn over_ceiling(
    format: ImageFormat,
    w: u32,
    h: u32,
    decoded_bytes: u64,
) -> Option<String> {
    let need = decoded_bytes.saturating_mul(decode_factor(format));
    (need > crate::MAX_DECODE_BYTES).then(|| {
        format!(
            "decoding the {w} × {h} picture would take about {} MiB, over the {} MiB \
             ceiling: not decoded",
            need >> 20,
            crate::MAX_DECODE_BYTES >> 20
        )
    })
}

/// Decodes `data` (any format the crate decodes) within `max_pixels`.
pub(crate) fn decode_bytes(data: &[u8], max_pixels: u64) -> Result<DynamicImage, String> {
    let format = image::guess_format(data).map_err(describe)?;
    match decode(Cursor::new(data), format, max_pixels)? {
        Decoded::Image(img) => Ok(img),
        Decoded::TooLarge(_, _, why) => Err(why),
    }
}

/// The message for a picture over the pixel limit.
pub(crate) fn too_large(w: u32, h: u32, max_pixels: u64) -> String {
    format!(
        "the picture claims {w} × {h} = {} pixels, over the limit of {max_pixels}: not decoded",
        u64::from(w).saturating_mul(u64::from(h))
    )
}

fn describe(e: ImageError) -> String {
    match e {
        ImageError::Limits(l) => format!("over the decoding limits ({l})"),
        ImageError::Unsupported(u) => format!("unsupported: {u}"),
        other => format!("not decodable: {other}"),
    }
}

/// The size a `w × h` picture is drawn at so its longest side is at most `max`
/// (`WAWebImageGeometry.boundHeightWidth`; never enlarged).
pub(crate) fn bound(w: u32, h: u32, max: u32) -> (u32, u32) {
    let max = max.max(1);
    let scale = |side: u32, longest: u32| {
        u32::try_from(u64::from(side).saturating_mul(u64::from(max)) / u64::from(longest.max(1)))
            .unwrap_or(1)
            .max(1)
    };
    if w > h {
        if w > max {
            (max, scale(h, w))
        } else {
            (w, h)
        }
    } else if h > max {
        (scale(w, h), max)
    } else {
        (w, h)
    }
}

/// The qualities tried, best first: the chosen one, then 90, 80, … 10 below it.
fn qualities(first: u8) -> impl Iterator<Item = u8> {
    let first = first.clamp(1, 100);
    std::iter::once(first).chain((1..=9u8).rev().map(|q| q * 10).filter(move |&q| q < first))
}

/// Whether a JPEG of `len` bytes has its end-of-image marker after its first scan.
///
/// The JPEG decoder fills a cut-short picture with grey rather than fail (as browsers
/// show a half-loaded photo); a file that ends before its EOI is treated as corrupt.
/// The markers before the first scan are walked by their lengths (an EXIF thumbnail's own
/// EOI lives inside APP1 and is stepped over); after it, `FF D9` can only be the EOI, as
/// entropy-coded `FF` bytes are followed by `00` or a restart marker.
pub(crate) fn jpeg_complete<S: Read + Seek>(src: &mut S, len: u64) -> Result<bool, String> {
    let mut win = Window::new(src, len, 64 * 1024);
    let mut pos = 2u64;
    loop {
        let Some(m) = win.get(pos, 4)? else {
            return Ok(false);
        };
        if m[0] != 0xFF {
            return Ok(false);
        }
        match m[1] {
            0xFF => pos = pos.saturating_add(1), // fill byte
            0xD8 | 0x01 | 0xD0..=0xD7 => pos = pos.saturating_add(2),
            0xD9 => return Ok(false), // the end before any scan
            0xDA => break,
            _ => {
                pos = pos
                    .saturating_add(2)
                    .saturating_add(u64::from(be_u16(m, 2).unwrap_or(0)))
            }
        }
    }
    let mut prev = 0u8;
    while pos < len {
        let n = usize::try_from(len.saturating_sub(pos).min(64 * 1024)).unwrap_or(64 * 1024);
        let Some(chunk) = win.get(pos, n)? else {
            return Ok(false);
        };
        for &b in chunk {
            if prev == 0xFF && b == 0xD9 {
                return Ok(true);
            }
            prev = b;
        }
        pos = pos.saturating_add(n as u64);
    }
    Ok(false)
}

/// The message thumbnail of a decoded picture.
pub(crate) fn jpeg(img: &DynamicImage, opts: &ThumbnailOptions) -> Result<Vec<u8>, String> {
    let (w, h) = (img.width(), img.height());
    let (tw, th) = bound(w, h, opts.max_edge);
    let small = if (tw, th) == (w, h) {
        img.to_rgba8()
    } else {
        imageops::thumbnail(img, tw, th)
    };
    let mut rgb = RgbImage::new(tw, th);
    for (src, dst) in small.pixels().zip(rgb.pixels_mut()) {
        let a = u16::from(src.0[3]);
        for c in 0..3 {
            let v = (u16::from(src.0[c]) * a + BACKGROUND * (255 - a) + 127) / 255;
            dst.0[c] = u8::try_from(v).unwrap_or(u8::MAX);
        }
    }
    let mut out = Vec::new();
    for q in qualities(opts.quality) {
        out.clear();
        JpegEncoder::new_with_quality(&mut out, q)
            .encode_image(&rgb)
            .map_err(|e| format!("JPEG encoding failed: {e}"))?;
        if out.len() <= opts.max_bytes {
            return Ok(out);
        }
    }
    Err(format!(
        "no quality makes the {tw} × {th} thumbnail fit in {} bytes",
        opts.max_bytes
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_keeps_the_longest_side_at_most_max_and_never_enlarges() {
        assert_eq!(bound(320, 240, 100), (100, 75));
        assert_eq!(bound(240, 320, 100), (75, 100));
        assert_eq!(bound(512, 512, 100), (100, 100));
        assert_eq!(bound(80, 60, 100), (80, 60));
        assert_eq!(bound(10_000, 3, 100), (100, 1));
        assert_eq!(bound(176, 144, 100), (100, 81));
    }

    #[test]
    fn qualities_step_down_by_tenths() {
        assert_eq!(
            qualities(92).collect::<Vec<_>>(),
            [92, 90, 80, 70, 60, 50, 40, 30, 20, 10]
        );
        assert_eq!(qualities(50).collect::<Vec<_>>(), [50, 40, 30, 20, 10]);
    }
}
