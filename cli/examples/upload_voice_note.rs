//! Upload a voice note (ptt: audio keys, /mms/audio) from bytes in memory, blocking.
//! Run: `cargo run -p wamedia-cli --example upload_voice_note`.

use std::time::Instant;

use wamedia_ureq::{Client, MediaType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    // An Ogg page header and some noise stand in for an Opus recording.
    let mut voice = b"OggS\x00\x02".to_vec();
    voice.extend((0..20_000u32).map(|i| (i * 31 % 256) as u8));
    let client = Client::new(cdn.media_conn(Instant::now()));
    let up = client.upload(voice, MediaType::Ptt)?;
    println!("{}", up.to_json());
    Ok(())
}
