//! Start-up host list: `--bootstrap-relay URL` imports the hosts another relay lists in
//! `com.atproto.sync.listHosts`, and every host the store holds (crawled before, imported,
//! or named by `--upstream` in an earlier run) is subscribed again at start.
//!
//! Owns: paging the source's `listHosts`, what of it is believed, and the stored-host scan.
//! Must not: run once the executors run (it blocks its caller on the network and the
//! store: it runs in `serve::start` before any core starts).
//!
//! What is believed of the source: hostnames only. Each one passes the same syntax and
//! SSRF check as `requestCrawl` (`api::xrpc::parse_hostname`: no private, loopback or
//! link-local names or ports unless `--allow-private-hosts`), and domain bans; hosts the
//! source lists as `banned` are skipped (an operator elsewhere refused them; ours may
//! still requestCrawl them). The source's `seq` is not adopted: a host new here starts
//! from `--new-host-cursor`, like a crawled one. A source that cannot be reached costs a
//! warning, not the start: the relay runs with the hosts it has.
//!
//! Bounds: `BOOTSTRAP_HOSTS_MAX` hosts, pages of 1,000 (the lexicon's maximum), each
//! fetch `BOOTSTRAP_TIMEOUT_SECS`.

use crate::api::http::{Url, percent_encode};
use crate::api::xrpc::{domain_matches, parse_hostname};
use crate::config::limits::{
    BOOTSTRAP_HOSTS_MAX, BOOTSTRAP_RESPONSE_BYTES_MAX, BOOTSTRAP_TIMEOUT_SECS,
    STATE_LIST_PAGE_ENTRIES_MAX,
};
use crate::state::{HostRecord, HostStatus, StateError, StateService};
use futures_lite::future::block_on;
use std::sync::Arc;
use std::time::Duration;

/// One page of a source's `listHosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsPage {
    /// Hostnames, as listed, of hosts not listed as banned.
    pub hostnames: Vec<String>,
    /// Entries without a string `hostname`, or listed as banned.
    pub skipped: usize,
    /// The next page's cursor (`None`: last page).
    pub cursor: Option<String>,
}

/// Decode a `listHosts` output body (sans IO); `None` when it is not one.
pub fn parse_hosts_page(body: &[u8]) -> Option<HostsPage> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let hosts = value.get("hosts")?.as_array()?;
    let cursor = match value.get("cursor") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(c)) if c.is_empty() => None,
        Some(serde_json::Value::String(c)) => Some(c.clone()),
        Some(_) => return None,
    };
    let mut page = HostsPage {
        hostnames: Vec::with_capacity(hosts.len()),
        skipped: 0,
        cursor,
    };
    for host in hosts {
        let banned = host.get("status").and_then(serde_json::Value::as_str) == Some("banned");
        match host.get("hostname").and_then(serde_json::Value::as_str) {
            Some(name) if !banned => page.hostnames.push(name.to_owned()),
            _ => page.skipped += 1,
        }
    }
    Some(page)
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Hosts stored (new or already known).
    pub stored: usize,
    /// Hosts refused here: bad or private names, banned domains, banned at the source.
    pub refused: usize,
    /// Pages read.
    pub pages: usize,
}

/// Why an import stopped early.
#[derive(Debug)]
pub enum ImportError {
    /// The source URL is not an http(s) base URL.
    BadSource,
    /// A page could not be fetched.
    Fetch(crate::identity::transport::FetchError),
    /// The source answered another status or a body that is not `listHosts` output.
    Answer(&'static str),
    /// The store failed.
    State(StateError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::BadSource => f.write_str("not an http(s) base URL"),
            ImportError::Fetch(e) => write!(f, "{e}"),
            ImportError::Answer(what) => f.write_str(what),
            ImportError::State(e) => write!(f, "state store: {e}"),
        }
    }
}

/// Import the hosts `source` lists into the store. Whatever was stored before an error
/// stays stored; the report counts it.
pub fn import_hosts(
    source: &str,
    state: &StateService,
    tls: &Arc<rustls::ClientConfig>,
    allow_private: bool,
    allow_http: bool,
) -> (ImportReport, Result<(), ImportError>) {
    let mut report = ImportReport::default();
    let result = import_pages(source, state, tls, allow_private, allow_http, &mut report);
    (report, result)
}

fn import_pages(
    source: &str,
    state: &StateService,
    tls: &Arc<rustls::ClientConfig>,
    allow_private: bool,
    allow_http: bool,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let base = crate::collections::backfill::parse_source(source, allow_http)
        .map_err(|_| ImportError::BadSource)?;
    let base = Url::parse(&base).map_err(|_| ImportError::BadSource)?;
    let bans =
        block_on(state.call(|store| store.list_domain_bans())).map_err(ImportError::State)?;
    let mut cursor: Option<String> = None;
    while report.stored + report.refused < BOOTSTRAP_HOSTS_MAX {
        let page = fetch(&base, cursor.as_deref(), tls)?;
        report.pages += 1;
        report.refused += page.skipped;
        let mut admitted = Vec::with_capacity(page.hostnames.len());
        for name in &page.hostnames {
            match parse_hostname(name, allow_private) {
                Ok(host) if !bans.iter().any(|d| domain_matches(&host.host, d)) => {
                    admitted.push(host.hostname());
                }
                _ => report.refused += 1,
            }
        }
        report.stored += store_hosts(state, admitted)?;
        match page.cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(()),
        }
    }
    log::warn!("bootstrap: stopped at {BOOTSTRAP_HOSTS_MAX} hosts (BOOTSTRAP_HOSTS_MAX)");
    Ok(())
}

fn fetch(
    base: &Url,
    cursor: Option<&str>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<HostsPage, ImportError> {
    let mut path = "/xrpc/com.atproto.sync.listHosts?limit=1000".to_owned();
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={}", percent_encode(cursor)));
    }
    let response = crate::identity::transport::get(
        &base.with_path(&path),
        "application/json",
        BOOTSTRAP_RESPONSE_BYTES_MAX,
        Duration::from_secs(BOOTSTRAP_TIMEOUT_SECS),
        tls,
    )
    .map_err(ImportError::Fetch)?;
    if response.status != 200 {
        return Err(ImportError::Answer("listHosts did not answer 200"));
    }
    parse_hosts_page(&response.body).ok_or(ImportError::Answer("not a listHosts output"))
}

fn store_hosts(state: &StateService, hostnames: Vec<String>) -> Result<usize, ImportError> {
    let now_ms = crate::api::xrpc::now_ms();
    block_on(state.call(move |store| {
        for hostname in &hostnames {
            store.upsert_host(hostname, now_ms)?;
        }
        Ok(hostnames.len())
    }))
    .map_err(ImportError::State)
}

/// Every stored host an operator has not banned, in id order.
pub fn stored_hosts(state: &StateService) -> Result<Vec<HostRecord>, StateError> {
    let mut hosts = Vec::new();
    let mut after = 0;
    loop {
        let page = block_on(
            state.call(move |store| store.list_hosts(after, STATE_LIST_PAGE_ENTRIES_MAX)),
        )?;
        let Some(last) = page.last() else {
            return Ok(hosts);
        };
        after = last.id;
        hosts.extend(page.into_iter().filter(|h| h.status != HostStatus::Banned));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_pages_keep_named_unbanned_hosts() {
        let body = br#"{"hosts":[{"hostname":"pds.example","seq":5,"status":"active"},{"hostname":"bad.example","status":"banned"},{"seq":1},{"hostname":"idle.example","status":"idle"}],"cursor":"17"}"#;
        assert_eq!(
            parse_hosts_page(body),
            Some(HostsPage {
                hostnames: vec!["pds.example".to_owned(), "idle.example".to_owned()],
                skipped: 2,
                cursor: Some("17".to_owned()),
            })
        );
        assert_eq!(
            parse_hosts_page(br#"{"hosts":[]}"#).map(|p| p.cursor),
            Some(None)
        );
        assert_eq!(parse_hosts_page(br#"{"cursor":"1"}"#), None);
        assert_eq!(parse_hosts_page(b"<html>"), None);
    }
}
