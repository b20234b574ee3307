//! # wamedia-conformance
//!
//! Holds the wamedia core and its transports to the CDN contract without a network:
//!
//! - [`fake_cdn`]: a real HTTP/1.1 fake of the WhatsApp media CDN on 127.0.0.1, with a
//!   fault script, for transport tests, offline development and the CLI's default.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fake_cdn;

pub use fake_cdn::{CdnConfig, FakeCdn, Fault, On, SeenRequest};
