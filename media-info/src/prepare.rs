//! Preparing a file to be sent as a type (PROTOCOL §8): the [`check`], then what makes it
//! right, as a [`Plan`]. Images over the account's limits (`image_max_edge`,
//! `image_max_kbytes`) are resized and re-encoded as JPEG in process ([`fit_image`]),
//! with the `image` crate this crate already decodes thumbnails with: no program to run,
//! the same pixel limit before any allocation, and a byte budget met by stepping the
//! quality down, which ffmpeg has no option for.

use std::fmt;
use std::io::{BufRead, Seek};

use image::codecs::jpeg::JpegEncoder;
use image::{imageops, DynamicImage, RgbImage};

use crate::accept::{check, Content, Refusal};
use crate::convert::{Conversion, Target};
use crate::sniff::Format;
use crate::{thumbnail, MediaKind};

/// The account's image limits (server properties from the `props` IQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// The longest side, in pixels (`image_max_edge`): 1600, or 2048 for HD.
    pub max_edge: u32,
    /// The largest file, in KiB (`image_max_kbytes`): 1024.
    pub max_kbytes: u32,
}

impl ImageLimits {
    /// The limits for HD photos: longest side 2048.
    pub const HD: ImageLimits = ImageLimits {
        max_edge: 2048,
        max_kbytes: 1024,
    };

    /// The largest file, in bytes.
    pub fn max_bytes(&self) -> u64 {
        u64::from(self.max_kbytes).saturating_mul(1024)
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_edge: 1600,
            max_kbytes: 1024,
        }
    }
}

/// What makes a file ready to be sent as a type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plan {
    /// It is fine as it is: send it with this mimetype.
    AsIs {
        /// One of [`crate::allowed_mimetypes`] (for documents, any).
        mimetype: &'static str,
    },
    /// Convert it with ffmpeg ([`Conversion::run`]).
    Convert(Conversion),
    /// An image over the limits: [`fit_image`] makes a JPEG within them.
    FitImage {
        /// The limits it is over.
        limits: ImageLimits,
    },
}

/// What `content` needs to be sent as `kind`: the [`check`], then, for an image over
/// `limits`, a fit; for a WebP sticker that is not 512 × 512 (and not animated: ffmpeg
/// does not decode those), a conversion to one. A refusal with a conversion becomes
/// [`Plan::Convert`] when the content is of the kind's own class; a wrong type stays a
/// refusal (the caller chooses the type).
pub fn plan(kind: MediaKind, content: &Content, limits: &ImageLimits) -> Result<Plan, Refusal> {
    match check(kind, content) {
        Ok(mimetype) => {
            let over = |(w, h): (u32, u32)| w.max(h) > limits.max_edge;
            if kind == MediaKind::Image
                && (content.size.is_some_and(over) || content.len > limits.max_bytes())
            {
                return Ok(Plan::FitImage { limits: *limits });
            }
            if kind == MediaKind::Sticker
                && content.format == Format::Webp
                && content.animated == Some(false)
                && content.size.is_some_and(|s| s != (512, 512))
            {
                return Ok(Plan::Convert(Conversion {
                    from: mimetype,
                    target: Target::Sticker,
                }));
            }
            Ok(Plan::AsIs { mimetype })
        }
        Err(Refusal::NotAccepted {
            conversion: Some(c),
            ..
        }) => Ok(Plan::Convert(c)),
        Err(r) => Err(r),
    }
}

/// Why an image could not be fitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError(pub String);

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FitError {}

/// An image made to fit the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FittedImage {
    /// The JPEG.
    pub jpeg: Vec<u8>,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The JPEG quality that fitted.
    pub quality: u8,
}

/// The JPEG qualities tried, best first.
const QUALITIES: [u8; 6] = [85, 75, 65, 55, 45, 35];
/// At most this many times the picture is made smaller (by 3/4) when no quality fits.
const SHRINKS: u32 = 8;

/// Decodes a JPEG, PNG or WebP picture (refusing one whose header claims more than
/// `max_pixels`), applies its EXIF orientation, scales it so its longest side is at most
/// `limits.max_edge` (never enlarged), draws transparent pixels on white, and encodes a
/// JPEG of at most `limits.max_bytes()`: quality 85 down to 35, then a smaller picture.
pub fn fit_image<R: BufRead + Seek>(
    reader: R,
    content: &Content,
    limits: &ImageLimits,
    max_pixels: u64,
) -> Result<FittedImage, FitError> {
    let format = match content.format {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
        Format::Webp => image::ImageFormat::WebP,
        _ => {
            return Err(FitError(format!(
                "only JPEG, PNG and WebP pictures are resized; this is {}",
                content.describe()
            )))
        }
    };
    let img = crate::quiet::catch(|| thumbnail::decode(reader, format, max_pixels))
        .map_err(|p| FitError(format!("the picture decoder failed (a bug: {p})")))?
        .map_err(FitError)?;
    let img = match img {
        thumbnail::Decoded::Image(i) => i,
        thumbnail::Decoded::TooLarge(_, _, why) => return Err(FitError(why)),
    };
    let (mut w, mut h) = thumbnail::bound(img.width(), img.height(), limits.max_edge);
    let max = usize::try_from(limits.max_bytes()).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for _ in 0..=SHRINKS {
        let rgb = on_white(&img, w, h);
        for q in QUALITIES {
            out.clear();
            JpegEncoder::new_with_quality(&mut out, q)
                .encode_image(&rgb)
                .map_err(|e| FitError(format!("JPEG encoding failed: {e}")))?;
            if out.len() <= max {
                return Ok(FittedImage {
                    jpeg: out,
                    width: w,
                    height: h,
                    quality: q,
                });
            }
        }
        let longest = w.max(h);
        (w, h) = thumbnail::bound(w, h, longest.saturating_mul(3) / 4);
    }
    Err(FitError(format!(
        "no JPEG of this picture fits in {} KiB",
        limits.max_kbytes
    )))
}

/// The picture at `w × h`, transparent pixels drawn on white.
fn on_white(img: &DynamicImage, w: u32, h: u32) -> RgbImage {
    let rgba = if (w, h) == (img.width(), img.height()) {
        img.to_rgba8()
    } else {
        imageops::resize(img, w, h, imageops::FilterType::Triangle)
    };
    let mut rgb = RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(rgb.pixels_mut()) {
        let a = u16::from(src.0[3]);
        for c in 0..3 {
            let v = (u16::from(src.0[c]) * a + 255 * (255 - a) + 127) / 255;
            dst.0[c] = u8::try_from(v).unwrap_or(u8::MAX);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify_bytes;
    use std::io::Cursor;

    /// A noisy picture (noise does not compress) encoded as `format`.
    fn picture(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let img = RgbImage::from_fn(w, h, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = seed.to_le_bytes();
            image::Rgb([b[0], b[1], b[2]])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn images_over_the_edge_or_the_size_are_fitted() {
        let limits = ImageLimits {
            max_edge: 100,
            max_kbytes: 1024,
        };
        let jpeg = picture(400, 300, image::ImageFormat::Jpeg);
        let c = identify_bytes(&jpeg, None);
        assert_eq!(c.size, Some((400, 300)));
        assert_eq!(
            plan(MediaKind::Image, &c, &limits),
            Ok(Plan::FitImage { limits })
        );
        let f = fit_image(Cursor::new(&jpeg), &c, &limits, 50_000_000).unwrap();
        assert_eq!((f.width, f.height), (100, 75));
        let back = identify_bytes(&f.jpeg, None);
        assert_eq!(
            (back.mimetype, back.size),
            (Some("image/jpeg"), Some((100, 75)))
        );
        // Within the edge, over the size: a smaller JPEG of the same picture or a
        // smaller picture.
        let png = picture(300, 300, image::ImageFormat::Png);
        let c = identify_bytes(&png, None);
        let small = ImageLimits {
            max_edge: 1600,
            max_kbytes: 20,
        };
        assert_eq!(
            plan(MediaKind::Image, &c, &small),
            Ok(Plan::FitImage { limits: small })
        );
        let f = fit_image(Cursor::new(&png), &c, &small, 50_000_000).unwrap();
        assert!(f.jpeg.len() <= 20 * 1024, "{} bytes", f.jpeg.len());
        // Within both: as it is.
        assert_eq!(
            plan(MediaKind::Image, &c, &ImageLimits::default()),
            Ok(Plan::AsIs {
                mimetype: "image/png"
            })
        );
        assert_eq!(ImageLimits::default().max_edge, 1600);
        assert_eq!(ImageLimits::HD.max_edge, 2048);
    }

    #[test]
    fn a_picture_over_the_pixel_limit_is_not_decoded() {
        let jpeg = picture(200, 200, image::ImageFormat::Jpeg);
        let c = identify_bytes(&jpeg, None);
        let e = fit_image(Cursor::new(&jpeg), &c, &ImageLimits::default(), 1000).unwrap_err();
        assert!(e.0.contains("over the limit"), "{e}");
        let e = fit_image(
            Cursor::new(b"GIF89a"),
            &identify_bytes(b"GIF89a", None),
            &ImageLimits::default(),
            1000,
        )
        .unwrap_err();
        assert!(e.0.contains("only JPEG, PNG and WebP"), "{e}");
    }

    #[test]
    fn a_webp_sticker_of_another_size_is_made_512_square() {
        let mut c = Content::of(Format::Webp, None);
        c.size = Some((640, 480));
        c.animated = Some(false);
        assert!(matches!(
            plan(MediaKind::Sticker, &c, &ImageLimits::default()),
            Ok(Plan::Convert(Conversion {
                target: Target::Sticker,
                ..
            }))
        ));
        c.size = Some((512, 512));
        assert_eq!(
            plan(MediaKind::Sticker, &c, &ImageLimits::default()),
            Ok(Plan::AsIs {
                mimetype: "image/webp"
            })
        );
        // ffmpeg cannot decode animated WebP: sent as it is.
        c.size = Some((640, 480));
        c.animated = Some(true);
        assert!(matches!(
            plan(MediaKind::Sticker, &c, &ImageLimits::default()),
            Ok(Plan::AsIs { .. })
        ));
    }
}
