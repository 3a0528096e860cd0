//! The data plane's sans-IO core end to end, without sockets: real firehose frames are
//! placed in a shared-memory frame buffer (as a socket read would place them), judged by
//! the commit rules, given relay seqs by the sequencer, made durable by the event log
//! writer, and replayed. The replayed bytes are the upstream bytes with only the seq
//! value replaced, and no frame byte was copied after the "socket read".

mod common;

use relay::eventlog::{AccountKey, EventLog, EventLogConfig};
use relay::frame::event::{Event, Frame};
use relay::identity::key::PublicKey;
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};
use relay::sequencer::Sequencer;
use relay::verify::rules::{Policy, verify_commit_frame};
use relay::verify::signature::{Backend, ParsedKey};

#[test]
fn frames_flow_from_buffer_through_rules_sequencer_and_log() {
    let scenario = common::fixture_json("indigo/cmd/relay/testing/testdata/post_lifecycle.json");
    let multibase = scenario["accounts"][0]["identity"]["keys"]["atproto"]["publicKeyMultibase"]
        .as_str()
        .unwrap();
    let key = ParsedKey::with_backend(
        &PublicKey::from_multikey(multibase).unwrap(),
        Backend::Libsecp256k1,
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let policy = Policy {
        now_micros: now,
        strict: true,
    };

    let dir = std::env::temp_dir().join(format!("relay-ingest-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (log, recovery) = EventLog::open(&EventLogConfig::new(&dir)).unwrap();
    let mut sequencer = Sequencer::new(recovery.next_seq);
    let mut appender = log.start_writer(None).unwrap();
    let mut writer = FrameWriter::new(RegionId::new(0), FrameRegionConfig::default()).unwrap();

    let mut originals = Vec::new();
    let mut state = None;
    for message in scenario["messages"].as_array().unwrap() {
        let mut bytes = common::atjson::to_cbor(&message["frame"]["header"]);
        bytes.extend(common::atjson::to_cbor(&message["frame"]["body"]));
        // The socket read: bytes land in the frame buffer, reserved at full length.
        let mut slot = writer.reserve(bytes.len()).unwrap();
        slot.unfilled_mut()[..bytes.len()].copy_from_slice(&bytes);
        slot.advance(bytes.len()).unwrap();
        let handle = writer.commit(slot, bytes.len()).unwrap();
        let verified = verify_commit_frame(handle, &key, state.as_ref(), &policy)
            .map_err(|(_, r)| r)
            .unwrap();
        state = verified.next_state();
        let sequenced = sequencer.assign(verified, AccountKey::new(7)).unwrap();
        appender.append(sequenced).unwrap();
        originals.push(bytes);
    }
    appender.close().unwrap();
    assert_eq!(
        writer.copied_bytes(),
        0,
        "no frame byte copied after the socket read"
    );

    let replayed: Vec<_> = log.read_from(0).map(Result::unwrap).collect();
    assert_eq!(replayed.len(), originals.len());
    for (index, (record, original)) in replayed.iter().zip(&originals).enumerate() {
        assert_eq!(
            record.seq.get(),
            index as u64 + 1,
            "relay seq starts at 1, strictly increasing"
        );
        let out = Frame::decode(&record.payload).unwrap();
        let upstream = Frame::decode(original).unwrap();
        assert_eq!(out.seq(), Some(index as u64 + 1));
        // Everything but the seq value is the upstream bytes.
        let (Event::Commit(a), Event::Commit(b)) = (out.event(), upstream.event()) else {
            panic!("commits")
        };
        assert_eq!(
            (a.repo(), a.rev(), a.blocks(), a.commit()),
            (b.repo(), b.rev(), b.blocks(), b.commit())
        );
        let span = upstream.seq_span().unwrap();
        assert_eq!(&record.payload[..span.start], &original[..span.start]);
        let tail = original.len() - span.end;
        assert_eq!(
            &record.payload[record.payload.len() - tail..],
            &original[span.end..]
        );
    }
    common::report(
        "ingest path: buffer → rules → sequencer → log → replay",
        replayed.len(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
