//! Media types: the HKDF info string, upload path, download `mms-type` and newsletter path
//! of every kind of media (PROTOCOL §1; WhatsApp Web's `WAWebMmsClientFormatHashUrl`).

use std::fmt;
use std::str::FromStr;

use crate::error::{UnknownMediaType, Unsupported, UnsupportedMediaType};

/// What kind of media is being moved. It fixes the HKDF info string used to expand the
/// media key, the upload path on the CDN, the `mms-type` of a download and the newsletter
/// (channel) upload path. Where WhatsApp has none of these for a type, asking for it is a
/// typed [`UnsupportedMediaType`] error, never a guessed value.
///
/// [`MediaType::Raw`] carries the HKDF info string and `mms-type` of a type this table does
/// not know; it uploads on `/mms/{mms_type}`, downloads with `mms-type={mms_type}` and has
/// no newsletter path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// A photo (`WhatsApp Image Keys`, `/mms/image`).
    Image,
    /// A sticker: image keys, its own path (`/mms/sticker`) and `mms-type`.
    Sticker,
    /// A video (`WhatsApp Video Keys`, `/mms/video`).
    Video,
    /// A gif (an MP4 played as a loop): video keys, `/mms/gif`.
    Gif,
    /// A video note ("ptv"): video keys, uploaded on `/mms/video`, downloaded with
    /// `mms-type=ptv` (PROTOCOL v3 §1).
    Ptv,
    /// Audio (`WhatsApp Audio Keys`, `/mms/audio`).
    Audio,
    /// A voice note ("ptt"): audio keys, `/mms/ptt`.
    Ptt,
    /// A document (`WhatsApp Document Keys`, `/mms/document`).
    Document,
    /// A history sync blob (`WhatsApp History Keys`, `/mms/md-msg-hist`).
    History,
    /// An app state sync blob (`WhatsApp App State Keys`, `/mms/md-app-state`).
    AppState,
    /// A sticker pack (`WhatsApp Sticker Pack Keys`, `/mms/sticker-pack`).
    StickerPack,
    /// A sticker pack's thumbnail (`/mms/thumbnail-sticker-pack`).
    StickerPackThumbnail,
    /// A link preview thumbnail (`WhatsApp Link Thumbnail Keys`, `/mms/thumbnail-link`).
    LinkThumbnail,
    /// A product catalog image: **not encrypted**, uploaded as is to `/product/image`.
    ProductCatalogImage,
    /// An image thumbnail (`WhatsApp Image Thumbnail Keys`, `/mms/thumbnail-image`).
    ImageThumbnail,
    /// A video thumbnail (`WhatsApp Video Thumbnail Keys`, `/mms/thumbnail-video`).
    VideoThumbnail,
    /// A document thumbnail (`WhatsApp Document Thumbnail Keys`, `/mms/thumbnail-document`).
    DocumentThumbnail,
    /// A payment background (`WhatsApp Payment Background Keys`): keys only; its upload
    /// path is unknown, so uploading it is an error.
    PaymentBackground,
    /// A type this table does not know: the raw HKDF info string and the `mms-type`.
    Raw {
        /// HKDF info string, e.g. `"WhatsApp Foo Keys"`.
        hkdf_info: String,
        /// `mms-type` of downloads; uploads go to `/mms/{mms_type}`.
        mms_type: String,
        /// The upload path, `/mms/{mms_type}` unless given with [`MediaType::raw_with_path`].
        upload_path: String,
    },
}

/// The kebab-case names accepted by [`MediaType::from_str`], in the order the CLI lists them.
pub const MEDIA_TYPE_NAMES: &[&str] = &[
    "image",
    "sticker",
    "video",
    "gif",
    "audio",
    "ptt",
    "ptv",
    "document",
    "history",
    "app-state",
    "sticker-pack",
    "sticker-pack-thumbnail",
    "link-thumbnail",
    "product-catalog-image",
    "image-thumbnail",
    "video-thumbnail",
    "document-thumbnail",
    "payment-background",
];

/// One row of PROTOCOL §1: HKDF info (`None`: not encrypted), upload path, download
/// `mms-type`, newsletter path (`None`: WhatsApp has none).
struct Row {
    hkdf_info: Option<&'static str>,
    upload_path: Option<&'static str>,
    mms_type: Option<&'static str>,
    newsletter_path: Option<&'static str>,
    sidecar: bool,
}

const fn row(
    hkdf_info: Option<&'static str>,
    upload_path: Option<&'static str>,
    mms_type: Option<&'static str>,
    newsletter_path: Option<&'static str>,
    sidecar: bool,
) -> Row {
    Row {
        hkdf_info,
        upload_path,
        mms_type,
        newsletter_path,
        sidecar,
    }
}

impl MediaType {
    /// Every named (non-raw) media type, in table order.
    pub const ALL: &'static [MediaType] = &[
        MediaType::Image,
        MediaType::Sticker,
        MediaType::Video,
        MediaType::Gif,
        MediaType::Audio,
        MediaType::Ptt,
        MediaType::Ptv,
        MediaType::Document,
        MediaType::History,
        MediaType::AppState,
        MediaType::StickerPack,
        MediaType::StickerPackThumbnail,
        MediaType::LinkThumbnail,
        MediaType::ProductCatalogImage,
        MediaType::ImageThumbnail,
        MediaType::VideoThumbnail,
        MediaType::DocumentThumbnail,
        MediaType::PaymentBackground,
    ];

    /// A type known only by its HKDF info string and `mms-type` (upload path
    /// `/mms/{mms_type}`).
    pub fn raw(hkdf_info: impl Into<String>, mms_type: impl Into<String>) -> Self {
        let mms_type = mms_type.into();
        MediaType::Raw {
            hkdf_info: hkdf_info.into(),
            upload_path: format!("/mms/{mms_type}"),
            mms_type,
        }
    }

    /// A raw type with an explicit upload path (e.g. `/mms/foo`).
    pub fn raw_with_path(
        hkdf_info: impl Into<String>,
        mms_type: impl Into<String>,
        upload_path: impl Into<String>,
    ) -> Self {
        MediaType::Raw {
            hkdf_info: hkdf_info.into(),
            mms_type: mms_type.into(),
            upload_path: upload_path.into(),
        }
    }

    #[rustfmt::skip]
    fn row(&self) -> Row {
        use MediaType::*;
        const IMG: &str = "WhatsApp Image Keys";
        const VID: &str = "WhatsApp Video Keys";
        const AUD: &str = "WhatsApp Audio Keys";
        match self {
            Image => row(Some(IMG), Some("/mms/image"), Some("image"), Some("/newsletter/newsletter-image"), false),
            Sticker => row(Some(IMG), Some("/mms/sticker"), Some("sticker"), Some("/newsletter/newsletter-sticker"), false),
            Video => row(Some(VID), Some("/mms/video"), Some("video"), Some("/newsletter/newsletter-video"), true),
            Gif => row(Some(VID), Some("/mms/gif"), Some("gif"), Some("/newsletter/newsletter-gif"), false),
            Ptv => row(Some(VID), Some("/mms/video"), Some("ptv"), Some("/newsletter/newsletter-ptv"), false),
            Audio => row(Some(AUD), Some("/mms/audio"), Some("audio"), Some("/newsletter/newsletter-audio"), true),
            Ptt => row(Some(AUD), Some("/mms/ptt"), Some("ptt"), Some("/newsletter/newsletter-ptt"), false),
            Document => row(Some("WhatsApp Document Keys"), Some("/mms/document"), Some("document"), Some("/newsletter/newsletter-document"), false),
            History => row(Some("WhatsApp History Keys"), Some("/mms/md-msg-hist"), Some("md-msg-hist"), None, false),
            AppState => row(Some("WhatsApp App State Keys"), Some("/mms/md-app-state"), Some("md-app-state"), None, false),
            StickerPack => row(Some("WhatsApp Sticker Pack Keys"), Some("/mms/sticker-pack"), Some("sticker-pack"), Some("/newsletter/newsletter-sticker-pack"), false),
            StickerPackThumbnail => row(Some("WhatsApp Sticker Pack Thumbnail Keys"), Some("/mms/thumbnail-sticker-pack"), Some("thumbnail-sticker-pack"), None, false),
            LinkThumbnail => row(Some("WhatsApp Link Thumbnail Keys"), Some("/mms/thumbnail-link"), Some("thumbnail-link"), Some("/newsletter/newsletter-thumbnail-link"), false),
            ProductCatalogImage => row(None, Some("/product/image"), None, None, false),
            ImageThumbnail => row(Some("WhatsApp Image Thumbnail Keys"), Some("/mms/thumbnail-image"), Some("thumbnail-image"), None, false),
            VideoThumbnail => row(Some("WhatsApp Video Thumbnail Keys"), Some("/mms/thumbnail-video"), Some("thumbnail-video"), None, false),
            DocumentThumbnail => row(Some("WhatsApp Document Thumbnail Keys"), Some("/mms/thumbnail-document"), Some("thumbnail-document"), None, false),
            PaymentBackground => row(Some("WhatsApp Payment Background Keys"), None, None, None, false),
            Raw { .. } => row(None, None, None, None, false),
        }
    }

    fn unsupported(&self, what: Unsupported) -> UnsupportedMediaType {
        UnsupportedMediaType {
            media_type: self.to_string(),
            what,
        }
    }

    /// The HKDF info string that expands the media key for this type.
    ///
    /// # Errors
    /// [`Unsupported::Encryption`] for product catalog images, which are not encrypted.
    pub fn hkdf_info(&self) -> Result<&str, UnsupportedMediaType> {
        if let MediaType::Raw { hkdf_info, .. } = self {
            return Ok(hkdf_info);
        }
        self.row()
            .hkdf_info
            .ok_or_else(|| self.unsupported(Unsupported::Encryption))
    }

    /// True unless the type goes up unencrypted (product catalog images).
    pub fn is_encrypted(&self) -> bool {
        self.hkdf_info().is_ok()
    }

    /// The upload path on the CDN host, e.g. `/mms/sticker`.
    ///
    /// # Errors
    /// [`Unsupported::Upload`] for a type whose path is unknown (payment backgrounds).
    pub fn upload_path(&self) -> Result<&str, UnsupportedMediaType> {
        if let MediaType::Raw { upload_path, .. } = self {
            return Ok(upload_path);
        }
        self.row()
            .upload_path
            .ok_or_else(|| self.unsupported(Unsupported::Upload))
    }

    /// The `mms-type` download parameter (PROTOCOL §1's column), e.g. `ptt`.
    ///
    /// # Errors
    /// [`Unsupported::Download`] for types that are not downloaded with one (product
    /// catalog images, payment backgrounds).
    pub fn mms_type(&self) -> Result<&str, UnsupportedMediaType> {
        if let MediaType::Raw { mms_type, .. } = self {
            return Ok(mms_type);
        }
        self.row()
            .mms_type
            .ok_or_else(|| self.unsupported(Unsupported::Download))
    }

    /// The upload path of newsletter (channel) media, e.g. `/newsletter/newsletter-ptt`.
    ///
    /// # Errors
    /// [`Unsupported::NewsletterUpload`] for types channels do not carry (history, app
    /// state, the thumbnails but the link's, product images, payment backgrounds, raw).
    pub fn newsletter_upload_path(&self) -> Result<&str, UnsupportedMediaType> {
        self.row()
            .newsletter_path
            .ok_or_else(|| self.unsupported(Unsupported::NewsletterUpload))
    }

    /// True for the types that get a streaming sidecar: `video` and `audio` only
    /// (PROTOCOL v3 §1 and §2.7, `WAWebCryptoEncryptMediaUsingDependencies`); gif, ptv and
    /// ptt get none.
    pub fn has_streaming_sidecar(&self) -> bool {
        self.row().sidecar
    }

    /// The type a larger thumbnail of this media is uploaded as, under the media's own
    /// key (`WAWebMediaPrepHelpers.getMediaTypeForThumbnails`): image → image-thumbnail,
    /// video and gif → video-thumbnail, document → document-thumbnail, sticker pack →
    /// sticker-pack-thumbnail; `None` for every other type.
    pub fn thumbnail_type(&self) -> Option<MediaType> {
        match self {
            MediaType::Image => Some(MediaType::ImageThumbnail),
            MediaType::Video | MediaType::Gif => Some(MediaType::VideoThumbnail),
            MediaType::Document => Some(MediaType::DocumentThumbnail),
            MediaType::StickerPack => Some(MediaType::StickerPackThumbnail),
            _ => None,
        }
    }

    /// The media type *name* hosts are filtered by and a download sends as `mms-type`:
    /// the `mms-type` for ordinary media, `newsletter-{name}` for channel media
    /// (`WAWebMmsMediaTypes.msgToMediaType`, PROTOCOL v3 §1), e.g. `newsletter-image`.
    ///
    /// # Errors
    /// As [`mms_type`](Self::mms_type) for ordinary media, and
    /// [`Unsupported::NewsletterUpload`] for a type channels do not carry.
    pub fn host_type_name(&self, newsletter: bool) -> Result<String, UnsupportedMediaType> {
        if !newsletter {
            return self.mms_type().map(str::to_owned);
        }
        let path = self.newsletter_upload_path()?;
        Ok(path.rsplit('/').next().unwrap_or(path).to_owned())
    }

    /// The kebab-case name used by the CLI (`None` for raw types).
    pub fn name(&self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .position(|t| t == self)
            .map(|i| MEDIA_TYPE_NAMES[i])
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaType::Raw { hkdf_info, .. } => write!(f, "raw({hkdf_info:?})"),
            _ => f.write_str(self.name().unwrap_or("?")),
        }
    }
}

impl FromStr for MediaType {
    type Err = UnknownMediaType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MEDIA_TYPE_NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i].clone())
            .ok_or_else(|| UnknownMediaType { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(MEDIA_TYPE_NAMES.len(), MediaType::ALL.len());
        for t in MediaType::ALL {
            let name = t.name().unwrap();
            assert_eq!(&name.parse::<MediaType>().unwrap(), t);
            assert_eq!(t.to_string(), name);
        }
    }

    #[test]
    fn unknown_name_lists_known_ones() {
        let err = "picture".parse::<MediaType>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("picture"), "{msg}");
        for n in MEDIA_TYPE_NAMES {
            assert!(msg.contains(n), "{msg} lacks {n}");
        }
    }

    /// PROTOCOL §1, row by row: name, HKDF info, upload path, download `mms-type`,
    /// newsletter path, sidecar. `-` is "none" (a typed error).
    #[test]
    #[rustfmt::skip]
    fn table_matches_protocol_v3() {
        let rows: &[(&str, &str, &str, &str, &str, bool)] = &[
            ("image", "WhatsApp Image Keys", "/mms/image", "image", "/newsletter/newsletter-image", false),
            ("sticker", "WhatsApp Image Keys", "/mms/sticker", "sticker", "/newsletter/newsletter-sticker", false),
            ("video", "WhatsApp Video Keys", "/mms/video", "video", "/newsletter/newsletter-video", true),
            ("gif", "WhatsApp Video Keys", "/mms/gif", "gif", "/newsletter/newsletter-gif", false),
            ("ptv", "WhatsApp Video Keys", "/mms/video", "ptv", "/newsletter/newsletter-ptv", false),
            ("audio", "WhatsApp Audio Keys", "/mms/audio", "audio", "/newsletter/newsletter-audio", true),
            ("ptt", "WhatsApp Audio Keys", "/mms/ptt", "ptt", "/newsletter/newsletter-ptt", false),
            ("document", "WhatsApp Document Keys", "/mms/document", "document", "/newsletter/newsletter-document", false),
            ("history", "WhatsApp History Keys", "/mms/md-msg-hist", "md-msg-hist", "-", false),
            ("app-state", "WhatsApp App State Keys", "/mms/md-app-state", "md-app-state", "-", false),
            ("sticker-pack", "WhatsApp Sticker Pack Keys", "/mms/sticker-pack", "sticker-pack", "/newsletter/newsletter-sticker-pack", false),
            ("sticker-pack-thumbnail", "WhatsApp Sticker Pack Thumbnail Keys", "/mms/thumbnail-sticker-pack", "thumbnail-sticker-pack", "-", false),
            ("link-thumbnail", "WhatsApp Link Thumbnail Keys", "/mms/thumbnail-link", "thumbnail-link", "/newsletter/newsletter-thumbnail-link", false),
            ("image-thumbnail", "WhatsApp Image Thumbnail Keys", "/mms/thumbnail-image", "thumbnail-image", "-", false),
            ("video-thumbnail", "WhatsApp Video Thumbnail Keys", "/mms/thumbnail-video", "thumbnail-video", "-", false),
            ("document-thumbnail", "WhatsApp Document Thumbnail Keys", "/mms/thumbnail-document", "thumbnail-document", "-", false),
            ("product-catalog-image", "-", "/product/image", "-", "-", false),
            ("payment-background", "WhatsApp Payment Background Keys", "-", "-", "-", false),
        ];
        assert_eq!(rows.len(), MediaType::ALL.len());
        let or_dash = |r: Result<&str, UnsupportedMediaType>| r.unwrap_or("-").to_owned();
        for (name, info, path, mms, news, sidecar) in rows {
            let t: MediaType = name.parse().unwrap();
            assert_eq!(
                (
                    or_dash(t.hkdf_info()),
                    or_dash(t.upload_path()),
                    or_dash(t.mms_type()),
                    or_dash(t.newsletter_upload_path()),
                    t.has_streaming_sidecar()
                ),
                (
                    info.to_string(),
                    path.to_string(),
                    mms.to_string(),
                    news.to_string(),
                    *sidecar
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn missing_paths_are_typed_errors_naming_the_type() {
        let e = MediaType::PaymentBackground.upload_path().unwrap_err();
        assert_eq!(e.what, Unsupported::Upload);
        assert!(e.to_string().contains("payment-background"), "{e}");
        let e = MediaType::ProductCatalogImage.hkdf_info().unwrap_err();
        assert_eq!(e.what, Unsupported::Encryption);
        assert!(e.to_string().contains("not encrypted"), "{e}");
        assert!(!MediaType::ProductCatalogImage.is_encrypted());
        let e = MediaType::History.newsletter_upload_path().unwrap_err();
        assert!(e.to_string().contains("history"), "{e}");
    }

    #[test]
    fn raw_types_keep_their_info_and_path() {
        let raw = MediaType::raw("WhatsApp Foo Keys", "foo");
        assert_eq!(raw.hkdf_info().unwrap(), "WhatsApp Foo Keys");
        assert_eq!(raw.upload_path().unwrap(), "/mms/foo");
        assert_eq!(raw.mms_type().unwrap(), "foo");
        assert!(raw.newsletter_upload_path().is_err());
        let raw = MediaType::raw_with_path("WhatsApp Foo Keys", "foo", "/mms/bar");
        assert_eq!(raw.upload_path().unwrap(), "/mms/bar");
        assert_eq!(raw.to_string(), "raw(\"WhatsApp Foo Keys\")");
    }
}
