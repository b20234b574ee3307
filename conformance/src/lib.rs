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
//! - [`fake_cdn`]: the `wamedia-fake-cdn` crate, re-exported: a real HTTP/1.1 fake of the
//!   WhatsApp media CDN on 127.0.0.1, with a fault script.
//!
//! Everything but [`cassette`] and [`record`] is behind the default feature `replay`, so
//! the CLI's record mode links neither the replay machinery nor the fake CDN.
//! - [`hostile`]: a loopback peer that answers everything the same wrong way (enormous,
//!   endless, trickling, redirecting, close-delimited), for the transports' fault tests.
//! - [`sockets`]: every cassette over loopback sockets to any `wamedia_driver::Http`
//!   adapter, and the [`Executor`] a transport's tests run futures with.
//! - [`scenarios`]: the one table of loopback fault scenarios every transport runs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cassette;
#[cfg(feature = "replay")]
pub mod hostile;
#[cfg(feature = "replay")]
pub mod library;
pub mod record;
#[cfg(feature = "replay")]
pub mod replay;
#[cfg(feature = "replay")]
pub mod replay_server;
#[cfg(feature = "replay")]
pub mod scenarios;
#[cfg(feature = "replay")]
pub mod sockets;

#[cfg(feature = "replay")]
pub use sockets::{CallingThread, Executor};

/// The fake CDN, in its own crate (`wamedia-fake-cdn`) so a binary that needs it does not
/// link the cassette machinery; re-exported here for the tests that use both.
#[cfg(feature = "replay")]
pub use wamedia_fake_cdn as fake_cdn;
#[cfg(feature = "replay")]
pub use wamedia_fake_cdn::{CdnConfig, FakeCdn, Fault, On, SeenRequest};
