//! ipld/codec-fixtures: every DAG-CBOR fixture decodes strictly and re-encodes to the
//! identical bytes (hence the same CID); the negative fixture is rejected.

mod common;

use relay::frame::cbor::{self, DecodeError};
use relay::frame::cid::{CODEC_DAG_CBOR, HASH_SHA2_256};

#[test]
fn every_dag_cbor_fixture_round_trips_byte_exact() {
    let root = common::fixture("ipld-codec-fixtures/fixtures");
    let mut cases = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("dag-cbor") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let value = cbor::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut out = Vec::new();
            cbor::encode_value(&value, &mut out);
            assert_eq!(
                out,
                bytes,
                "{} does not re-encode byte-exact",
                path.display()
            );
            // The file name is the CID of its bytes.
            let name = path.file_stem().unwrap().to_str().unwrap();
            let cid = name.parse::<relay::frame::cid::Cid>().unwrap();
            cid.verify_block(&out)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            cases += 1;
        }
    }
    assert_eq!(cases, 128, "expected the 128 upstream fixtures");
    common::report("ipld-codec-fixtures dag-cbor round trip", cases);
}

#[test]
fn negative_fixture_duplicate_keys_is_rejected() {
    let cases = common::fixture_json(
        "ipld-codec-fixtures/negative-fixtures/dag-cbor/decode/duplicate-keys.json",
    );
    let cases = cases.as_array().unwrap();
    for case in cases {
        let bytes = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        let err = cbor::decode(&bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::DuplicateMapKey { .. }),
            "{}: got {err:?}",
            case["name"]
        );
    }
    common::report("ipld-codec-fixtures negative dag-cbor", cases.len());
}

#[test]
fn mixed_codec_car_blocks_of_dag_cbor_decode() {
    // fixtures.car also holds every dag-cbor block; those decode strictly too.
    let bytes = common::fixture_bytes("ipld-codec-fixtures/fixtures.car");
    let car = relay::frame::car::CarReader::new(&bytes).unwrap();
    assert_eq!(car.roots().len(), 0);
    let mut dag_cbor = 0;
    let mut total = 0;
    for section in car {
        let section = section.unwrap();
        section.cid().verify_block(section.data()).unwrap();
        if section.cid().codec() == CODEC_DAG_CBOR && section.cid().hash_code() == HASH_SHA2_256 {
            cbor::validate(section.data()).unwrap();
            dag_cbor += 1;
        }
        total += 1;
    }
    assert_eq!((total, dag_cbor), (273, 128));
    common::report("ipld-codec-fixtures fixtures.car", total);
}
