//! The upstream frame reader: WebSocket messages arriving in arbitrary read sizes land in
//! the frame buffer whole, byte-exact and uncopied; hostile streams get their reason;
//! backpressure pauses and resumes without losing a byte.

use proptest::prelude::*;
use relay::frame::ws::{self, Opcode};
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};
use relay::upstream::reader::{FrameReader, Incoming, ReadError};

fn ws_frame(fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut header = [0u8; ws::WS_HEADER_BYTES_MAX];
    let n = ws::encode_header(fin, opcode, payload.len() as u64, mask, &mut header);
    let mut out = header[..n].to_vec();
    let mut body = payload.to_vec();
    if let Some(key) = mask {
        ws::apply_mask(&mut body, key, 0);
    }
    out.extend(body);
    out
}

/// Feed `stream` through the reader in reads of the given sizes (cycled).
fn feed(
    stream: &[u8],
    reads: &[usize],
    writer: &mut FrameWriter,
) -> Result<Vec<Incoming>, ReadError> {
    let mut reader = FrameReader::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut turn = 0;
    while pos < stream.len() {
        let buffer = reader.buffer();
        let n = buffer
            .len()
            .min(reads[turn % reads.len()].max(1))
            .min(stream.len() - pos);
        buffer[..n].copy_from_slice(&stream[pos..pos + n]);
        pos += n;
        turn += 1;
        if let Some(incoming) = reader.advance(n, writer)? {
            out.push(incoming);
        }
    }
    Ok(out)
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn messages_of_every_length_class_arrive_whole_and_uncopied() {
    let sizes = [1usize, 125, 126, 65_535, 65_536, 1 << 20, 5_000_000];
    let mut stream = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        stream.extend(ws_frame(
            true,
            Opcode::Binary,
            &payload(*size, i as u8),
            None,
        ));
        stream.extend(ws_frame(true, Opcode::Ping, b"hi", None));
    }
    stream.extend(ws_frame(true, Opcode::Close, &1000u16.to_be_bytes(), None));
    for reads in [&[1usize][..], &[7, 3, 4096], &[usize::MAX]] {
        let mut writer = FrameWriter::new(RegionId::new(1), FrameRegionConfig::default()).unwrap();
        let incoming = feed(&stream, reads, &mut writer).unwrap();
        let frames: Vec<_> = incoming
            .iter()
            .filter_map(|i| {
                if let Incoming::Frame(h) = i {
                    Some(h)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(frames.len(), sizes.len());
        for (i, (handle, size)) in frames.iter().zip(sizes).enumerate() {
            assert_eq!(handle.as_bytes(), payload(size, i as u8).as_slice());
        }
        let pings = incoming
            .iter()
            .filter(|i| matches!(i, Incoming::Ping(p) if p.as_bytes() == b"hi"))
            .count();
        assert_eq!(pings, sizes.len());
        assert!(matches!(incoming.last(), Some(Incoming::Close(Some(1000)))));
        assert_eq!(writer.copied_bytes(), 0);
    }
}

#[test]
fn hostile_streams_are_refused_with_their_reason() {
    let mut writer = FrameWriter::new(RegionId::new(2), FrameRegionConfig::default()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text frame",
            ws_frame(true, Opcode::Text, b"{}", None),
            "upstream_text_message",
        ),
        (
            "fragmented binary",
            ws_frame(false, Opcode::Binary, b"ab", None),
            "upstream_fragmented_message",
        ),
        (
            "stray continuation",
            ws_frame(true, Opcode::Continuation, b"ab", None),
            "upstream_fragmented_message",
        ),
        (
            "masked by the server",
            ws_frame(true, Opcode::Binary, b"ab", Some([1, 2, 3, 4])),
            "ws_bad_masking",
        ),
        (
            "over the frame bound",
            ws_frame(true, Opcode::Binary, &vec![0; 5_000_001], None),
            "ws_too_large",
        ),
        ("reserved bits", vec![0xf2, 0x00], "ws_reserved_bits"),
        (
            "empty binary message",
            ws_frame(true, Opcode::Binary, b"", None),
            "upstream_empty_message",
        ),
    ];
    for (name, stream, reason) in &cases {
        let err = feed(stream, &[3], &mut writer).unwrap_err();
        assert_eq!(err.reason(), *reason, "{name}");
    }
    println!(
        "suite upstream reader hostile streams: {} cases",
        cases.len()
    );
}

#[test]
fn backpressure_pauses_reading_and_loses_nothing() {
    let config = FrameRegionConfig::new(16 << 20, 8 << 20).unwrap();
    let mut writer = FrameWriter::new(RegionId::new(3), config).unwrap();
    let big = payload(5_000_000, 1);
    let frame = ws_frame(true, Opcode::Binary, &big, None);
    let mut reader = FrameReader::new();
    let mut held = Vec::new();
    let mut pos = 0;
    let mut stream = Vec::new();
    for _ in 0..3 {
        stream.extend_from_slice(&frame);
    }
    let mut paused = 0;
    while pos < stream.len() {
        let buffer = reader.buffer();
        let n = buffer.len().min(stream.len() - pos);
        buffer[..n].copy_from_slice(&stream[pos..pos + n]);
        pos += n;
        let mut result = reader.advance(n, &mut writer);
        while let Err(ReadError::Backpressure) = result {
            // Consumers drop their handles; the writer reclaims; the read resumes.
            paused += 1;
            held.clear();
            writer.poll_reclaim();
            result = reader.advance(0, &mut writer);
        }
        if let Some(Incoming::Frame(handle)) = result.unwrap() {
            assert_eq!(handle.as_bytes(), big.as_slice());
            held.push(handle);
        }
    }
    assert!(
        paused > 0,
        "two 8 MiB segments cannot hold three live 5 MB frames"
    );
    assert_eq!(writer.copied_bytes(), 0);
}

proptest! {
    #[test]
    fn any_read_sizes_give_the_same_messages(
        sizes in proptest::collection::vec(1usize..3000, 1..8),
        reads in proptest::collection::vec(1usize..5000, 1..6),
    ) {
        let mut stream = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            stream.extend(ws_frame(true, Opcode::Binary, &payload(*size, i as u8), None));
        }
        let mut writer = FrameWriter::new(RegionId::new(4), FrameRegionConfig::default()).unwrap();
        let incoming = feed(&stream, &reads, &mut writer).unwrap();
        prop_assert_eq!(incoming.len(), sizes.len());
        for (i, (item, size)) in incoming.iter().zip(&sizes).enumerate() {
            let Incoming::Frame(handle) = item else { panic!("binary frames only") };
            let expected = payload(*size, i as u8);
            prop_assert_eq!(handle.as_bytes(), expected.as_slice());
        }
    }
}
