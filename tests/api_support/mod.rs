//! Shared by the `api_*` suites: a relay API server on a glommio executor (127.0.0.1:0)
//! over a state store, a small blocking HTTP client, stores for both backends, fake PDS
//! hosts for requestCrawl, and a checker for the lexicon JSON subset the sync lexicons
//! use (object / required / properties / string / integer / boolean / array / ref),
//! reading the lexicon files in place from the shared fixtures.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
pub mod common;

use relay::admin::{AdminEvent, admin_channel};
use relay::api::server::{self, Router};
use relay::api::xrpc::{self, ApiContext, ApiShared, CrawlRequest, NewHostBudget, crawl_channel};
use relay::state::{self, StateConfig, StateService, Store};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // not every suite reports through it
pub use common::report;

/// How the server under test is configured.
pub struct Options {
    pub admin_token: Option<String>,
    pub allow_private_hosts: bool,
    pub new_hosts_per_day: u64,
    pub admin_queue: usize,
    /// Roots the liveness check trusts (none by default).
    pub tls_roots: Option<rustls::RootCertStore>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            admin_token: Some("s3cret-token".into()),
            allow_private_hosts: true,
            new_hosts_per_day: 50,
            admin_queue: 64,
            tls_roots: None,
        }
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<StateService>,
    pub crawl: flume::Receiver<CrawlRequest>,
    pub admin: flume::Receiver<AdminEvent>,
    stop: Option<flume::Sender<()>>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl Server {
    pub fn start(store: Box<dyn Store>, options: Options) -> Server {
        let state = Arc::new(StateService::start(store).unwrap());
        let (crawl_tx, crawl) = crawl_channel();
        let (admin_tx, admin) = if options.admin_queue == 64 {
            admin_channel()
        } else {
            flume::bounded(options.admin_queue)
        };
        let roots = options
            .tls_roots
            .unwrap_or_else(rustls::RootCertStore::empty);
        let tls = relay::upstream::tls::client_tls_config_with_roots(roots).unwrap();
        let shared = ApiShared {
            state: Arc::clone(&state),
            admin_token: options.admin_token,
            allow_private_hosts: options.allow_private_hosts,
            crawl_requests: crawl_tx,
            admin_events: admin_tx,
            tls: tls.clone(),
            new_hosts: Arc::new(NewHostBudget::new(options.new_hosts_per_day)),
            backfill: Some(
                relay::collections::backfill::BackfillWorker::spawn(
                    Arc::clone(&state),
                    tls.clone(),
                )
                .unwrap(),
            ),
            allow_plaintext: true,
            rejections: Arc::default(),
            consumers: Arc::default(),
            host_limits: Arc::default(),
            default_host_limits: true,
            seq_alerts: Arc::default(),
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = flume::bounded::<()>(1);
        let thread = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("api-test")
            .spawn(move || async move {
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut router = Router::new("test");
                xrpc::register(&mut router, Rc::new(ApiContext::new(shared)));
                let serving = server::serve(listener, Rc::new(router));
                let stopped = async {
                    let _ = stop_rx.recv_async().await;
                };
                futures_lite::future::or(serving, stopped).await;
            })
            .unwrap();
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Server {
            addr,
            state,
            crawl,
            admin,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Runs `f` on the store (seeding, checking) and waits for it.
    pub fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, state::StateError> + Send + 'static,
    ) -> T {
        futures_lite::future::block_on(self.state.call(f)).unwrap()
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        let headers = [("Content-Type", "application/json")];
        request(self.addr, "POST", path, &headers, body.as_bytes())
    }

    pub fn admin_get(&self, path: &str, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        request(self.addr, "GET", path, &[("Authorization", &auth)], b"")
    }

    pub fn admin_post(&self, path: &str, token: &str, body: &str) -> Response {
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        request(self.addr, "POST", path, &headers, body.as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an XRPC error reply with this status and name; returns the body.
    pub fn assert_error(&self, status: u16, name: &str) -> Value {
        let body = self.json();
        assert_eq!(
            (self.status, body["error"].as_str()),
            (status, Some(name)),
            "body {body}"
        );
        assert!(body["message"].is_string(), "message missing: {body}");
        body
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let body = raw[end + 4..].to_vec();
    let response = Response {
        status,
        headers,
        body,
    };
    let declared: usize = response.header("content-length").unwrap().parse().unwrap();
    assert_eq!(declared, response.body.len());
    response
}

// ---- stores ----

/// A store of the named backend: "rocksdb" in a temp dir, "postgres" in a fresh schema
/// of `RELAY_TEST_DATABASE_URL` (None locally without it; a failure in CI without it).
pub struct Backend {
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgSchema>,
}

impl Backend {
    pub fn rocksdb() -> Backend {
        Backend {
            name: "rocksdb",
            _dir: Some(tempfile::tempdir().unwrap()),
            pg: None,
        }
    }

    pub fn postgres() -> Option<Backend> {
        Some(Backend {
            name: "postgres",
            _dir: None,
            pg: Some(PgSchema::create("api")?),
        })
    }

    pub fn open(&self) -> Box<dyn Store> {
        let config = match (&self._dir, &self.pg) {
            (Some(dir), _) => StateConfig {
                data_dir: dir.path().to_path_buf(),
                database_url: None,
            },
            (None, Some(pg)) => StateConfig {
                data_dir: std::env::temp_dir().join("unused-by-postgres"),
                database_url: Some(pg.url()),
            },
            (None, None) => unreachable!(),
        };
        state::open(&config).unwrap()
    }
}

use common::pg::TestSchema as PgSchema;

// ---- fake PDS hosts ----

/// A loopback HTTP server answering every request with one canned response, until the
/// test drops it (or 60 s pass).
pub struct FakeHost {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHost {
    pub fn start(status: u16, server: Option<&str>, body: &str) -> FakeHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n");
        if let Some(server) = server {
            head.push_str(&format!("Server: {server}\r\n"));
        }
        let reply = format!(
            "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeHost {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// A PDS: 200 with a `describeServer` body.
    pub fn pds() -> FakeHost {
        FakeHost::start(
            200,
            Some("bluesky-pds"),
            r#"{"did":"did:web:pds.test","availableUserDomains":[".test"]}"#,
        )
    }

    pub fn hostname(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback HTTPS PDS for `localhost:<port>` with a fresh self-signed certificate:
/// answers `describeServer` like [`FakeHost::pds`], one connection at a time, until
/// dropped (or 60 s pass).
pub struct FakeTlsHost {
    pub addr: SocketAddr,
    /// The certificate's root, for the client to trust.
    pub root: rustls::pki_types::CertificateDer<'static>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeTlsHost {
    pub fn start() -> FakeTlsHost {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let root = certified.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![root.clone()], key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let body = r#"{"did":"did:web:tls.test","availableUserDomains":[".test"]}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let connection = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if buf.ends_with(b"\r\n\r\n") {
                    let _ = tls.write_all(reply.as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        FakeTlsHost {
            addr,
            root,
            stop,
            thread: Some(thread),
        }
    }

    pub fn hostname(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        roots
    }
}

impl Drop for FakeTlsHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- lexicon checker ----

/// The sync lexicons, read in place.
pub struct Lexicons {
    dir: std::path::PathBuf,
}

impl Lexicons {
    pub fn new() -> Lexicons {
        Lexicons {
            dir: common::fixture("atproto-lexicons/lexicons"),
        }
    }

    fn doc(&self, nsid: &str) -> Value {
        let path = self.dir.join(nsid.replace('.', "/") + ".json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// Asserts `value` is valid output of `nsid` (its `main.output.schema`).
    pub fn check_output(&self, nsid: &str, value: &Value) {
        let doc = self.doc(nsid);
        let schema = doc["defs"]["main"]["output"]["schema"].clone();
        assert!(schema.is_object(), "{nsid} has no output schema");
        let mut checker = Checker {
            lex: self,
            path: Vec::new(),
        };
        checker.check(nsid, &schema, value);
    }

    /// Asserts `name` is an error `nsid` declares (or a generic XRPC error).
    pub fn check_error(&self, nsid: &str, name: &str) {
        const GENERIC: [&str; 5] = [
            "InvalidRequest",
            "RateLimitExceeded",
            "ServiceUnavailable",
            "AuthenticationRequired",
            "Forbidden",
        ];
        let doc = self.doc(nsid);
        let declared = doc["defs"]["main"]["errors"]
            .as_array()
            .map(|errors| errors.iter().any(|e| e["name"] == name))
            .unwrap_or(false);
        assert!(
            declared || GENERIC.contains(&name),
            "{nsid}: undeclared error {name}"
        );
    }
}

struct Checker<'a> {
    lex: &'a Lexicons,
    path: Vec<String>,
}

impl Checker<'_> {
    fn fail(&self, what: &str, value: &Value) -> ! {
        panic!("at {}: {what}; got {value}", self.path.join("."))
    }

    fn check(&mut self, nsid: &str, schema: &Value, value: &Value) {
        match schema["type"].as_str() {
            Some("object") => self.object(nsid, schema, value),
            Some("string") => self.string(schema, value),
            Some("integer") => {
                let Some(n) = value.as_i64() else {
                    self.fail("expected integer", value)
                };
                if let Some(min) = schema["minimum"].as_i64() {
                    assert!(n >= min, "below minimum");
                }
                if let Some(max) = schema["maximum"].as_i64() {
                    assert!(n <= max, "above maximum");
                }
            }
            Some("boolean") => {
                if !value.is_boolean() {
                    self.fail("expected boolean", value)
                }
            }
            Some("array") => {
                let Some(items) = value.as_array() else {
                    self.fail("expected array", value)
                };
                for (i, item) in items.iter().enumerate() {
                    self.path.push(i.to_string());
                    self.check(nsid, &schema["items"], item);
                    self.path.pop();
                }
            }
            Some("ref") => {
                let (target_nsid, def) = resolve_ref(nsid, schema["ref"].as_str().unwrap());
                let doc = self.lex.doc(&target_nsid);
                let target = doc["defs"][&def].clone();
                assert!(target.is_object(), "unresolved ref {target_nsid}#{def}");
                self.check(&target_nsid, &target, value);
            }
            other => panic!("lexicon type {other:?} is outside the checked subset"),
        }
    }

    fn object(&mut self, nsid: &str, schema: &Value, value: &Value) {
        let Some(map) = value.as_object() else {
            self.fail("expected object", value)
        };
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !map.contains_key(name) {
                self.fail(&format!("required field {name} missing"), value);
            }
        }
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, field) in map {
            // Open objects: fields the lexicon does not name are allowed, but the relay
            // is expected to emit only named ones; flag any to catch typos.
            let Some(field_schema) = properties.get(name) else {
                self.fail(&format!("field {name} not in the lexicon"), value)
            };
            self.path.push(name.clone());
            self.check(nsid, field_schema, field);
            self.path.pop();
        }
    }

    fn string(&self, schema: &Value, value: &Value) {
        let Some(text) = value.as_str() else {
            self.fail("expected string", value)
        };
        let ok = match schema["format"].as_str() {
            None => true,
            Some("did") => relay::syntax::Did::parse(text).is_ok(),
            Some("tid") => relay::syntax::Tid::parse(text).is_ok(),
            Some("cid") => relay::frame::cid::Cid::parse_str(text).is_ok(),
            Some("nsid") => relay::syntax::Nsid::parse(text).is_ok(),
            Some(other) => panic!("string format {other} is outside the checked subset"),
        };
        if !ok {
            self.fail("string does not match its format", value);
        }
    }
}

fn resolve_ref(nsid: &str, reference: &str) -> (String, String) {
    match reference.split_once('#') {
        Some(("", def)) => (nsid.to_owned(), def.to_owned()),
        Some((other, def)) => (other.to_owned(), def.to_owned()),
        None => (reference.to_owned(), "main".to_owned()),
    }
}
