//! FLAC: the duration from STREAMINFO (total samples over the sample rate).

use std::io::{Read, Seek};

use crate::bytes::{be_u64, read_exact_at};

/// The length of a FLAC file, in milliseconds.
pub(crate) fn duration_ms<S: Read + Seek>(src: &mut S) -> Result<u64, String> {
    // "fLaC", then the STREAMINFO block: a 4-byte block header and 34 bytes.
    let mut b = [0u8; 42];
    read_exact_at(src, 0, &mut b)?;
    if &b[..4] != b"fLaC" || b[4] & 0x7F != 0 {
        return Err("no STREAMINFO block".into());
    }
    // Bytes 18..26 of the file: sample rate (20 bits), channels − 1 (3), bits − 1 (5),
    // total samples (36).
    let packed = be_u64(&b, 18).ok_or("short STREAMINFO")?;
    let rate = packed >> 44;
    let total = packed & 0xF_FFFF_FFFF;
    if rate == 0 {
        return Err("a sample rate of 0".into());
    }
    if total == 0 {
        return Err("STREAMINFO does not know the number of samples".into());
    }
    Ok(total.saturating_mul(1000) / rate)
}
