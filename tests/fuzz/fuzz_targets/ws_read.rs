//! Any byte stream from an upstream host, in reads of varying size: the frame reader never
//! panics, never over-reads, and every frame it yields is exactly the payload it declared.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};
use relay::upstream::reader::{FrameReader, Incoming};

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else { return };
    let Ok(config) = FrameRegionConfig::new(16 << 20, 8 << 20) else { return };
    let Ok(mut writer) = FrameWriter::new(RegionId::new(0), config) else { return };
    let mut reader = FrameReader::new();
    let mut pos = 0;
    while pos < stream.len() {
        let buffer = reader.buffer();
        let n = buffer.len().min(usize::from(step).max(1)).min(stream.len() - pos);
        buffer[..n].copy_from_slice(&stream[pos..pos + n]);
        pos += n;
        match reader.advance(n, &mut writer) {
            Ok(Some(Incoming::Frame(handle))) => assert!(!handle.as_bytes().is_empty()),
            Ok(_) => {}
            Err(_) => break,
        }
        writer.poll_reclaim();
    }
});
