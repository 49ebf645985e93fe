//! The HTTP surface: hyper 1 on tokio. Routes, the landing page, the in-flight limit, the
//! single-flight collection shared by concurrent scrapes, and graceful shutdown; with
//! `--web.config.file`, TLS and basic auth.
//!
//! Nothing below this module knows about HTTP; this module knows nothing about the OS.
//!
//! # Layout
//! - `mod.rs`: accepting, the per-connection pipeline (TLS handshake under a timeout, then
//!   HTTP/1.1 with a header-read timeout), routing and the scrape path.
//! - [`web_config`]: the exporter-toolkit web config file, parsed strictly and validated.
//! - [`tls`]: rustls (ring provider) configuration, client-certificate SAN checks,
//!   certificate rotation.
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

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::log;
use crate::metrics::{Exporter, VERSION};

pub mod auth;
pub mod tls;
pub mod web_config;

use web_config::{WebConfig, WebConfigError};

/// The content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

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

type Body = Full<Bytes>;

/// A rendered scrape shared by every response that answers with it, without copying.
struct SharedText(Arc<Rendered>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.scraped.text.as_bytes()
    }
}

/// Whether an `Accept-Encoding` header allows gzip: `gzip` or `*` listed with a q-value above
/// 0 (RFC 9110, section 12.5.3), `gzip` taking precedence over `*`. `x-gzip` counts as gzip.
fn accepts_gzip(header: Option<&HeaderValue>) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else { return false };
    let (mut gzip, mut any) = (None, None);
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => any = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}
/// The collection in flight, which concurrent scrapes join instead of walking the table again.
struct Flight {
    /// Yields the collection's result once it is rendered; closed if it panicked.
    result: watch::Receiver<Option<Collected>>,
    /// The latest deadline of the scrapes waiting for it (see [`FlightDeadline`]).
    deadline: Arc<FlightDeadline>,
    /// Set once someone has logged that this collection overran a deadline.
    overran: Arc<std::sync::atomic::AtomicBool>,
}

/// A finished collection.
#[derive(Clone)]
struct Collected {
    body: Arc<Rendered>,
    /// The collection's deadline passed before every collector ran.
    cut: bool,
}

/// A rendered scrape, and its gzip form once some client has asked for it: concurrent
/// scrapes that share a collection share the compression too.
struct Rendered {
    scraped: crate::metrics::Scraped,
    gzipped: std::sync::OnceLock<Bytes>,
}

impl Rendered {
    fn new(scraped: crate::metrics::Scraped) -> Arc<Rendered> {
        Arc::new(Rendered { scraped, gzipped: std::sync::OnceLock::new() })
    }

    /// The text gzipped at the default level (measured in BENCHMARKS.md: about a tenth of the
    /// bytes for a few milliseconds per 100 KB).
    fn gzipped(&self) -> Bytes {
        self.gzipped.get_or_init(|| gzip(self.scraped.text.as_bytes())).clone()
    }
}

/// `text` gzipped at the default level.
fn gzip(text: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(text);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// The deadline a collection runs to: the latest of the deadlines of the scrapes that joined
/// it. A joiner moves it later, never earlier, so a scrape that arrives with a tight deadline
/// cannot cut short the collection others wait for; the collector loop reads it afresh
/// before each collector.
struct FlightDeadline(Mutex<Instant>);

impl FlightDeadline {
    fn extend(&self, to: Instant) {
        let mut at = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *at = (*at).max(to);
    }

    fn get(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// State shared by every connection.
struct Shared {
    exporter: Arc<Exporter>,
    config: ServerConfig,
    in_flight: Option<Arc<Semaphore>>,
    flight: Arc<Mutex<Option<Flight>>>,
    /// What the web config file says, swapped whole on SIGHUP. A connection takes the TLS
    /// settings in force when it arrives, a request the users and headers in force when it
    /// arrives; either keeps what it took to the end.
    web: std::sync::RwLock<Arc<WebState>>,
}

/// The web config file, loaded: TLS, basic auth, response headers.
struct WebState {
    config: WebConfig,
    tls: Option<tls::Reloader>,
    auth: Option<auth::Authenticator>,
    rate_limit: Option<TokenBucket>,
}

/// `rate_limit` of the web config: a token bucket shared by every request, as the toolkit's
/// (golang.org/x/time/rate): one token per `interval`, at most `burst` saved.
struct TokenBucket {
    limit: web_config::RateLimit,
    /// Tokens available and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    fn new(limit: web_config::RateLimit) -> TokenBucket {
        TokenBucket { limit, state: Mutex::new((f64::from(limit.burst), Instant::now())) }
    }

    /// Takes a token if one is there.
    fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(state.1).as_secs_f64() / self.limit.interval.as_secs_f64();
        state.0 = (state.0 + earned).min(f64::from(self.limit.burst));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl WebState {
    fn load(config: WebConfig) -> Result<WebState, ServeError> {
        let tls = match &config.tls {
            Some(settings) => Some(tls::Reloader::new(settings.clone()).map_err(ServeError::Tls)?),
            None => None,
        };
        let auth = match &config.users {
            Some(users) => Some(auth::Authenticator::new(users).map_err(ServeError::Auth)?),
            None => None,
        };
        let rate_limit = config.rate_limit.map(TokenBucket::new);
        Ok(WebState { config, tls, auth, rate_limit })
    }

    /// What differs from `old`, for the log: users added, removed or given a new password,
    /// TLS and headers changed.
    fn changes_from(&self, old: &WebConfig) -> String {
        let empty = Default::default();
        let (before, after) =
            (old.users.as_ref().unwrap_or(&empty), self.config.users.as_ref().unwrap_or(&empty));
        let mut changes = Vec::new();
        for (user, hash) in after {
            match before.get(user) {
                None => changes.push(format!("+user {user}")),
                Some(old_hash) if old_hash != hash => changes.push(format!("~user {user}")),
                Some(_) => {}
            }
        }
        changes.extend(
            before.keys().filter(|u| !after.contains_key(*u)).map(|u| format!("-user {u}")),
        );
        if old.users.is_some() != self.config.users.is_some() {
            changes.push(format!(
                "basic auth {}",
                if self.config.users.is_some() { "on" } else { "off" }
            ));
        }
        if old.tls != self.config.tls {
            changes.push("tls_server_config".into());
        }
        if old.headers != self.config.headers {
            changes.push("headers".into());
        }
        if old.rate_limit != self.config.rate_limit {
            changes.push("rate_limit".into());
        }
        if changes.is_empty() { "none".into() } else { changes.join(",") }
    }
}

impl Shared {
    /// The web state in force.
    fn web(&self) -> Arc<WebState> {
        self.web.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads `--web.config.file` (on SIGHUP). A file that does not load, or whose
    /// certificates or hashes are bad, is reported and the running config kept.
    fn reload_web_config(&self) {
        let Some(path) = &self.config.web_config_file else {
            log::info("SIGHUP: no --web.config.file to re-read", &[]);
            return;
        };
        let file = path.display().to_string();
        let loaded = load_web_config(path)
            .map_err(|e| e.to_string())
            .and_then(|config| WebState::load(config).map_err(|e| e.to_string()));
        match loaded {
            Ok(state) => {
                let changes = state.changes_from(&self.web().config);
                *self.web.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
                log::info("web config reloaded", &[("file", &file), ("changes", &changes)]);
            }
            Err(e) => log::error(
                "web config not reloaded; the running one stays in force",
                &[("file", &file), ("err", &e)],
            ),
        }
    }
}

/// Reads the web config at `path`, validates it, and loads its certificates and keys once,
/// so a bad file or a key that does not match its certificate fails at start-up, not at the
/// first handshake. (Here rather than in `web_config`, which `tls` builds on: the arrow
/// between them points one way.)
pub fn load_web_config(path: &std::path::Path) -> Result<web_config::WebConfig, WebConfigError> {
    let config = web_config::read(path)?;
    if let Some(settings) = &config.tls {
        tls::build(settings)?;
    }
    Ok(config)
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
        .serve_connection(io, service_fn(move |req| handle(req, service_shared.clone())));
    if let Err(e) = watcher.watch(conn).await {
        log::debug("connection ended", &[("peer", &peer.to_string()), ("err", &e.to_string())]);
    }
}

/// Answers one request, then adds the configured headers (to every answer, 401s included,
/// as the toolkit does).
async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Body>, Infallible> {
    // We never read request bodies; a connection with one unread cannot carry another
    // request, so it is closed after the answer.
    let has_body = !req.body().is_end_stream();
    let web = shared.web();
    let mut response = route(req, &shared, &web, has_body).await;
    let headers = response.headers_mut();
    for (name, value) in &web.config.headers {
        headers.insert(name.clone(), value.clone());
    }
    if has_body {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

async fn route(
    req: Request<Incoming>,
    shared: &Arc<Shared>,
    web: &WebState,
    has_body: bool,
) -> Response<Body> {
    // Before anything that costs: a request over the limit is refused at once.
    if web.rate_limit.as_ref().is_some_and(|bucket| !bucket.allow()) {
        return plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
    }
    if let Some(auth) = &web.auth {
        let credentials = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        match auth.check(credentials).await {
            auth::Verdict::Allow => {}
            auth::Verdict::Deny => {
                let mut response = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                return response;
            }
            auth::Verdict::Busy => {
                let mut response = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins being checked; retry shortly\n",
                );
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response =
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET or HEAD\n");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if has_body {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request bodies are not accepted\n");
    }
    let path = req.uri().path();
    if path == shared.config.telemetry_path {
        return metrics(&req, shared).await;
    }
    if path == "/" {
        return landing(&shared.config.telemetry_path);
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

async fn metrics(req: &Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let _permit = match &shared.in_flight {
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many concurrent scrapes (--web.max-requests)\n",
                );
            }
        },
        None => None,
    };
    let selection = match Selection::of(req.uri().query(), &shared.exporter) {
        Ok(selection) => selection,
        Err(why) => return plain_owned(StatusCode::BAD_REQUEST, why),
    };
    let deadline = scrape_deadline(req, &shared.config);
    let body = match collect_shared(shared, deadline).await {
        Outcome::Ready(body) => body,
        // The table read is still running (a huge table, a hung /proc): answer in time, every
        // collector failed, rather than let Prometheus time out and record nothing at all.
        Outcome::DeadlinePassed => Rendered::new(shared.exporter.missed_deadline()),
        Outcome::Failed => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the collection failed; see the exporter's log\n",
            );
        }
    };
    let gzipped = accepts_gzip(req.headers().get(header::ACCEPT_ENCODING));
    let bytes = match (&selection, gzipped) {
        (Selection::All, true) => body.gzipped(),
        (Selection::All, false) => Bytes::from_owner(SharedText(body)),
        (chosen, _) => {
            let text = body.scraped.select(&|name| chosen.keeps(name));
            if gzipped { gzip(text.as_bytes()) } else { Bytes::from(text) }
        }
    };
    let mut response = Response::new(Full::new(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    // Caches between us and the client must not hand a gzipped answer to one that cannot
    // read it.
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// When this scrape must be answered: the deadline Prometheus announces in
/// `X-Prometheus-Scrape-Timeout-Seconds`, less the offset; without (or with a garbage)
/// header, [`ServerConfig::scrape_timeout`]. Never less than [`MIN_SCRAPE_BUDGET`] away.
fn scrape_deadline(req: &Request<Incoming>, config: &ServerConfig) -> Instant {
    let announced = req
        .headers()
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| {
            Duration::from_secs_f64(s.min(3600.0)).saturating_sub(config.scrape_timeout_offset)
        });
    Instant::now() + announced.unwrap_or(config.scrape_timeout).max(MIN_SCRAPE_BUDGET)
}

/// The shortest time a scrape is given, whatever its header says: enough to answer with
/// a small table, and short enough that a client cannot ask for less than it gets.
pub const MIN_SCRAPE_BUDGET: Duration = Duration::from_millis(100);

/// How a scrape's wait for the collection ended.
enum Outcome {
    Ready(Arc<Rendered>),
    /// The deadline came first; the collection goes on for whoever else waits.
    DeadlinePassed,
    /// The collection panicked or could not start.
    Failed,
}

/// Joins the collection in flight, or starts one on its own thread, and waits for it until
/// `deadline`. Concurrent scrapes therefore walk the process table once between them (single
/// flight), and each is answered by its own deadline: joining moves the collection's deadline
/// later, never earlier, and a scrape whose deadline passes stops waiting without stopping
/// the collection. A collection already cut short by an earlier deadline is not good enough
/// for a scrape with time left: it starts (or joins) one more.
async fn collect_shared(shared: &Arc<Shared>, deadline: Instant) -> Outcome {
    let mut tries = 0;
    loop {
        tries += 1;
        let Some((mut result, overran)) = join_or_start(shared, deadline) else {
            return Outcome::Failed;
        };
        let waited =
            tokio::time::timeout_at(deadline.into(), result.wait_for(Option::is_some)).await;
        match waited {
            Err(_) => {
                if !overran.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    log::warn(
                        "the process table read has not finished by the scrape deadline; answering with every collector failed",
                        &[],
                    );
                }
                return Outcome::DeadlinePassed;
            }
            Ok(Err(_)) => return Outcome::Failed,
            Ok(Ok(collected)) => {
                let Some(collected) = collected.clone() else { return Outcome::Failed };
                if collected.cut && tries < 2 && Instant::now() < deadline {
                    continue;
                }
                return Outcome::Ready(collected.body);
            }
        }
    }
}

type Joined = (watch::Receiver<Option<Collected>>, Arc<std::sync::atomic::AtomicBool>);

/// The collection in flight with its deadline extended to `deadline`, or a new one started.
/// `None` when no thread could be started for it.
fn join_or_start(shared: &Arc<Shared>, deadline: Instant) -> Option<Joined> {
    let mut slot = shared.flight.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(flight) = slot.as_ref() {
        flight.deadline.extend(deadline);
        return Some((flight.result.clone(), flight.overran.clone()));
    }
    let (tx, rx) = watch::channel(None);
    let flight_deadline = Arc::new(FlightDeadline(Mutex::new(deadline)));
    let overran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let exporter = shared.exporter.clone();
    let flight_slot = shared.flight.clone();
    let until = flight_deadline.clone();
    // Its own thread, not tokio's blocking pool: a read that hangs (a stuck /proc) must not
    // hold a pool slot, nor keep the runtime from shutting down on SIGTERM.
    let spawned = std::thread::Builder::new().name("collect".into()).spawn(move || {
        let scraped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            exporter.scrape_until(&|| Some(until.get()))
        }));
        // Free the slot before answering: a scrape arriving from now on starts a fresh
        // collection instead of receiving this one.
        *flight_slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match scraped {
            Ok(scraped) => {
                let cut = scraped.cut;
                let _ = tx.send(Some(Collected { body: Rendered::new(scraped), cut }));
            }
            Err(_) => log::error("the collection panicked", &[]),
        }
    });
    if let Err(e) = spawned {
        log::error("cannot start a collection thread", &[("err", &e.to_string())]);
        return None;
    }
    *slot =
        Some(Flight { result: rx.clone(), deadline: flight_deadline, overran: overran.clone() });
    Some((rx, overran))
}

/// Which collectors a scrape asks for, as node_exporter takes them: `collect[]=NAME`
/// (repeatable) for only those, `exclude[]=NAME` for all but those; the exporter's own
/// metrics are always answered.
enum Selection {
    All,
    Only(Vec<String>),
    AllBut(Vec<String>),
}

impl Selection {
    /// The selection in a query string, checked against the collectors `exporter` runs: an
    /// unknown or disabled name, or both parameters at once, is an error naming it.
    fn of(query: Option<&str>, exporter: &Exporter) -> Result<Selection, String> {
        let (mut collect, mut exclude) = (Vec::new(), Vec::new());
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key).as_str() {
                "collect[]" => collect.push(percent_decode(value)),
                "exclude[]" => exclude.push(percent_decode(value)),
                // Other parameters are not ours to refuse (node_exporter ignores them too).
                _ => {}
            }
        }
        if !collect.is_empty() && !exclude.is_empty() {
            return Err("collect[] and exclude[] cannot be used together\n".into());
        }
        for name in collect.iter().chain(&exclude) {
            if !exporter.collector_names().any(|enabled| enabled == name) {
                return Err(match crate::collect::find(name) {
                    Some(_) => format!("collector {name:?} is not enabled (--collector.{name})\n"),
                    None => format!("unknown collector {name:?} in collect[] or exclude[]\n"),
                });
            }
        }
        Ok(match (collect.is_empty(), exclude.is_empty()) {
            (true, true) => Selection::All,
            (false, _) => Selection::Only(collect),
            (_, false) => Selection::AllBut(exclude),
        })
    }

    fn keeps(&self, collector: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(names) => names.iter().any(|n| n == collector),
            Selection::AllBut(names) => !names.iter().any(|n| n == collector),
        }
    }
}

/// A query-string component decoded as `application/x-www-form-urlencoded` is (what the
/// `url` crate's `form_urlencoded` does): `+` is a space, `%XX` escapes are decoded by the
/// `percent-encoding` crate, and a malformed escape is kept as written (it then names no
/// collector, which is reported).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

fn plain_owned(status: StatusCode, text: String) -> Response<Body> {
    let mut response = plain(status, "");
    *response.body_mut() = Full::new(Bytes::from(text));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn landing(telemetry_path: &str) -> Response<Body> {
    let path = html_escape(telemetry_path);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>libproc_exporter</title></head>\n\
         <body>\n<h1>libproc_exporter</h1>\n<p>Process counts from the kernel's process table, version {VERSION}.</p>\n\
         <p><a href=\"{path}\">Metrics</a></p>\n</body>\n</html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(percent_decode("collect%5B%5D"), "collect[]");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
    }

    #[test]
    fn gzip_is_accepted_by_name_or_star_unless_its_q_is_zero() {
        let accepts = |v: &str| accepts_gzip(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(!accepts_gzip(None));
        for yes in [
            "gzip",
            "GZIP",
            "gzip, deflate",
            "deflate, gzip;q=0.5",
            "*",
            "br;q=1, *;q=0.1",
            "x-gzip",
            "gzip;q=0.001",
            "identity, gzip ; q=1",
        ] {
            assert!(accepts(yes), "{yes}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.000",
            "*;q=0",
            "gzip;q=0, *",
            "*, gzip;q=0",
        ] {
            assert!(!accepts(no), "{no}");
        }
    }

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
