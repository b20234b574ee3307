//! The README's snippets run: each block's calls, in order, against the fake CDN on
//! 127.0.0.1 instead of WhatsApp's (the blocks themselves compile as this crate's
//! doctests; here the files they name are real and the connection is the fake CDN's).

use std::path::Path;
use std::time::Instant;

use wamedia_conformance::FakeCdn;

fn picture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/media/sample.png"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_tokio_the_message_and_receiving() -> Result<(), Box<dyn std::error::Error>> {
    use wamedia_info::{analyze_path, check, identify_path, MediaKind, Options};
    use wamedia_reqwest::{Client, DownloadSpec, MediaConn, MediaType};

    let cdn = FakeCdn::start()?;
    let conn = cdn.media_conn(Instant::now());
    // "On Tokio": an async source, asked once.
    let asks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = asks.clone();
    let client = Client::new(move |_force: bool| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let conn: MediaConn = conn.clone();
        async move { Ok::<_, std::io::Error>(conn) }
    });
    let up = client.upload(picture(), MediaType::Image).await?;
    assert!(up.url.starts_with(&cdn.host()) && up.file_length > 0);
    // Options on the builder.
    let mut seen = 0;
    let clip = std::fs::File::open(picture())?;
    let again = client
        .upload(clip, MediaType::Video)
        .progress(|done, _total| seen = done)
        .await?;
    assert_eq!(
        seen,
        wamedia::body_len(again.file_length),
        "the last progress: the whole body"
    );
    assert_eq!(asks.load(std::sync::atomic::Ordering::SeqCst), 1);

    // "The message": the mimetype from the content, the message's fields from the file.
    let mimetype = check(MediaKind::Image, &identify_path(picture())?)?;
    assert_eq!(mimetype, "image/png");
    let info = analyze_path(MediaKind::Image, picture(), &Options::default());
    let image_message = info.message_json(&up.to_json(), "image");
    assert_eq!(image_message["mimetype"], "image/png");

    // "Receiving": from the message a bot gets.
    let message = serde_json::json!({ "imageMessage": image_message }).to_string();
    let spec = DownloadSpec::from_message_json(&message)?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("photo.png");
    client.download(spec).to_path(&out).await?;
    assert_eq!(std::fs::read(&out)?, std::fs::read(picture())?);
    Ok(())
}

#[test]
fn on_async_std_with_a_static_connection() -> Result<(), Box<dyn std::error::Error>> {
    use wamedia_surf::{Client, MediaConn, MediaType};
    let cdn = FakeCdn::start()?;
    let json = cdn.media_conn_json();
    async_std::task::block_on(async {
        let conn = MediaConn::from_json(&json, Instant::now())?;
        let client = Client::new(conn);
        let up = client
            .upload(std::fs::read(picture())?, MediaType::Ptt)
            .await?;
        assert_eq!(up.media_type, MediaType::Ptt);
        Ok(())
    })
}

#[test]
fn blocking_with_a_plain_closure() -> Result<(), Box<dyn std::error::Error>> {
    use wamedia_ureq::{Client, MediaConn, MediaType};
    let cdn = FakeCdn::start()?;
    let json = cdn.media_conn_json();
    let client = Client::new(move |_force: bool| -> Result<MediaConn, std::io::Error> {
        MediaConn::from_json(&json, Instant::now()).map_err(std::io::Error::other)
    });
    let up = client.upload(std::fs::File::open(picture())?, MediaType::Document)?;
    assert_eq!(up.file_length, std::fs::metadata(picture())?.len());
    Ok(())
}
