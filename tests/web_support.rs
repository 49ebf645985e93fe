//! Helpers for the web-surface tests (web_*.rs): temporary folders, certificates made with
//! `openssl` at test time, a rustls client, generated process tables, and process probes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::common::require_tool;

pub use crate::common::TempDir;

/// Runs `openssl` in `dir` with `args` (split at spaces; our names have none).
fn openssl(dir: &Path, args: &str) {
    let openssl = require_tool("openssl", "apt-get install openssl");
    let out = Command::new(openssl).current_dir(dir).args(args.split(' ')).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_key(dir: &Path, name: &str) {
    openssl(dir, &format!("ecparam -name prime256v1 -genkey -noout -out {name}.key"));
}

/// A CA (key `NAME.key`, certificate `NAME.crt`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    make_key(dir, name);
    openssl(
        dir,
        &format!("req -x509 -new -key {name}.key -sha256 -days 2 -subj /CN={name} -out {name}.crt"),
    );
}

/// A leaf certificate `NAME.crt` with key `NAME.key`, signed by the CA `ca`, with the given
/// subjectAltName (e.g. `DNS:localhost,IP:127.0.0.1`) and extended key usage.
pub fn make_leaf(dir: &Path, ca: &str, name: &str, san: &str, usage: &str) {
    make_key(dir, name);
    openssl(dir, &format!("req -new -key {name}.key -subj /CN={name} -out {name}.csr"));
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -sha256 -days 2 -extfile {name}.ext -out {name}.crt"
        ),
    );
}

/// The usual set: CA `ca` with server `server` (localhost, 127.0.0.1), clients `client`
/// (SAN prometheus.test), `intruder` (SAN intruder.test), and `stranger` (SAN
/// prometheus.test, signed by another CA, `other-ca`).
pub fn make_pki(dir: &Path) {
    make_ca(dir, "ca");
    make_ca(dir, "other-ca");
    make_leaf(dir, "ca", "server", "DNS:localhost,IP:127.0.0.1", "serverAuth");
    make_leaf(dir, "ca", "client", "DNS:prometheus.test", "clientAuth");
    make_leaf(dir, "ca", "intruder", "DNS:intruder.test", "clientAuth");
    make_leaf(dir, "other-ca", "stranger", "DNS:prometheus.test", "clientAuth");
}

/// TLS protocol choice for [`tls_client`].
#[derive(Clone, Copy, Debug)]
pub enum Proto {
    /// Offer TLS 1.2 only.
    Tls12,
    /// Offer TLS 1.3 only.
    Tls13,
}

/// A rustls client trusting `dir/ca.crt`, offering `proto`, presenting `client` (a name in
/// `dir`) when given.
pub fn tls_client(dir: &Path, proto: Proto, client: Option<&str>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let version = match proto {
        Proto::Tls12 => &rustls::version::TLS12,
        Proto::Tls13 => &rustls::version::TLS13,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain = CertificateDer::pem_file_iter(dir.join(format!("{name}.crt")))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(config)
}

/// What one HTTPS request saw.
#[derive(Debug)]
pub struct TlsResponse {
    /// Status code.
    pub status: u16,
    /// Raw response head and body.
    pub text: String,
    /// Negotiated protocol.
    pub version: Option<rustls::ProtocolVersion>,
    /// The server's certificate (DER).
    pub server_cert: Vec<u8>,
    /// The negotiated cipher suite.
    pub suite: Option<rustls::CipherSuite>,
}

/// GET `path` over TLS (SNI "localhost"); any handshake or I/O failure is an `Err` with the
/// reason.
pub fn https_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    extra_headers: &str,
) -> Result<TlsResponse, String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n"
    );
    tls.write_all(request.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Servers that close without close_notify still sent a whole answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let version = tls.conn.protocol_version();
    let server_cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let suite = tls.conn.negotiated_cipher_suite().map(|s| s.suite());
    Ok(TlsResponse { status, text, version, server_cert, suite })
}

/// Writes a replay snapshot of `procs` processes (under 50 parents, 40 users) and `ttys`
/// terminals, every tenth process on one of them.
pub fn write_table(path: &Path, procs: usize, ttys: usize) {
    let mut out = String::with_capacity(procs * 260 + ttys * 48 + 1024);
    out.push_str(
        r#"{"format":"libproc-exporter/snapshot-v1","os":"macos","privileged":false,"caller_euid":501,"limits":{"maxproc":200000,"maxprocperuid":150000,"ptmx_max":4096},"ttys":["#,
    );
    for t in 0..ttys {
        if t > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"{{"name":"ttys{t:04}","dev":{}}}"#, 268_435_456 + t));
    }
    out.push_str(r#"],"users":{"0":"root","501":"alice"},"processes":["#);
    out.push_str(r#"{"pid":0,"ppid":0,"pgid":0,"euid":0,"ruid":0,"svuid":0,"egid":0,"rgid":0,"status":2,"flags":1,"comm":"kernel_task","tdev":null,"zombie":false,"start_sec":1,"start_usec":0},"#);
    out.push_str(r#"{"pid":1,"ppid":0,"pgid":1,"euid":0,"ruid":0,"svuid":0,"egid":0,"rgid":0,"status":2,"flags":16,"comm":"launchd","tdev":null,"zombie":false,"start_sec":2,"start_usec":0}"#);
    for i in 0..procs {
        let pid = 100 + i;
        let ppid = if i < 50 { 1 } else { 100 + i % 50 };
        let pgid = if ppid == 1 { pid } else { ppid };
        let uid = 500 + i % 40;
        // Every tenth process has a terminal; 0x80 is PROC_FLAG_CONTROLT.
        let (tdev, flags) = if ttys > 0 && i % 10 == 0 {
            ((268_435_456 + (i / 10) % ttys).to_string(), 16 | 0x80)
        } else {
            ("null".to_string(), 16)
        };
        out.push_str(&format!(
            r#",{{"pid":{pid},"ppid":{ppid},"pgid":{pgid},"euid":{uid},"ruid":{uid},"svuid":{uid},"egid":20,"rgid":20,"status":2,"flags":{flags},"comm":"proc{}","tdev":{tdev},"zombie":false,"start_sec":{},"start_usec":0}}"#,
            i % 997,
            3 + i
        ));
    }
    out.push_str("]}\n");
    std::fs::write(path, out).unwrap();
}

/// A /proc whose every read takes `delay`, as a slow network or FUSE mount would: pid 2's
/// `stat` is a FIFO that a feeder thread answers `delay` after each open. The scrape is
/// really slow (the exporter waits in `read`), with no test-only delay in the exporter.
/// Pid 1 is an ordinary process; `sys/kernel` has the limits. The feeder outlives the test
/// harmlessly if the directory is removed while it waits.
pub fn slow_procfs(dir: &TempDir, delay: Duration) -> PathBuf {
    let root = dir.join("proc");
    crate::common::fake_proc_root(&root);
    let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n";
    let stat = |pid: u32, ppid: u32| {
        format!(
            "{pid} (worker) S {ppid} {pid} {pid} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n"
        )
    };
    for pid in [1, 2] {
        std::fs::create_dir(root.join(pid.to_string())).unwrap();
        std::fs::write(root.join(format!("{pid}/status")), status).unwrap();
    }
    std::fs::write(root.join("1/stat"), stat(1, 0)).unwrap();
    let fifo = root.join("2/stat");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c_path is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
    let line = stat(2, 1);
    std::thread::spawn(move || {
        // Each open for writing waits for the exporter to open the FIFO for reading.
        while let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&fifo) {
            std::thread::sleep(delay);
            let _ = writer.write_all(line.as_bytes());
        }
    });
    root
}

/// Resident memory of `pid` in KiB, as `ps` reports it (the same on Linux and macOS).
pub fn rss_kib(pid: u32) -> u64 {
    let ps = crate::common::require_tool("ps", "apt-get install procps");
    let out = Command::new(ps).args(["-o", "rss=", "-p", &pid.to_string()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| panic!("ps -o rss= -p {pid} printed {text:?}"))
}

/// Open file descriptors of `pid`, from /proc/PID/fd.
#[cfg(target_os = "linux")]
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Open file descriptors of `pid`, from `lsof` (part of the base system on macOS, which has no
/// /proc): `-F f` prints one `f<fd>` line per file, numeric for descriptors (`fcwd`, `ftxt`
/// are not).
#[cfg(not(target_os = "linux"))]
pub fn open_fds(pid: u32) -> usize {
    let lsof = crate::common::require_tool("lsof", "part of the macOS base system");
    let out = Command::new(lsof).args(["-n", "-P", "-F", "f", "-p", &pid.to_string()]).output();
    let out = out.expect("running lsof");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.strip_prefix('f').is_some_and(|fd| fd.parse::<u32>().is_ok()))
        .count()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory preconditions; the pid is our own child.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Runs the exporter with `args` plus `--check-config`: (exit code, stderr).
pub fn check_config(args: &[&str]) -> (i32, String) {
    let out = Command::new(crate::common::exporter_bin())
        .args(args)
        .arg("--check-config")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `Authorization: Basic` value for `user:password`.
pub fn basic(user_password: &str) -> String {
    libproc_exporter::server::auth::encode_basic(user_password.as_bytes())
}

/// Sends a GET /metrics with `authorization` and resets the connection 3 ms later, without
/// waiting for the answer: a client that gives up on a slow login (or an attacker who never
/// meant to wait). The reset (SO_LINGER 0, then close) is what hyper sees as the client gone.
pub fn abandoned_request(addr: SocketAddr, authorization: &str) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return;
    };
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes());
    std::thread::sleep(Duration::from_millis(3));
    reset(stream);
}

/// Closes `stream` with a TCP reset rather than a FIN.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the descriptor is open (we own `stream` until it drops below), and the option
    // value points to a live `linger` whose size is the length passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// CPU time (user + system) `pid` has used so far, in seconds; `None` where there is no
/// /proc to read it from.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / per_second as f64)
}
