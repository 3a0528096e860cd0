//! Any bytes: the strict decoder never panics, and whatever it accepts is canonical
//! (re-encodes to the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::frame::cbor;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cbor::decode(data) {
        let mut again = Vec::with_capacity(data.len());
        cbor::encode_value(&value, &mut again);
        assert_eq!(again, data);
    }
});
