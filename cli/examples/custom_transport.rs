//! Drive the core's upload machine by hand over a bare `TcpStream`: the whole transport
//! in a few lines (plain HTTP/1.1 to the local CDN).
//! Run: `cargo run -p wamedia-cli --example custom_transport`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use wamedia::{
    encrypt, BodySpec, Input, Machine, MediaId, MediaKey, MediaType, Output, Upload, UploadOptions,
    UploadSpec,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let (body, media) = encrypt(
        MediaKey::generate()?,
        &MediaType::Document,
        b"hand-driven upload",
    )?;
    let mut up = Upload::new(
        UploadSpec::encrypted(MediaType::Document, &media, MediaId::generate()?),
        UploadOptions::default(),
        Instant::now(),
    );
    let result = loop {
        match up.poll_output(Instant::now()) {
            Output::Transmit(req) => {
                let BodySpec::UploadBody { from, to } = req.body else {
                    unreachable!("a fresh key never probes")
                };
                let (status, answer) =
                    post(&req.url, &req.headers, &body[from as usize..to as usize])?;
                up.handle_response(
                    Instant::now(),
                    req.id,
                    status,
                    &http::HeaderMap::new(),
                    &answer,
                )?;
            }
            Output::NeedMediaConn { .. } => up.handle_input(
                Instant::now(),
                Input::MediaConn(cdn.media_conn(Instant::now())),
            )?,
            Output::Wait(t) => {
                std::thread::sleep(t.saturating_duration_since(Instant::now()));
                up.handle_input(Instant::now(), Input::Timeout)?;
            }
            Output::Done(outcome) => break outcome?,
            // Progress, and outputs of later versions: nothing to do.
            _ => {}
        }
    };
    println!("{}", result.to_json());
    Ok(())
}

/// A minimal HTTP/1.1 POST to an `http://` URL (the local CDN closes after each answer).
fn post(url: &str, headers: &http::HeaderMap, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let rest = url
        .strip_prefix("http://")
        .expect("the local CDN speaks plain http");
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(authority)?;
    let mut head = format!("POST {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
    }
    s.write_all(format!("{head}\r\n").as_bytes())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut line = String::new();
    while r.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut answer = Vec::new();
    r.read_to_end(&mut answer)?;
    Ok((status, answer))
}
