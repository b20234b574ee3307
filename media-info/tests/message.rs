//! The message fields: names as in WhatsApp's protobuf (WAProto.proto), values as the proto3
//! JSON mapping writes them.

use serde_json::{json, Value};
use wamedia_info::{MediaInfo, MediaKind};

fn upload() -> Value {
    json!({
        "url": "https://mmg.whatsapp.net/v/t62.7118-24/1.enc?ccb=11-4&mms3=true",
        "direct_path": "/v/t62.7118-24/1.enc?ccb=11-4",
        "media_type": "image",
        "media_key": "MEOnPR/10pkdQhNjjoB1yJXOZ/x9XAJk0m1XI1g7tdM=",
        "file_sha256": "kIFwwAF/PlmPp/Lxy2lVKgt8aq+fzSe+XmRwT5/Cn5A=",
        "file_enc_sha256": "ZS1J1Zkjd93jz8TVg9rlNSotMCVbbZyBR_lOIwQhkSI", // URL-safe, unpadded
        "file_length": 11339,
        "media_key_timestamp": 1726448391,
        "streaming_sidecar": "hRM//de8KSrVng==",
        "thumbnail_info": {"thumbnail_direct_path": "/v/t62.thumb", "thumbnail_sha256": "AAEC"},
        "handle": "not a message field",
    })
}

fn info() -> MediaInfo {
    MediaInfo {
        mimetype: Some("image/jpeg".into()),
        width: Some(320),
        height: Some(240),
        seconds: Some(8),
        duration_ms: Some(8123),
        jpeg_thumbnail: Some(vec![0xFF, 0xD8, 0xFF]),
        animated: Some(true),
        first_frame_length: Some(1340),
        waveform: Some(vec![0, 50, 100]),
        page_count: Some(3),
        file_name: Some("a.pdf".into()),
        warnings: vec![],
    }
}

#[test]
fn an_image_message() {
    assert_eq!(
        info().message_json(&upload(), "image"),
        json!({
            "url": "https://mmg.whatsapp.net/v/t62.7118-24/1.enc?ccb=11-4&mms3=true",
            "directPath": "/v/t62.7118-24/1.enc?ccb=11-4",
            "mediaKey": "MEOnPR/10pkdQhNjjoB1yJXOZ/x9XAJk0m1XI1g7tdM=",
            "fileSha256": "kIFwwAF/PlmPp/Lxy2lVKgt8aq+fzSe+XmRwT5/Cn5A=",
            "fileEncSha256": "ZS1J1Zkjd93jz8TVg9rlNSotMCVbbZyBR/lOIwQhkSI=",
            "fileLength": "11339",
            "mediaKeyTimestamp": "1726448391",
            "mimetype": "image/jpeg",
            "width": 320,
            "height": 240,
            "jpegThumbnail": "/9j/",
            "thumbnailDirectPath": "/v/t62.thumb",
            "thumbnailSha256": "AAEC",
            // A thumbnail the CDN made is described by the media's own size.
            "thumbnailHeight": 240,
            "thumbnailWidth": 320,
        })
    );
}

#[test]
fn voice_notes_gifs_stickers_and_documents_carry_their_own_fields() {
    let ptt = info().message_json(&upload(), "ptt");
    assert_eq!(ptt["ptt"], json!(true));
    assert_eq!(ptt["seconds"], json!(8));
    assert_eq!(ptt["waveform"], json!("ADJk"));
    assert_eq!(ptt["streamingSidecar"], json!("hRM//de8KSrVng=="));
    assert!(ptt.get("width").is_none() && ptt.get("jpegThumbnail").is_none());

    let audio = info().message_json(&upload(), "audio");
    assert!(audio.get("ptt").is_none() && audio.get("waveform").is_none());

    let gif = info().message_json(&upload(), "gif");
    assert_eq!(
        (gif["gifPlayback"].clone(), gif["seconds"].clone()),
        (json!(true), json!(8))
    );
    let video = info().message_json(&upload(), "video");
    assert!(video.get("gifPlayback").is_none());
    assert_eq!(info().message_json(&upload(), "ptv"), video);

    let sticker = info().message_json(&upload(), "sticker");
    assert_eq!(sticker["isAnimated"], json!(true));
    assert!(
        sticker.get("jpegThumbnail").is_none(),
        "StickerMessage has no jpegThumbnail"
    );
    assert!(sticker.get("streamingSidecar").is_none());

    let doc = info().message_json(&upload(), "document");
    assert_eq!(
        (doc["fileName"].clone(), doc["pageCount"].clone()),
        (json!("a.pdf"), json!(3))
    );
    assert!(doc.get("seconds").is_none() && doc.get("width").is_none());
}

#[test]
fn types_without_a_message_give_null() {
    assert_eq!(info().message_json(&upload(), "history"), Value::Null);
    assert_eq!(info().message_json(&upload(), "Image"), Value::Null);
}

#[test]
fn a_document_of_no_known_type_is_octet_stream_and_missing_fields_are_left_out() {
    let empty = MediaInfo::default();
    let doc = empty.message_json(&json!({"url": "u", "file_length": "12"}), "document");
    assert_eq!(
        doc,
        json!({"url": "u", "fileLength": "12", "mimetype": "application/octet-stream"})
    );
    assert_eq!(empty.message_json(&json!({}), "image"), json!({}));
}

/// A voice note as a real phone sent it, from a Baileys message dump published in
/// clairton/unoapi-cloud (src/services/transformer.ts): the same field names and value
/// types as ours.
#[test]
fn the_fields_match_a_published_real_voice_note() {
    let published = json!({
        "url": "https://mmg.whatsapp.net/v/t62.7117-24/26550443_409309922183140_5545513783776136395_n.enc?ccb=11-4&oh=01_Q5AaIFdNmgUqP86I5VM6WLnt4i1h6wxOoPGY2kvj7wQlhE4c&oe=670EF9DE&_nc_sid=5e03e0&mms3=true",
        "mimetype": "audio/ogg; codecs=opus",
        "fileSha256": "kIFwwAF/PlmPp/Lxy2lVKgt8aq+fzSe+XmRwT5/Cn5A=",
        "fileLength": "11339",
        "seconds": 8,
        "ptt": true,
        "mediaKey": "MEOnPR/10pkdQhNjjoB1yJXOZ/x9XAJk0m1XI1g7tdM=",
        "fileEncSha256": "ZS1J1Zkjd93jz8TVg9rlNSotMCVbbZyBR/lOIwQhkSI=",
        "directPath": "/v/t62.7117-24/26550443_409309922183140_5545513783776136395_n.enc?ccb=11-4&oh=01_Q5AaIFdNmgUqP86I5VM6WLnt4i1h6wxOoPGY2kvj7wQlhE4c&oe=670EF9DE&_nc_sid=5e03e0",
        "mediaKeyTimestamp": "1726448391",
        "streamingSidecar": "hRM//de8KSrVng==",
        "waveform": "AAYEAgEBAQMGFxscHBQkJBscIyMcHBUPCQQCAQEAAAEPIRwkHhgXGBQJBAIBAAAAAAAAAAAAAAAAAAAAAAAAAA==",
    });
    let upload = json!({
        "url": published["url"], "direct_path": published["directPath"], "media_key": published["mediaKey"],
        "file_sha256": published["fileSha256"], "file_enc_sha256": published["fileEncSha256"],
        "file_length": 11339, "media_key_timestamp": 1726448391, "streaming_sidecar": published["streamingSidecar"],
    });
    use base64::Engine;
    let waveform = base64::engine::general_purpose::STANDARD
        .decode(published["waveform"].as_str().unwrap())
        .unwrap();
    // The phone's bars: 64 of them, 0–100, but peaking at 36: not scaled to the loudest bar
    // as Baileys' rule (ours) does, so the rule cannot be checked against it bar by bar.
    assert_eq!((waveform.len(), waveform.iter().max()), (64, Some(&36)));
    let info = MediaInfo {
        mimetype: Some("audio/ogg; codecs=opus".into()),
        seconds: Some(8),
        waveform: Some(waveform),
        ..MediaInfo::default()
    };
    assert_eq!(info.message_json(&upload, MediaKind::Ptt.name()), published);
}

#[test]
fn an_animated_sticker_carries_its_first_frame_and_an_uploaded_thumbnail_its_own_size() {
    let mut up = upload();
    up["first_frame_sidecar"] = json!("AAECAwQFBgcICQ==");
    up["first_frame_length"] = json!(1340);
    let sticker = info().message_json(&up, "sticker");
    assert_eq!(sticker["isAnimated"], json!(true));
    assert_eq!(sticker["firstFrameLength"], json!(1340));
    assert_eq!(sticker["firstFrameSidecar"], json!("AAECAwQFBgcICQ=="));
    // Without an upload's sidecar the length still comes from the file.
    let bare = info().message_json(&upload(), "sticker");
    assert_eq!(bare["firstFrameLength"], json!(1340));
    assert!(bare.get("firstFrameSidecar").is_none());
    // A still sticker has neither.
    let still = MediaInfo {
        animated: Some(false),
        first_frame_length: None,
        ..info()
    };
    let s = still.message_json(&up, "sticker");
    assert!(s.get("firstFrameLength").is_none() && s.get("firstFrameSidecar").is_none());

    up["thumbnail_info"] = json!({
        "thumbnail_direct_path": "/v/t62.thumb2",
        "thumbnail_sha256": "AAEC",
        "thumbnail_enc_sha256": "AQID",
        "thumbnail_width": 480,
        "thumbnail_height": 360,
    });
    let video = info().message_json(&up, "video");
    assert_eq!(video["thumbnailDirectPath"], json!("/v/t62.thumb2"));
    assert_eq!(video["thumbnailSha256"], json!("AAEC"));
    assert_eq!(video["thumbnailEncSha256"], json!("AQID"));
    assert_eq!(
        (
            video["thumbnailWidth"].clone(),
            video["thumbnailHeight"].clone()
        ),
        (json!(480), json!(360))
    );
    assert!(info()
        .message_json(&up, "audio")
        .get("thumbnailDirectPath")
        .is_none());
}
