//! Any bytes as a WebSocket binary message: frame decoding never panics; a decoded
//! `#commit` walks its ops and loads its CAR slice without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::frame::car::Blocks;
use relay::frame::event::{Event, Frame};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::decode(data) else { return };
    let _ = frame.seq_span();
    if let Event::Commit(commit) = frame.event() {
        for op in commit.ops() {
            let _ = (op.action, op.path, op.cid, op.prev);
        }
        let mut blocks = Blocks::new();
        let _ = blocks.load(commit.blocks(), 10_000);
    }
});
