//! Concurrent scrapes share one collection: 50 at once walk the process table once, and all
//! get the same answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use libproc_exporter::collect;
use libproc_exporter::metrics::Exporter;
use libproc_exporter::server::{self, ServerConfig};
use libproc_exporter::table::{self, Snapshot, Source};

use crate::common::{fixture, http_get, sample};

/// The recorded Mac, read slowly, as a large table on a busy machine would be, and counting
/// how many readings overlap.
struct SlowSource {
    inner: Box<dyn Source>,
    delay: Duration,
    active: Arc<AtomicUsize>,
    overlapped: Arc<AtomicUsize>,
}

impl Source for SlowSource {
    fn name(&self) -> &'static str {
        "slow-replay"
    }

    fn snapshot(&mut self) -> Result<Snapshot, table::Error> {
        if self.active.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlapped.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(self.delay);
        let result = self.inner.snapshot();
        self.active.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

/// Serves `exporter` in-process on 127.0.0.1:0 (the same `server::run` main calls) and
/// returns the address; the server lives until the test process ends.
fn serve(exporter: Arc<Exporter>, config: ServerConfig) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            server::run(vec![listener], exporter, config, std::future::pending()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn slow_exporter(delay: Duration) -> (Arc<Exporter>, Arc<AtomicUsize>) {
    let inner = table::replay::open(&fixture("snapshots/mac.json")).unwrap();
    let overlapped = Arc::new(AtomicUsize::new(0));
    let source = SlowSource {
        inner: Box::new(inner),
        delay,
        active: Arc::new(AtomicUsize::new(0)),
        overlapped: overlapped.clone(),
    };
    let collectors = collect::default_instances();
    (Arc::new(Exporter::new(Box::new(source), collectors, false)), overlapped)
}

fn burst(addr: SocketAddr, n: usize) -> Vec<(u16, String)> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                http_get(addr, "/metrics").map(|r| (r.status, r.body)).unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn fifty_concurrent_scrapes_share_one_collection() {
    let (exporter, overlapped) = slow_exporter(Duration::from_millis(1500));
    let config = ServerConfig { max_requests: 0, ..ServerConfig::default() };
    let addr = serve(exporter.clone(), config);

    let answers = burst(addr, 50);
    assert!(answers.iter().all(|(status, _)| *status == 200), "every scrape answered 200");
    let first = &answers[0].1;
    assert!(answers.iter().all(|(_, body)| body == first), "all 50 got the same collection");
    assert_eq!(exporter.collections(), 1, "50 concurrent scrapes walked the table once");
    assert_eq!(sample(first, "libproc_collections_total", ""), Some(1.0));
    assert_eq!(sample(first, "libproc_processes", "state=\"zombie\""), Some(4.0));

    // The next burst is a new collection, never one overlapping another.
    let answers = burst(addr, 20);
    assert!(answers.iter().all(|(status, body)| *status == 200 && body == &answers[0].1));
    assert_eq!(exporter.collections(), 2);
    assert_eq!(sample(&answers[0].1, "libproc_collections_total", ""), Some(2.0));
    assert_eq!(overlapped.load(Ordering::SeqCst), 0, "two collections ran at once");
}

#[test]
fn sequential_scrapes_each_collect_afresh() {
    let (exporter, _) = slow_exporter(Duration::ZERO);
    let addr = serve(exporter.clone(), ServerConfig::default());
    for i in 1..=3 {
        let r = http_get(addr, "/metrics").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert_eq!(sample(&r.body, "libproc_collections_total", ""), Some(i as f64));
    }
}

#[test]
fn routes_landing_page_404_and_405() {
    let (exporter, _) = slow_exporter(Duration::ZERO);
    let config = ServerConfig { telemetry_path: "/custom".into(), ..ServerConfig::default() };
    let addr = serve(exporter, config);
    let landing = http_get(addr, "/").unwrap();
    assert_eq!(landing.status, 200);
    assert!(
        landing.body.contains("href=\"/custom\"")
            && landing.body.contains(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(http_get(addr, "/metrics").unwrap().status, 404);
    assert_eq!(http_get(addr, "/custom").unwrap().status, 200);
    let post = crate::common::http_request(
        addr,
        "POST /custom HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = crate::common::http_request(
        addr,
        "HEAD /custom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.unwrap().status, 200);
}
