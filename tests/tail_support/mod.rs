//! Loopback servers for the identity and tail suites: a tiny HTTP server serving DID
//! documents (a PLC directory / did:web stub) and a one-connection WebSocket firehose.
//! Both bind 127.0.0.1 port 0 and stop by themselves after `SERVER_LIFETIME`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use relay::frame::ws::{self, Opcode, WS_HEADER_BYTES_MAX};
use relay::identity::key::PublicKey;

/// How long a stub server lives at most.
pub const SERVER_LIFETIME: Duration = Duration::from_secs(60);

/// A canned response.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

/// The HTTP stub: routes by path, counts hits, reports each request on a channel.
pub struct HttpStub {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
    requests: Mutex<Receiver<String>>,
}

impl HttpStub {
    pub fn start() -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, requests) = channel();
        {
            let (routes, hits, stop) = (routes.clone(), hits.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, routes, hits, stop, sender));
        }
        HttpStub {
            port,
            routes,
            hits,
            stop,
            requests: Mutex::new(requests),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn route(&self, path: &str, status: u16, body: &[u8], delay: Duration) {
        self.routes.lock().unwrap().insert(
            path.to_owned(),
            Route {
                status,
                body: body.to_vec(),
                delay,
            },
        );
    }

    /// Serve the DID document of `did` with `key` at `/{did}` (PLC style).
    pub fn serve_did(&self, did: &str, key: &PublicKey) {
        self.route(
            &format!("/{did}"),
            200,
            did_document(did, key).as_bytes(),
            Duration::ZERO,
        );
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Wait for the next request's path (bounded).
    pub fn next_request(&self) -> String {
        self.requests
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10))
            .expect("a request within 10 s")
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A DID document publishing `key` as `#atproto`.
pub fn did_document(did: &str, key: &PublicKey) -> String {
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": [format!("at://{}.test", &did[8..16])],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key.to_multikey(),
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "http://127.0.0.1:1",
        }],
    })
    .to_string()
}

fn accept_loop(
    listener: TcpListener,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
    sender: Sender<String>,
) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < SERVER_LIFETIME {
        match listener.accept() {
            Ok((stream, _)) => {
                let (routes, hits, sender) = (routes.clone(), hits.clone(), sender.clone());
                std::thread::spawn(move || serve_one(stream, &routes, &hits, &sender));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    hits: &Mutex<HashMap<String, usize>>,
    sender: &Sender<String>,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let head = read_head(&mut stream);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let _ = sender.send(path.clone());
    let route = routes.lock().unwrap().get(&path).cloned().unwrap_or(Route {
        status: 404,
        body: b"{\"error\":\"NotFound\"}".to_vec(),
        delay: Duration::ZERO,
    });
    std::thread::sleep(route.delay);
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        route.status,
        route.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&route.body);
}

fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A WebSocket server for one client: upgrades, sends `frames` as binary messages
/// (optionally a ping first and the large ones fragmented), then a close. Returns the
/// port and the request path the client asked for.
pub struct WsServer {
    pub port: u16,
    pub handle: JoinHandle<String>,
    /// Signalled once every frame was written.
    pub sent: Receiver<()>,
}

impl WsServer {
    pub fn start(frames: Vec<Vec<u8>>, close_at_end: bool) -> WsServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (sent_sender, sent) = channel();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(_) if started.elapsed() < SERVER_LIFETIME => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => panic!("no client: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let head = read_head(&mut stream);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            let key = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("sec-websocket-key")
                        .then(|| value.trim().to_owned())
                })
                .expect("client key");
            stream
                .write_all(ws::server_response(&key, "tail-test").as_bytes())
                .unwrap();
            send(&mut stream, true, Opcode::Ping, b"hi");
            for (index, frame) in frames.iter().enumerate() {
                if index % 7 == 3 && frame.len() > 10 {
                    // Fragment some messages to exercise reassembly.
                    let (a, b) = frame.split_at(frame.len() / 2);
                    send(&mut stream, false, Opcode::Binary, a);
                    send(&mut stream, true, Opcode::Continuation, b);
                } else {
                    send(&mut stream, true, Opcode::Binary, frame);
                }
            }
            let _ = sent_sender.send(());
            if close_at_end {
                send(&mut stream, true, Opcode::Close, &1000u16.to_be_bytes());
            }
            // Drain what the client sends (pong, close echo) until it hangs up.
            let mut sink = [0u8; 1024];
            while let Ok(n) = stream.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            path
        });
        WsServer { port, handle, sent }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

fn send(stream: &mut TcpStream, fin: bool, opcode: Opcode, payload: &[u8]) {
    let mut head = [0u8; WS_HEADER_BYTES_MAX];
    let len = ws::encode_header(fin, opcode, payload.len() as u64, None, &mut head);
    stream.write_all(&head[..len]).unwrap();
    stream.write_all(payload).unwrap();
}
