//! A clean restart keeps what the relay knows, on both stores (RocksDB in the data
//! directory; PostgreSQL in a fresh schema of `RELAY_TEST_DATABASE_URL`): hosts, their
//! upstream cursors (nothing is relayed twice and nothing is missed across the restart),
//! account state (`getLatestCommit` keeps the rev) and the identity cache — the second
//! run points at a dead PLC directory, so every frame after the restart is verified with
//! keys from the saved cache alone — and names no `--upstream`: it subscribes to the hosts
//! it has stored, from their stored cursors.

mod common;

use relay::sim::fleet::{Fleet, FleetConfig, FleetHandle, KindMix};
use relay::tail::{TailConfig, run as run_tail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `relay serve` as its own process, as an operator runs it; a clean stop is SIGTERM.
struct RelayProcess {
    child: Child,
    listen: SocketAddr,
    metrics_listen: SocketAddr,
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl RelayProcess {
    fn start(
        fleet: &FleetHandle,
        data_dir: &std::path::Path,
        plc_url: &str,
        database_url: Option<&str>,
        upstreams: bool,
    ) -> RelayProcess {
        let (listen, metrics_listen) = (free_port(), free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_relay"));
        command
            .args([
                "serve",
                "--cores",
                "1",
                "--allow-plaintext",
                "--new-host-cursor",
                "0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &listen.to_string()])
            .args(["--metrics-listen", &metrics_listen.to_string()])
            .args(["--plc-url", plc_url])
            .env("RELAY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        if upstreams {
            command.args(["--upstream", &fleet.host_urls().join(",")]);
        } else {
            // The stored hosts are IP literals: only private-hosts mode subscribes to them
            // again (as ws://) without their `--upstream`.
            command.arg("--allow-private-hosts");
        }
        let relay = RelayProcess {
            child: command.spawn().expect("relay starts"),
            listen,
            metrics_listen,
        };
        wait_for("the relay to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(listen).is_ok()
                && std::net::TcpStream::connect(metrics_listen).is_ok()
        });
        relay
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    common::serve::get_json(addr, path, None)
}

/// hostname → upstream seq, from `listHosts`.
fn host_cursors(addr: SocketAddr) -> BTreeMap<String, u64> {
    let (status, body) = get(addr, "/xrpc/com.atproto.sync.listHosts?limit=1000");
    assert_eq!(status, 200, "listHosts: {body}");
    body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["hostname"].as_str().unwrap().to_owned(),
                h["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn latest_rev(addr: SocketAddr, did: &str) -> Option<String> {
    let (status, body) = get(
        addr,
        &format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"),
    );
    (status == 200).then(|| body["rev"].as_str().unwrap().to_owned())
}

fn sequenced(metrics: SocketAddr) -> u64 {
    common::serve::scrape(metrics)
        .iter()
        .filter(|((name, _), _)| name == "relay_sequencer_frames_total")
        .map(|(_, v)| *v)
        .sum()
}

fn rejections(metrics: SocketAddr) -> BTreeMap<String, u64> {
    common::serve::scrape(metrics)
        .into_iter()
        .filter(|((name, _), _)| name == "relay_verify_rejections_total")
        .map(|((_, reason), v)| (reason, v))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn gauge(metrics: SocketAddr, name: &str) -> u64 {
    common::serve::scrape(metrics)
        .iter()
        .filter(|((n, _), _)| n == name)
        .map(|(_, v)| *v)
        .sum()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One test at a time: each runs a fleet and a relay process on the 2-core machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn restart_keeps_state(name: &str, database_url: Option<String>) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let fleet = Fleet::start(FleetConfig {
        hosts: 3,
        accounts_per_host: 4,
        events_per_sec: 150,
        event_limit: Some(1_500),
        did_web_share: 0.0,
        // Commits only: an `#identity` would purge a key the second run cannot look up.
        kind_mix: KindMix {
            commit: 1.0,
            sync: 0.0,
            identity: 0.0,
            account: 0.0,
        },
        seed: 77,
        ..FleetConfig::default()
    })
    .unwrap();
    let dir = common::serve::temp_dir(&format!("restart-{name}"));
    let accounts: Vec<String> = fleet.accounts().into_iter().map(|a| a.did).collect();

    // First run: until every account has a commit and some hundreds are relayed.
    let relay = RelayProcess::start(
        &fleet,
        &dir,
        &fleet.plc_url(),
        database_url.as_deref(),
        true,
    );
    wait_for(
        "every account's first commit",
        Duration::from_secs(60),
        || {
            sequenced(relay.metrics_listen) >= 300
                && accounts
                    .iter()
                    .all(|did| latest_rev(relay.listen, did).is_some())
        },
    );
    let before_hosts = host_cursors(relay.listen);
    relay.stop();

    // Second run: same data, a dead PLC directory.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_plc = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let relay = RelayProcess::start(&fleet, &dir, &dead_plc, database_url.as_deref(), false);
    let after_hosts = host_cursors(relay.listen);
    assert_eq!(
        after_hosts.keys().collect::<Vec<_>>(),
        before_hosts.keys().collect::<Vec<_>>(),
        "the same hosts after the restart"
    );
    for (host, seq) in &before_hosts {
        assert!(
            after_hosts[host] >= *seq,
            "{host}: cursor kept ({seq} → {})",
            after_hosts[host]
        );
    }
    for did in &accounts {
        assert!(
            latest_rev(relay.listen, did).is_some(),
            "{did}: account state kept"
        );
    }
    assert!(
        gauge(relay.metrics_listen, "relay_identity_cache_loaded_entries") >= accounts.len() as u64,
        "the identity cache was loaded warm"
    );
    assert!(fleet.wait_until_emitted(Duration::from_secs(60)));
    let expected = fleet.counters().valid;

    // Every valid event exactly once across both runs, verified again by a consumer.
    let mut config = TailConfig::new(&format!("ws://{}", relay.listen), &fleet.plc_url());
    config.cursor = Some(0);
    config.allow_http = true;
    config.events_max = Some(expected);
    config.idle_timeout = Duration::from_secs(20);
    config.duration = Some(Duration::from_secs(120));
    let report = run_tail(config).unwrap();
    assert_eq!(report.invalid, 0, "{:?}", report.invalid_by_reason);
    assert_eq!(
        report.valid,
        expected,
        "every valid event once across the restart; relay rejections {:?}",
        rejections(relay.metrics_listen)
    );
    assert_eq!(report.seq.gaps, 0);
    assert_eq!(report.seq.duplicates, 0);
    assert_eq!(report.rev_order_violations, 0);
    assert_eq!(
        report.seq.last,
        Some(expected),
        "seqs dense: nothing relayed twice"
    );
    // The only refusal allowed: a frame fetched again because its host cursor was saved
    // a moment before the stop (the cursor trails what the log made durable), refused as
    // a replay. It is a duplicate kept out, not a loss: the consumer saw every event once.
    let refused = rejections(relay.metrics_listen);
    assert!(
        refused.keys().all(|reason| reason == "rev_not_newer"),
        "no frame refused for want of an identity (the cache was warm): {refused:?}"
    );
    println!(
        "suite serve restart ({name}): {} hosts, {} accounts, {expected} events once across a restart with a dead PLC directory, refetched duplicates refused {refused:?}",
        before_hosts.len(),
        accounts.len()
    );
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_keeps_hosts_cursors_accounts_and_identities_on_rocksdb() {
    restart_keeps_state("rocksdb", None);
}

#[test]
fn a_restart_keeps_hosts_cursors_accounts_and_identities_on_postgres() {
    let Some(schema) = common::pg::TestSchema::create("restart") else {
        return;
    };
    restart_keeps_state("postgres", Some(schema.url()));
}
