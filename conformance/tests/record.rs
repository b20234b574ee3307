//! Record mode: real exchanges over a transport become a cassette that replays.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use wamedia::{DownloadSpec, Expected, MediaType, Source, Transfer, UploadJob};
use wamedia_conformance::cassette::{
    CassetteInput, ExpectedSpec, Kind, Options, Plaintext, SourceSpec,
};
use wamedia_conformance::record::{outcome_of_download, outcome_of_upload, Recorder};
use wamedia_conformance::replay::replay;
use wamedia_conformance::{FakeCdn, Fault, On};

const KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

#[test]
fn a_recorded_upload_and_download_replay_through_the_core() {
    let cdn = FakeCdn::start().unwrap();
    cdn.set_auth("very-secret token/+=");
    let plain = wamedia_conformance::cassette::pattern(50_000, 3);
    let job = UploadJob::new(MediaType::Video).with_media_key(KEY.parse().unwrap());
    let prepared = job.prepare(Cursor::new(&plain)).unwrap();
    cdn.push_fault(On::Upload, Fault::Status(503, None));
    let mut conn = cdn.media_conn(Instant::now());
    conn.hosts.push(cdn.host().into());
    let client = wamedia_ureq::Client::new(conn);
    let mut rec = Recorder::for_upload(&prepared, plain.clone());
    let up = client
        .upload_prepared(prepared.clone(), plain.clone())
        .observe(&mut rec)
        .wait()
        .unwrap();
    let input = CassetteInput {
        media_type: "video".into(),
        media_key: Some(KEY.into()),
        key_reused: false,
        media_id: None,
        wall_unix: None,
        plaintext: Plaintext::Pattern {
            len: 50_000,
            seed: 3,
        },
        newsletter: false,
        options: Options::default(),
        source: None,
        expected: None,
    };
    let c = rec.into_cassette(
        "recorded-upload",
        "503 then success, recorded",
        Kind::Upload,
        input,
        outcome_of_upload(&Ok(up.clone())),
    );
    let json = c.to_json();
    assert!(
        !json.contains("very-secret") && !json.contains("very-secret%20token"),
        "{json}"
    );
    assert!(json.contains("auth=REDACTED-AUTH"));
    assert_eq!(
        c.events.len(),
        4,
        "conn, probe (the key is reused), 503, 200"
    );
    assert!(c.input.key_reused);
    replay(&c, Path::new(".")).unwrap();

    // A download cut after 10 000 bytes resumes with Range; both answers are recorded.
    cdn.push_fault(On::Download, Fault::CutDownload(10_000));
    let spec = DownloadSpec {
        media_type: MediaType::Video,
        media_key: Some(KEY.parse().unwrap()),
        source: Source::DirectPath(up.direct_path.clone()),
        expected: Expected {
            file_enc_sha256: up.file_enc_sha256,
            file_sha256: Some(up.file_sha256),
            file_length: Some(50_000),
        },
        streaming_sidecar: None,
    };
    let mut rec = Recorder::for_download();
    let (out, r) = client
        .download(spec)
        .transfer(Transfer::new().observe(&mut rec))
        .to_vec()
        .unwrap();
    assert!(out == plain);
    let input = CassetteInput {
        media_type: "video".into(),
        media_key: Some(KEY.into()),
        key_reused: false,
        media_id: None,
        wall_unix: None,
        plaintext: Plaintext::Pattern {
            len: 50_000,
            seed: 3,
        },
        newsletter: false,
        options: Options::default(),
        source: Some(SourceSpec::DirectPath(up.direct_path.clone())),
        expected: Some(ExpectedSpec {
            file_enc_sha256: Some("auto".into()),
            file_sha256: Some("auto".into()),
            file_length: Some(50_000),
        }),
    };
    let c = rec.into_cassette(
        "recorded-download",
        "cut, then Range",
        Kind::Download,
        input,
        outcome_of_download(&Ok(r)),
    );
    assert_eq!(c.events.len(), 3, "conn, cut, 206: {}", c.to_json());
    assert!(c.to_json().contains("bytes=10000-"), "{}", c.to_json());
    replay(&c, Path::new(".")).unwrap();
}
