//! atproto-interop-tests `syntax/`: every line of every `*_syntax_valid.txt` parses, every
//! line of every `*_syntax_invalid.txt` is rejected, and every line of every
//! `*_parse_invalid.txt` passes the syntax check but fails the full parse. The suite is
//! driven by the folder listing, so a file with no entry in `SUITES` fails the run.
//! Also: TID encode/decode round trips (unit and property tests) and datetime instants.

mod common;

use std::collections::BTreeSet;

use proptest::prelude::*;
use relay::syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, SyntaxError,
    Tid, Uri,
};

const DIR: &str = "atproto-interop/syntax";

type Check = fn(&str) -> Result<(), SyntaxError>;

/// What a vector file asserts about each of its lines.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The full parse accepts it.
    Valid,
    /// The syntax check rejects it (and so does the full parse).
    Invalid,
    /// The syntax check accepts it; the full parse rejects it.
    ParseInvalid,
}

struct Suite {
    file: &'static str,
    expect: Expect,
    /// The full parse.
    parse: Check,
    /// The syntax-only check (the same as `parse` for formats with one level).
    syntax: Check,
}

fn did(s: &str) -> Result<(), SyntaxError> {
    let did = Did::parse(s)?;
    assert_eq!(did.as_str(), s);
    assert_eq!(format!("did:{}:{}", did.method(), did.identifier()), s);
    Ok(())
}

fn handle(s: &str) -> Result<(), SyntaxError> {
    let handle = Handle::parse(s)?;
    assert_eq!(handle.as_str(), s);
    let normalized = handle.normalized();
    assert!(normalized.is_normalized());
    assert_eq!(Handle::parse(normalized.as_str()).as_ref(), Ok(&normalized));
    Ok(())
}

fn nsid(s: &str) -> Result<(), SyntaxError> {
    let nsid = Nsid::parse(s)?;
    assert_eq!(format!("{}.{}", nsid.authority_segments(), nsid.name()), s);
    Ok(())
}

fn tid(s: &str) -> Result<(), SyntaxError> {
    let tid = Tid::parse(s)?;
    assert_eq!(tid.as_str(), s);
    if tid.timestamp_micros() < 1 << 53 {
        let rebuilt = Tid::from_parts(tid.timestamp_micros(), tid.clock_id()).unwrap();
        assert_eq!(rebuilt, tid, "{s} does not round-trip through its parts");
    }
    Ok(())
}

fn record_key(s: &str) -> Result<(), SyntaxError> {
    RecordKey::parse(s).map(|_| ())
}

fn at_uri(s: &str) -> Result<(), SyntaxError> {
    let uri = AtUri::parse(s)?;
    let mut rebuilt = format!("at://{}", uri.authority());
    if let Some(collection) = uri.collection() {
        Nsid::parse(collection).unwrap();
        rebuilt = format!("{rebuilt}/{collection}");
    }
    if let Some(rkey) = uri.record_key() {
        RecordKey::parse(rkey).unwrap();
        rebuilt = format!("{rebuilt}/{rkey}");
    }
    assert_eq!(rebuilt, s);
    AtIdentifier::parse(uri.authority()).unwrap();
    Ok(())
}

fn datetime(s: &str) -> Result<(), SyntaxError> {
    Datetime::parse(s).map(|_| ())
}

fn datetime_syntax(s: &str) -> Result<(), SyntaxError> {
    Datetime::check_syntax(s)
}

fn cid(s: &str) -> Result<(), SyntaxError> {
    CidString::parse(s).map(|_| ())
}

fn language(s: &str) -> Result<(), SyntaxError> {
    Language::parse(s).map(|_| ())
}

fn language_syntax(s: &str) -> Result<(), SyntaxError> {
    Language::check_syntax(s)
}

fn uri(s: &str) -> Result<(), SyntaxError> {
    Uri::parse(s).map(|_| ())
}

fn at_identifier(s: &str) -> Result<(), SyntaxError> {
    let id = AtIdentifier::parse(s)?;
    assert_eq!(id.as_str(), s);
    assert_eq!(id.as_did().is_some(), s.starts_with("did:"));
    Ok(())
}

const fn suite(file: &'static str, expect: Expect, parse: Check, syntax: Check) -> Suite {
    Suite {
        file,
        expect,
        parse,
        syntax,
    }
}

/// One entry per file of the vector folder.
const SUITES: &[Suite] = &[
    suite(
        "atidentifier_syntax_valid.txt",
        Expect::Valid,
        at_identifier,
        at_identifier,
    ),
    suite(
        "atidentifier_syntax_invalid.txt",
        Expect::Invalid,
        at_identifier,
        at_identifier,
    ),
    suite("aturi_syntax_valid.txt", Expect::Valid, at_uri, at_uri),
    suite("aturi_syntax_invalid.txt", Expect::Invalid, at_uri, at_uri),
    suite("cid_syntax_valid.txt", Expect::Valid, cid, cid),
    suite("cid_syntax_invalid.txt", Expect::Invalid, cid, cid),
    suite(
        "datetime_syntax_valid.txt",
        Expect::Valid,
        datetime,
        datetime_syntax,
    ),
    suite(
        "datetime_syntax_invalid.txt",
        Expect::Invalid,
        datetime,
        datetime_syntax,
    ),
    suite(
        "datetime_parse_invalid.txt",
        Expect::ParseInvalid,
        datetime,
        datetime_syntax,
    ),
    suite("did_syntax_valid.txt", Expect::Valid, did, did),
    suite("did_syntax_invalid.txt", Expect::Invalid, did, did),
    suite("handle_syntax_valid.txt", Expect::Valid, handle, handle),
    suite("handle_syntax_invalid.txt", Expect::Invalid, handle, handle),
    suite(
        "language_syntax_valid.txt",
        Expect::Valid,
        language,
        language_syntax,
    ),
    suite(
        "language_syntax_invalid.txt",
        Expect::Invalid,
        language,
        language_syntax,
    ),
    suite(
        "language_parse_invalid.txt",
        Expect::ParseInvalid,
        language,
        language_syntax,
    ),
    suite("nsid_syntax_valid.txt", Expect::Valid, nsid, nsid),
    suite("nsid_syntax_invalid.txt", Expect::Invalid, nsid, nsid),
    suite(
        "recordkey_syntax_valid.txt",
        Expect::Valid,
        record_key,
        record_key,
    ),
    suite(
        "recordkey_syntax_invalid.txt",
        Expect::Invalid,
        record_key,
        record_key,
    ),
    suite("tid_syntax_valid.txt", Expect::Valid, tid, tid),
    suite("tid_syntax_invalid.txt", Expect::Invalid, tid, tid),
    suite("uri_syntax_valid.txt", Expect::Valid, uri, uri),
    suite("uri_syntax_invalid.txt", Expect::Invalid, uri, uri),
];

/// Runs one file; returns the number of lines and a description of each failing line.
fn run(suite: &Suite) -> (usize, Vec<String>) {
    let lines = common::fixture_lines(&format!("{DIR}/{}", suite.file));
    let mut failures = Vec::new();
    for line in &lines {
        let parsed = (suite.parse)(line);
        let syntax = (suite.syntax)(line);
        let ok = match suite.expect {
            Expect::Valid => parsed.is_ok() && syntax.is_ok(),
            Expect::Invalid => parsed.is_err() && syntax.is_err(),
            Expect::ParseInvalid => parsed.is_err() && syntax.is_ok(),
        };
        if !ok {
            failures.push(format!(
                "{} {:?}: {line:?} gave parse {parsed:?}, syntax {syntax:?}",
                suite.file, suite.expect
            ));
        }
    }
    (lines.len(), failures)
}

#[test]
fn every_syntax_vector_file_is_asserted() {
    let listed: BTreeSet<String> = std::fs::read_dir(common::fixture(DIR))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let known: BTreeSet<String> = SUITES.iter().map(|s| s.file.to_owned()).collect();
    assert_eq!(listed, known, "the vector folder and SUITES disagree");

    let mut failures = Vec::new();
    let mut total = 0;
    for suite in SUITES {
        let (cases, mut failed) = run(suite);
        assert!(cases > 0, "{} has no cases", suite.file);
        common::report(&format!("syntax/{}", suite.file), cases);
        total += cases;
        failures.append(&mut failed);
    }
    common::report("syntax (all files)", total);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rejections_name_their_format() {
    let err = Did::parse("did:METHOD:val").unwrap_err();
    assert_eq!(err.reason(), "did_invalid");
    assert_eq!(err.to_string(), format!("invalid DID: {}", err.detail()));
    assert_eq!(
        Handle::parse("john").unwrap_err().reason(),
        "handle_invalid"
    );
    assert_eq!(
        AtIdentifier::parse("did:x").unwrap_err().reason(),
        "at_identifier_invalid"
    );
    assert_eq!(
        Tid::parse("222").unwrap_err(),
        SyntaxError::Tid("not 13 characters")
    );
    let month_13 = Datetime::parse("1985-13-12T23:20:50.123Z").unwrap_err();
    assert_eq!(month_13, SyntaxError::Datetime("month out of range"));
}

#[test]
fn accessors() {
    let did: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap();
    assert_eq!(did.method(), "plc");
    assert_eq!(did.identifier(), "7iza6de2dwap2sbkpav7c6c6");
    assert!(did.is_plc() && !did.is_web());
    assert!(Did::parse("did:web:example.com").unwrap().is_web());

    let nsid = Nsid::try_from("App.Bsky.feed.post").unwrap();
    assert_eq!(nsid.authority(), "feed.bsky.app");
    assert_eq!(nsid.authority_segments(), "App.Bsky.feed");
    assert_eq!(nsid.name(), "post");

    let handle = Handle::parse("XX.LCS.MIT.EDU").unwrap();
    assert_eq!(handle.normalized().as_str(), "xx.lcs.mit.edu");
    assert!(!handle.is_normalized());

    let uri = AtUri::parse("at://did:plc:asdf123/com.atproto.feed.post/3jzfcijpj2z2a").unwrap();
    assert_eq!(uri.authority(), "did:plc:asdf123");
    assert!(uri.has_did_authority());
    assert_eq!(uri.collection(), Some("com.atproto.feed.post"));
    assert_eq!(uri.record_key(), Some("3jzfcijpj2z2a"));
    let bare = AtUri::parse("at://user.bsky.social").unwrap();
    assert_eq!((bare.collection(), bare.record_key()), (None, None));
    let collection_only = AtUri::parse("at://user.bsky.social/app.bsky.feed.post").unwrap();
    assert_eq!(collection_only.collection(), Some("app.bsky.feed.post"));
    assert_eq!(collection_only.record_key(), None);

    assert_eq!(Uri::parse("dns:example.com").unwrap().scheme(), "dns");
    assert_eq!(Language::parse("pt-BR").unwrap().primary_subtag(), "pt");
}

#[test]
fn language_grammar_edges() {
    for ok in [
        "en-GB-oed",
        "x-a",
        "zh-yue-HK",
        "zh-cmn-Hans-CN",
        "en-a-bbb-x-a-ccc",
        "es-419",
    ] {
        assert!(Language::parse(ok).is_ok(), "{ok} should be valid");
    }
    for bad in [
        "en-x",
        "en-a",
        "en-a-x-foo",
        "en-US-abc",
        "en-abcdefghi",
        "en--US",
        "x",
    ] {
        assert!(
            Language::check_syntax(bad).is_err(),
            "{bad} should be ill-formed"
        );
    }
    // A singleton repeated only inside the private-use part is not a duplicate.
    assert!(Language::parse("en-a-bbb-x-a-ccc").is_ok());
    assert!(Language::check_syntax("de-1901-1901").is_ok());
    assert!(Language::parse("de-1901-1901").is_err());
}

#[test]
fn tid_decodes_known_values() {
    let zero = Tid::parse("2222222222222").unwrap();
    assert_eq!(
        (zero.as_u64(), zero.timestamp_micros(), zero.clock_id()),
        (0, 0, 0)
    );
    let one = Tid::from_parts(0, 1).unwrap();
    assert_eq!(one.as_str(), "2222222222223");
    let max = Tid::from_parts((1 << 53) - 1, 1023).unwrap();
    assert_eq!(max.as_str(), "bzzzzzzzzzzzz");
    assert_eq!(max.as_u64(), (1 << 63) - 1);

    // 3jzfcijpj2z2a, the spec's example: digit values 1,15,31,11,8,14,15,21,15,0,31,0,6.
    let example = Tid::parse("3jzfcijpj2z2a").unwrap();
    let digits = [1u64, 15, 31, 11, 8, 14, 15, 21, 15, 0, 31, 0, 6];
    let value = digits.iter().fold(0, |n, d| n << 5 | d);
    assert_eq!(example.as_u64(), value);
    assert_eq!(example.timestamp_micros(), value >> 10);
    assert_eq!(u64::from(example.clock_id()), value & 1023);

    assert!(Tid::from_parts(1 << 53, 0).is_err());
    assert!(Tid::from_parts(0, 1024).is_err());
}

#[test]
fn datetime_instants() {
    let micros = |s: &str| Datetime::parse(s).unwrap().unix_micros();
    assert_eq!(micros("1970-01-01T00:00:00Z"), 0);
    assert_eq!(micros("1985-04-12T23:20:50.123Z"), 482_196_050_123_000);
    assert_eq!(
        micros("1985-04-12T23:20:50.1235678912345Z"),
        482_196_050_123_567
    );
    assert_eq!(micros("1985-04-12T16:20:50.123-07:00"), 482_196_050_123_000);
    assert_eq!(micros("1985-04-13T01:05:50.123+01:45"), 482_196_050_123_000);
    assert_eq!(micros("0000-01-01T00:00:00.000Z"), -62_167_219_200_000_000);
    assert_eq!(micros("2000-02-29T00:00:00Z"), 951_782_400_000_000);
    assert!(Datetime::parse("1900-02-29T00:00:00Z").is_err());
    assert!(Datetime::parse("1985-04-12T23:20:60Z").is_err());
    assert!(Datetime::parse("9999-12-31T23:59:59-01:00").is_err());
    assert!(Datetime::parse("9999-12-31T23:59:59+01:00").is_ok());

    let a = Datetime::parse("1985-04-12T23:20:50Z").unwrap();
    let b = Datetime::parse("1985-04-12T23:20:51+00:00").unwrap();
    let c = Datetime::parse("1985-04-12T22:20:52-01:00").unwrap();
    assert!(a < b && b < c, "datetimes order by instant, not by text");
}

proptest! {
    #[test]
    fn tid_from_parts_round_trips(micros in 0u64..(1 << 53), clock in 0u16..1024) {
        let tid = Tid::from_parts(micros, clock).unwrap();
        prop_assert_eq!(tid.timestamp_micros(), micros);
        prop_assert_eq!(tid.clock_id(), clock);
        let reparsed = Tid::parse(tid.as_str()).unwrap();
        prop_assert_eq!(reparsed, tid);
        prop_assert_eq!(tid.to_string().len(), 13);
    }

    #[test]
    fn tid_order_is_time_order(
        a in (0u64..(1 << 53), 0u16..1024),
        b in (0u64..(1 << 53), 0u16..1024),
    ) {
        let ta = Tid::from_parts(a.0, a.1).unwrap();
        let tb = Tid::from_parts(b.0, b.1).unwrap();
        prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
        prop_assert_eq!(ta.as_str().cmp(tb.as_str()), a.cmp(&b));
    }

    #[test]
    fn tid_strings_decode_and_re_encode(s in "[234567ab][234567abcdefghijklmnopqrstuvwxyz]{12}") {
        let tid = Tid::parse(&s).unwrap();
        let rebuilt = Tid::from_parts(tid.timestamp_micros(), tid.clock_id()).unwrap();
        prop_assert_eq!(rebuilt.as_str(), s.as_str());
    }
}
