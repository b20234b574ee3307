//! Upload a document (this crate's Cargo.toml) and print the message fields, blocking.
//! Run: `cargo run -p wamedia-cli --example upload_document`.

use std::path::Path;
use std::time::Instant;

use wamedia_ureq::{Client, MediaType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    let client = Client::new(cdn.media_conn(Instant::now()));
    let up = client.upload(path, MediaType::Document)?;
    println!("{}", up.to_json());
    Ok(())
}
