//! What to upload besides the bytes, and the first pass over them.

use std::io::{self, Read, Seek};

use wamedia::MediaKey;
use wamedia::MediaType;
use wamedia::{hash_reader, BodyReader};
use wamedia::{EncryptedMedia, Encryptor};
use wamedia::{MediaId, UploadResult, UploadSpec};

use crate::pipeline::{encrypt_stream, Threads};

/// What to upload, besides the bytes.
#[derive(Clone, Debug)]
pub struct UploadJob {
    /// The media type.
    pub media_type: MediaType,
    /// Reuse this key (an interrupted upload run again: the first attempt asks the CDN
    /// what it holds); `None` draws a fresh one from the OS.
    pub media_key: Option<MediaKey>,
    /// With a reused key, the timestamp it was first made at (the message's
    /// `mediaKeyTimestamp`); a fresh key is stamped with the current time.
    pub media_key_timestamp: Option<i64>,
    /// The upload's `media_id`; `None` draws one from the OS.
    pub media_id: Option<MediaId>,
    /// Newsletter (channel) media: uploaded unencrypted on the newsletter path.
    pub newsletter: bool,
    /// Threads the first pass's crypto may use ([`Threads::Auto`]: a second one from
    /// 8 MiB on; [`Threads::One`] for the least CPU per byte).
    pub threads: Threads,
    /// An animated sticker's `firstFrameLength`: the first pass also computes its
    /// first-frame sidecar (PROTOCOL §2.8).
    pub first_frame_length: Option<u64>,
    /// With a given key: the body is new all the same (a thumbnail under its media's
    /// key), so the first attempt sends it instead of probing what the CDN holds.
    pub fresh_body: bool,
    /// Make a streaming sidecar when the media type has one (video, audio; PROTOCOL §2.7).
    /// `false` for a video whose `moov` box comes after its media data, which the
    /// receiver's streaming player cannot open.
    pub streaming_sidecar: bool,
}

impl UploadJob {
    /// An upload of `media_type`: encrypted under a fresh key, or unencrypted for a type
    /// that is not encrypted (product catalog images).
    pub fn new(media_type: MediaType) -> Self {
        UploadJob {
            media_type,
            media_key: None,
            media_key_timestamp: None,
            media_id: None,
            newsletter: false,
            threads: Threads::Auto,
            first_frame_length: None,
            fresh_body: false,
            streaming_sidecar: true,
        }
    }

    /// The upload of `main`'s larger thumbnail, as WhatsApp Web makes it
    /// (`WAWebMediaUploadMediaWithPrep`): the media's own key, the thumbnail's type
    /// ([`MediaType::thumbnail_type`]: its HKDF info and path), the key's timestamp, and
    /// no resume probe. `None` when `main` has no key (unencrypted media) or its type has
    /// no thumbnail type.
    ///
    /// The thumbnail's body is new even though its key is not: the CDN can hold it only
    /// if this very thumbnail went up before, and a thumbnail is a few dozen KiB, so a
    /// probe would cost a round trip to save less than it costs. Prepare it from the
    /// JPEG's bytes, upload it like any media, then record it with
    /// [`UploadResult::attach_thumbnail`].
    ///
    /// ```no_run
    /// # fn thumbnail(
    /// #     main: wamedia::UploadResult,
    /// #     thumb: wamedia::UploadResult,
    /// #     jpeg: Vec<u8>,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// let job = wamedia_driver::UploadJob::thumbnail_for(&main).ok_or("no thumbnail for this type")?;
    /// let prepared = job.prepare(&jpeg[..])?;
    /// // … upload `prepared` with a transport (`upload_prepared`) to get `thumb`, then:
    /// let mut main = main;
    /// main.attach_thumbnail(&thumb, 480, 270);
    /// # Ok(()) }
    /// ```
    pub fn thumbnail_for(main: &UploadResult) -> Option<UploadJob> {
        let key = main.media_key.clone()?;
        let media_type = main.media_type.thumbnail_type()?;
        let mut job = UploadJob::new(media_type).with_media_key(key);
        job.media_key_timestamp = main.media_key_timestamp;
        job.fresh_body = true;
        Some(job)
    }

    /// Computes an animated sticker's first-frame sidecar in the first pass, for a
    /// `firstFrameLength` of `first_frame_length` (the file offset just past its first
    /// `ANMF` chunk; `wamedia_info::MediaInfo::first_frame_length` finds it).
    pub fn with_first_frame_length(mut self, first_frame_length: u64) -> Self {
        self.first_frame_length = Some(first_frame_length);
        self
    }
    /// Reuses `key` instead of a fresh one.
    pub fn with_media_key(mut self, key: MediaKey) -> Self {
        self.media_key = Some(key);
        self
    }
    /// The reused key's timestamp (Unix seconds).
    pub fn with_media_key_timestamp(mut self, unix_seconds: i64) -> Self {
        self.media_key_timestamp = Some(unix_seconds);
        self
    }
    /// Uses this `media_id` (to resume an upload with the id it had).
    pub fn with_media_id(mut self, id: MediaId) -> Self {
        self.media_id = Some(id);
        self
    }
    /// Lets the first pass use `threads` (see [`crate::pipeline`]).
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }
    /// Whether to make a streaming sidecar for a type that has one (the default); `false`
    /// uploads a video or audio file without one (see [`UploadJob::streaming_sidecar`]).
    pub fn with_streaming_sidecar(mut self, on: bool) -> Self {
        self.streaming_sidecar = on;
        self
    }
    /// Makes it a newsletter (unencrypted) upload.
    pub fn newsletter(mut self) -> Self {
        self.newsletter = true;
        self
    }

    /// The first pass over the plaintext: hashes (and the MAC and checkpoints when
    /// encrypted). Reads `source` to its end. Draws the key and `media_id` when not given
    /// and stamps a fresh key with the current time.
    ///
    /// # Errors
    /// Read errors, no randomness, or a media type WhatsApp has no path for.
    pub fn prepare<R: Read>(&self, source: R) -> io::Result<PreparedUpload> {
        let media_id = match self.media_id {
            Some(id) => id,
            None => MediaId::generate().map_err(io::Error::other)?,
        };
        if self.newsletter || !self.media_type.is_encrypted() {
            let (sha, len) = hash_reader(source)?;
            let spec = if self.newsletter {
                UploadSpec::newsletter(self.media_type.clone(), sha, len, media_id)
            } else {
                UploadSpec::unencrypted(self.media_type.clone(), sha, len, media_id)
            };
            spec.upload_path().map_err(io::Error::other)?;
            return Ok(PreparedUpload { spec, media: None });
        }
        self.media_type.upload_path().map_err(io::Error::other)?;
        let (key, reused) = match &self.media_key {
            Some(k) => (k.clone(), !self.fresh_body),
            None => (MediaKey::generate().map_err(io::Error::other)?, false),
        };
        let mut enc = Encryptor::new(key, &self.media_type).map_err(io::Error::other)?;
        if let Some(l) = self.first_frame_length {
            enc = enc.with_first_frame_sidecar(l);
        }
        if !self.streaming_sidecar {
            enc = enc.with_streaming_sidecar(false);
        }
        let media = encrypt_stream(enc, source, io::sink(), self.threads)?;
        let mut spec = UploadSpec::encrypted(self.media_type.clone(), &media, media_id)
            .with_key_reused(reused);
        spec.media_key_timestamp = if self.media_key.is_some() {
            self.media_key_timestamp
        } else {
            Some(unix_now())
        };
        Ok(PreparedUpload {
            spec,
            media: Some(media),
        })
    }

    /// An upload whose first pass was made before: `media` is the summary an earlier
    /// [`prepare`](Self::prepare) made of **this very plaintext** (the caller checked its
    /// SHA-256 and length, as an upload cache does). No byte is read; the key is marked
    /// reused, so the first attempt asks the CDN whether it still holds the body, and a
    /// body that must be sent is regenerated from the plaintext with `media`'s
    /// checkpoints (a plaintext that differs is caught there). The timestamp is the job's
    /// [`media_key_timestamp`](Self::media_key_timestamp).
    ///
    /// # Errors
    /// Newsletter or unencrypted media (there is no first pass to skip), a media type
    /// WhatsApp has no path for, no randomness for the `media_id`, or a summary with more
    /// checkpoints than its length allows.
    pub fn prepare_known(&self, media: EncryptedMedia) -> io::Result<PreparedUpload> {
        if self.newsletter || !self.media_type.is_encrypted() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "prepare_known is for encrypted media only",
            ));
        }
        self.media_type.upload_path().map_err(io::Error::other)?;
        let most = (media.file_length / wamedia::CHECKPOINT_INTERVAL).saturating_add(1);
        if media.checkpoints.len() as u64 > most {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the summary has more checkpoints than its length allows",
            ));
        }
        let media_id = match self.media_id {
            Some(id) => id,
            None => MediaId::generate().map_err(io::Error::other)?,
        };
        let mut spec =
            UploadSpec::encrypted(self.media_type.clone(), &media, media_id).with_key_reused(true);
        spec.media_key_timestamp = self.media_key_timestamp;
        Ok(PreparedUpload {
            spec,
            media: Some(media),
        })
    }
}

/// An upload after its first pass: the machine's spec, and what regenerates the body.
#[derive(Clone, Debug)]
pub struct PreparedUpload {
    /// Give this to [`Upload::new`](wamedia::Upload::new).
    pub spec: UploadSpec,
    media: Option<EncryptedMedia>,
}

impl PreparedUpload {
    /// The first pass's summary (key, MAC, checkpoints, sidecar); `None` for unencrypted
    /// media. What an upload cache keeps to skip the pass next time
    /// ([`UploadJob::prepare_known`]).
    pub fn encrypted_media(&self) -> Option<&EncryptedMedia> {
        self.media.as_ref()
    }

    /// Body bytes `from..` read out of the seekable plaintext `source`.
    ///
    /// # Errors
    /// Seek errors, or `from` past the end.
    pub fn body_reader<R: Read + Seek>(&self, source: R, from: u64) -> io::Result<BodyReader<R>> {
        match &self.media {
            Some(m) => BodyReader::encrypted(source, m, &self.spec.media_type, from),
            None => BodyReader::plain(source, from, self.spec.file_length),
        }
    }
}

/// Seconds since the Unix epoch, for `media_key_timestamp` (transports call this; the
/// machines never read a clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
