//! Memory per in-flight upload over surf: N uploads of one 64 KiB plaintext at once, as
//! tasks on one async-std runtime, against a CDN in another process; prints the peak
//! resident memory. `benches/concurrent_uploads.sh surf` runs it.

use std::time::Instant;

use wamedia_surf::{Client, MediaConn, MediaType, UploadData};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One plaintext shared by every upload (as a `Cursor` source).
struct Shared(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let conn_path = args
        .next()
        .ok_or("usage: concurrent_uploads CONN.json [N]")?;
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let conn = MediaConn::from_json(&std::fs::read_to_string(conn_path)?, Instant::now())?;
    let data: std::sync::Arc<Vec<u8>> = std::sync::Arc::new(
        (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let client = Client::new(conn);
    let before = peak_rss_kib();
    let start = Instant::now();
    let failed = async_std::task::block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, data) = (client.clone(), data.clone());
                async_std::task::spawn(async move {
                    let source = UploadData::seekable(std::io::Cursor::new(Shared(data)));
                    client.upload(source, MediaType::Image).await.is_ok()
                })
            })
            .collect();
        let mut failed = 0;
        for t in tasks {
            if !t.await {
                failed += 1;
            }
        }
        failed
    });
    let peak = peak_rss_kib();
    println!(
        "surf: {n} concurrent 64 KiB uploads: {failed} failed, {:.1} s, peak RSS {:.1} MiB (before {:.1} MiB)",
        start.elapsed().as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    Ok(())
}
