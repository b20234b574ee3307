//! Upload a (generated, 12 MiB) video with a progress callback. Bodies of 5 MiB or more
//! use the resumable flow. Run: `cargo run -p wamedia-cli --example upload_video_progress`.

use std::io::Write;
use std::time::Instant;

use wamedia_ureq::{Client, MediaType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let mut file = tempfile::tempfile()?;
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    for _ in 0..12 {
        file.write_all(&chunk)?;
    }
    let mut last = 0;
    let client = Client::new(cdn.media_conn(Instant::now()));
    let up = client
        .upload_with(file, MediaType::Video)
        .progress(move |done, total| {
            let pct = total.map_or(0, |t| done * 100 / t.max(1));
            if pct >= last + 25 || Some(done) == total {
                eprintln!("uploaded {done} of {total:?} bytes ({pct}%)");
                last = pct;
            }
        })
        .wait()?;
    println!("{}", up.to_json());
    Ok(())
}
