//! Media types: the HKDF info string, MMS type and upload path of every kind of media
//! (PROTOCOL §1).

use std::fmt;
use std::str::FromStr;

use crate::error::UnknownMediaType;

/// What kind of media is being moved. It fixes the HKDF info string used to expand the
/// media key, the MMS type (download parameter) and the upload path on the CDN.
///
/// The aliases (`Ptt`, `Ptv`, `Gif`, the thumbnails, `PaymentBackground`) derive keys and
/// upload exactly as PROTOCOL §1 says; [`MediaType::Raw`] carries an HKDF info string for a
/// type this table does not know (it uploads on the `document` path unless told otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// A photo (`WhatsApp Image Keys`, `/mms/image`).
    Image,
    /// A sticker: keys and path of an image.
    Sticker,
    /// A video (`WhatsApp Video Keys`, `/mms/video`).
    Video,
    /// A gif: a video without sound; keys and path of a video.
    Gif,
    /// A video note ("ptv"): keys and path of a video.
    Ptv,
    /// Audio (`WhatsApp Audio Keys`, `/mms/audio`).
    Audio,
    /// A voice note ("ptt"): keys and path of audio.
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
    /// A product catalog image (`WhatsApp Image Keys`, `/product/image`).
    ProductCatalogImage,
    /// An image thumbnail (`WhatsApp Image Thumbnail Keys`), uploaded on the image path.
    ImageThumbnail,
    /// A video thumbnail (`WhatsApp Video Thumbnail Keys`), uploaded on the image path.
    VideoThumbnail,
    /// A document thumbnail (`WhatsApp Document Thumbnail Keys`), uploaded on the image path.
    DocumentThumbnail,
    /// A payment background (`WhatsApp Payment Background Keys`), uploaded on the image path.
    PaymentBackground,
    /// A type this table does not know: the raw HKDF info string and the MMS type to use.
    Raw {
        /// HKDF info string, e.g. `"WhatsApp Foo Keys"`.
        hkdf_info: String,
        /// MMS type; the upload path is `/mms/{mms_type}`.
        mms_type: String,
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

    /// A type known only by its HKDF info string and MMS type.
    pub fn raw(hkdf_info: impl Into<String>, mms_type: impl Into<String>) -> Self {
        MediaType::Raw {
            hkdf_info: hkdf_info.into(),
            mms_type: mms_type.into(),
        }
    }

    /// The HKDF info string that expands the media key for this type.
    pub fn hkdf_info(&self) -> &str {
        use MediaType::*;
        match self {
            Image | Sticker | ProductCatalogImage => "WhatsApp Image Keys",
            Video | Gif | Ptv => "WhatsApp Video Keys",
            Audio | Ptt => "WhatsApp Audio Keys",
            Document => "WhatsApp Document Keys",
            History => "WhatsApp History Keys",
            AppState => "WhatsApp App State Keys",
            StickerPack => "WhatsApp Sticker Pack Keys",
            StickerPackThumbnail => "WhatsApp Sticker Pack Thumbnail Keys",
            LinkThumbnail => "WhatsApp Link Thumbnail Keys",
            ImageThumbnail => "WhatsApp Image Thumbnail Keys",
            VideoThumbnail => "WhatsApp Video Thumbnail Keys",
            DocumentThumbnail => "WhatsApp Document Thumbnail Keys",
            PaymentBackground => "WhatsApp Payment Background Keys",
            Raw { hkdf_info, .. } => hkdf_info,
        }
    }

    /// The MMS type: the `mms-type` download parameter and the last upload path segment.
    pub fn mms_type(&self) -> &str {
        use MediaType::*;
        match self {
            Image | Sticker | ImageThumbnail | VideoThumbnail | DocumentThumbnail
            | PaymentBackground => "image",
            Video | Gif | Ptv => "video",
            Audio | Ptt => "audio",
            Document => "document",
            History => "md-msg-hist",
            AppState => "md-app-state",
            StickerPack => "sticker-pack",
            StickerPackThumbnail => "thumbnail-sticker-pack",
            LinkThumbnail => "thumbnail-link",
            ProductCatalogImage => "product-catalog-image",
            Raw { mms_type, .. } => mms_type,
        }
    }

    /// The upload path on the CDN host, e.g. `/mms/image`.
    pub fn upload_path(&self) -> String {
        match self {
            MediaType::ProductCatalogImage => "/product/image".to_owned(),
            other => format!("/mms/{}", other.mms_type()),
        }
    }

    /// The upload path of newsletter (channel) media: `/newsletter/newsletter-{mms type}`.
    pub fn newsletter_upload_path(&self) -> String {
        format!("/newsletter/newsletter-{}", self.mms_type())
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
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "raw({:?})", self.hkdf_info()),
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

    #[test]
    fn table_matches_protocol() {
        let rows: &[(&str, &str, &str, &str)] = &[
            ("image", "WhatsApp Image Keys", "image", "/mms/image"),
            ("sticker", "WhatsApp Image Keys", "image", "/mms/image"),
            ("video", "WhatsApp Video Keys", "video", "/mms/video"),
            ("audio", "WhatsApp Audio Keys", "audio", "/mms/audio"),
            ("ptt", "WhatsApp Audio Keys", "audio", "/mms/audio"),
            ("ptv", "WhatsApp Video Keys", "video", "/mms/video"),
            ("gif", "WhatsApp Video Keys", "video", "/mms/video"),
            (
                "document",
                "WhatsApp Document Keys",
                "document",
                "/mms/document",
            ),
            (
                "history",
                "WhatsApp History Keys",
                "md-msg-hist",
                "/mms/md-msg-hist",
            ),
            (
                "app-state",
                "WhatsApp App State Keys",
                "md-app-state",
                "/mms/md-app-state",
            ),
            (
                "sticker-pack",
                "WhatsApp Sticker Pack Keys",
                "sticker-pack",
                "/mms/sticker-pack",
            ),
            (
                "sticker-pack-thumbnail",
                "WhatsApp Sticker Pack Thumbnail Keys",
                "thumbnail-sticker-pack",
                "/mms/thumbnail-sticker-pack",
            ),
            (
                "link-thumbnail",
                "WhatsApp Link Thumbnail Keys",
                "thumbnail-link",
                "/mms/thumbnail-link",
            ),
            (
                "product-catalog-image",
                "WhatsApp Image Keys",
                "product-catalog-image",
                "/product/image",
            ),
            (
                "image-thumbnail",
                "WhatsApp Image Thumbnail Keys",
                "image",
                "/mms/image",
            ),
            (
                "video-thumbnail",
                "WhatsApp Video Thumbnail Keys",
                "image",
                "/mms/image",
            ),
            (
                "document-thumbnail",
                "WhatsApp Document Thumbnail Keys",
                "image",
                "/mms/image",
            ),
            (
                "payment-background",
                "WhatsApp Payment Background Keys",
                "image",
                "/mms/image",
            ),
        ];
        assert_eq!(rows.len(), MediaType::ALL.len());
        for (name, info, mms, path) in rows {
            let t: MediaType = name.parse().unwrap();
            assert_eq!(
                (t.hkdf_info(), t.mms_type(), t.upload_path().as_str()),
                (*info, *mms, *path),
                "{name}"
            );
        }
        let raw = MediaType::raw("WhatsApp Foo Keys", "foo");
        assert_eq!(raw.hkdf_info(), "WhatsApp Foo Keys");
        assert_eq!(raw.upload_path(), "/mms/foo");
        assert_eq!(
            MediaType::Video.newsletter_upload_path(),
            "/newsletter/newsletter-video"
        );
    }
}
