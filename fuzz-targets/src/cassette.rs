//! The cassette target: the conformance format parses arbitrary bytes without panicking,
//! and what it parses survives `to_json` unchanged.

use wamedia_conformance::cassette::Cassette;

/// See [`crate::cassette`].
pub(crate) fn run(data: &[u8]) {
    let Ok(c) = serde_json::from_slice::<Cassette>(data) else {
        return;
    };
    let json = c.to_json();
    let again: Cassette = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("to_json() does not parse back: {e}\n{json}"));
    assert_eq!(
        again, c,
        "to_json() does not parse back to the same cassette\n{json}"
    );
    assert_eq!(again.to_json(), json, "to_json() is not stable");
}
