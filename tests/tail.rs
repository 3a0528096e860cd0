//! `relay tail`: the checker fed directly (every honest event verifies on both curves,
//! every hostile kind is caught by tail's own checks with its reason, seq gaps and
//! duplicates, key parking, latency), then `tail::run` end to end against a loopback
//! WebSocket firehose and PLC stub.

mod common;
mod tail_support;

use std::time::Duration;

use relay::frame::event::{ErrorFrameOwned, InfoEventOwned};
use relay::identity::key::Curve;
use relay::identity::service::now_micros;
use relay::sim::{Hostile, SimAccount, SimOp};
use relay::tail::{Checker, CheckerConfig, Feed, StopHandle, TailConfig, TailReport};
use tail_support::{HttpStub, WsServer};

const NOW: u64 = 1_763_800_000_000_000;
/// Receive time − event time used for the sans-IO frames.
const LATENCY_MICROS: u64 = 1_500;

fn expected_reason(kind: Hostile) -> &'static str {
    match kind {
        Hostile::BadSignature => "bad_signature",
        Hostile::WrongPrevData | Hostile::OpsDoNotInvert => "mst_inversion",
        Hostile::RevNotNewer => "rev_not_newer",
        Hostile::FutureRev => "future_rev",
        Hostile::TooManyOps => "frame_too_many_ops",
        Hostile::MalformedCbor => "frame_body_not_cbor",
        Hostile::CarRootNotCommit => "car_root_mismatch",
        Hostile::TruncatedCar => "car_section_length_exceeds_input",
        _ => "unknown hostile kind",
    }
}

fn ops(round: u64) -> Vec<SimOp> {
    let all = [
        SimOp::Create { size_bytes: 300 },
        SimOp::Update {
            pick: round as usize,
            size_bytes: 200,
        },
        SimOp::Delete {
            pick: 3 * round as usize,
        },
    ];
    all[..1 + (round as usize % 3)].to_vec()
}

fn info_frame(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    InfoEventOwned {
        name: name.to_owned(),
        message: None,
    }
    .encode_frame(&mut out);
    out
}

fn error_frame(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    ErrorFrameOwned {
        error: name.to_owned(),
        message: Some("bye".to_owned()),
    }
    .encode_frame(&mut out);
    out
}

fn delta(before: &TailReport, after: &TailReport) -> Vec<(&'static str, u64)> {
    after
        .invalid_by_reason
        .iter()
        .filter_map(|(reason, count)| {
            let was = before.invalid_by_reason.get(reason).copied().unwrap_or(0);
            (*count > was).then_some((*reason, count - was))
        })
        .collect()
}

#[test]
fn honest_events_verify_and_every_hostile_kind_is_caught() {
    let mut checker = Checker::new(CheckerConfig {
        record_events: true,
        ..CheckerConfig::default()
    });
    let mut seq = 0;
    let mut honest = 0;
    let mut hostile = 0;
    for (seed, curve) in [(1u64, Curve::Secp256k1), (2, Curve::P256)] {
        let mut account = SimAccount::new(seed, curve, "pds.test").unwrap();
        checker.set_key(account.did(), &account.public_key());
        for round in 0..12u64 {
            let now = NOW + round * 1_000_000;
            seq += 1;
            let frame = account.commit(&ops(round), now, seq).unwrap();
            let before = checker.report();
            assert_eq!(checker.feed(&frame, now + LATENCY_MICROS), Feed::Done);
            let after = checker.report();
            assert_eq!(
                delta(&before, &after),
                [],
                "honest commit {round} ({curve:?})"
            );
            assert_eq!(after.valid, before.valid + 1);
            honest += 1;
            if round >= 1 {
                let kind = Hostile::ALL[(round as usize - 1) % Hostile::ALL.len()];
                seq += 1;
                let bad = account
                    .hostile_commit(kind, &[SimOp::Create { size_bytes: 100 }], now, seq)
                    .unwrap();
                let before = checker.report();
                checker.feed(&bad, now + LATENCY_MICROS);
                let after = checker.report();
                assert_eq!(
                    delta(&before, &after),
                    [(expected_reason(kind), 1)],
                    "{kind:?} ({curve:?})"
                );
                hostile += 1;
            }
        }
        let now = NOW + 20_000_000;
        for frame in [
            account.sync_frame(now, seq + 1).unwrap(),
            account.identity_frame(Some("new.test"), now, seq + 2),
            account.account_frame(false, Some("takendown"), now, seq + 4),
        ] {
            let before = checker.report();
            let fed = checker.feed(&frame, now + LATENCY_MICROS);
            assert_eq!(delta(&before, &checker.report()), []);
            if let Feed::IdentityChanged(did) = fed {
                assert_eq!(did, account.did());
                // The key is forgotten: the next keyed event asks for it again.
                let next = account.commit(&ops(1), now + 1, seq + 3).unwrap();
                assert_eq!(
                    checker.feed(&next, now + LATENCY_MICROS),
                    Feed::NeedKey(did.clone())
                );
                checker.provide_key(&did, Ok(&account.public_key()));
            }
        }
        seq += 4;
        honest += 4;
    }
    let report = checker.report();
    assert_eq!(report.valid, honest);
    assert_eq!(report.invalid, hostile);
    // Too many ops and malformed CBOR (once per account) do not decode.
    assert_eq!(report.by_type["commit"], 2 * (12 + 11 + 1) - 4);
    assert_eq!(report.by_type["undecodable"], 4);
    assert_eq!(
        (
            report.by_type["sync"],
            report.by_type["identity"],
            report.by_type["account"]
        ),
        (2, 2, 2)
    );
    // Each undecodable frame's seq is unreadable: a gap of one each, nothing else.
    assert_eq!(
        (report.seq.gaps, report.seq.missing, report.seq.duplicates),
        (4, 4, 0)
    );
    assert_eq!(report.rev_order_violations, 2);
    assert_eq!(report.chain_breaks, 0);
    assert_eq!(report.latency.count, report.frames - 4);
    assert!(report.latency.p50_micros >= LATENCY_MICROS);
    assert!(report.latency.max_micros <= LATENCY_MICROS + LATENCY_MICROS / 32);
    let events = report.events.unwrap();
    assert_eq!(events.len() as u64, report.valid + report.invalid - 4);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    common::report(
        "tail checker: honest on both curves + every hostile kind",
        (honest + hostile) as usize,
    );
}

#[test]
fn seq_gaps_duplicates_parking_and_control_frames() {
    let mut checker = Checker::new(CheckerConfig::default());
    let mut alice = SimAccount::new(3, Curve::Secp256k1, "pds.test").unwrap();
    let ghost = SimAccount::new(4, Curve::P256, "pds.test").unwrap();
    let first = alice.commit(&ops(0), NOW, 100).unwrap();
    let second = alice.commit(&ops(1), NOW + 1, 101).unwrap();
    // Unknown key: the first frame asks, the second parks behind it.
    assert_eq!(
        checker.feed(&first, NOW + 10),
        Feed::NeedKey(alice.did().to_owned())
    );
    assert_eq!(checker.feed(&second, NOW + 10), Feed::Done);
    assert_eq!((checker.report().pending, checker.report().valid), (2, 0));
    checker.provide_key(alice.did(), Ok(&alice.public_key()));
    assert_eq!((checker.report().pending, checker.report().valid), (0, 2));
    // A key that cannot be had: its events are invalid with the lookup's reason.
    let orphan = ghost.identity_frame(None, NOW, 102);
    checker.feed(&orphan, NOW + 10);
    let mut ghost = ghost;
    let ghost_commit = ghost.commit(&ops(0), NOW, 105).unwrap();
    assert_eq!(
        checker.feed(&ghost_commit, NOW + 10),
        Feed::NeedKey(ghost.did().to_owned())
    );
    checker.provide_key(ghost.did(), Err("not_found"));
    for seq in [105, 103] {
        checker.feed(&alice.account_frame(true, None, NOW, seq), NOW + 10);
    }
    checker.feed(&alice.identity_frame(None, NOW, 107), NOW + 10);
    checker.feed(&info_frame("OutdatedCursor"), NOW + 10);
    checker.feed(&error_frame("FutureCursor"), NOW + 10);
    checker.feed(b"\xa1not a frame", NOW + 10);
    let report = checker.report();
    assert_eq!(report.seq.first, Some(100));
    assert_eq!(report.seq.last, Some(107));
    assert_eq!((report.seq.gaps, report.seq.missing), (2, 3));
    assert_eq!(report.seq.gap_examples, [105, 107]);
    assert_eq!(
        (report.seq.duplicates, report.seq.duplicate_examples.clone()),
        (2, vec![105, 103])
    );
    assert_eq!(report.invalid_by_reason.get("not_found"), Some(&1));
    assert_eq!(report.info_by_name.get("OutdatedCursor"), Some(&1));
    assert_eq!(report.error_by_name.get("FutureCursor"), Some(&1));
    assert_eq!(report.by_type.get("undecodable"), Some(&1));
    assert_eq!(report.invalid, 2);
    common::report("tail checker: seq, parking, control frames", 9);
}

/// The end-to-end frames: two accounts (both curves), honest commits, sync, identity,
/// account, hostile kinds, an info frame, an injected gap and duplicate.
fn firehose(now: u64) -> (Vec<SimAccount>, Vec<Vec<u8>>, u64) {
    let mut accounts = vec![
        SimAccount::new(11, Curve::Secp256k1, "pds.test").unwrap(),
        SimAccount::new(12, Curve::P256, "pds.test").unwrap(),
    ];
    let mut frames = Vec::new();
    let mut seq = 5;
    let mut hostile = 0;
    for round in 0..6u64 {
        for account in &mut accounts {
            seq += 1;
            frames.push(account.commit(&ops(round), now, seq).unwrap());
            if round >= 2 {
                seq += 1;
                let kind = Hostile::ALL[hostile as usize % Hostile::ALL.len()];
                frames.push(
                    account
                        .hostile_commit(kind, &[SimOp::Create { size_bytes: 50 }], now, seq)
                        .unwrap(),
                );
                hostile += 1;
            }
        }
    }
    for account in &accounts {
        seq += 1;
        frames.push(account.sync_frame(now, seq).unwrap());
        seq += 1;
        frames.push(account.identity_frame(None, now, seq));
        seq += 1;
        frames.push(account.account_frame(true, None, now, seq));
    }
    frames.push(info_frame("OutdatedCursor"));
    seq += 3; // a gap of two
    frames.push(accounts[0].commit(&ops(7), now, seq).unwrap());
    frames.push(accounts[1].account_frame(true, None, now, seq)); // a duplicate
    (accounts, frames, hostile)
}

#[test]
fn run_checks_a_loopback_firehose_end_to_end() {
    for check_threads in [1, 3] {
        end_to_end(check_threads);
    }
}

fn end_to_end(check_threads: usize) {
    let now = now_micros();
    let (accounts, frames, hostile) = firehose(now);
    let plc = HttpStub::start();
    for account in &accounts {
        plc.serve_did(account.did(), &account.public_key());
    }
    let total = frames.len() as u64;
    let server = WsServer::start(frames, true);
    let mut config = TailConfig::new(&server.url(), &plc.url());
    config.cursor = Some(5);
    config.allow_http = true;
    config.idle_timeout = Duration::from_secs(10);
    config.record_events = true;
    config.check_threads = check_threads;
    let report = relay::tail::run(config).unwrap();
    let path = server.handle.join().unwrap();
    assert_eq!(path, "/xrpc/com.atproto.sync.subscribeRepos?cursor=5");
    assert_eq!(report.end, "closed");
    assert_eq!(report.frames, total);
    assert_eq!(report.invalid, hostile, "{:?}", report.invalid_by_reason);
    // Honest: 12 commits + 1 late commit, 2 × (sync, identity, account) + 1 account.
    assert_eq!(
        report.valid,
        12 + 1 + 6 + 1,
        "{:?}",
        report.invalid_by_reason
    );
    assert_eq!(report.info_by_name.get("OutdatedCursor"), Some(&1));
    // The injected gap of two, plus one gap of one per undecodable hostile frame (too
    // many ops, malformed CBOR): their seq cannot be read.
    assert_eq!(
        (report.seq.gaps, report.seq.missing, report.seq.duplicates),
        (3, 4, 1)
    );
    assert_eq!(report.seq.first, Some(6));
    assert!(report.latency.count > 0);
    assert!(
        report.latency.max_micros < 60_000_000,
        "{:?}",
        report.latency
    );
    // Looked up once each; the first account again after its #identity (its late commit).
    assert_eq!(plc.hits(&format!("/{}", accounts[0].did())), 2);
    assert_eq!(plc.hits(&format!("/{}", accounts[1].did())), 1);
    let events = report.events.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.valid).count() as u64,
        report.valid
    );
    println!(
        "{}",
        relay::tail::progress_line(&TailReport {
            events: None,
            ..report
        })
    );
    common::report(
        &format!("tail run over loopback, {check_threads} check threads"),
        total as usize,
    );
}

#[test]
fn run_stops_on_request_and_on_events_max() {
    let plc = HttpStub::start();
    let account = SimAccount::new(21, Curve::Secp256k1, "pds.test").unwrap();
    plc.serve_did(account.did(), &account.public_key());
    let frames: Vec<Vec<u8>> = (1..=5)
        .map(|seq| account.account_frame(true, None, now_micros(), seq))
        .collect();

    let server = WsServer::start(frames.clone(), false);
    let stop = StopHandle::new();
    let mut config = TailConfig::new(&server.url(), &plc.url());
    config.allow_http = true;
    config.stop = stop.clone();
    let runner = std::thread::spawn(move || relay::tail::run(config).unwrap());
    server.sent.recv_timeout(Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop.stop();
    let report = runner.join().unwrap();
    // Stopped well before the 10 s idle time-out; normally after reading all five.
    assert_eq!(report.end, "stopped");
    assert!(report.frames <= 5);
    drop(server);

    let server = WsServer::start(frames, false);
    let mut config = TailConfig::new(&server.url(), &plc.url());
    config.allow_http = true;
    config.events_max = Some(3);
    let report = relay::tail::run(config).unwrap();
    assert_eq!((report.end.as_str(), report.frames), ("events_max", 3));

    let server = WsServer::start(Vec::new(), false);
    let mut config = TailConfig::new(&server.url(), &plc.url());
    config.allow_http = true;
    config.idle_timeout = Duration::from_millis(200);
    let report = relay::tail::run(config).unwrap();
    assert_eq!((report.end.as_str(), report.frames), ("idle_timeout", 0));
    common::report("tail run: stop, events_max, idle time-out", 3);
}

/// Throughput of the checker and of `tail::run` over loopback (a measurement, not an
/// assertion: run with `cargo test --release --test tail -- --ignored --nocapture`).
#[test]
#[ignore]
fn throughput() {
    use relay::tail::Backends;
    for curve in [Curve::Secp256k1, Curve::P256] {
        let mut accounts: Vec<SimAccount> = (0..100)
            .map(|seed| SimAccount::new(1000 + seed, curve, "pds.test").unwrap())
            .collect();
        let mut frames = Vec::new();
        let now = now_micros();
        for round in 0..40u64 {
            for account in &mut accounts {
                let seq = frames.len() as u64 + 1;
                frames.push(account.commit(&ops(round), now, seq).unwrap());
            }
        }
        for backends in [Backends::Reference, Backends::Fast] {
            let mut checker = Checker::new(CheckerConfig {
                backends,
                record_events: false,
            });
            for account in &accounts {
                checker.set_key(account.did(), &account.public_key());
            }
            let started = std::time::Instant::now();
            for frame in &frames {
                checker.feed(frame, now);
            }
            let secs = started.elapsed().as_secs_f64();
            let report = checker.report();
            assert_eq!(report.valid, frames.len() as u64);
            println!(
                "checker {curve:?} {backends:?}: {} commits in {secs:.2} s = {:.0}/s",
                frames.len(),
                frames.len() as f64 / secs
            );
        }
        let plc = HttpStub::start();
        for account in &accounts {
            plc.serve_did(account.did(), &account.public_key());
        }
        for (backends, check_threads) in [
            (Backends::Reference, 1),
            (Backends::Reference, 2),
            (Backends::Fast, 1),
            (Backends::Fast, 2),
        ] {
            let server = WsServer::start(frames.clone(), true);
            let mut config = TailConfig::new(&server.url(), &plc.url());
            config.allow_http = true;
            config.backends = backends;
            config.check_threads = check_threads;
            let started = std::time::Instant::now();
            let report = relay::tail::run(config).unwrap();
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(report.valid, frames.len() as u64);
            println!(
                "tail::run {curve:?} {backends:?} {check_threads} threads: {} commits in {secs:.2} s = {:.0}/s (p99 latency {} µs)",
                frames.len(),
                frames.len() as f64 / secs,
                report.latency.p99_micros
            );
        }
    }
}
