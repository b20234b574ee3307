//! The fuzz targets as ordinary tests: every committed corpus file, then a seeded batch of
//! random inputs and mutations of the corpus (splitmix64, so every run tries the same
//! inputs). This is what `cargo test --workspace` runs; `cargo fuzz` explores further.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use wamedia_fuzz_targets::{Target, TARGETS};

/// Random inputs per target.
const RANDOM_RUNS: usize = 3000;

fn target(name: &str) -> Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("a known target")
}

/// The committed seeds of a target, by file name.
fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let data = std::fs::read(&path).expect("a readable corpus file");
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                data,
            )
        })
        .collect();
    files.sort();
    files
}

/// Runs `f` on each input; fails naming every input that broke an invariant (the panic
/// message itself is printed above by the panic hook).
fn run_all(name: &str, inputs: impl IntoIterator<Item = (String, Vec<u8>)>) -> usize {
    let f = target(name);
    let mut failed = Vec::new();
    let mut n = 0;
    for (label, data) in inputs {
        n += 1;
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(format!("{label} ({} bytes): {}", data.len(), hex(&data)));
        }
    }
    assert!(
        failed.is_empty(),
        "{name}: {} inputs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    n
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A random input: noise, or a corpus seed with a few bytes flipped, inserted, deleted,
/// or a tail cut off.
fn random_input(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(4) == 0 {
        let len = rng.below(600);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut data = seeds[rng.below(seeds.len())].1.clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(4) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 => data.insert(at, rng.next() as u8),
            2 if at < data.len() => {
                data.remove(at);
            }
            _ => data.truncate(at),
        }
    }
    data
}

fn replay(name: &str) {
    let n = run_all(name, corpus(name));
    assert!(n > 0, "{name}: the corpus is empty");
}

fn random(name: &str, seed: u64) {
    let seeds = corpus(name);
    let mut rng = Rng(seed);
    let inputs = (0..RANDOM_RUNS).map(|i| {
        (
            format!("random #{i} of seed {seed}"),
            random_input(&mut rng, &seeds),
        )
    });
    run_all(name, inputs);
}

#[test]
fn media_conn_corpus() {
    replay("media_conn");
}

#[test]
fn media_conn_random() {
    random("media_conn", 1);
}

#[test]
fn upload_corpus() {
    replay("upload");
}

#[test]
fn upload_random() {
    random("upload", 2);
}

#[test]
fn download_corpus() {
    replay("download");
}

#[test]
fn download_random() {
    random("download", 3);
}

#[test]
fn decryptor_corpus() {
    replay("decryptor");
}

#[test]
fn decryptor_random() {
    random("decryptor", 4);
}

#[test]
fn cassette_corpus() {
    replay("cassette");
}

#[test]
fn cassette_random() {
    random("cassette", 5);
}

#[test]
fn media_info_corpus() {
    replay("media_info");
}

#[test]
fn media_info_random() {
    random("media_info", 6);
}

/// Replays one file, when asked:
/// `FUZZ_REPLAY=download:fuzz/artifacts-found/<name> cargo test -p wamedia-fuzz-targets
/// --test corpus replay_one` (add `FUZZ_TRACE=1` and `--nocapture` to see every output
/// and input). Without it, nothing.
#[test]
fn replay_one() {
    let Ok(spec) = std::env::var("FUZZ_REPLAY") else {
        return;
    };
    let (name, path) = spec.split_once(':').expect("FUZZ_REPLAY=<target>:<file>");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    target(name)(&data);
}
