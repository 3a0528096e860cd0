//! Shared test support: the one place that knows where the external vectors live.
//!
//! The vectors in `../shared/fixtures/` (beside the checkout) are read in place and
//! never copied into the project. `RELAY_FIXTURES_DIR` overrides the location.

#![allow(dead_code)]

pub mod atjson;
pub mod pg;
pub mod serve;
pub mod ws_client;

use std::path::PathBuf;

/// The root of the external fixture folders.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RELAY_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

/// A path inside the fixture root; panics with a useful message when it is missing,
/// because a missing vector must fail the suite, never skip it.
pub fn fixture(rel: &str) -> PathBuf {
    let path = fixtures_dir().join(rel);
    assert!(
        path.exists(),
        "fixture {} not found (set RELAY_FIXTURES_DIR to the shared/fixtures folder)",
        path.display()
    );
    path
}

/// The bytes of a fixture file, exactly as stored.
pub fn fixture_bytes(rel: &str) -> Vec<u8> {
    let path = fixture(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A fixture parsed as JSON.
pub fn fixture_json(rel: &str) -> serde_json::Value {
    let bytes = fixture_bytes(rel);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parsing {rel}: {e}"))
}

/// Lines of a line-based vector file, byte-exact: only the line terminator is removed
/// (never trimmed), `#` comment lines and empty lines are skipped.
pub fn fixture_lines(rel: &str) -> Vec<String> {
    let bytes = fixture_bytes(rel);
    let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{rel} is not UTF-8: {e}"));
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Print the suite name and case count, so the test output names each suite.
pub fn report(suite: &str, cases: usize) {
    println!("suite {suite}: {cases} cases");
}

/// The `#atproto` key of a DID document fixture, through the library's selection rule.
pub fn atproto_key_of_document(
    rel: &str,
) -> Result<relay::identity::key::PublicKey, relay::identity::key::KeyError> {
    let document = fixture_json(rel);
    let methods = document["verificationMethod"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let refs = methods
        .iter()
        .map(|method| relay::identity::key::VerificationMethodRef {
            id: method["id"].as_str().unwrap_or(""),
            method_type: method["type"].as_str().unwrap_or(""),
            public_key_multibase: method["publicKeyMultibase"].as_str(),
        });
    relay::identity::key::PublicKey::from_atproto_verification_method(refs)
}
