//! Real TLS handshakes against the running binary: protocol versions, client certificates,
//! certificate rotation, and the handshake timeout. Certificates are made with `openssl` at
//! test time (web_support::make_pki).

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Exporter, require_tool};
use crate::web_support::{Proto, TempDir, https_get, make_leaf, make_pki, tls_client};

fn start(dir: &TempDir, tls_config: &str, extra: &[&str]) -> Exporter {
    let config = dir.write("web.yml", &format!("tls_server_config:\n{tls_config}"));
    let mut args = vec!["--web.config.file", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Exporter::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

const SERVER: &str = "  cert_file: server.crt\n  key_file: server.key\n";

#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_13_and_12_clients_succeed() {
    let dir = TempDir::new("tls");
    make_pki(&dir.0);
    let exporter = start(&dir, SERVER, &[]);
    for (proto, want) in [
        (Proto::Tls13, rustls::ProtocolVersion::TLSv1_3),
        (Proto::Tls12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let r = https_get(exporter.addr, tls_client(&dir.0, proto, None), "/metrics", "")
            .unwrap_or_else(|e| panic!("{proto:?}: {e}"));
        assert_eq!(r.status, 200, "{proto:?}: {}", r.text);
        assert_eq!(r.version, Some(want));
        assert!(r.text.contains("libproc_build_info"), "{proto:?}");
    }
    // Plain HTTP to the TLS port is not served.
    let plain = crate::common::http_get(exporter.addr, "/metrics");
    assert!(plain.map(|r| r.status != 200).unwrap_or(true));
}

#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_inline_certificate_and_key_serve_a_real_handshake() {
    // The toolkit's inline `cert:` and `key:` (PEM in the YAML) once failed start-up with
    // "unknown field `cert`".
    let dir = TempDir::new("tls_inline");
    make_pki(&dir.0);
    let indent = |pem: String| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let inline = format!(
        "  cert: |\n{}  key: |\n{}",
        indent(read("server.crt")),
        indent(read("server.key"))
    );
    let exporter = start(&dir, &inline, &[]);
    let r = https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, None), "/metrics", "")
        .expect("a TLS 1.3 handshake with the inline certificate");
    assert_eq!(r.status, 200);
    assert!(r.text.contains("libproc_build_info"));
}

/// openssl offering only TLS 1.1 (with its own security level lowered so that it really
/// sends a TLS 1.1 ClientHello) is refused by the server with a protocol_version alert.
/// The same command with -tls1_2 succeeds, so the harness itself is sound.
#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_11_client_is_refused() {
    let openssl = require_tool("openssl", "apt-get install openssl");
    let dir = TempDir::new("tls11");
    make_pki(&dir.0);
    let mut exporter = start(&dir, SERVER, &["--log.level=debug"]);
    let s_client = |proto: &str| {
        let out = Command::new(&openssl)
            .args(["s_client", "-connect", &exporter.addr.to_string(), proto])
            .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "localhost"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = s_client("-tls1_2");
    assert!(ok && text.contains("Protocol  : TLSv1.2"), "control: TLS 1.2 should work: {text}");
    let (ok, text) = s_client("-tls1_1");
    assert!(!ok, "TLS 1.1 was accepted: {text}");
    // The client really offered TLS 1.1 (it wrote a ClientHello; a client refusing on its
    // own writes nothing) and the server answered with a fatal alert.
    let written = text
        .split("bytes and written ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        written > 0 && !text.contains("no protocols available"),
        "openssl did not send a TLS 1.1 ClientHello: {text}"
    );
    assert!(text.contains("SSL alert number"), "expected an alert from the server: {text}");
    // And the server says why: rustls finds the peer incompatible. (A TLS 1.1 ClientHello
    // has no signature_algorithms extension, which came with 1.2; rustls names that, or the
    // version, depending on what it checks first.)
    let _ = exporter.child.kill();
    let log = exporter.log_after_exit();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed") && l.contains("peer is incompatible"))
        .unwrap_or_else(|| panic!("no incompatible-peer refusal in the log: {log}"));
    println!("server log: {line}");
}

#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_client_certificates() {
    let dir = TempDir::new("mtls");
    make_pki(&dir.0);
    let exporter = start(
        &dir,
        &format!(
            "{SERVER}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.test]\n"
        ),
        &[],
    );
    for proto in [Proto::Tls13, Proto::Tls12] {
        let good =
            https_get(exporter.addr, tls_client(&dir.0, proto, Some("client")), "/metrics", "")
                .unwrap_or_else(|e| panic!("{proto:?} good client: {e}"));
        assert_eq!(good.status, 200, "{proto:?}");
        for (client, why) in [
            (Some("stranger"), "a certificate from an unknown CA"),
            (Some("intruder"), "a certificate whose SAN is not allowed"),
            (None, "no certificate"),
        ] {
            let r = https_get(exporter.addr, tls_client(&dir.0, proto, client), "/metrics", "");
            assert!(r.is_err(), "{proto:?}: {why} was let in: {r:?}");
        }
    }
    // Still serving after the refusals.
    let again = https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, Some("client")), "/", "");
    assert_eq!(again.unwrap().status, 200);
}

#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_optional_client_certificates_are_verified_when_given() {
    let dir = TempDir::new("mtls-opt");
    make_pki(&dir.0);
    let exporter = start(
        &dir,
        &format!("{SERVER}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n"),
        &[],
    );
    let none = https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, None), "/metrics", "");
    assert_eq!(none.unwrap().status, 200);
    let good = https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, Some("client")), "/", "");
    assert_eq!(good.unwrap().status, 200);
    let bad = https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, Some("stranger")), "/", "");
    assert!(bad.is_err(), "an unverifiable certificate was let in: {bad:?}");
}

/// The certificate and key are replaced on disk (renamed over, as cert-manager and certbot
/// do); the next handshake presents the new certificate without a restart.
#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_certificate_rotation_without_restart() {
    let dir = TempDir::new("rotate");
    make_pki(&dir.0);
    let exporter = start(&dir, SERVER, &[]);
    let client = tls_client(&dir.0, Proto::Tls13, None);
    let before = https_get(exporter.addr, client.clone(), "/", "").unwrap();
    assert_eq!(before.server_cert, pem_der(&dir.join("server.crt")));

    make_leaf(&dir.0, "ca", "server2", "DNS:localhost,IP:127.0.0.1", "serverAuth");
    std::fs::rename(dir.join("server2.key"), dir.join("server.key")).unwrap();
    std::fs::rename(dir.join("server2.crt"), dir.join("server.crt")).unwrap();
    let after = https_get(exporter.addr, client.clone(), "/metrics", "").unwrap();
    assert_eq!(after.status, 200);
    assert_ne!(after.server_cert, before.server_cert, "still the old certificate");
    assert_eq!(after.server_cert, pem_der(&dir.join("server.crt")));

    // A half-done rotation (a certificate without its key) keeps the last good pair.
    make_leaf(&dir.0, "ca", "server3", "DNS:localhost,IP:127.0.0.1", "serverAuth");
    std::fs::rename(dir.join("server3.crt"), dir.join("server.crt")).unwrap();
    let during = https_get(exporter.addr, client.clone(), "/", "").unwrap();
    assert_eq!(during.server_cert, after.server_cert);
    std::fs::rename(dir.join("server3.key"), dir.join("server.key")).unwrap();
    let done = https_get(exporter.addr, client, "/", "").unwrap();
    assert_eq!(done.server_cert, pem_der(&dir.join("server.crt")));
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(path).unwrap().as_ref().to_vec()
}

/// A client that connects and never starts the handshake is disconnected after
/// --web.header-read-timeout, while a real client is served meanwhile.
#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_silent_client_is_disconnected() {
    let dir = TempDir::new("tls-silent");
    make_pki(&dir.0);
    let exporter = start(&dir, SERVER, &["--web.header-read-timeout=1s"]);
    let mut silent = TcpStream::connect(exporter.addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let r = https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, None), "/metrics", "");
    assert_eq!(r.unwrap().status, 200);
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "expected the server to close the connection");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected about 1 s"
    );
}

/// Issue 24: without client_ca_file, client certificates are verified against the system's
/// trust store, as Go does; SSL_CERT_FILE stands in for the system's store here (it is what
/// rustls-native-certs reads first, on every OS). An empty store refuses a required
/// certificate at start (no client could ever connect) and refuses every given one when the
/// certificate is optional.
#[test]
#[ignore = "needs openssl to make certificates (scripts/setup.sh installs it)"]
fn web_tls_client_certificates_without_client_ca_file_use_the_system_roots() {
    let dir = TempDir::new("sysroots");
    make_pki(&dir.0);
    let config = |mode: &str| {
        dir.write(
            &format!("{mode}.yml"),
            &format!("tls_server_config:\n{SERVER}  client_auth_type: {mode}\n"),
        )
    };
    let command = |config: &std::path::Path, store: &std::path::Path| {
        let mut command = Command::new(crate::common::exporter_bin());
        command.arg("--web.config.file").arg(config);
        command.env("SSL_CERT_FILE", store).env_remove("SSL_CERT_DIR");
        command
    };
    let required = config("RequireAndVerifyClientCert");
    let exporter = Exporter::start_command(command(&required, &dir.join("ca.crt")));
    let get = |client: Option<&str>| {
        https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, client), "/metrics", "")
    };
    assert_eq!(get(Some("client")).unwrap().status, 200, "signed by the system's CA");
    assert!(get(Some("stranger")).is_err(), "signed by a CA the system does not trust");
    assert!(get(None).is_err(), "no certificate");
    drop(exporter);

    let empty = dir.write("empty.pem", "");
    let out = command(&required, &empty).arg("--check-config").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("client_ca_file") && stderr.contains("system trust store"), "{stderr}");
    // A store that cannot be read says why.
    let out = command(&required, &dir.join("no-such.pem")).arg("--check-config").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such.pem"), "{stderr}");

    let optional = config("VerifyClientCertIfGiven");
    let exporter = Exporter::start_command(command(&optional, &empty));
    let get = |client: Option<&str>| {
        https_get(exporter.addr, tls_client(&dir.0, Proto::Tls13, client), "/metrics", "")
    };
    assert_eq!(get(None).unwrap().status, 200, "no certificate, optional");
    assert!(get(Some("client")).is_err(), "a given certificate with nothing to verify it by");
}
