//! Upload an image and print the fields an ImageMessage needs.
//!
//! Against the local CDN by default; set WAMEDIA_MEDIA_CONN=conn.json to use a real
//! media connection. Run: `cargo run -p wamedia-cli --example send_image [FILE]`.

use std::time::Instant;

use wamedia::b64;
use wamedia_ureq::{Client, MediaConn, MediaType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/media/sample.png").into()
    });
    let local = wamedia_conformance::FakeCdn::start()?;
    let conn = match std::env::var("WAMEDIA_MEDIA_CONN") {
        Ok(file) => MediaConn::from_json(&std::fs::read_to_string(file)?, Instant::now())?,
        Err(_) => local.media_conn(Instant::now()),
    };
    // The message's mimetype comes from the content, never from the file's name.
    let content = wamedia_info::identify_path(std::path::Path::new(&path))?;
    let mimetype = wamedia_info::check(wamedia_info::MediaKind::Image, &content)?;
    let client = Client::new(conn);
    let up = client.upload(std::path::Path::new(&path), MediaType::Image)?;
    // The ImageMessage fields, as a message builder wants them.
    let message = serde_json::json!({
        "url": up.url,
        "directPath": up.direct_path,
        "mediaKey": up.media_key.as_ref().map(|k| k.to_base64()),
        "fileEncSha256": up.file_enc_sha256.map(|h| b64::std(&h)),
        "fileSha256": b64::std(&up.file_sha256),
        "fileLength": up.file_length,
        "mediaKeyTimestamp": up.media_key_timestamp,
        "mimetype": mimetype,
    });
    println!("{message}");
    Ok(())
}
