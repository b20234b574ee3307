//! Upload a picture and download it back over wamedia-reqwest on Tokio, against the
//! fake CDN started in-process on 127.0.0.1 (no account, no network); prints the message
//! fields as JSON, then what the verified download found.
//!
//! ```sh
//! cargo run -p wamedia-reqwest --example tokio_upload
//! ```

use std::time::Instant;

use wamedia_reqwest::{Client, MediaType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let client = Client::new(cdn.media_conn(Instant::now()));
    let picture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/media/sample.png"
    ))?;
    let len = picture.len();
    let up = client
        .upload(picture.clone(), MediaType::Image)
        .progress(|done, total| eprintln!("uploaded {done} of {} bytes", total.unwrap_or(0)))
        .await?;
    println!("{}", up.to_json());
    // What a receiver does with the message's fields, every check armed.
    let (back, down) = client.download(up.download_spec()).to_vec().await?;
    assert!(back == picture, "the downloaded picture differs");
    eprintln!(
        "downloaded and verified {} bytes from {} ({len} uploaded)",
        down.verified.file_length, down.host
    );
    Ok(())
}
