//! Upload a document (this crate's Cargo.toml) and print the message fields.
//! Run: `cargo run -p wamedia-cli --example upload_document`.

use std::time::Instant;

use wamedia::{MediaType, StaticConn, Transfer, UploadJob};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let file = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))?;
    let client = wamedia_ureq::Client::new(Default::default());
    let up = client.upload(
        file,
        &UploadJob::new(MediaType::Document),
        &mut StaticConn(cdn.media_conn(Instant::now())),
        &mut Transfer::new(),
    )?;
    println!("{}", up.to_json());
    Ok(())
}
