//! Any bytes: as one MST node they decode strictly or are rejected; as a CAR slice, the
//! tree it roots is walked and an op on each of its first keys is inverted on the partial
//! tree. None of it may panic, whatever blocks are missing or malformed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::frame::car::Blocks;
use relay::verify::mst::{Action, Op, decode_node, invert_ops, walk};

fuzz_target!(|data: &[u8]| {
    let _ = decode_node(data);
    let mut blocks = Blocks::new();
    let Ok(root) = blocks.load(data, 1_000) else { return };
    let mut keys = Vec::new();
    let _ = walk(&blocks, root, |key, cid| {
        if keys.len() < 4 {
            keys.push((key.to_vec(), cid));
        }
    });
    for (key, cid) in &keys {
        let create = [Op { key, action: Action::Create { cid: *cid } }];
        let _ = invert_ops(&blocks, root, &create);
        let delete = [Op { key, action: Action::Delete { prev: *cid } }];
        let _ = invert_ops(&blocks, root, &delete);
    }
});
