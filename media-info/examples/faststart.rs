//! Remuxes an MP4 or MOV to faststart: `cargo run -p wamedia-info --example faststart -- IN OUT`.
//! Writes OUT only when there is something to do; says what it did, or why it could not.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::time::Instant;

use wamedia_info::faststart::{self, FaststartReader, Plan};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: faststart IN OUT");
        std::process::exit(2);
    };
    let mut f = File::open(input)?;
    let len = f.seek(SeekFrom::End(0))?;
    let t = Instant::now();
    let plan = faststart::plan(&mut f, len);
    let planned = t.elapsed();
    match plan {
        Ok(Plan::NothingToDo) => println!("{input}: already faststart, nothing to do"),
        Ok(Plan::Remux(r)) => {
            println!(
                "{input}: moov moved {}, {} track(s) kept, {} dropped, {} stco widened to co64; planned in {planned:?}",
                r.moov_moved(),
                r.kept_tracks(),
                r.dropped_tracks(),
                r.upgraded_to_co64()
            );
            let t = Instant::now();
            let n = io::copy(&mut FaststartReader::new(f, r), &mut File::create(output)?)?;
            println!("{output}: {n} bytes in {:?}", t.elapsed());
        }
        Err(why) => {
            eprintln!("{input}: cannot remux: {why}");
            std::process::exit(1);
        }
    }
    Ok(())
}
