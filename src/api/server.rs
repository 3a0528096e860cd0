//! The HTTP server of one core: the accept loop, keep-alive connections, and a [`Router`]
//! that dispatches a request by path to a [`Handler`] (JSON replies) or to an
//! [`UpgradeHandler`] (WebSocket streams such as `subscribeRepos`).
//!
//! Owns: accepting, the per-core connection bound, request reading through
//! `api::http::read_request` (bounded head and body), XRPC error bodies
//! (`{"error": "<Name>", "message": "..."}`) and `GET /xrpc/_health`.
//! Must not: hold endpoint logic (handlers live with their modules and are registered by
//! the serve wiring), or block the executor.
//!
//! Every fan-out core runs [`serve`] on the same address: glommio's `TcpListener::bind`
//! sets SO_REUSEPORT, so the kernel spreads connections over the cores' listeners.
//!
//! Status codes (atproto XRPC spec): a path outside `/xrpc/` is 404 `NotFound` (no XRPC
//! there); an unknown `/xrpc/<method>` is 501 `MethodNotImplemented`; a known method with
//! the wrong HTTP verb is 405 `InvalidRequest`; a malformed head is 400 `InvalidRequest`
//! and the connection is closed; a head or body over its bound is 413 and closed.
//! Over-limit policy: connection number `API_CONNECTIONS_PER_CORE_MAX + 1` on a core gets
//! 503 `ServiceUnavailable` and is closed at once (counted in
//! `relay_api_connections_refused_total`). Idle keep-alive connections close after
//! `API_IDLE_TIMEOUT_SECS_MAX`.

use crate::api::http::{HttpError, ReadBuffer, Request, read_request, write_response};
use crate::config::limits::{
    API_CONNECTIONS_PER_CORE_MAX, API_IDLE_TIMEOUT_SECS_MAX, API_REQUEST_BODY_BYTES_MAX,
};
use glommio::net::{TcpListener, TcpStream};
use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// Pause after a failed accept before trying again (a full descriptor table frees up as
/// connections close; retrying at once would spin).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// A boxed future of this executor (handlers are `!Send`, like everything on a core).
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A complete reply with a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Close the connection after this reply.
    pub close: bool,
    /// Extra response headers (e.g. `Location` on a redirect).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
            close: false,
            headers: Vec::new(),
        }
    }

    /// A `302 Found` redirect to `location` (with an empty JSON-typed body).
    pub fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            content_type: "application/json",
            body: Vec::new(),
            close: false,
            headers: vec![("Location", location)],
        }
    }

    /// An XRPC error: `{"error": name, "message": message}`.
    pub fn xrpc_error(status: u16, name: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({ "error": name, "message": message }),
        )
    }

    /// The same reply, closing the connection after it.
    pub fn closing(mut self) -> Reply {
        self.close = true;
        self
    }
}

/// A request handler: gets the whole request, returns the reply.
pub trait Handler {
    /// Handle one request.
    fn call(&self, request: Request) -> LocalBoxFuture<Reply>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Reply> + 'static,
{
    fn call(&self, request: Request) -> LocalBoxFuture<Reply> {
        Box::pin(self(request))
    }
}

/// A WebSocket endpoint: `check` decides (synchronously, so nothing can change before
/// `serve` runs) whether to upgrade, or answers with an HTTP error; `serve` owns the
/// connection from then on and writes the `101` head itself.
pub trait UpgradeHandler {
    /// Accept the upgrade, or refuse it with a reply (e.g. 400 for a bad parameter, 503
    /// at the consumer limit).
    fn check(&self, request: &Request) -> Result<(), Reply>;
    /// Run the stream until it ends. `leftover`: bytes read past the request head.
    fn serve(
        &self,
        request: Request,
        stream: TcpStream,
        leftover: Vec<u8>,
        peer: SocketAddr,
    ) -> LocalBoxFuture<()>;
}

/// HTTP methods a route can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (XRPC queries and subscriptions).
    Get,
    /// `POST` (XRPC procedures).
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

enum Target {
    Plain(Rc<dyn Handler>),
    Upgrade(Rc<dyn UpgradeHandler>),
}

struct Route {
    method: Method,
    path: String,
    target: Target,
}

/// Path → handler table. Exact path matches; the first route registered for a path and
/// method wins.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<_> = self.routes.iter().map(|r| r.path.as_str()).collect();
        f.debug_struct("Router").field("routes", &paths).finish()
    }
}

/// What the router decided for one request.
enum Dispatch {
    Reply(Reply),
    Handler(Rc<dyn Handler>),
    Upgrade(Rc<dyn UpgradeHandler>),
}

impl Router {
    /// A router with `GET /xrpc/_health` answering `{"version": version}`.
    pub fn new(version: &str) -> Router {
        let body = serde_json::json!({ "version": version });
        let mut router = Router::default();
        router.route(Method::Get, "/xrpc/_health", move |_request: Request| {
            let body = body.clone();
            async move { Reply::json(200, &body) }
        });
        router
    }

    /// Register a handler for `method` on `path`.
    pub fn route(&mut self, method: Method, path: &str, handler: impl Handler + 'static) {
        self.routes.push(Route {
            method,
            path: path.to_owned(),
            target: Target::Plain(Rc::new(handler)),
        });
    }

    /// Register a WebSocket endpoint (`GET` with `Upgrade: websocket`) on `path`.
    pub fn websocket(&mut self, path: &str, handler: impl UpgradeHandler + 'static) {
        self.routes.push(Route {
            method: Method::Get,
            path: path.to_owned(),
            target: Target::Upgrade(Rc::new(handler)),
        });
    }

    fn dispatch(&self, request: &Request) -> Dispatch {
        let mut path_known = false;
        for route in self.routes.iter().filter(|r| r.path == request.path) {
            path_known = true;
            if route.method.as_str() != request.method {
                continue;
            }
            return match &route.target {
                Target::Plain(handler) => Dispatch::Handler(Rc::clone(handler)),
                Target::Upgrade(handler) if request.is_websocket_upgrade() => {
                    Dispatch::Upgrade(Rc::clone(handler))
                }
                Target::Upgrade(_) => Dispatch::Reply(Reply::xrpc_error(
                    400,
                    "InvalidRequest",
                    "this is a WebSocket subscription; send an upgrade request",
                )),
            };
        }
        Dispatch::Reply(if path_known {
            Reply::xrpc_error(405, "InvalidRequest", "method not allowed on this endpoint")
        } else if request.path.starts_with("/xrpc/") {
            Reply::xrpc_error(501, "MethodNotImplemented", "method not implemented")
        } else {
            Reply::xrpc_error(404, "NotFound", "not found")
        })
    }
}

/// Accept connections on `listener` forever, serving each on its own task. An accept
/// error (e.g. out of file descriptors) is counted in `relay_api_accept_errors_total` and
/// retried after `ACCEPT_RETRY`; the loop ends only when its task is dropped.
pub async fn serve(listener: TcpListener, router: Rc<Router>) {
    let open = Rc::new(Cell::new(0usize));
    let refused = metrics::counter!("relay_api_connections_refused_total");
    let accept_errors = metrics::counter!("relay_api_accept_errors_total");
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(_) => {
                accept_errors.increment(1);
                glommio::timer::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let (router, open) = (Rc::clone(&router), Rc::clone(&open));
        if open.get() >= API_CONNECTIONS_PER_CORE_MAX {
            refused.increment(1);
            glommio::spawn_local(refuse(stream)).detach();
            continue;
        }
        open.set(open.get() + 1);
        glommio::spawn_local(async move {
            connection(stream, &router).await;
            open.set(open.get().saturating_sub(1));
        })
        .detach();
    }
}

async fn refuse(mut stream: TcpStream) {
    let reply = Reply::xrpc_error(503, "ServiceUnavailable", "too many connections");
    let _ = write_reply(&mut stream, &reply.closing()).await;
}

async fn write_reply(stream: &mut TcpStream, reply: &Reply) -> Result<(), HttpError> {
    let mut headers = vec![("Content-Type", reply.content_type)];
    for (name, value) in &reply.headers {
        headers.push((name, value.as_str()));
    }
    if reply.close {
        headers.push(("Connection", "close"));
    }
    write_response(stream, reply.status, &headers, &reply.body).await
}

/// One connection: requests in sequence until the peer closes, an error, an upgrade, or a
/// reply that closes.
async fn connection(mut stream: TcpStream, router: &Router) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(API_IDLE_TIMEOUT_SECS_MAX)));
    let mut buffer = ReadBuffer::new();
    loop {
        let request = match read_request(&mut stream, &mut buffer, API_REQUEST_BODY_BYTES_MAX).await
        {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                if let Some(reply) = reply_for_read_error(&e) {
                    let _ = write_reply(&mut stream, &reply).await;
                }
                return;
            }
        };
        let wants_close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = match router.dispatch(&request) {
            Dispatch::Reply(reply) => reply,
            Dispatch::Handler(handler) => handler.call(request).await,
            Dispatch::Upgrade(handler) => match handler.check(&request) {
                Ok(()) => {
                    let _ = stream.set_read_timeout(None);
                    let leftover = buffer.take_remaining();
                    return handler.serve(request, stream, leftover, peer).await;
                }
                // A refused upgrade closes: the client expected a stream, not a dialogue.
                Err(reply) => reply.closing(),
            },
        };
        let close = reply.close || wants_close;
        let reply = if close { reply.closing() } else { reply };
        if write_reply(&mut stream, &reply).await.is_err() || close {
            return;
        }
    }
}

/// The reply to a request that could not be read (always closing), or none when the
/// socket itself failed.
fn reply_for_read_error(error: &HttpError) -> Option<Reply> {
    let reply = match error {
        HttpError::Malformed => Reply::xrpc_error(400, "InvalidRequest", "malformed request"),
        HttpError::HeadTooLarge => {
            Reply::xrpc_error(413, "PayloadTooLarge", "request head too large")
        }
        HttpError::BodyTooLarge => {
            Reply::xrpc_error(413, "PayloadTooLarge", "request body too large")
        }
        _ => return None,
    };
    Some(reply.closing())
}
