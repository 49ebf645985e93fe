//! The HTTP surface: hyper 1 on tokio. Routes, the landing page, the in-flight limit, the
//! single-flight collection shared by concurrent scrapes, and graceful shutdown; with
//! `--web.config.file`, TLS and basic auth.
//!
//! Nothing below this module knows about HTTP; this module knows nothing about the OS.
//!
//! # Layout
//! - `mod.rs`: [`run`]: accepting under the connection cap, the per-connection pipeline
//!   (TLS handshake under a timeout, then HTTP/1.1 with a header-read timeout), SIGHUP
//!   reloads and graceful shutdown.
//! - `routes`: one request: rate limit, basic auth, method and path, the scrape answer, the
//!   landing page and plain-text refusals.
//! - `flight`: single-flight collection, and each scrape's deadline.
//! - `selection`: `collect[]` and `exclude[]` in the query.
//! - `gzip`: `Accept-Encoding` negotiation and compression.
//! - `rate_limit`: the web config's token bucket.
//! - `web_state`: the web config in force, its reload and the logged diff.
//! - [`web_config`]: the exporter-toolkit web config file, parsed strictly and validated.
//! - [`tls`]: rustls (ring provider) configuration, client-certificate verification (the
//!   system's roots without `client_ca_file`, Go's unverified modes, a self-signed CA as
//!   the client's certificate, SAN checks), certificate rotation.
//! - [`auth`]: basic auth against bcrypt hashes, with the cache done safely.
//!
//! # What each hostile request gets
//! | request | answer |
//! |---|---|
//! | no or wrong credentials (auth on) | 401 with `WWW-Authenticate: Basic`, before anything else |
//! | credentials not yet verified while [`auth::CHECKS_QUEUED`] bcrypt checks wait (auth on) | 503 with `Retry-After: 1`, at once |
//! | a method other than GET or HEAD | 405 with `Allow: GET, HEAD` |
//! | a GET or HEAD with a body | 413; the body is never read, the connection closed |
//! | more requests than the web config's `rate_limit` allows (all clients together) | 429, before authentication |
//! | an unknown path | 404 |
//! | `collect[]`/`exclude[]` naming an unknown or disabled collector, or both at once | 400, one line naming it |
//! | more concurrent scrapes than `--web.max-requests` | 503 |
//! | more open connections than `--web.max-connections` | not accepted until one closes (they wait in the kernel's listen backlog), so the table read keeps its descriptors |
//! | a request line and headers over 16 KiB, or over 100 headers | 431 (hyper) |
//! | malformed request line or headers | 400 (hyper) |
//! | headers not complete within `--web.header-read-timeout` | connection closed (hyper) |
//! | no TLS handshake within the same timeout | connection closed |
//! | a scrape deadline of 1 ms (`X-Prometheus-Scrape-Timeout-Seconds`) | its own answer within [`MIN_SCRAPE_BUDGET`], every collector failed; concurrent scrapes unaffected |

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::log;
use crate::metrics::Exporter;

pub mod auth;
mod flight;
mod gzip;
mod rate_limit;
mod routes;
mod selection;
pub mod tls;
pub mod web_config;
mod web_state;

pub use flight::MIN_SCRAPE_BUDGET;
pub use routes::TEXT_FORMAT;
pub use web_state::load_web_config;

use flight::Flight;
use web_config::{WebConfig, WebConfigError};
use web_state::WebState;

/// How the server behaves; built by `config` from validated flags.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `--web.telemetry-path`.
    pub telemetry_path: String,
    /// `--web.max-requests`: concurrent scrapes answered; more get 503. 0 = no limit.
    pub max_requests: usize,
    /// `--web.max-connections`: connections held open at once; at the cap the server stops
    /// accepting until one closes (clients wait in the listen backlog). 0 = no limit. Lowered
    /// at start so that [`DESCRIPTOR_RESERVE`] descriptors stay free for the table read.
    pub max_connections: usize,
    /// `--web.header-read-timeout`: a client has this long to complete the TLS handshake,
    /// and then this long to send each request's headers, or the connection is closed.
    pub header_read_timeout: Duration,
    /// Subtracted from Prometheus's `X-Prometheus-Scrape-Timeout-Seconds` so the answer
    /// arrives before Prometheus gives up.
    pub scrape_timeout_offset: Duration,
    /// The deadline of a scrape that announces none (curl, a browser): a stuck table read
    /// is answered with every collector failed after this long rather than never.
    pub scrape_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// `--web.config.file`: TLS, basic auth and extra headers; the default is none of them.
    pub web: WebConfig,
    /// Where `web` was read from, re-read on SIGHUP (see [`run`]); `None` without the flag.
    pub web_config_file: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            telemetry_path: "/metrics".into(),
            max_requests: 40,
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            scrape_timeout_offset: Duration::from_millis(500),
            scrape_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            web: WebConfig::default(),
            web_config_file: None,
        }
    }
}

/// Descriptors kept free for everything but connections (the table read, which opens files
/// below /proc or scans /dev; the log; certificate reloads), when `RLIMIT_NOFILE` allows: at
/// most half the limit. Holding idle connections must not starve the read, or it reports a
/// partial table.
pub const DESCRIPTOR_RESERVE: usize = 64;

/// The connection cap in force: `wanted` lowered so that the reserve stays free under a
/// descriptor limit of `open_files` (0 = no cap stays no cap).
fn connection_cap(wanted: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files.and_then(|n| usize::try_from(n).ok()) else { return wanted };
    if wanted == 0 {
        return 0;
    }
    let reserve = DESCRIPTOR_RESERVE.min(open_files / 2);
    wanted.min(open_files.saturating_sub(reserve)).max(1)
}

/// State shared by every connection.
struct Shared {
    exporter: Arc<Exporter>,
    config: ServerConfig,
    /// `--web.max-requests` scrapes answered at once; `None` for no limit.
    in_flight: Option<Arc<Semaphore>>,
    /// The collection in flight, if any (see [`flight`]).
    flight: Arc<Mutex<Option<Flight>>>,
    /// What the web config file says, swapped whole on SIGHUP. A connection takes the TLS
    /// settings in force when it arrives, a request the users and headers in force when it
    /// arrives; either keeps what it took to the end.
    web: std::sync::RwLock<Arc<WebState>>,
}

/// Why [`run`] stopped with an error.
#[derive(Debug)]
pub enum ServeError {
    /// The TLS files, valid at start-up, could no longer be loaded.
    Tls(WebConfigError),
    /// The threads that check basic-auth passwords could not be started.
    Auth(auth::StartError),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Tls(e) => write!(f, "--web.config.file: {e}"),
            ServeError::Auth(e) => write!(f, "--web.config.file: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Serves until `shutdown` completes, then stops accepting, gives in-flight requests
/// `shutdown_grace` to finish, and returns. Each message on `reload` (main sends one per
/// SIGHUP) re-reads `config.web_config_file`. Fails before serving when the TLS files
/// (validated at start-up) can no longer be loaded.
pub async fn run(
    listeners: Vec<TcpListener>,
    exporter: Arc<Exporter>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
    mut reload: mpsc::Receiver<()>,
) -> Result<(), ServeError> {
    let web = WebState::load(config.web.clone())?;
    let shared = Arc::new(Shared {
        in_flight: (config.max_requests > 0).then(|| Arc::new(Semaphore::new(config.max_requests))),
        exporter,
        flight: Arc::new(Mutex::new(None)),
        web: std::sync::RwLock::new(Arc::new(web)),
        config,
    });
    let open_files = crate::host::open_files_limit();
    let cap = connection_cap(shared.config.max_connections, open_files);
    if cap != shared.config.max_connections {
        log::warn(
            "--web.max-connections lowered to keep descriptors for the table read",
            &[
                ("wanted", &shared.config.max_connections.to_string()),
                ("max_connections", &cap.to_string()),
                ("open_files_limit", &open_files.unwrap_or(0).to_string()),
            ],
        );
    }
    let connections = (cap > 0).then(|| Arc::new(Semaphore::new(cap)));
    let (accepted, mut incoming) = mpsc::channel::<Accepted>(64);
    let mut acceptors = Vec::new();
    for listener in listeners {
        acceptors.push(tokio::spawn(accept_loop(listener, connections.clone(), accepted.clone())));
    }
    drop(accepted);

    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            conn = incoming.recv() => {
                let Some((stream, peer, permit)) = conn else { break };
                let (shared, watcher) = (shared.clone(), graceful.watcher());
                tokio::spawn(async move {
                    connection(stream, peer, shared, watcher).await;
                    // The slot frees when the connection ends, however it ends.
                    drop(permit);
                });
            }
            Some(()) = reload.recv() => {
                // Loading certificates and checking hashes is blocking work.
                let shared = shared.clone();
                let _ = tokio::task::spawn_blocking(move || shared.reload_web_config()).await;
            }
            () = &mut shutdown => break,
        }
    }
    for acceptor in acceptors {
        acceptor.abort();
    }
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        log::warn("in-flight requests did not finish in time", &[("grace", &format!("{grace:?}"))]);
    }
    Ok(())
}

/// An accepted connection and its slot under `--web.max-connections`.
type Accepted = (TcpStream, SocketAddr, Option<tokio::sync::OwnedSemaphorePermit>);

/// Accepts connections on `listener` while a slot under the connection cap is free; at the
/// cap it stops accepting (the kernel's listen backlog holds new clients) instead of taking
/// descriptors the table read needs. Reaching the cap is logged at most once a minute, and an
/// accept failure once until accepting works again.
async fn accept_loop(
    listener: TcpListener,
    slots: Option<Arc<Semaphore>>,
    accepted: mpsc::Sender<Accepted>,
) {
    // When idle connections time out together the cap is left and reached again many times a
    // second: say so at most once a minute.
    let mut cap_logged: Option<Instant> = None;
    let mut failing = false;
    loop {
        let permit = match &slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    if cap_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                        log::warn(
                            "at --web.max-connections: new connections wait until one closes",
                            &[],
                        );
                        cap_logged = Some(Instant::now());
                    }
                    match slots.clone().acquire_owned().await {
                        Ok(permit) => Some(permit),
                        Err(_) => return,
                    }
                }
            },
        };
        // Out of descriptors and the like: back off instead of spinning, keeping the slot.
        let conn = loop {
            match listener.accept().await {
                Ok(conn) => break conn,
                Err(e) => {
                    if !failing {
                        log::warn(
                            "accept failed; retrying every 100 ms",
                            &[("err", &e.to_string())],
                        );
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        if failing {
            log::info("accepting again", &[]);
            failing = false;
        }
        if accepted.send((conn.0, conn.1, permit)).await.is_err() {
            return;
        }
    }
}

/// One connection: the TLS handshake (if any) under the header-read timeout, then HTTP/1.1.
async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, watcher: Watcher) {
    let _ = stream.set_nodelay(true);
    match &shared.web().tls {
        None => serve_http(TokioIo::new(stream), peer, shared, watcher).await,
        Some(tls) => match tls.handshake(stream, shared.config.header_read_timeout).await {
            Ok(stream) => serve_http(TokioIo::new(stream), peer, shared, watcher).await,
            Err(e) => log::debug(
                "TLS handshake failed",
                &[("peer", &peer.to_string()), ("err", &e.to_string())],
            ),
        },
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, shared: Arc<Shared>, watcher: Watcher)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service_shared = shared.clone();
    let conn = http1::Builder::new()
        // Without a timer hyper silently ignores header_read_timeout.
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_buf_size(16 * 1024)
        .serve_connection(io, service_fn(move |req| routes::handle(req, service_shared.clone())));
    if let Err(e) = watcher.watch(conn).await {
        log::debug("connection ended", &[("peer", &peer.to_string()), ("err", &e.to_string())]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_table_read() {
        assert_eq!(connection_cap(256, Some(1024)), 256);
        assert_eq!(connection_cap(1000, Some(1024)), 1024 - DESCRIPTOR_RESERVE);
        // A tight limit keeps half for the read.
        assert_eq!(connection_cap(256, Some(64)), 32);
        assert_eq!(connection_cap(256, Some(1)), 1);
        assert_eq!(connection_cap(256, None), 256);
        // No cap asked, none imposed: the operator manages descriptors.
        assert_eq!(connection_cap(0, Some(64)), 0);
    }
}
