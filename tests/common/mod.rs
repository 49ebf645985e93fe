//! Shared helpers for the integration tests: the exporter binary, a running exporter on an
//! ephemeral port, a tiny blocking HTTP client, and "is this tool installed?" checks that fail
//! with the command that installs the tool.

#![allow(dead_code)]

pub mod prometheus;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serialises the tests that saturate the machine (the 60 s load run) with those that have
/// deadlines of their own (a real Prometheus scraping every second): on 2 cores, running
/// them together measures the test runner, not the exporter.
pub fn machine_exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Path of the `libproc_exporter` binary cargo built for these tests.
pub fn exporter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_libproc_exporter"))
}

/// The crate root, for fixtures and shipped files.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics with an install hint when `tool` is not on PATH: a missing tool is a failure,
/// never a silent skip.
pub fn require_tool(tool: &str, install_hint: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{tool}` is required by this test and is not installed: {install_hint} (or run scripts/setup.sh)")
    })
}

/// A response from [`http_get`].
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines as (lower-cased name, value).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, as text (lossy).
    pub body: String,
    /// The body, de-chunked, as sent (a gzipped body is not text).
    pub bytes: Vec<u8>,
}

impl Response {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a raw HTTP/1.1 request and reads the whole response (Connection: close).
pub fn http_request(addr: SocketAddr, raw: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(raw.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let chunked =
        headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size =
                usize::from_str_radix(size_line.trim(), 16).map_err(std::io::Error::other)?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned(), bytes: body })
}

/// GET `path` from `addr`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    http_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"))
}

/// A running exporter process, killed on drop.
pub struct Exporter {
    /// The child process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything it has written to stderr so far (a thread keeps reading it, so the pipe
    /// never fills and blocks the exporter's logging).
    pub stderr: Arc<Mutex<String>>,
    /// The thread reading stderr; it ends when the exporter closes it (exits).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    /// Starts the binary listening on 127.0.0.1 port 0 with the given extra flags, and returns
    /// once it listens. The port is the one the kernel bound, read from the exporter's start-up
    /// line (`listen=127.0.0.1:PORT`): no other process can take it in between, as it could
    /// with a port found free, closed and handed over.
    pub fn start(args: &[&str]) -> Exporter {
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--log.level=warn") || a.starts_with("--log.level=error")),
            "Exporter::start reads the bound port from the info-level start-up line; \
             keep --log.level at info or debug (got {args:?})"
        );
        let mut command = Command::new(exporter_bin());
        command.args(args);
        Exporter::start_command(command)
    }

    /// [`Exporter::start`] with a command prepared by the caller (the binary and its flags,
    /// limits set in `pre_exec`...); the listen address and standard streams are set here.
    pub fn start_command(mut command: Command) -> Exporter {
        let mut child = command
            .arg("--web.listen-address=127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn libproc_exporter");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found, addr) = mpsc::channel();
        let pipe = BufReader::new(child.stderr.take().unwrap());
        let collected = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in pipe.lines() {
                let Ok(line) = line else { break };
                if line.contains("starting libproc_exporter") {
                    let listen =
                        logfmt_value(&line, "listen").or_else(|| json_value(&line, "listen"));
                    let first = listen.as_deref().and_then(|l| l.split(',').next());
                    let _ = found.send(first.and_then(|a| a.parse::<SocketAddr>().ok()));
                }
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        // The sender drops when stderr closes, so an exporter that exits early ends the wait.
        let addr = match addr.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(addr)) => addr,
            Ok(None) => panic!("no address in the start-up line: {}", stderr.lock().unwrap()),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("exporter did not start within 20 s ({status}): {}", stderr.lock().unwrap());
            }
        };
        let exporter = Exporter { child, addr, stderr, reader: Some(reader) };
        // It logs the line after binding, so this connects at once.
        TcpStream::connect(exporter.addr).expect("connect to the address the exporter logged");
        exporter
    }

    /// Everything the exporter wrote to stderr, once it has exited (waits for the exit, so
    /// signal or kill it first).
    pub fn log_after_exit(&mut self) -> String {
        self.child.wait().expect("wait for the exporter");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader panicked");
        }
        self.stderr.lock().unwrap().clone()
    }

    /// GET /metrics and return the body, asserting 200.
    pub fn scrape(&self) -> String {
        let response = http_get(self.addr, "/metrics").expect("scrape");
        assert_eq!(response.status, 200, "scrape failed: {}", response.body);
        response.body
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key` in a logfmt line (`key=value` or `key="value"`), as the exporter and
/// Prometheus write them.
pub fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let at = line
        .find(&format!(" {key}="))
        .map(|i| i + 1)
        .or_else(|| line.starts_with(&format!("{key}=")).then_some(0))?;
    let rest = &line[at + key.len() + 1..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().map(str::to_string),
        None => rest.split(' ').next().map(str::to_string),
    }
}

/// The string value of `key` in a JSON log line (`--log.format=json`).
fn json_value(line: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get(key)?.as_str().map(str::to_string)
}

/// The value of the sample `name{labels}` in a text exposition, where `labels` is the exact
/// label string as rendered (e.g. `state="zombie"`), or "" for an unlabelled metric.
pub fn sample(body: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() { name.to_string() } else { format!("{name}{{{labels}}}") };
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&key).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().expect("numeric sample"))
}

/// Fails unless `promtool check metrics` accepts `text` without a lint finding.
pub fn promtool_check_metrics(text: &[u8]) {
    let promtool = require_tool("promtool", "apt-get install prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text).unwrap();
    let out = child.wait_with_output().unwrap();
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed:\n{report}");
    assert!(report.trim().is_empty(), "promtool has lint findings:\n{report}");
}

/// Reads a fixture path below tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// True when `p` exists.
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A folder under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty folder.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "libproc-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files of a fake procfs root at `root` that are not per process: `stat` (boot time and
/// the fork counter), the kernel limits under `sys/kernel` and the file table under `sys/fs`.
/// Processes are the caller's.
pub fn fake_proc_root(root: &Path) {
    std::fs::create_dir_all(root.join("sys/kernel/pty")).unwrap();
    let stat = "cpu 0 0 0 0\nbtime 1700000000\nprocesses 123456\n";
    std::fs::write(root.join("stat"), stat).unwrap();
    std::fs::write(root.join("sys/kernel/pid_max"), "4194304\n").unwrap();
    std::fs::write(root.join("sys/kernel/threads-max"), "126000\n").unwrap();
    std::fs::write(root.join("sys/kernel/pty/max"), "4096\n").unwrap();
    // The file table, as fs/file-nr and fs/nr_open print it (linux-pidfd.md section 5).
    std::fs::create_dir_all(root.join("sys/fs")).unwrap();
    std::fs::write(root.join("sys/fs/file-nr"), "2176\t0\t9223372036854775807\n").unwrap();
    std::fs::write(root.join("sys/fs/nr_open"), "1048576\n").unwrap();
}
