//! # wamedia-conformance
//!
//! Holds the wamedia core and its transports to the CDN contract without a network:
//!
//! - [`cassette`]: the documented JSON format of one recorded scenario.
//! - [`replay`]: replays a cassette through the core (and authors cassettes from a script).
//! - [`replay_server`]: serves a cassette's answers over loopback sockets, so the same
//!   recordings hold the ureq and surf transports to the contract.
//! - [`record`]: record mode, capturing a real transport's exchanges as a cassette.
//! - [`library`]: the named scenarios the committed cassettes were authored from.
//! - [`fake_cdn`]: a real HTTP/1.1 fake of the WhatsApp media CDN on 127.0.0.1, with a
//!   fault script, for transport tests, offline development and the CLI's default.
//! - [`hostile`]: a loopback peer that answers everything the same wrong way (enormous,
//!   endless, trickling, redirecting, close-delimited), for the transports' fault tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cassette;
pub mod fake_cdn;
pub mod hostile;
pub mod library;
pub mod record;
pub mod replay;
pub mod replay_server;

pub use fake_cdn::{CdnConfig, FakeCdn, Fault, On, SeenRequest};
