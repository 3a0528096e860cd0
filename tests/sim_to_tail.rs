//! The fleet against the checking consumer directly: `relay tail`'s library subscribes to
//! one simulated host and must verify every valid event the host emitted and detect every
//! hostile commit with its own checks (reference signature backends, its own MST
//! inversion), independently of the relay.

use relay::sim::fleet::{Fleet, FleetConfig};
use relay::sim::hostile::HostileMode;
use relay::tail::{TailConfig, run as run_tail};
use std::time::Duration;

#[test]
fn the_consumer_verifies_every_valid_event_and_detects_every_hostile_commit() {
    let modes = vec![
        HostileMode::BadSignature,
        HostileMode::RotatedKey,
        HostileMode::WrongPrevData,
        HostileMode::OpsDoNotInvert,
        HostileMode::RevRollback,
        HostileMode::FutureRev,
        HostileMode::TooManyOps,
        HostileMode::MalformedCbor,
        HostileMode::TruncatedCar,
        HostileMode::CarRootNotCommit,
    ];
    let fleet = Fleet::start(FleetConfig {
        hosts: 1,
        accounts_per_host: 12,
        events_per_sec: 2_000,
        event_limit: Some(1_200),
        hostile_modes: modes.clone(),
        hostile_share: 0.2,
        seed: 5,
        ..FleetConfig::default()
    })
    .unwrap();
    assert!(fleet.wait_until_emitted(Duration::from_secs(60)));
    let counters = fleet.counters();
    let hostile: u64 = modes.iter().map(|m| counters.hostile_of(*m)).sum();
    assert!(hostile > 0 && counters.valid > 0);

    let mut config = TailConfig::new(&fleet.host_urls()[0], &fleet.plc_url());
    config.cursor = Some(0);
    config.allow_http = true;
    config.events_max = Some(counters.emitted);
    config.idle_timeout = Duration::from_secs(15);
    let report = run_tail(config).unwrap();
    assert_eq!(
        report.valid, counters.valid,
        "every valid event verifies: {:?}",
        report.invalid_by_reason
    );
    assert_eq!(
        report.invalid, hostile,
        "every hostile commit detected: {:?} vs {counters:?}",
        report.invalid_by_reason
    );
    println!(
        "suite sim → tail: {} valid verified, {hostile} hostile detected ({:?})",
        report.valid, report.invalid_by_reason
    );
    fleet.stop();
}
