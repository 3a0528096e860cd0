//! Any bytes: the CAR reader and block index never panic and never allocate more than
//! the input justifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::frame::car::{Blocks, CarReader};

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = CarReader::new(data) {
        let _ = reader.single_root();
        for section in reader {
            match section {
                Ok(section) => {
                    let _ = section.verify();
                }
                Err(_) => break,
            }
        }
    }
    let mut blocks = Blocks::new();
    let _ = blocks.load(data, 10_000);
});
