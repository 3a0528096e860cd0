//! One upstream session: a glommio task that keeps one WebSocket connection to one PDS
//! host, reads every binary message straight into the core's shared-memory frame buffer,
//! hands each frame to the core's verifier over a bounded local channel, and reconnects
//! forever with capped, jittered exponential backoff.
//!
//! Owns: the connection lifecycle of one host (connect → upgrade → read loop → disconnect
//! → backoff), keep-alive (our pings, answering pings, the read-idle time-out), Close
//! handling, the per-host [`SessionControl`] and the `relay_upstream_*` metrics.
//! Must not: decode firehose frames, judge seqs or cursors (the verifier does, and tells
//! the session through [`SessionControl`]), assign relay seqs, or block the executor
//! (names resolve on glommio's blocking pool, see `connect`).
//! Always checks: everything `reader` checks on each frame (binary only, no fragments,
//! `FRAME_SIZE_BYTES_MAX`, masking); the plaintext policy and the loop guard before any
//! frame is read; the host's event rate limits (`upstream::rate`) before each frame is
//! handed over. Does not check: seq order, frame contents.
//!
//! # Public API
//!
//! ```text
//! run_session(target: HostTarget, control: Rc<SessionControl>,
//!             writer: Rc<RefCell<FrameWriter>>, tls: Arc<rustls::ClientConfig>,
//!             out: Rc<LocalSender<UpstreamFrame>>, limits: SessionLimits) -> SessionError
//! ```
//!
//! Spawn one per host on the ingest core's executor (`glommio::spawn_local`); it returns
//! only for a terminal reason (`SessionError::is_terminal`: stopped, receiver gone, bad
//! URL, plaintext refused, upstream is a relay). All sessions of a core share the core's
//! `FrameWriter`; the borrow is never held across an await. End a session with
//! `SessionControl::stop` and await its task rather than dropping the task: a dropped task
//! sends no Close and leaves `relay_upstream_connected_hosts` one too high.
//!
//! # Queues and waits (policies)
//!
//! * The frame channel `out` (bounded, created by the caller): **block**. When it is full
//!   the session awaits the send and does not read its socket meanwhile, so TCP flow
//!   control pushes back on the host. No frame is dropped, except the one in flight when
//!   `stop()`/`disconnect()` interrupts the wait (the verifier asked to drop the
//!   connection, so its frames no longer matter).
//! * The frame buffer: **block**. `ReadError::Backpressure` stops reading; the session
//!   sleeps `backpressure_retry`, calls `poll_reclaim` and retries the same reservation.
//!   Neither wait counts as read-idle time.
//! * The host's rate limits (per second, hour, day; set by the verifier through
//!   [`SessionControl::set_rate_limits`]): **block**. A frame read while a window is full
//!   is held until the window admits it, and the socket is not read meanwhile (TCP
//!   backpressure to the host): nothing is dropped for rate. The pause is checked again
//!   at least every `UPSTREAM_RATE_RECHECK_MILLIS_MAX` (a raised limit applies within it),
//!   a stop or disconnect interrupts it (the held frame goes with the connection; the
//!   cursor never passed it, so the next connection reads it again), and it does not
//!   count as read-idle time. The windows live in the control, so a reconnect does not
//!   reset them. Every binary message counts, whatever the verifier later says of it.
//!
//! # Control from the verifier
//!
//! [`SessionControl`] lives on the same core (`Rc`). The verifier writes `cursor` after
//! each accepted frame (read at each connect for `?cursor=`), calls `disconnect(reason)` to
//! drop the current connection (the session reconnects with backoff; a request made while
//! no connection is up is discarded when the next one opens), and `stop()` to end the
//! session. Each frame carries its connection number, so the verifier can ignore frames of
//! a connection it already dropped and restart its per-socket seq check when the number
//! changes.

use crate::config::limits::{
    UPSTREAM_BACKPRESSURE_RETRY_MILLIS, UPSTREAM_CLOSE_WRITE_TIMEOUT_MILLIS_MAX,
    UPSTREAM_CONNECT_TIMEOUT_MILLIS_MAX, UPSTREAM_PING_INTERVAL_MILLIS_MAX,
    UPSTREAM_RATE_RECHECK_MILLIS_MAX, UPSTREAM_READ_IDLE_TIMEOUT_MILLIS_MAX,
};
use crate::frame::ws::{self, Opcode};
use crate::runtime::frames::{FrameHandle, FrameWriter};
use crate::state::RateLimits;
use crate::upstream::backoff::{Backoff, BackoffPolicy, Jitter};
use crate::upstream::connect::{self, UpstreamStream};
use crate::upstream::error::SessionError;
use crate::upstream::rate::HostRateLimiter;
use crate::upstream::reader::{FrameReader, Incoming, ReadError};
use crate::upstream::target::{ConnectTarget, HostId, HostTarget, subscribe_path};
use futures_lite::{AsyncRead, AsyncWriteExt};
use glommio::channels::local_channel::LocalSender;
use glommio::timer::Timer;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::ClientConfig;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Largest control-frame payload (RFC 6455).
const CONTROL_PAYLOAD_BYTES_MAX: usize = 125;
/// Close status we send when we end a connection normally (RFC 6455 1000).
const CLOSE_NORMAL: u16 = 1000;
/// How long the best-effort Close frame may take to write before the socket is dropped.
const CLOSE_WRITE_TIMEOUT: Duration =
    Duration::from_millis(UPSTREAM_CLOSE_WRITE_TIMEOUT_MILLIS_MAX);

/// Longest wait for the verifier to take this session's delivered frames before it
/// reconnects (the verifier drains at memory speed; this only bounds a stall).
const SKIP_DRAIN_WAIT_MAX: Duration = Duration::from_secs(5);
/// Delay before reconnecting after one refused message was stepped over, in milliseconds.
const UPSTREAM_SKIP_RECONNECT_MILLIS: u64 = 100;

/// Whether the reader refused one whole message (as opposed to a broken stream).
fn refuses_one_message(error: &SessionError) -> bool {
    matches!(
        error,
        SessionError::Read(
            ReadError::TextMessage
                | ReadError::FragmentedMessage
                | ReadError::EmptyMessage
                | ReadError::Protocol(crate::frame::ws::WsError::TooLarge)
        )
    )
}

/// One firehose frame as the session delivers it to the verifier.
#[derive(Debug)]
pub struct UpstreamFrame {
    /// Which host sent it.
    pub host: HostId,
    /// The connection number (1 for the first connection, +1 per reconnect).
    pub connection: u64,
    /// The frame's bytes, in the core's frame buffer.
    pub frame: FrameHandle,
}

/// The bounds a session runs with (defaults from `config::limits`; tests shorten them).
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Resolve + connect + TLS + upgrade, together.
    pub connect_timeout: Duration,
    /// Interval between our pings.
    pub ping_interval: Duration,
    /// Drop the connection after receiving nothing for this long.
    pub read_idle_timeout: Duration,
    /// Reconnect delays.
    pub backoff: BackoffPolicy,
    /// Wait before retrying a frame-buffer reservation under backpressure.
    pub backpressure_retry: Duration,
    /// The ingest core's number (the `shard` metric label).
    pub shard: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            connect_timeout: Duration::from_millis(UPSTREAM_CONNECT_TIMEOUT_MILLIS_MAX),
            ping_interval: Duration::from_millis(UPSTREAM_PING_INTERVAL_MILLIS_MAX),
            read_idle_timeout: Duration::from_millis(UPSTREAM_READ_IDLE_TIMEOUT_MILLIS_MAX),
            backoff: BackoffPolicy::default(),
            backpressure_retry: Duration::from_millis(UPSTREAM_BACKPRESSURE_RETRY_MILLIS),
            shard: 0,
        }
    }
}

/// What the verifier asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    None,
    Disconnect(&'static str),
    Stop,
}

/// The verifier's handle on one session, and the session's status for the admin API.
/// Single-core (`Rc`): it lives on the ingest core that runs the session.
#[derive(Debug)]
pub struct SessionControl {
    /// The last seq the verifier accepted from this host; read at each (re)connect for
    /// `?cursor=`. `None`: connect without a cursor (live from now).
    pub cursor: Cell<Option<u64>>,
    command: Cell<Command>,
    waker: RefCell<Option<Waker>>,
    connected: Cell<bool>,
    connection: Cell<u64>,
    last_error: Cell<Option<&'static str>>,
    /// The host's rate windows; their clock is milliseconds since `epoch`.
    rate: RefCell<HostRateLimiter>,
    epoch: Instant,
}

impl SessionControl {
    /// A control starting from `cursor`.
    pub fn new(cursor: Option<u64>) -> Rc<SessionControl> {
        Rc::new(SessionControl {
            cursor: Cell::new(cursor),
            command: Cell::new(Command::None),
            waker: RefCell::new(None),
            connected: Cell::new(false),
            connection: Cell::new(0),
            last_error: Cell::new(None),
            rate: RefCell::new(HostRateLimiter::new(RateLimits::default())),
            epoch: Instant::now(),
        })
    }

    /// The host's event rate limits from now on (0 = unlimited); a paused session sees
    /// them at its next check (within `UPSTREAM_RATE_RECHECK_MILLIS_MAX`).
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.rate.borrow_mut().set_limits(limits);
    }

    /// The rate limits in force.
    pub fn rate_limits(&self) -> RateLimits {
        self.rate.borrow().limits()
    }

    /// Admit one frame now, or say how long to wait and which window is full.
    fn admit_frame(&self) -> Result<(), (Duration, &'static str)> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let admitted = self.rate.borrow_mut().admit(now);
        admitted.map_err(|(at, window)| {
            (
                Duration::from_millis(at.saturating_sub(now)),
                window.reason(),
            )
        })
    }

    /// Drop the current connection for `reason` (a bounded label: it becomes the
    /// `reason` of `relay_upstream_disconnects_total`); the session reconnects with
    /// backoff. Ignored after `stop`.
    pub fn disconnect(&self, reason: &'static str) {
        if self.command.get() != Command::Stop {
            self.command.set(Command::Disconnect(reason));
            self.wake();
        }
    }

    /// End the session for good (host banned, shutdown).
    pub fn stop(&self) {
        self.command.set(Command::Stop);
        self.wake();
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.command.get() == Command::Stop
    }

    /// Whether a connection is upgraded and being read now.
    pub fn is_connected(&self) -> bool {
        self.connected.get()
    }

    /// The number of the current (or last) connection; 0 before the first.
    pub fn connection(&self) -> u64 {
        self.connection.get()
    }

    /// The reason the last connection ended or failed, if any did.
    pub fn last_error(&self) -> Option<&'static str> {
        self.last_error.get()
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Ready with a pending command; `stop_only` leaves a `Disconnect` pending.
    fn poll_command(&self, cx: &Context<'_>, stop_only: bool) -> Poll<SessionError> {
        match self.command.get() {
            Command::Stop => return Poll::Ready(SessionError::Stopped),
            Command::Disconnect(reason) if !stop_only => {
                self.command.set(Command::None);
                return Poll::Ready(SessionError::Verifier(reason));
            }
            _ => {}
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    fn discard_disconnect(&self) {
        if let Command::Disconnect(_) = self.command.get() {
            self.command.set(Command::None);
        }
    }
}

/// Metric handles of one session (labels built once).
struct SessionMetrics {
    shard: String,
    connects: metrics::Counter,
    connected: metrics::Gauge,
    backpressure: metrics::Counter,
    rate_wait: metrics::Histogram,
}

impl SessionMetrics {
    fn new(shard: u32) -> Self {
        let shard = shard.to_string();
        SessionMetrics {
            connects: metrics::counter!("relay_upstream_connects_total", "shard" => shard.clone()),
            connected: metrics::gauge!("relay_upstream_connected_hosts", "shard" => shard.clone()),
            backpressure: metrics::counter!(
                "relay_upstream_backpressure_waits_total", "shard" => shard.clone()
            ),
            rate_wait: metrics::histogram!(
                "relay_upstream_rate_limit_wait_seconds", "shard" => shard.clone()
            ),
            shard,
        }
    }

    fn disconnect(&self, reason: &'static str) {
        metrics::counter!(
            "relay_upstream_disconnects_total",
            "reason" => reason,
            "shard" => self.shard.clone()
        )
        .increment(1);
    }
}

/// Everything one session holds across its connections.
struct Session {
    target: HostTarget,
    connect_target: ConnectTarget,
    control: Rc<SessionControl>,
    writer: Rc<RefCell<FrameWriter>>,
    tls: Arc<ClientConfig>,
    out: Rc<LocalSender<UpstreamFrame>>,
    limits: SessionLimits,
    metrics: SessionMetrics,
    rng: SystemRandom,
}

/// Run one host's session until a terminal reason (see the module doc); returns it.
pub async fn run_session(
    target: HostTarget,
    control: Rc<SessionControl>,
    writer: Rc<RefCell<FrameWriter>>,
    tls: Arc<ClientConfig>,
    out: Rc<LocalSender<UpstreamFrame>>,
    limits: SessionLimits,
) -> SessionError {
    let metrics = SessionMetrics::new(limits.shard);
    let connect_target = match ConnectTarget::from_target(&target) {
        Ok(connect_target) => connect_target,
        Err(e) => {
            metrics.disconnect(e.reason());
            control.last_error.set(Some(e.reason()));
            return e;
        }
    };
    let session = Session {
        target,
        connect_target,
        control,
        writer,
        tls,
        out,
        limits,
        metrics,
        rng: SystemRandom::new(),
    };
    session.run().await
}

impl Session {
    async fn run(&self) -> SessionError {
        let mut backoff = Backoff::new(self.limits.backoff);
        let mut jitter = Jitter::new(self.seed());
        loop {
            if self.control.is_stopped() {
                return SessionError::Stopped;
            }
            let (error, up) = self.connect_and_read().await;
            self.metrics.disconnect(error.reason());
            self.control.last_error.set(Some(error.reason()));
            if error.is_terminal() {
                return error;
            }
            // A connection that ended on one refused message (stepped over already) is
            // not a failing host: come back at once rather than growing the backoff, so a
            // host that sends an occasional bad message is not starved of its good ones.
            let delay = if refuses_one_message(&error) {
                Duration::from_millis(UPSTREAM_SKIP_RECONNECT_MILLIS)
            } else {
                backoff.next_delay(up, jitter.next_u64())
            };
            if let Err(stopped) = self.interruptible(Timer::new(delay), true).await {
                return stopped;
            }
        }
    }

    fn seed(&self) -> u64 {
        let mut seed = [0u8; 8];
        // A failed draw leaves a fixed seed: jitter is not a secret, only a spread.
        let _ = self.rng.fill(&mut seed);
        u64::from_le_bytes(seed) ^ self.target.host_id.0
    }

    /// One connection: open it, read until it ends. Returns why, and how long it was up.
    async fn connect_and_read(&self) -> (SessionError, Duration) {
        // Frames of the last connection still queued to the verifier have not moved the
        // cursor yet; resuming before they are routed would ask for them again.
        self.wait_for_routed().await;
        let path = subscribe_path(self.control.cursor.get());
        let opened = {
            let open = connect::open(
                &self.connect_target,
                &path,
                &self.tls,
                &self.rng,
                self.limits.connect_timeout,
            );
            let deadline = Timer::new(self.limits.connect_timeout);
            let bounded = first_of(open, async {
                deadline.await;
                Err(SessionError::ConnectTimeout)
            });
            match self.interruptible(bounded, true).await {
                Ok(Ok(opened)) => opened,
                Ok(Err(e)) | Err(e) => return (e, Duration::ZERO),
            }
        };
        self.control.discard_disconnect();
        self.control
            .connection
            .set(self.control.connection.get() + 1);
        self.control.connected.set(true);
        self.metrics.connects.increment(1);
        self.metrics.connected.increment(1.0);
        let up_since = Instant::now();
        let mut connection = Connection {
            session: self,
            stream: opened.stream,
            reader: FrameReader::new(),
            number: self.control.connection.get(),
            last_rx: up_since,
            next_ping: up_since + self.limits.ping_interval,
            pings_sent: 0,
        };
        let error = connection.read_loop().await;
        connection.close_gracefully(&error).await;
        self.control.connected.set(false);
        self.metrics.connected.decrement(1.0);
        if refuses_one_message(&error) {
            self.skip_refused_message(&error).await;
        }
        (error, up_since.elapsed())
    }

    /// Wait (bounded) until the verifier has taken every frame this session delivered.
    async fn wait_for_routed(&self) {
        let deadline = Instant::now() + SKIP_DRAIN_WAIT_MAX;
        while self.out.len() > 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A message the reader refuses whole (a text frame, one declared larger than the
    /// frame bound, a fragmented or empty message) would be sent again after a reconnect
    /// with the same cursor, forever. Its seq is the one after the last frame this
    /// connection delivered: wait until the verifier has routed every delivered frame (it
    /// moves the cursor as it takes each one), then step the cursor over the refused one.
    /// Host seqs are dense (one per event), which is what makes the step exact. Without a
    /// cursor (live) the reconnect skips it anyway.
    async fn skip_refused_message(&self, error: &SessionError) {
        self.wait_for_routed().await;
        if let Some(cursor) = self.control.cursor.get() {
            log::info!(
                "upstream host {}: stepping over seq {} ({})",
                self.target.host_id.0,
                cursor + 1,
                error.reason()
            );
            self.control.cursor.set(Some(cursor + 1));
            metrics::counter!("relay_upstream_skipped_messages_total", "reason" => error.reason())
                .increment(1);
        }
    }

    /// Await `fut` unless the verifier interrupts (with `stop_only`, only `stop` does).
    async fn interruptible<F: Future>(
        &self,
        fut: F,
        stop_only: bool,
    ) -> Result<F::Output, SessionError> {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(e) = self.control.poll_command(cx, stop_only) {
                return Poll::Ready(Err(e));
            }
            fut.as_mut().poll(cx).map(Ok)
        })
        .await
    }
}

/// Whichever of two futures finishes first.
async fn first_of<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    futures_lite::future::or(a, b).await
}

/// What woke the read loop.
enum Event {
    Read(std::io::Result<usize>),
    Tick,
    Command(SessionError),
}

/// One open connection's read loop.
struct Connection<'s> {
    session: &'s Session,
    stream: UpstreamStream,
    reader: FrameReader,
    number: u64,
    last_rx: Instant,
    next_ping: Instant,
    pings_sent: u64,
}

impl Connection<'_> {
    async fn read_loop(&mut self) -> SessionError {
        let mut timer = Timer::new(
            self.next_deadline()
                .saturating_duration_since(Instant::now()),
        );
        loop {
            let event = self.next_event(&mut timer).await;
            let outcome = match event {
                Event::Command(e) => Err(e),
                Event::Read(Err(e)) => Err(SessionError::from_stream_io(&e)),
                Event::Read(Ok(0)) => Err(SessionError::Eof),
                Event::Read(Ok(n)) => {
                    self.last_rx = Instant::now();
                    self.advance(n).await
                }
                Event::Tick => {
                    let result = self.tick().await;
                    timer = Timer::new(
                        self.next_deadline()
                            .saturating_duration_since(Instant::now()),
                    );
                    result
                }
            };
            if let Err(e) = outcome {
                return e;
            }
        }
    }

    /// Wait for a command, bytes into the reader's buffer, or the keep-alive timer.
    async fn next_event(&mut self, timer: &mut Timer) -> Event {
        let control = &self.session.control;
        let buf = self.reader.buffer();
        let stream = &mut self.stream;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(e) = control.poll_command(cx, false) {
                return Poll::Ready(Event::Command(e));
            }
            if let Poll::Ready(result) = Pin::new(&mut *stream).poll_read(cx, buf) {
                return Poll::Ready(Event::Read(result));
            }
            if Pin::new(&mut *timer).poll(cx).is_ready() {
                return Poll::Ready(Event::Tick);
            }
            Poll::Pending
        })
        .await
    }

    fn next_deadline(&self) -> Instant {
        self.next_ping
            .min(self.last_rx + self.session.limits.read_idle_timeout)
    }

    /// The keep-alive timer fired: drop an idle connection, or ping when due.
    async fn tick(&mut self) -> Result<(), SessionError> {
        let now = Instant::now();
        if now.saturating_duration_since(self.last_rx) >= self.session.limits.read_idle_timeout {
            return Err(SessionError::IdleTimeout);
        }
        if now >= self.next_ping {
            self.pings_sent += 1;
            let payload = self.pings_sent.to_be_bytes();
            self.send_control(Opcode::Ping, &payload).await?;
            self.next_ping = now + self.session.limits.ping_interval;
        }
        Ok(())
    }

    /// Feed `n` read bytes to the reader and act on what completed.
    async fn advance(&mut self, n: usize) -> Result<(), SessionError> {
        let mut n = n;
        loop {
            let result = self
                .reader
                .advance(n, &mut self.session.writer.borrow_mut());
            match result {
                Ok(None) | Ok(Some(Incoming::Pong)) => return Ok(()),
                Ok(Some(Incoming::Frame(frame))) => return self.deliver(frame).await,
                Ok(Some(Incoming::Ping(payload))) => {
                    return self.send_control(Opcode::Pong, payload.as_bytes()).await;
                }
                Ok(Some(Incoming::Close(_))) => return Err(SessionError::ClosedByPeer),
                Err(ReadError::Backpressure) => {
                    self.wait_for_reclaim().await?;
                    n = 0;
                }
                Err(e) => return Err(SessionError::Read(e)),
            }
        }
    }

    /// The frame buffer is full: sleep, reclaim, and let the caller retry (block, never
    /// drop). The socket is not read meanwhile.
    async fn wait_for_reclaim(&mut self) -> Result<(), SessionError> {
        self.session.metrics.backpressure.increment(1);
        let retry = self.session.limits.backpressure_retry;
        self.session.interruptible(Timer::new(retry), false).await?;
        self.session.writer.borrow_mut().poll_reclaim();
        // Time spent blocked on our side is not the peer being idle.
        self.last_rx = Instant::now();
        Ok(())
    }

    /// Hold a read frame until the host's rate windows admit it (block, never drop): the
    /// socket is not read meanwhile. Waits in slices of `UPSTREAM_RATE_RECHECK_MILLIS_MAX`
    /// so a limit changed live applies soon; a stop or disconnect ends the wait.
    async fn wait_for_rate(&mut self) -> Result<(), SessionError> {
        let control = &self.session.control;
        while let Err((wait, reason)) = control.admit_frame() {
            metrics::counter!(
                "relay_upstream_rate_limit_waits_total",
                "reason" => reason,
                "shard" => self.session.metrics.shard.clone()
            )
            .increment(1);
            let slice = wait.min(Duration::from_millis(UPSTREAM_RATE_RECHECK_MILLIS_MAX));
            let started = Instant::now();
            self.session.interruptible(Timer::new(slice), false).await?;
            self.session
                .metrics
                .rate_wait
                .record(started.elapsed().as_secs_f64());
            // Time spent holding back on our side is not the peer being idle.
            self.last_rx = Instant::now();
        }
        Ok(())
    }

    /// Hand a frame to the verifier once the host's rate limits admit it; a full channel
    /// blocks this session (the policy).
    async fn deliver(&mut self, frame: FrameHandle) -> Result<(), SessionError> {
        self.wait_for_rate().await?;
        let item = UpstreamFrame {
            host: self.session.target.host_id,
            connection: self.number,
            frame,
        };
        if self.session.out.is_full() {
            let sent = self
                .session
                .interruptible(self.session.out.send(item), false)
                .await?;
            sent.map_err(|_| SessionError::ReceiverClosed)?;
            self.last_rx = Instant::now();
        } else {
            self.session
                .out
                .try_send(item)
                .map_err(|_| SessionError::ReceiverClosed)?;
        }
        Ok(())
    }

    /// Write one masked control frame, interruptible by the verifier and bounded by the
    /// read-idle time-out (a peer that stops reading is as dead as one that stops sending).
    async fn send_control(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), SessionError> {
        let timeout = self.session.limits.read_idle_timeout;
        let session = self.session;
        let write = self.write_control(opcode, payload, timeout);
        session
            .interruptible(write, false)
            .await?
            .map_err(|e| SessionError::from_stream_io(&e))
    }

    /// Encode and write a control frame (client frames are masked, RFC 6455 §5.3), within
    /// `timeout`.
    async fn write_control(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        timeout: Duration,
    ) -> std::io::Result<()> {
        let mut mask = [0u8; 4];
        self.session
            .rng
            .fill(&mut mask)
            .map_err(|_| std::io::Error::other("no randomness for the mask"))?;
        let mut frame = [0u8; ws::WS_HEADER_BYTES_MAX + CONTROL_PAYLOAD_BYTES_MAX];
        let total = encode_control(opcode, payload, mask, &mut frame);
        let bytes = frame.get(..total).unwrap_or_default();
        let stream = &mut self.stream;
        let write = async move {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        let deadline = Timer::new(timeout);
        first_of(write, async {
            deadline.await;
            Err(std::io::ErrorKind::TimedOut.into())
        })
        .await
    }

    /// Best effort: tell the peer we close (or answer its Close), bounded in time.
    async fn close_gracefully(&mut self, error: &SessionError) {
        let polite = matches!(
            error,
            SessionError::ClosedByPeer
                | SessionError::Verifier(_)
                | SessionError::Stopped
                | SessionError::IdleTimeout
                | SessionError::ReceiverClosed
        );
        if !polite {
            return;
        }
        let code = CLOSE_NORMAL.to_be_bytes();
        // Not interruptible: a stop is exactly when the Close should go out.
        let _ = self
            .write_control(Opcode::Close, &code, CLOSE_WRITE_TIMEOUT)
            .await;
    }
}

/// Encode a masked control frame into `out`; returns its length. Payloads over 125 bytes
/// are cut (ours are at most 8; a ping's payload came from a 125-byte control frame).
fn encode_control(
    opcode: Opcode,
    payload: &[u8],
    mask: [u8; 4],
    out: &mut [u8; ws::WS_HEADER_BYTES_MAX + CONTROL_PAYLOAD_BYTES_MAX],
) -> usize {
    let len = payload.len().min(CONTROL_PAYLOAD_BYTES_MAX);
    let mut header = [0u8; ws::WS_HEADER_BYTES_MAX];
    let header_len = ws::encode_header(true, opcode, len as u64, Some(mask), &mut header);
    let (head, body) = out.split_at_mut(header_len);
    head.copy_from_slice(header.get(..header_len).unwrap_or_default());
    let body = body.get_mut(..len).unwrap_or_default();
    body.copy_from_slice(payload.get(..len).unwrap_or_default());
    ws::apply_mask(body, mask, 0);
    header_len + len
}
