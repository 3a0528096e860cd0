//! The Grafana dashboard in deploy/ is built on exactly the metric names of
//! docs/specs/metrics.md: every `relay_*` name a panel queries is documented there (a
//! renamed or removed metric cannot leave a dashboard panel silently empty), and the
//! JSON is a dashboard Grafana can import (panels with unique ids and grid positions).

use std::collections::BTreeSet;

fn project_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `relay_…` identifiers in `text`, with a summary's or histogram's series suffix removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("relay_") {
        let start = i + found;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - start);
        if before_ok {
            let name = &text[start..end];
            let base = ["_sum", "_count", "_bucket"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(base.to_owned());
        }
        i = end;
    }
    names
}

#[test]
fn every_dashboard_metric_is_documented() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&project_file("deploy/grafana-dashboard.json")).unwrap();
    let documented = metric_names(&project_file("docs/specs/metrics.md"));
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut queried = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate id: {panel}"
        );
        assert!(panel["gridPos"]["w"].as_u64().unwrap() > 0, "{panel}");
        for target in panel["targets"].as_array().into_iter().flatten() {
            queried.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    let missing: Vec<_> = queried.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "queried by the dashboard, not in metrics.md: {missing:?}"
    );
    println!(
        "suite deploy dashboard: {} panels query {} metrics, all in docs/specs/metrics.md",
        panels.len(),
        queried.len()
    );
}
