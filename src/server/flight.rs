//! Single-flight collection: concurrent scrapes share one walk of the process table, each
//! answered by its own deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Request;
use hyper::body::{Bytes, Incoming};
use tokio::sync::watch;

use super::{ServerConfig, Shared, gzip};
use crate::log;

/// A rendered scrape shared by every response that answers with it, without copying.
pub(super) struct SharedText(pub(super) Arc<Rendered>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.scraped.text.as_bytes()
    }
}

/// The collection in flight, which concurrent scrapes join instead of walking the table again.
pub(super) struct Flight {
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
pub(super) struct Rendered {
    pub(super) scraped: crate::metrics::Scraped,
    gzipped: std::sync::OnceLock<Bytes>,
}

impl Rendered {
    pub(super) fn new(scraped: crate::metrics::Scraped) -> Arc<Rendered> {
        Arc::new(Rendered { scraped, gzipped: std::sync::OnceLock::new() })
    }

    /// The text gzipped at the default level (measured in BENCHMARKS.md: about a tenth of the
    /// bytes for a few milliseconds per 100 KB).
    pub(super) fn gzipped(&self) -> Bytes {
        self.gzipped.get_or_init(|| gzip::gzip(self.scraped.text.as_bytes())).clone()
    }
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

/// When this scrape must be answered: the deadline Prometheus announces in
/// `X-Prometheus-Scrape-Timeout-Seconds`, less the offset; without (or with a garbage)
/// header, [`ServerConfig::scrape_timeout`]. Never less than [`MIN_SCRAPE_BUDGET`] away.
pub(super) fn scrape_deadline(req: &Request<Incoming>, config: &ServerConfig) -> Instant {
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
pub(super) enum Outcome {
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
pub(super) async fn collect_shared(shared: &Arc<Shared>, deadline: Instant) -> Outcome {
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
