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
            let (_reload, reload) = tokio::sync::mpsc::channel(1);
            server::run(vec![listener], exporter, config, std::future::pending(), reload)
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// GET /metrics announcing a scrape timeout, as Prometheus does.
fn scrape_with_timeout(addr: SocketAddr, seconds: &str) -> crate::common::Response {
    crate::common::http_request(
        addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nX-Prometheus-Scrape-Timeout-Seconds: {seconds}\r\nConnection: close\r\n\r\n"
        ),
    )
    .unwrap()
}

/// The `libproc_scrape_collector_success` values of a scrape.
fn successes(body: &str) -> Vec<f64> {
    body.lines()
        .filter(|l| l.starts_with("libproc_scrape_collector_success{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
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

#[test]
fn a_short_scrape_deadline_does_not_poison_a_concurrent_scrape() {
    // The table takes 600 ms to read. A client asking for 1 ms starts the collection; a
    // normal scrape joins it 20 ms later and must get the whole answer, not the short
    // client's deadline (which cut every collector before the fix).
    let (exporter, _) = slow_exporter(Duration::from_millis(600));
    let addr = serve(exporter.clone(), ServerConfig::default());
    let short = std::thread::spawn(move || scrape_with_timeout(addr, "0.001"));
    std::thread::sleep(Duration::from_millis(20));
    let normal = scrape_with_timeout(addr, "10");
    let short = short.join().unwrap();

    assert_eq!(normal.status, 200);
    let ok = successes(&normal.body);
    assert!(!ok.is_empty() && ok.iter().all(|&s| s == 1.0), "every collector ran: {ok:?}");
    assert_eq!(sample(&normal.body, "libproc_processes", "state=\"zombie\""), Some(4.0));
    assert_eq!(exporter.collections(), 1, "the normal scrape joined the short one's collection");

    // The short client is answered by its own deadline: in time, every collector failed.
    assert_eq!(short.status, 200);
    let failed = successes(&short.body);
    assert!(!failed.is_empty() && failed.iter().all(|&s| s == 0.0), "{failed:?}");
    assert_eq!(sample(&short.body, "libproc_processes", "state=\"zombie\""), None);
}

/// A source whose reads block until the test opens the gate, as a hung /proc would.
struct GatedSource {
    inner: Box<dyn Source>,
    gate: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Source for GatedSource {
    fn name(&self) -> &'static str {
        "gated-replay"
    }

    fn snapshot(&mut self) -> Result<Snapshot, table::Error> {
        let (open, opened) = &*self.gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
        self.inner.snapshot()
    }
}

#[test]
fn a_stuck_table_read_is_answered_by_the_deadline_and_not_restarted() {
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let source = GatedSource {
        inner: Box::new(table::replay::open(&fixture("snapshots/mac.json")).unwrap()),
        gate: gate.clone(),
    };
    let exporter = Arc::new(Exporter::new(Box::new(source), collect::default_instances(), false));
    let addr = serve(exporter.clone(), ServerConfig::default());

    // Every scrape while the read hangs answers (by its 0.6 s deadline, less the offset's
    // floor) with every collector failed, and joins the stuck read instead of starting
    // another behind it.
    for _ in 0..3 {
        let r = scrape_with_timeout(addr, "0.6");
        assert_eq!(r.status, 200);
        let ok = successes(&r.body);
        assert!(!ok.is_empty() && ok.iter().all(|&s| s == 0.0), "{ok:?}");
        assert_eq!(exporter.collections(), 1, "a stuck read is not started again");
    }

    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    // The stuck read finishes in the background; the next scrape after it is whole.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = scrape_with_timeout(addr, "5");
        let ok = successes(&r.body);
        if ok.iter().all(|&s| s == 1.0) && !ok.is_empty() {
            assert_eq!(sample(&r.body, "libproc_processes", "state=\"zombie\""), Some(4.0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no whole scrape after the read resumed");
    }
}

/// GET /metrics with an `Accept-Encoding` header.
fn scrape_encoded(addr: SocketAddr, accept: &str) -> crate::common::Response {
    crate::common::http_request(
        addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {accept}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap()
}

#[test]
fn gzip_when_the_client_accepts_it_and_the_same_text_inside() {
    // Three scrapes share one slow collection, so the three bodies hold the same text.
    let (exporter, _) = slow_exporter(Duration::from_millis(500));
    let addr = serve(exporter.clone(), ServerConfig::default());
    let asks = ["gzip", "gzip;q=0, identity", "deflate, gzip;q=0.8"]
        .map(|accept| std::thread::spawn(move || scrape_encoded(addr, accept)));
    let [gzipped, refused, weighted] = asks.map(|h| h.join().unwrap());
    assert_eq!(exporter.collections(), 1);

    for r in [&gzipped, &weighted, &refused] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    }
    assert_eq!(refused.header("content-encoding"), None, "q=0 refuses gzip");
    assert!(refused.body.contains("libproc_build_info"));
    for r in [&gzipped, &weighted] {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(&r.bytes[..2], [0x1f, 0x8b], "the gzip magic");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.bytes[..]), &mut text)
            .expect("a valid gzip stream");
        assert_eq!(text, refused.body, "the same exposition, compressed");
        assert!(
            r.bytes.len() * 3 < text.len(),
            "{} bytes for {} of text",
            r.bytes.len(),
            text.len()
        );
    }
    // No header: identity.
    let plain = http_get(addr, "/metrics").unwrap();
    assert_eq!(plain.header("content-encoding"), None);
}

/// The collectors with a `libproc_scrape_collector_success` sample in a scrape.
fn collectors_in(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("libproc_scrape_collector_success{collector=\""))
        .filter_map(|l| l.split('"').next().map(String::from))
        .collect()
}

/// The collectors on by default, in exposition order, as `collect::ALL` declares them.
fn default_collectors() -> Vec<&'static str> {
    collect::ALL.iter().filter(|d| d.default_enabled).map(|d| d.name).collect()
}

#[test]
fn collect_and_exclude_choose_collectors_per_request_as_node_exporter_does() {
    let (exporter, _) = slow_exporter(Duration::ZERO);
    let addr = serve(exporter, ServerConfig::default());

    let only = http_get(addr, "/metrics?collect[]=processes&collect%5B%5D=tty").unwrap();
    assert_eq!(only.status, 200);
    assert_eq!(collectors_in(&only.body), ["processes", "tty"]);
    assert!(only.body.contains("\nlibproc_processes{") && only.body.contains("\nlibproc_ttys "));
    assert!(!only.body.contains("libproc_uid_processes"), "uid was not asked for");
    // The exporter's own metrics are always there.
    for own in ["libproc_build_info", "libproc_collections_total", "libproc_pids_unreadable"] {
        assert!(only.body.contains(own), "{own}");
    }

    let all_but = http_get(addr, "/metrics?exclude[]=uid&exclude[]=ruid&other=ignored").unwrap();
    assert_eq!(all_but.status, 200);
    let rest: Vec<&str> =
        default_collectors().into_iter().filter(|n| !["uid", "ruid"].contains(n)).collect();
    assert_eq!(collectors_in(&all_but.body), rest);
    assert!(!all_but.body.contains("libproc_ruid_processes{"));

    for (query, why) in [
        ("collect[]=nope", "unknown collector \"nope\""),
        ("collect[]=pgrp", "collector \"pgrp\" is not enabled (--collector.pgrp)"),
        ("collect[]=uid&exclude[]=tty", "collect[] and exclude[] cannot be used together"),
        ("exclude[]=", "unknown collector \"\""),
    ] {
        let r = http_get(addr, &format!("/metrics?{query}")).unwrap();
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.body.lines().count(), 1, "{query}: {}", r.body);
        assert!(r.body.contains(why), "{query}: {}", r.body);
    }
    // Without parameters: every enabled collector.
    let everything = http_get(addr, "/metrics").unwrap();
    assert_eq!(collectors_in(&everything.body), default_collectors());
}
