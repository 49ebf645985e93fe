//! Limits, timeouts, shutdown and hostile input against the running binary. Slow scrapes
//! come from a really slow /proc (web_support::slow_procfs: a `stat` that answers late, as a
//! hung network mount does), not from a test-only delay in the exporter.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{Exporter, http_get, http_request};
use crate::web_support::{TempDir, open_fds, rss_kib, signal, slow_procfs};

/// An exporter over a table whose scrape takes one to two seconds in a debug build.
fn slow_exporter(dir: &TempDir, extra: &[&str]) -> Exporter {
    let procfs = slow_procfs(dir, Duration::from_millis(1500));
    let mut args =
        vec!["--source=procfs".to_string(), format!("--path.procfs={}", procfs.display())];
    args.extend(extra.iter().map(|s| s.to_string()));
    Exporter::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Reads until the peer closes; returns what was read and how long it took. Fails the test
/// when the peer keeps the connection open past `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, started.elapsed()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (out, started.elapsed());
            }
            Err(e) => panic!("connection still open after {:?}: {e}", started.elapsed()),
        }
    }
}

#[test]
fn web_max_requests_2_with_three_held_scrapes_gives_one_503() {
    let dir = TempDir::new("limit");
    let exporter = slow_exporter(&dir, &["--web.max-requests=2"]);
    let addr = exporter.addr;
    let barrier = Arc::new(Barrier::new(3));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let t = Instant::now();
                let r = http_get(addr, "/metrics").expect("scrape");
                (r.status, t.elapsed())
            })
        })
        .collect();
    let mut results: Vec<(u16, Duration)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    results.sort();
    println!("three concurrent scrapes with --web.max-requests=2: {results:?}");
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [200, 200, 503]);
    // The two held ones were really held (the collection is slow); the 503 did not wait.
    assert!(results[2].1 < results[0].1.min(results[1].1), "{results:?}");
    // The landing page is not a scrape and is never limited.
    assert_eq!(http_get(addr, "/").unwrap().status, 200);
}

/// X-Prometheus-Scrape-Timeout-Seconds sets the scrape's deadline (less an offset, clamped):
/// with too little time the collectors report success 0 and the answer is still a 200 with
/// everything else; with time to spare (or an absurd value, clamped) they all run.
#[test]
fn web_scrape_deadline_from_the_prometheus_header() {
    let dir = TempDir::new("deadline");
    let exporter = slow_exporter(&dir, &[]);
    let scrape = |timeout: &str| {
        let r = http_request(
            exporter.addr,
            &format!(
                "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: {timeout}\r\nConnection: close\r\n\r\n"
            ),
        )
        .unwrap();
        assert_eq!(r.status, 200, "timeout {timeout}");
        assert!(r.body.contains("libproc_build_info"), "timeout {timeout}");
        r.body
    };
    let success = |body: &str, collector: &str| {
        crate::common::sample(
            body,
            "libproc_scrape_collector_success",
            &format!("collector=\"{collector}\""),
        )
    };
    let hurried = scrape("0.7");
    for collector in ["processes", "uid", "ruid", "tty", "ppid", "tree", "limits"] {
        assert_eq!(success(&hurried, collector), Some(0.0), "{collector} with 0.7 s");
    }
    assert!(!hurried.contains("libproc_uid_processes{"), "a late collector still ran");
    for timeout in ["30", "1e9"] {
        let body = scrape(timeout);
        assert_eq!(success(&body, "uid"), Some(1.0), "uid with {timeout} s");
        assert!(body.contains("libproc_uid_processes{"), "{timeout}");
    }
}

/// A client that sends half a request and stalls, and one that sends nothing, are
/// disconnected after --web.header-read-timeout; a normal scrape meanwhile gets 200.
#[test]
fn web_stalled_header_client_is_disconnected_while_scrapes_work() {
    let exporter = Exporter::start(&["--web.header-read-timeout=1s"]);
    let mut partial = TcpStream::connect(exporter.addr).unwrap();
    partial.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let mut silent = TcpStream::connect(exporter.addr).unwrap();
    let started = Instant::now();
    assert_eq!(http_get(exporter.addr, "/metrics").unwrap().status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the scrape waited for the stalled clients"
    );
    for (name, stream) in [("partial headers", &mut partial), ("silent", &mut silent)] {
        let (_, _) = read_until_closed(stream, Duration::from_secs(10));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
            "{name}: closed after {waited:?}, expected about 1 s"
        );
    }
    // A keep-alive connection that goes idle after a request is closed too.
    let mut idle = TcpStream::connect(exporter.addr).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let t = Instant::now();
    let (answer, _) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() < Duration::from_secs(5), "idle keep-alive held {:?}", t.elapsed());
}

/// SIGTERM while a scrape is running: no new connections are accepted, the scrape finishes
/// with a whole answer, and the process exits 0.
#[test]
fn web_sigterm_during_a_scrape_lets_it_finish_and_exits_0() {
    let dir = TempDir::new("sigterm");
    let mut exporter = slow_exporter(&dir, &[]);
    let addr = exporter.addr;
    // How long a scrape takes here, so the signal lands in the middle of the next one.
    let t = Instant::now();
    assert_eq!(http_get(addr, "/metrics").unwrap().status, 200);
    let scrape_time = t.elapsed();
    let scrape = std::thread::spawn(move || {
        let r = http_get(addr, "/metrics");
        (r, Instant::now())
    });
    std::thread::sleep(scrape_time / 3);
    let pid = exporter.child.id();
    let signalled = Instant::now();
    signal(pid, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    let (response, answered) = scrape.join().unwrap();
    let response = response.expect("the in-flight scrape was cut off");
    assert_eq!(response.status, 200);
    assert!(
        answered > signalled + Duration::from_millis(200),
        "the scrape was not in flight at SIGTERM"
    );
    assert!(response.body.contains("libproc_build_info"), "incomplete answer");
    assert!(response.body.ends_with('\n'));
    assert!(refused.is_err(), "a new connection was accepted after SIGTERM");
    let status = wait_exit(&mut exporter, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let stderr = exporter.log_after_exit();
    assert!(stderr.contains("received SIGTERM"), "{stderr}");
    println!(
        "a scrape takes {scrape_time:?}; SIGTERM a third in; it answered {:?} later; exit 0",
        answered - signalled
    );
}

#[test]
fn web_sigint_exits_0() {
    let mut exporter = Exporter::start(&[]);
    assert_eq!(http_get(exporter.addr, "/metrics").unwrap().status, 200);
    signal(exporter.child.id(), libc::SIGINT);
    let status = wait_exit(&mut exporter, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

fn wait_exit(exporter: &mut Exporter, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = exporter.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends raw bytes and reads one answer: until its head and `content-length` bytes of body
/// are in, or the server closes (fails after 10 s).
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let _ = stream.write_all(bytes);
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| out.len() >= head_end + 4 + n) {
                return text;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return text,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return text,
            Err(e) => panic!("no whole answer within 10 s: {e}: {text:?}"),
        }
    }
}

fn status_of(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Hostile requests: each gets its status, and a few hundred of them leave no descriptors,
/// no memory and no broken state behind.
#[test]
fn web_hostile_input_gets_the_right_status_and_costs_nothing_lasting() {
    let exporter = Exporter::start(&["--web.header-read-timeout=2s"]);
    let addr = exporter.addr;
    let pid = exporter.child.id();
    let big_header = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let many_headers: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long_uri = format!("/{}", "a".repeat(20 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("POST", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(), 405),
        ("PUT", b"PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec(), 405),
        ("DELETE", b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 405),
        ("OPTIONS", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 405),
        ("TRACE", b"TRACE /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 405),
        ("unknown path", b"GET /metrics/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 404),
        ("unknown path 2", b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 404),
        ("GET with a body", b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec(), 413),
        (
            "a huge announced body",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nxx".to_vec(),
            413,
        ),
        (
            "a chunked body",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec(),
            413,
        ),
        ("oversized header", format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{big_header}\r\n").into_bytes(), 431),
        ("too many headers", format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(), 431),
        ("oversized URI", format!("GET {long_uri} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(), 431),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(), 400),
        ("no version", b"GET /metrics\r\n\r\n".to_vec(), 400),
        ("bad header line", b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), 400),
        ("NUL in a header", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_vec(), 400),
        ("bad header name", b"GET /metrics HTTP/1.1\r\nHo(st: x\r\n\r\n".to_vec(), 400),
        ("two content lengths", b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(), 400),
        ("bad scrape timeout header", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: -1e999\r\nConnection: close\r\n\r\n".to_vec(), 200),
        ("malformed Authorization without auth", b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!\r\nConnection: close\r\n\r\n".to_vec(), 200),
        ("HEAD", b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 200),
    ];
    let run_all = |verbose: bool| {
        let mut wrong = Vec::new();
        for (name, bytes, want) in &cases {
            let answer = raw(addr, bytes);
            let got = status_of(&answer);
            if verbose {
                println!("{name:40} -> {got}");
            }
            if got != *want {
                wrong.push(format!("{name}: got {got}, want {want}: {:?}", answer.lines().next()));
            }
            if *want == 405 && !answer.contains("allow: GET, HEAD") {
                wrong.push(format!("{name}: 405 without Allow"));
            }
            if *want == 413 && !answer.contains("connection: close") {
                wrong.push(format!("{name}: 413 without connection: close"));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    };
    run_all(true);
    // Warm up, then measure: a few hundred hostile requests must leave nothing behind.
    assert_eq!(http_get(addr, "/metrics").unwrap().status, 200);
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));
    for _ in 0..15 {
        run_all(false);
    }
    // A body that trickles in after a 413 is not waited for: the connection is closed.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n").unwrap();
    let t = Instant::now();
    let mut sent = 0;
    slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while t.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"x").is_ok() {
            sent += 1;
        }
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    assert_eq!(status_of(&String::from_utf8_lossy(&answer)), 413);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "slow body held the connection ({sent} bytes sent)"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(pid) > fds_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (fds_after, rss_after) = (open_fds(pid), rss_kib(pid));
    println!(
        "after {} hostile requests: fds {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} KiB",
        16 * cases.len()
    );
    assert!(fds_after <= fds_before, "descriptors leaked: {fds_before} -> {fds_after}");
    assert!(rss_after < rss_before + 8 * 1024, "RSS grew {rss_before} -> {rss_after} KiB");
    let r = http_request(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 200);
}

/// The lines of `source` outside `#[cfg(test)]` items, numbered from 1: each such attribute
/// and the item after it (a `mod tests { ... }`, a test-only `fn`, up to its closing brace or
/// a `;` before any brace) are left out, and nothing else is. Braces inside strings, char
/// literals and `//` comments do not count.
fn non_test_lines(source: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    // Some(depth) while inside a test-only item: the braces opened since it began.
    let mut skipping: Option<(usize, bool)> = None;
    for (n, line) in source.lines().enumerate() {
        let mut code = strip_literals(line);
        if skipping.is_none() {
            match code.trim_start().strip_prefix("#[cfg(test)]") {
                // The item may follow on the attribute's line.
                Some(rest) => {
                    skipping = Some((0, false));
                    code = rest.to_string();
                }
                None => {
                    out.push((n + 1, code));
                    continue;
                }
            }
        }
        let Some((depth, opened)) = skipping.as_mut() else { continue };
        for c in code.chars() {
            match c {
                '{' => {
                    *depth += 1;
                    *opened = true;
                }
                '}' => *depth -= 1,
                ';' if !*opened => *opened = true,
                _ => {}
            }
        }
        if *opened && *depth == 0 {
            skipping = None;
        }
    }
    out
}

/// `line` without its `//` comment and with the insides of string and char literals blanked,
/// so their braces and words do not count.
fn strip_literals(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            // A char literal ('{', '\'', '\\'); a lifetime has no closing quote two on.
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') && rest.chars().nth(2) == Some('\'') {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Panicking calls among `lines` (from [`non_test_lines`]), as `PATH:LINE: code`.
fn panicking_calls(path: &str, lines: &[(usize, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in lines {
        for bad in
            [".unwrap()", ".expect(", "panic!(", "unreachable!(", "todo!(", "unimplemented!("]
        {
            if line.contains(bad) {
                found.push(format!("{path}:{n}: {}", line.trim()));
            }
        }
    }
    found
}

/// No `unwrap`, `expect` or panicking macro in the server's non-test code: a request must
/// never be able to take the process down. (Parsers on this path are also fuzzed: fuzz/.)
#[test]
fn web_no_unwrap_or_panic_on_the_request_path() {
    // The server's files, its subdirectories' (auth/, tls/) included.
    let mut files = Vec::new();
    let mut dirs = vec![crate::common::repo_root().join("src/server")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { dirs.push(path) } else { files.push(path) }
        }
    }
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        found.extend(panicking_calls(&path.display().to_string(), &non_test_lines(&text)));
    }
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

/// The scan reads past a test-only item: an unwrap planted in server/auth/mod.rs after its
/// `#[cfg(test)] fn cached_verdicts` (where the old scan, which stopped at the first
/// `#[cfg(test)]`, never looked) is caught, while the test modules' own unwraps are not.
#[test]
fn web_no_unwrap_scan_reads_past_test_only_items() {
    let path = crate::common::repo_root().join("src/server/auth/mod.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let anchor = "/// The hashes and headers the tests of every part";
    assert!(text.contains(anchor), "the anchor moved: update this test");
    let first_test_item = text.find("#[cfg(test)]").unwrap();
    assert!(first_test_item < text.find(anchor).unwrap(), "nothing test-only before the anchor");
    let planted = text.replacen(
        anchor,
        &format!("fn planted() {{ let _ = Some('}}').unwrap(); }}\n{anchor}"),
        1,
    );
    let found = panicking_calls("auth/mod.rs", &non_test_lines(&planted));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("fn planted()"), "{found:?}");
    assert!(text.contains("mod tests") && text[first_test_item..].contains(".unwrap()"));
    assert!(panicking_calls("auth/mod.rs", &non_test_lines(&text)).is_empty());
    // A test-only item without braces ends at its semicolon; one on the attribute's line is
    // skipped whole.
    let lines = non_test_lines("#[cfg(test)]\nuse x::y;\nfn f() { a.unwrap(); }\n");
    assert_eq!(panicking_calls("f.rs", &lines).len(), 1, "{lines:?}");
    let lines =
        non_test_lines("#[cfg(test)] mod t { fn g() { b.unwrap(); }\n}\nfn f() { a.unwrap(); }\n");
    assert_eq!(panicking_calls("f.rs", &lines), ["f.rs:3: fn f() { a.unwrap(); }"]);
}
