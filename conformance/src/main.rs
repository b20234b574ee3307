//! `wamedia-conformance`: run the fake CDN, write the cassette library, replay cassettes.
//!
//! - `wamedia-conformance serve [ADDR]`: the fake CDN (default 127.0.0.1:8080); prints
//!   the media connection JSON.
//! - `wamedia-conformance author DIR`: writes the library's cassettes into DIR.
//! - `wamedia-conformance replay FILE...`: replays cassettes through the core.

use std::path::Path;
use std::process::ExitCode;

use wamedia_conformance::cassette::Cassette;
use wamedia_conformance::{library, replay, CdnConfig, FakeCdn};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let addr = args.get(1).map_or("127.0.0.1:8080", String::as_str);
            let addr = match addr.parse() {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("bad address {addr}: {e}");
                    return ExitCode::from(2);
                }
            };
            let cdn = match FakeCdn::with_config(CdnConfig {
                addr,
                ..CdnConfig::default()
            }) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("cannot listen on {addr}: {e}");
                    return ExitCode::from(2);
                }
            };
            println!("{}", cdn.media_conn_json());
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Some("author") if args.len() == 2 => {
            let dir = Path::new(&args[1]);
            let list = match library::cassettes() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            for c in &list {
                let path = dir.join(format!("{}.json", c.name));
                if let Err(e) = std::fs::write(&path, c.to_json()) {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            eprintln!("wrote {} cassettes into {}", list.len(), dir.display());
            ExitCode::SUCCESS
        }
        Some("replay") if args.len() > 1 => {
            let mut failed = 0;
            for f in &args[1..] {
                let p = Path::new(f);
                let r = Cassette::load(p)
                    .and_then(|c| replay::replay(&c, p.parent().unwrap_or(Path::new("."))));
                match r {
                    Ok(()) => println!("ok   {f}"),
                    Err(e) => {
                        failed += 1;
                        println!("FAIL {f}\n{e}");
                    }
                }
            }
            if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("usage: wamedia-conformance serve [ADDR] | author DIR | replay FILE...");
            ExitCode::from(2)
        }
    }
}
