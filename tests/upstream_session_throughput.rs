//! Throughput of one upstream session, client and in-test server on the same glommio
//! executor (one core), loopback: 1 KiB binary frames over ws:// and wss://. A
//! measurement, not an assertion (`#[ignore]`; run in release):
//!
//! `cargo test --release --test upstream_session_throughput -- --ignored --nocapture`
#![cfg(feature = "server")]

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::LocalExecutorBuilder;
use glommio::channels::local_channel;
use glommio::net::TcpListener;
use relay::frame::ws::{self, Opcode};
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};
use relay::upstream::session::{SessionControl, SessionLimits, run_session};
use relay::upstream::target::{HostId, HostTarget};
use relay::upstream::tls::client_tls_config_with_roots;
use rustls::RootCertStore;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Frames per run (`RELAY_BENCH_FRAMES` overrides; a multiple of `BATCH`).
const FRAMES_DEFAULT: usize = 409_600;
const FRAME_BYTES: usize = 1024;
/// Frames per server write.
const BATCH: usize = 256;

async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned();
    let response = ws::server_response(&key, "bench-pds");
    stream.write_all(response.as_bytes()).await.unwrap();
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    upgrade(&mut stream).await;
    let mut header = [0u8; ws::WS_HEADER_BYTES_MAX];
    let n = ws::encode_header(true, Opcode::Binary, FRAME_BYTES as u64, None, &mut header);
    let mut batch = Vec::new();
    for i in 0..BATCH {
        batch.extend_from_slice(&header[..n]);
        batch.extend(std::iter::repeat_n(i as u8, FRAME_BYTES));
    }
    for _ in 0..frame_count() / BATCH {
        stream.write_all(&batch).await.unwrap();
    }
    stream.flush().await.unwrap();
    let mut rest = [0u8; 64];
    let _ = stream.read(&mut rest).await;
}

fn frame_count() -> usize {
    std::env::var("RELAY_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FRAMES_DEFAULT)
}

fn measure(tls: bool) {
    LocalExecutorBuilder::default()
        .make()
        .unwrap()
        .run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let (client_tls, acceptor) = if tls {
                let certified =
                    rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
                let cert = certified.cert.der().clone();
                let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
                    certified.signing_key.serialize_der().into(),
                );
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let server = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(vec![cert.clone()], key)
                    .unwrap();
                let mut roots = RootCertStore::empty();
                roots.add(cert).unwrap();
                (
                    client_tls_config_with_roots(roots).unwrap(),
                    Some(futures_rustls::TlsAcceptor::from(Arc::new(server))),
                )
            } else {
                (
                    client_tls_config_with_roots(RootCertStore::empty()).unwrap(),
                    None,
                )
            };
            let server = glommio::spawn_local(async move {
                let tcp = listener.accept().await.unwrap();
                match acceptor {
                    Some(acceptor) => serve(acceptor.accept(tcp).await.unwrap()).await,
                    None => serve(tcp).await,
                }
            });
            let config = FrameRegionConfig::new(64 << 20, 8 << 20).unwrap();
            let writer = Rc::new(RefCell::new(
                FrameWriter::new(RegionId::new(900), config).unwrap(),
            ));
            let control = SessionControl::new(None);
            let (out, frames) = local_channel::new_bounded(1024);
            let scheme = if tls { "wss" } else { "ws" };
            let target = HostTarget {
                host_id: HostId(1),
                url: format!("{scheme}://127.0.0.1:{port}"),
                allow_plaintext: true,
            };
            let session = glommio::spawn_local(run_session(
                target,
                Rc::clone(&control),
                Rc::clone(&writer),
                client_tls,
                std::rc::Rc::new(out),
                SessionLimits::default(),
            ));
            let first = frames.recv().await.unwrap();
            let started = Instant::now();
            drop(first);
            let mut bytes = 0usize;
            for _ in 1..frame_count() {
                bytes += frames.recv().await.unwrap().frame.len();
            }
            let elapsed = started.elapsed();
            control.stop();
            session.await;
            server.await;
            let rate = (frame_count() - 1) as f64 / elapsed.as_secs_f64();
            println!(
                "upstream session {scheme}:// {FRAME_BYTES} B frames: {:.0} frames/s, {:.0} MB/s, copied {} B",
                rate,
                bytes as f64 / elapsed.as_secs_f64() / 1e6,
                writer.borrow().copied_bytes()
            );
        });
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn throughput_plain_and_tls() {
    measure(false);
    measure(true);
}
