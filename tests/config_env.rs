//! Every flag of `relay serve`, `sim`, `tail` and `bench` has a `RELAY_…` environment
//! twin, shown in `--help` and listed in docs/specs/config.md; a set variable is parsed.

use clap::{Args, Command};
use std::sync::Mutex;

/// Environment variables are process-wide: the test that sets one and the tests that read
/// them (clap reads them while rendering help) take turns.
static ENV_LOCK: Mutex<()> = Mutex::new(());

fn commands() -> Vec<(&'static str, &'static str, Command)> {
    vec![
        (
            "serve",
            "RELAY_",
            relay::config::ServeArgs::augment_args(Command::new("serve")),
        ),
        (
            "sim",
            "RELAY_SIM_",
            relay::sim::cli::SimArgs::augment_args(Command::new("sim")),
        ),
        (
            "tail",
            "RELAY_TAIL_",
            relay::tail::cli::TailArgs::augment_args(Command::new("tail")),
        ),
        (
            "bench",
            "RELAY_BENCH_",
            relay::bench::BenchArgs::augment_args(Command::new("bench")),
        ),
    ]
}

/// The `## \`relay <name>\`` section of docs/specs/config.md.
fn doc_section(doc: &str, name: &str) -> String {
    let heading = format!("## `relay {name}`");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("config.md lacks {heading}"));
    let rest = &doc[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn every_flag_has_a_documented_env_twin() {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/specs/config.md");
    let doc = std::fs::read_to_string(doc_path).expect("read docs/specs/config.md");
    let mut seen = std::collections::HashSet::new();
    for (name, prefix, mut cmd) in commands() {
        cmd.build();
        let help = cmd.render_long_help().to_string();
        let section = doc_section(&doc, name);
        let mut flags = 0;
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            flags += 1;
            let long = arg
                .get_long()
                .unwrap_or_else(|| panic!("{name}: {id} has no --long"));
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("relay {name} --{long} has no env twin"))
                .to_string_lossy()
                .into_owned();
            assert!(
                env.starts_with(prefix),
                "relay {name} --{long}: {env} lacks {prefix}"
            );
            assert!(seen.insert(env.clone()), "{env} is used twice");
            assert!(
                help.contains(&format!("[env: {env}")),
                "relay {name} --help does not show [env: {env}]"
            );
            assert!(
                section.contains(&format!("`--{long}")),
                "config.md `relay {name}` lacks --{long}"
            );
            assert!(
                section.contains(&format!("`{env}`")),
                "config.md `relay {name}` lacks {env}"
            );
        }
        assert!(flags > 0, "relay {name} has no flags");
    }
}

#[test]
// Setting a variable is `unsafe` in edition 2024 (other threads may read the environment);
// ENV_LOCK serialises the tests of this binary that do.
#[allow(unsafe_code)]
fn env_twin_is_parsed_and_the_flag_wins() {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let serve = || relay::config::ServeArgs::augment_args(Command::new("serve"));
    // SAFETY: set and removed under ENV_LOCK; no other test of this binary touches the
    // environment outside it.
    unsafe {
        std::env::set_var("RELAY_REPLAY_WINDOW_SECS", "3600");
        std::env::set_var("RELAY_UPSTREAMS", "wss://a.example,wss://b.example");
        std::env::set_var("RELAY_ALLOW_PLAINTEXT", "true");
    }
    let from_env = serve().try_get_matches_from(["serve"]);
    let from_flag = serve().try_get_matches_from(["serve", "--replay-window-secs", "60"]);
    unsafe {
        std::env::remove_var("RELAY_REPLAY_WINDOW_SECS");
        std::env::remove_var("RELAY_UPSTREAMS");
        std::env::remove_var("RELAY_ALLOW_PLAINTEXT");
    }
    use clap::FromArgMatches;
    let args = relay::config::ServeArgs::from_arg_matches(&from_env.expect("parse env"))
        .expect("serve args from env");
    assert_eq!(args.replay_window_secs, 3600);
    assert_eq!(args.upstreams, vec!["wss://a.example", "wss://b.example"]);
    assert!(args.allow_plaintext);
    let args = relay::config::ServeArgs::from_arg_matches(&from_flag.expect("parse flag"))
        .expect("serve args from flag");
    assert_eq!(
        args.replay_window_secs, 60,
        "the flag wins over the variable"
    );
}
