//! A core's executor: the simulated PDS hosts of that core (HTTP + WebSocket servers),
//! the PLC directory on core 0, and the emit loop that releases pre-signed events at the
//! target rate.
//!
//! Owns: listening sockets, per-host backlogs and sequence heads, subscriber sessions
//! (cursor replay, `FutureCursor`, `OutdatedCursor`, the host hostile modes), the XRPC
//! endpoints a relay calls on a PDS, and stamping `time` into each frame when it is
//! released. Must not: sign or build frames (the generator does) or block: the only
//! lock (the directory) is held for a few field updates, never across an await.
//! Checks: request paths and parameters, as a PDS would; nothing in frames.
//!
//! Queue policy: each host's backlog is bounded by `backlog_events` and
//! `SIM_BACKLOG_BYTES_MAX`; the oldest entries are dropped (counted in
//! `backlog_evicted`). A subscriber that falls behind the oldest kept entry is
//! disconnected (counted in `subscribers_lagged`), as a PDS drops a slow consumer.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpListener;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use serde_json::json;

use crate::api::http::{self, ReadBuffer, Request};
use crate::config::limits::{
    SIM_BACKLOG_BYTES_MAX, SIM_HTTP_BODY_BYTES_MAX, SIM_LIST_REPOS_LIMIT_MAX,
    SIM_SLOW_DRIP_CHUNK_BYTES_MAX, SIM_SLOW_DRIP_PAUSE_MICROS_MAX, SIM_WRITE_BATCH_BYTES_MAX,
};
use crate::frame::event::{ErrorFrameOwned, InfoEventOwned};
use crate::frame::ws::{self, Opcode, WS_HEADER_BYTES_MAX};
use crate::sim::fleet::{Counters, Delivery, Effect, FleetError, Prepared, Shared, stamp_time};
use crate::sim::generator::{Command, CoreSync, now_micros};
use crate::sim::hostile::HostileMode;
use crate::sim::plc::{self, error_body};

/// Events the emit loop releases before it yields to the sessions.
const EMIT_BATCH_EVENTS: u64 = 256;
/// The emit loop's tick when it is ahead of its rate.
const EMIT_TICK: Duration = Duration::from_millis(1);
/// How often an idle session looks at the stop flag.
const IDLE_CHECK: Duration = Duration::from_millis(100);
/// How long a getRepo waits for the generator thread.
const GET_REPO_WAIT: Duration = Duration::from_secs(10);
/// `Server` header of the upgrade response.
const SERVER_NAME: &str = "relay-sim";
/// Initial io_uring registered memory per executor (build notes: 1 MiB fits the
/// memlock limit of a non-root user with two executors).
const IO_MEMORY_BYTES: usize = 1 << 20;

/// A port an executor bound, reported back to `Fleet::start`.
#[derive(Debug)]
pub(crate) enum BoundPort {
    Host { host: usize, port: u16 },
    Plc { port: u16 },
    Failed(std::io::Error),
}

/// What one executor is given.
pub(crate) struct ExecutorPlan {
    pub core: usize,
    pub hosts: Vec<usize>,
    pub serve_plc: bool,
    pub events: Receiver<Prepared>,
    pub commands: Sender<Command>,
    pub ports: Sender<BoundPort>,
    pub sync: Arc<CoreSync>,
}

/// Start a core's executor on its own thread.
pub(crate) fn spawn_executor(
    shared: Arc<Shared>,
    plan: ExecutorPlan,
) -> Result<ExecutorJoinHandle<()>, FleetError> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(&format!("sim-exec-{}", plan.core))
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || run_executor(shared, plan))
        .map_err(|e| FleetError::Io(std::io::Error::other(e.to_string())))
}

/// One released event kept for replay.
struct Entry {
    seq: u64,
    frame: Rc<Vec<u8>>,
    delivery: Delivery,
}

#[derive(Default)]
struct HostState {
    backlog: VecDeque<Entry>,
    /// Position (a count of released events) of `backlog[0]`.
    base_pos: u64,
    bytes: usize,
    head_seq: u64,
    /// Position of the first entry of the current sequence (after the last reset of a
    /// `reset_seq` host): cursors are looked up from here, where seqs increase.
    epoch_pos: u64,
    wakers: Vec<Waker>,
}

impl HostState {
    fn next_pos(&self) -> u64 {
        self.base_pos + self.backlog.len() as u64
    }

    fn drop_front(&mut self) -> bool {
        match self.backlog.pop_front() {
            Some(entry) => {
                self.bytes -= entry.frame.len();
                self.base_pos += 1;
                true
            }
            None => false,
        }
    }
}

/// One simulated PDS.
struct Host {
    global: usize,
    port: u16,
    mode: Option<HostileMode>,
    state: RefCell<HostState>,
}

/// What every connection task of an executor shares.
struct Ctx {
    shared: Arc<Shared>,
    commands: Sender<Command>,
}

async fn run_executor(shared: Arc<Shared>, plan: ExecutorPlan) {
    let ctx = Rc::new(Ctx {
        shared: shared.clone(),
        commands: plan.commands.clone(),
    });
    let host_modes: Vec<HostileMode> = shared
        .config
        .hostile_modes
        .iter()
        .copied()
        .filter(HostileMode::is_host_mode)
        .collect();
    let mut hosts = HashMap::new();
    for &global in &plan.hosts {
        let Some((listener, port)) = bind(&shared, &plan.ports) else {
            return;
        };
        let _ = plan.ports.send(BoundPort::Host { host: global, port });
        let host = Rc::new(Host {
            global,
            port,
            mode: host_modes.get(global).copied(),
            state: RefCell::new(HostState::default()),
        });
        glommio::spawn_local(accept_loop(listener, host.clone(), ctx.clone())).detach();
        hosts.insert(global, host);
    }
    if plan.serve_plc {
        let Some((listener, port)) = bind(&shared, &plan.ports) else {
            return;
        };
        let _ = plan.ports.send(BoundPort::Plc { port });
        glommio::spawn_local(plc::run_plc(listener, shared.directory.clone())).detach();
    }
    while !shared.ready.load(Ordering::Acquire) {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        glommio::timer::sleep(EMIT_TICK).await;
    }
    emit_loop(&shared, &plan, &hosts).await;
    while !shared.stop.load(Ordering::Relaxed) {
        glommio::timer::sleep(IDLE_CHECK).await;
    }
}

fn bind(shared: &Shared, ports: &Sender<BoundPort>) -> Option<(TcpListener, u16)> {
    let bound = TcpListener::bind((shared.config.listen_ip, 0))
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|l| {
            let port = l
                .local_addr()
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .port();
            Ok((l, port))
        });
    match bound {
        Ok(bound) => Some(bound),
        Err(e) => {
            let _ = ports.send(BoundPort::Failed(e));
            None
        }
    }
}

// ---- emission ----

/// Release events at the core's share of the target rate until the duration ends or
/// the fleet stops. Waits first until the pre-signed buffer is full (or complete).
async fn emit_loop(shared: &Shared, plan: &ExecutorPlan, hosts: &HashMap<usize, Rc<Host>>) {
    let config = &shared.config;
    let want = config.presign_buffer_events as u64;
    while plan.sync.generated.load(Ordering::Acquire) < want
        && !plan.sync.done.load(Ordering::Acquire)
    {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        glommio::timer::sleep(EMIT_TICK).await;
    }
    let rate = config.events_per_sec as f64 * plan.hosts.len() as f64 / config.hosts as f64;
    let start = Instant::now();
    let deadline = config.duration.map(|d| start + d);
    let mut released: u64 = 0;
    let mut drained = false;
    loop {
        if shared.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let due = if config.events_per_sec == 0 {
            released + EMIT_BATCH_EVENTS
        } else {
            (start.elapsed().as_secs_f64() * rate) as u64
        };
        let done_before = plan.sync.done.load(Ordering::Acquire);
        let mut batch = 0;
        while released < due && batch < EMIT_BATCH_EVENTS {
            match plan.events.try_recv() {
                Ok(event) => {
                    release(shared, hosts, event);
                    released += 1;
                    batch += 1;
                }
                Err(TryRecvError::Empty) => {
                    if done_before && !drained {
                        drained = true;
                        let counters = &shared.counters;
                        counters
                            .drained_micros
                            .fetch_max(now_micros(), Ordering::Relaxed);
                        Counters::add(&counters.emitters_drained, 1);
                    } else if !done_before {
                        Counters::add(&shared.counters.generator_behind, 1);
                    }
                    break;
                }
                Err(TryRecvError::Disconnected) => break,
            }
        }
        if batch == EMIT_BATCH_EVENTS {
            futures_lite::future::yield_now().await;
        } else {
            glommio::timer::sleep(EMIT_TICK).await;
        }
    }
}

/// Stamp `time`, count, apply the event's directory change, append to the host's
/// backlog and wake its sessions.
fn release(shared: &Shared, hosts: &HashMap<usize, Rc<Host>>, mut event: Prepared) {
    let now = now_micros();
    if let Some(at) = event.time_at {
        stamp_time(&mut event.frame, at, now);
    }
    let first = &shared.counters.first_release_micros;
    if first.load(Ordering::Relaxed) == 0 {
        let _ = first.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }
    count(&shared.counters, &event);
    apply_effect(shared, &event.effect);
    let Some(host) = hosts.get(&event.host) else {
        return;
    };
    let mut state = host.state.borrow_mut();
    if event.reset_seq {
        // Sessions reading the old sequence finish it; new cursors refer to the new one.
        state.epoch_pos = state.next_pos();
    }
    if event.delivery != Delivery::CutMidFrame {
        state.head_seq = event.seq;
    }
    state.bytes += event.frame.len();
    state.backlog.push_back(Entry {
        seq: event.seq,
        frame: Rc::new(event.frame),
        delivery: event.delivery,
    });
    let limit = shared.config.backlog_events;
    while state.backlog.len() > 1
        && (state.backlog.len() > limit || state.bytes > SIM_BACKLOG_BYTES_MAX)
    {
        state.drop_front();
        Counters::add(&shared.counters.backlog_evicted, 1);
    }
    for waker in state.wakers.drain(..) {
        waker.wake();
    }
}

fn count(counters: &Counters, event: &Prepared) {
    if event.delivery == Delivery::CutMidFrame {
        // Counted per cut connection by the sessions.
        Counters::add(&counters.cut_frames, 1);
        return;
    }
    Counters::add(&counters.emitted, 1);
    Counters::add(&counters.bytes, event.frame.len() as u64);
    counters.count_kind(event.kind);
    match event.hostile {
        Some(mode) => counters.count_hostile(mode),
        None => {
            Counters::add(&counters.valid, 1);
            if event.large {
                Counters::add(&counters.large_commits, 1);
            }
        }
    }
    if event.reset_seq {
        counters.count_hostile(HostileMode::ResetSeq);
    }
}

fn apply_effect(shared: &Shared, effect: &Effect) {
    if *effect == Effect::None {
        return;
    }
    let Ok(mut directory) = shared.directory.write() else {
        return;
    };
    match effect {
        Effect::None => {}
        Effect::Head { account, cid, rev } => {
            if let Some(e) = directory.entries.get_mut(*account) {
                e.head = Some((*cid, rev.clone()));
            }
        }
        Effect::KeyRotated {
            account,
            generation,
        } => {
            if let Some(e) = directory.entries.get_mut(*account) {
                e.key_generation = *generation;
                e.multikey = None;
            }
        }
        Effect::Migrated { account, host } => {
            if let Some(e) = directory.entries.get_mut(*account) {
                e.host = *host;
            }
        }
        Effect::Active { account, active } => {
            if let Some(e) = directory.entries.get_mut(*account) {
                e.active = *active;
            }
        }
    }
}

// ---- connections ----

async fn accept_loop(listener: TcpListener, host: Rc<Host>, ctx: Rc<Ctx>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                glommio::spawn_local(serve_connection(stream, host.clone(), ctx.clone())).detach();
            }
            // A failed accept (e.g. out of descriptors) must not spin the executor.
            Err(_) => glommio::timer::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: Rc<Host>,
    ctx: Rc<Ctx>,
) {
    let mut buffer = ReadBuffer::new();
    while let Ok(Some(request)) =
        http::read_request(&mut stream, &mut buffer, SIM_HTTP_BODY_BYTES_MAX).await
    {
        if request.path == "/xrpc/com.atproto.sync.subscribeRepos" && request.is_websocket_upgrade()
        {
            subscribe(stream, &host, &ctx, &request).await;
            return;
        }
        let (status, content_type, body) = route(&request, &host, &ctx).await;
        let headers = [("Content-Type", content_type)];
        if http::write_response(&mut stream, status, &headers, &body)
            .await
            .is_err()
        {
            return;
        }
    }
}

const JSON: &str = "application/json";

fn xrpc_error(status: u16, error: &str, message: &str) -> (u16, &'static str, Vec<u8>) {
    (status, JSON, error_body(error, message))
}

fn ok_json(value: serde_json::Value) -> (u16, &'static str, Vec<u8>) {
    (200, JSON, value.to_string().into_bytes())
}

fn query_param(request: &Request, name: &str) -> Option<String> {
    http::query_pairs(&request.query)
        .filter_map(Result::ok)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn route(request: &Request, host: &Host, ctx: &Ctx) -> (u16, &'static str, Vec<u8>) {
    if request.method != "GET" {
        return xrpc_error(405, "MethodNotAllowed", "the simulator serves GET only");
    }
    match request.path.as_str() {
        "/xrpc/com.atproto.server.describeServer" => describe_server(host, ctx),
        "/xrpc/com.atproto.sync.getRepo" => get_repo(request, host, ctx).await,
        "/xrpc/com.atproto.sync.getLatestCommit" => {
            with_account(request, host, ctx, |e| match &e.head {
                Some((cid, rev)) => ok_json(json!({"cid": cid.to_string(), "rev": rev})),
                None => xrpc_error(400, "RepoNotFound", "no commit yet"),
            })
        }
        "/xrpc/com.atproto.sync.getRepoStatus" => with_account(request, host, ctx, |e| {
            let mut out = json!({"did": e.did, "active": e.active});
            if let (Some((_, rev)), true) = (&e.head, e.active) {
                out["rev"] = json!(rev);
            }
            ok_json(out)
        }),
        "/xrpc/com.atproto.sync.listRepos" => list_repos(request, host, ctx),
        "/xrpc/com.atproto.sync.subscribeRepos" => {
            xrpc_error(400, "InvalidRequest", "expected a WebSocket upgrade")
        }
        "/.well-known/did.json" => did_web(host, ctx),
        "/xrpc/_health" => ok_json(json!({"version": SERVER_NAME})),
        path if path.starts_with("/xrpc/") => {
            xrpc_error(501, "MethodNotImplemented", "method not implemented")
        }
        _ => xrpc_error(404, "NotFound", "not found"),
    }
}

fn host_did(host: &Host, ctx: &Ctx) -> String {
    format!("did:web:{}%3A{}", ctx.shared.config.listen_ip, host.port)
}

fn describe_server(host: &Host, ctx: &Ctx) -> (u16, &'static str, Vec<u8>) {
    ok_json(json!({
        "did": host_did(host, ctx),
        "availableUserDomains": [format!(".h{}.sim.test", host.global)],
        "inviteCodeRequired": false,
    }))
}

/// Run `answer` on the directory entry of the `did` parameter, when this host holds it.
fn with_account(
    request: &Request,
    host: &Host,
    ctx: &Ctx,
    answer: impl FnOnce(&plc::Entry) -> (u16, &'static str, Vec<u8>),
) -> (u16, &'static str, Vec<u8>) {
    let Some(did) = query_param(request, "did") else {
        return xrpc_error(
            400,
            "InvalidRequest",
            "Error: Params must have the property \"did\"",
        );
    };
    let Ok(directory) = ctx.shared.directory.read() else {
        return xrpc_error(500, "InternalServerError", "directory lock poisoned");
    };
    let entry = directory
        .by_did
        .get(&did)
        .and_then(|i| directory.entries.get(*i))
        .filter(|e| e.host == host.global);
    match entry {
        Some(entry) => answer(entry),
        None => xrpc_error(
            400,
            "RepoNotFound",
            &format!("Could not find repo for DID: {did}"),
        ),
    }
}

fn list_repos(request: &Request, host: &Host, ctx: &Ctx) -> (u16, &'static str, Vec<u8>) {
    let limit = match query_param(request, "limit").map(|l| l.parse::<usize>()) {
        None => 500,
        Some(Ok(l)) if (1..=SIM_LIST_REPOS_LIMIT_MAX).contains(&l) => l,
        Some(_) => return xrpc_error(400, "InvalidRequest", "limit must be 1..=1000"),
    };
    let from = match query_param(request, "cursor").map(|c| c.parse::<usize>()) {
        None => 0,
        Some(Ok(c)) => c,
        Some(Err(_)) => return xrpc_error(400, "InvalidRequest", "bad cursor"),
    };
    let Ok(directory) = ctx.shared.directory.read() else {
        return xrpc_error(500, "InternalServerError", "directory lock poisoned");
    };
    let mut repos = Vec::new();
    let mut next = None;
    for (index, entry) in directory.entries.iter().enumerate().skip(from) {
        let Some((cid, rev)) = entry.head.as_ref().filter(|_| entry.host == host.global) else {
            continue;
        };
        if repos.len() == limit {
            next = Some(index);
            break;
        }
        repos.push(
            json!({"did": entry.did, "head": cid.to_string(), "rev": rev, "active": entry.active}),
        );
    }
    let mut out = json!({"repos": repos});
    if let Some(next) = next {
        out["cursor"] = json!(next.to_string());
    }
    ok_json(out)
}

fn did_web(host: &Host, ctx: &Ctx) -> (u16, &'static str, Vec<u8>) {
    let Ok(mut directory) = ctx.shared.directory.write() else {
        return xrpc_error(500, "InternalServerError", "directory lock poisoned");
    };
    let index = directory
        .did_web_of_host
        .get(host.global)
        .copied()
        .flatten();
    match index.map(|i| directory.document(i)) {
        Some(Ok(Some(doc))) => ok_json(doc),
        Some(Err(e)) => xrpc_error(500, "InternalServerError", &e.to_string()),
        _ => xrpc_error(404, "NotFound", "no did:web on this host"),
    }
}

async fn get_repo(request: &Request, host: &Host, ctx: &Ctx) -> (u16, &'static str, Vec<u8>) {
    let account = {
        let found = with_account(request, host, ctx, |_| (200, JSON, Vec::new()));
        if found.0 != 200 {
            return found;
        }
        let did = query_param(request, "did").unwrap_or_default();
        let Ok(directory) = ctx.shared.directory.read() else {
            return xrpc_error(500, "InternalServerError", "directory lock poisoned");
        };
        directory.by_did.get(&did).copied().unwrap_or_default()
    };
    let (reply, answer) = mpsc::channel();
    if ctx
        .commands
        .send(Command::GetRepo { account, reply })
        .is_err()
    {
        return xrpc_error(500, "InternalServerError", "generator stopped");
    }
    let deadline = Instant::now() + GET_REPO_WAIT;
    while Instant::now() < deadline {
        match answer.try_recv() {
            Ok(Some(car)) => return (200, "application/vnd.ipld.car", car),
            Ok(None) => return xrpc_error(400, "RepoNotFound", "no commit yet"),
            Err(TryRecvError::Empty) => glommio::timer::sleep(EMIT_TICK).await,
            Err(TryRecvError::Disconnected) => break,
        }
    }
    xrpc_error(500, "InternalServerError", "generator did not answer")
}

// ---- subscribeRepos ----

/// Wakes when the host's backlog grows past `pos`.
struct Grown<'a> {
    host: &'a Host,
    pos: u64,
}

impl Future for Grown<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.host.state.borrow_mut();
        if state.next_pos() > self.pos {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Where a session starts, from its cursor.
enum Start {
    Future,
    From { pos: u64, outdated: bool },
}

fn start_of(host: &Host, cursor: Option<u64>) -> (Start, u64) {
    let state = host.state.borrow();
    let live_from = state.next_pos();
    let start = match cursor {
        None => Start::From {
            pos: live_from,
            outdated: false,
        },
        Some(c) if c > state.head_seq => Start::Future,
        Some(c) => {
            let from = state.epoch_pos.saturating_sub(state.base_pos) as usize;
            let current = || state.backlog.iter().skip(from);
            let index = from + current().take_while(|e| e.seq <= c).count();
            let oldest = current()
                .find(|e| e.delivery != Delivery::CutMidFrame)
                .map(|e| e.seq);
            Start::From {
                pos: state.base_pos + index as u64,
                outdated: oldest.is_some_and(|o| c.saturating_add(1) < o),
            }
        }
    };
    (start, live_from)
}

async fn subscribe<S: AsyncWrite + Unpin>(
    mut stream: S,
    host: &Host,
    ctx: &Ctx,
    request: &Request,
) {
    let Some(key) = request.header("sec-websocket-key") else {
        let (status, _, body) = xrpc_error(400, "InvalidRequest", "missing Sec-WebSocket-Key");
        let _ = http::write_response(&mut stream, status, &[("Content-Type", JSON)], &body).await;
        return;
    };
    let head = ws::server_response(key, SERVER_NAME);
    if stream.write_all(head.as_bytes()).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    let shared = &ctx.shared;
    Counters::add(&shared.counters.subscriptions, 1);
    if host.mode == Some(HostileMode::SilentHost) {
        shared.counters.count_hostile(HostileMode::SilentHost);
        while !shared.stop.load(Ordering::Relaxed) {
            glommio::timer::sleep(IDLE_CHECK).await;
        }
        return;
    }
    let cursor = query_param(request, "cursor").and_then(|c| c.parse::<u64>().ok());
    let (start, live_from) = start_of(host, cursor);
    let pos = match start {
        Start::Future => {
            let error = ErrorFrameOwned {
                error: "FutureCursor".to_owned(),
                message: Some("Cursor in the future.".to_owned()),
            };
            let mut frame = Vec::new();
            error.encode_frame(&mut frame);
            let mut out = Vec::new();
            push_message(&mut out, Opcode::Binary, &frame);
            push_message(&mut out, Opcode::Close, &1000u16.to_be_bytes());
            let _ = stream.write_all(&out).await;
            let _ = stream.flush().await;
            return;
        }
        Start::From { pos, outdated } => {
            if outdated {
                let info = InfoEventOwned {
                    name: "OutdatedCursor".to_owned(),
                    message: Some(
                        "Requested cursor exceeded limit. Possibly missing events".to_owned(),
                    ),
                };
                let mut frame = Vec::new();
                info.encode_frame(&mut frame);
                let mut out = Vec::new();
                push_message(&mut out, Opcode::Binary, &frame);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            pos
        }
    };
    let slow = host.mode == Some(HostileMode::SlowDrip);
    if slow {
        shared.counters.count_hostile(HostileMode::SlowDrip);
    }
    let _ = send_loop(&mut stream, host, shared, pos, live_from, slow).await;
}

/// One frame of a batch: bytes, how to send them, and whether it is live.
struct Outgoing {
    frame: Rc<Vec<u8>>,
    delivery: Delivery,
    live: bool,
}

/// The entries from `pos` on, up to a write batch; `None` when the session fell behind.
fn take_batch(host: &Host, pos: u64, live_from: u64) -> Option<Vec<Outgoing>> {
    let state = host.state.borrow();
    if pos < state.base_pos {
        return None;
    }
    let mut bytes = 0;
    let mut batch = Vec::new();
    let skip = (pos - state.base_pos) as usize;
    for (i, entry) in state.backlog.iter().enumerate().skip(skip) {
        if bytes >= SIM_WRITE_BATCH_BYTES_MAX {
            break;
        }
        bytes += entry.frame.len();
        batch.push(Outgoing {
            frame: entry.frame.clone(),
            delivery: entry.delivery,
            live: state.base_pos + i as u64 >= live_from,
        });
    }
    Some(batch)
}

async fn send_loop<S: AsyncWrite + Unpin>(
    stream: &mut S,
    host: &Host,
    shared: &Shared,
    mut pos: u64,
    live_from: u64,
    slow: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(SIM_WRITE_BATCH_BYTES_MAX);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(batch) = take_batch(host, pos, live_from) else {
            Counters::add(&shared.counters.subscribers_lagged, 1);
            return Ok(());
        };
        if batch.is_empty() {
            let grown = Grown { host, pos };
            futures_lite::future::or(grown, glommio::timer::sleep(IDLE_CHECK)).await;
            continue;
        }
        out.clear();
        for item in batch {
            pos += 1;
            match item.delivery {
                Delivery::CutMidFrame if !item.live => {}
                Delivery::CutMidFrame => {
                    let half = item.frame.get(..item.frame.len() / 2).unwrap_or_default();
                    push_header(&mut out, Opcode::Binary, item.frame.len());
                    out.extend_from_slice(half);
                    write(stream, &out, slow).await?;
                    shared
                        .counters
                        .count_hostile(HostileMode::DisconnectMidFrame);
                    return Ok(());
                }
                Delivery::Text => push_message(&mut out, Opcode::Text, &item.frame),
                Delivery::Binary if item.frame.len() > SIM_WRITE_BATCH_BYTES_MAX => {
                    push_header(&mut out, Opcode::Binary, item.frame.len());
                    write(stream, &out, slow).await?;
                    out.clear();
                    write(stream, &item.frame, slow).await?;
                }
                Delivery::Binary => push_message(&mut out, Opcode::Binary, &item.frame),
            }
        }
        write(stream, &out, slow).await?;
    }
}

async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    slow: bool,
) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    if !slow {
        stream.write_all(bytes).await?;
        return stream.flush().await;
    }
    for piece in bytes.chunks(SIM_SLOW_DRIP_CHUNK_BYTES_MAX) {
        stream.write_all(piece).await?;
        stream.flush().await?;
        glommio::timer::sleep(Duration::from_micros(SIM_SLOW_DRIP_PAUSE_MICROS_MAX)).await;
    }
    Ok(())
}

fn push_header(out: &mut Vec<u8>, opcode: Opcode, len: usize) {
    let mut header = [0u8; WS_HEADER_BYTES_MAX];
    let n = ws::encode_header(true, opcode, len as u64, None, &mut header);
    out.extend_from_slice(header.get(..n).unwrap_or_default());
}

/// Append one unmasked server message (header + payload).
fn push_message(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    push_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}
