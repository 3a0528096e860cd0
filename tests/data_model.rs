//! atproto-interop data-model vectors: JSON ⇄ DAG-CBOR ⇄ CID, and the valid/invalid lists.

mod common;

use base64::Engine;
use relay::frame::atjson;
use relay::frame::cbor;
use relay::frame::cid::Cid;

#[test]
fn data_model_fixtures_encode_to_exact_bytes_and_cid() {
    let cases = common::fixture_json("atproto-interop/data-model/data-model-fixtures.json");
    let cases = cases.as_array().unwrap();
    for case in cases {
        let value = atjson::record_from_json(&case["json"]).unwrap();
        let bytes = value.to_bytes();
        let expected = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(case["cbor_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, expected);
        let cid = Cid::parse_str(case["cid"].as_str().unwrap()).unwrap();
        assert_eq!(Cid::for_dag_cbor(&bytes), cid);
        // And back: the strict decoder accepts the bytes and re-encodes them identically.
        let decoded = cbor::decode(&expected).unwrap();
        assert_eq!(cbor::OwnedValue::from_view(&decoded).to_bytes(), expected);
    }
    assert_eq!(cases.len(), 3);
    common::report("atproto-interop data-model fixtures", cases.len());
}

#[test]
fn data_model_valid_and_invalid_lists() {
    let valid = common::fixture_json("atproto-interop/data-model/data-model-valid.json");
    for case in valid.as_array().unwrap() {
        let value = atjson::record_from_json(&case["json"]);
        assert!(value.is_ok(), "{}: {value:?}", case["note"]);
        cbor::validate(&value.unwrap().to_bytes()).unwrap();
    }
    let invalid = common::fixture_json("atproto-interop/data-model/data-model-invalid.json");
    for case in invalid.as_array().unwrap() {
        assert!(
            atjson::record_from_json(&case["json"]).is_err(),
            "{} must be rejected",
            case["note"]
        );
    }
    common::report(
        "atproto-interop data-model valid",
        valid.as_array().unwrap().len(),
    );
    common::report(
        "atproto-interop data-model invalid",
        invalid.as_array().unwrap().len(),
    );
}
