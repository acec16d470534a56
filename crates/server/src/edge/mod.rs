//! The HTTP edge: the accept loop and each connection's HTTP/1.1 server, owned here so the
//! limits hold before a request reaches the router: a header timeout (hyper's), an idle
//! timeout and the envelope on hyper's own parse errors ([`io::EdgeIo`]), a body deadline
//! ([`body`]), and a cap on connections served at once (one more is answered 503).

pub mod body;
pub mod io;
pub mod sealed;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub mod config;

pub use config::{HttpConfig, seconds};

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then lets open
/// connections finish their current exchange.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: App,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .keep_alive(true);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
        };
        if let Err(err) = tcp.set_nodelay(true) {
            // Event streams are many small writes: without TCP_NODELAY each waits for
            // the client's delayed ACK.
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(tcp);
            continue;
        };
        let (app, builder, stop, idle) = (
            app.clone(),
            builder.clone(),
            stop.clone(),
            limits.idle_timeout(),
        );
        tracker.spawn(async move {
            connection(tcp, app, &builder, idle, stop).await;
            drop(permit);
        });
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// What the edge serves: any always-ready, cloneable service answering every request.
pub trait App:
    tower::Service<
        axum::http::Request<Body>,
        Response = axum::response::Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> App for S where
    S: tower::Service<
            axum::http::Request<Body>,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

async fn connection<S: App>(
    tcp: TcpStream,
    app: S,
    builder: &http1::Builder,
    idle: Duration,
    stop: CancellationToken,
) {
    let busy = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(io::EdgeIo::new(tcp, idle, busy.clone()));
    let service = TowerToHyperService::new(
        app.map_request({
            let busy = busy.clone();
            move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(HeldOpen(busy.clone()));
                req
            }
        })
        .map_future(move |answer| {
            let guard = Busy::enter(busy.clone());
            async move {
                let answer = answer.await;
                drop(guard);
                answer
            }
        }),
    );
    // Upgrades: the live preview relays its dev server's HMR WebSocket.
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// A request's way to keep its connection from counting as idle after its handler ended
/// (an upgraded connection relaying a WebSocket that may be quiet for long).
#[derive(Debug, Clone)]
pub struct HeldOpen(Arc<AtomicUsize>);

impl HeldOpen {
    /// The connection is not idle while the guard lives.
    pub fn hold(&self) -> impl Drop + Send + 'static {
        Busy::enter(self.0.clone())
    }
}

/// Counts a handler at work on its connection until dropped (also when cancelled).
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Over the cap: one write of the 503 envelope if the socket takes it, then close.
fn refuse(tcp: TcpStream) {
    tracing::warn!("connection limit reached; refusing a connection");
    let _ = tcp.try_write(&io::envelope_response(503));
}

/// Transient accept errors (a reset before accept, out of file descriptors) must not end
/// the server; back off briefly when the process is out of descriptors.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
