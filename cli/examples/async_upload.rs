//! Upload and download back with surf on async-std, three uploads at once.
//! Run: `cargo run -p wamedia-cli --example async_upload`.

use std::time::Instant;

use wamedia::{MediaType, StaticConn, Transfer, UploadJob};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let conn = cdn.media_conn(Instant::now());
    async_std::task::block_on(async {
        let client = wamedia_surf::Client::new(Default::default());
        let uploads = (0..3u8).map(|i| {
            let (client, conn) = (client.clone(), conn.clone());
            async_std::task::spawn(async move {
                let data = vec![i; 100_000];
                client
                    .upload_bytes(
                        data,
                        &UploadJob::new(MediaType::Image),
                        &mut StaticConn(conn),
                        &mut Transfer::new(),
                    )
                    .await
            })
        });
        let mut results = Vec::new();
        for u in uploads.collect::<Vec<_>>() {
            results.push(u.await?);
        }
        let first = &results[0];
        let spec = first.download_spec();
        let mut out = Vec::new();
        let mut w = futures_lite::io::Cursor::new(&mut out);
        let d = client
            .download(
                spec,
                &mut StaticConn(conn.clone()),
                &mut w,
                &mut Transfer::new(),
            )
            .await?;
        println!(
            "{{\"uploads\":{},\"downloaded_and_verified\":{}}}",
            results.len(),
            d.verified.file_length
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
