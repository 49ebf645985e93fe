//! exporter-toolkit's own test tables, case by case (issue 24): `TestServerBehaviour` and
//! `TestUsers` in prometheus/exporter-toolkit `web/tls_config_test.go`, run against our
//! fixtures of the same names, keys and values in tests/fixtures/web/toolkit/ (our own
//! certificates and hashes: `gen.sh` there makes the certificates; the users have the
//! toolkit's passwords and bcrypt costs).
//!
//! Each case states what the toolkit expects and what we do. They agree unless the case
//! names why not; every such reason is a deliberate difference listed in the README's web
//! configuration section. The cases that need a client rustls cannot be (TLS 1.1, a CBC-only
//! cipher list) use `openssl s_client` and are in [`web_toolkit_openssl_clients`].

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rustls::CipherSuite;
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::ring::{self, kx_group};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::common::{Exporter, http_request, require_tool};
use crate::web_support::{basic, https_get};

/// What a case comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The server starts and every request is answered 200.
    Ok,
    /// The server starts and a request is answered with this status (the first that is not
    /// 200).
    Status(u16),
    /// The server starts and the client's connection fails: TLS against plain HTTP or the
    /// other way round, or a refused handshake.
    Fails,
    /// The server does not start: exit 2 with one line naming this key.
    Refused(&'static str),
}

/// A TLS client as the toolkit's test builds it: trusting the CA of our server certificate,
/// with the cipher suites and curves the case sets (empty: rustls's), presenting a client
/// certificate when the case names one.
#[derive(Clone, Copy, Debug)]
struct Tls {
    /// TLS 1.2 suites offered, in order (offering any limits the client to TLS 1.2).
    suites: &'static [CipherSuite],
    /// Key-exchange groups offered.
    curves: &'static [&'static dyn SupportedKxGroup],
    /// A fixture name: `NAME.pem` and `NAME.key`.
    cert: Option<&'static str>,
    /// The suite the server must pick (the toolkit's `ActualCipher`).
    expect_suite: Option<CipherSuite>,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    /// The toolkit's name for the case.
    name: &'static str,
    /// The fixture in tests/fixtures/web/toolkit; `None`: no --web.config.file.
    file: Option<&'static str>,
    /// `None`: plain HTTP.
    tls: Option<Tls>,
    /// Basic-auth user and password.
    user: Option<(&'static str, &'static str)>,
    /// Requests after the first (the toolkit's `Requests`).
    more_requests: usize,
    /// What the toolkit expects.
    toolkit: Outcome,
    /// What we do.
    ours: Outcome,
    /// Why we differ; empty when we do not.
    why: &'static str,
}

const CASE: Case = Case {
    name: "",
    file: None,
    tls: None,
    user: None,
    more_requests: 0,
    toolkit: Outcome::Ok,
    ours: Outcome::Ok,
    why: "",
};

const TLS: Option<Tls> = Some(Tls::DEFAULT);

/// A client offering P-384 alone.
static P384_ONLY: &[&dyn SupportedKxGroup] = &[kx_group::SECP384R1];

const RSA_128: CipherSuite = CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;
const RSA_256: CipherSuite = CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384;

const P521: &str = "neither of rustls's crypto providers has P-521 key exchange, and a list of P-521 alone leaves none";

/// `TestServerBehaviour`, then `TestUsers`; a few cases of our own close each group.
fn cases() -> Vec<Case> {
    vec![
        Case { name: "empty string YAMLConfigPath and default client", ..CASE },
        Case {
            name: "empty string YAMLConfigPath and TLS client",
            tls: TLS,
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "valid tls config yml and default client",
            file: Some("web_config_noAuth.good.yml"),
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "valid tls config yml and tls client",
            file: Some("web_config_noAuth.good.yml"),
            tls: TLS,
            ..CASE
        },
        Case {
            name: "valid tls config yml (cert and key inline) and tls client",
            file: Some("web_config_noAuth_tlsInline.good.yml"),
            tls: TLS,
            ..CASE
        },
        Case {
            name: "valid tls config yml with all ciphers",
            file: Some("web_config_noAuth_allCiphers.good.yml"),
            tls: TLS,
            ..CASE
        },
        Case {
            name: "valid tls config yml with some ciphers",
            file: Some("web_config_noAuth_someCiphers.good.yml"),
            tls: Some(Tls { suites: &[RSA_128], ..Tls::DEFAULT }),
            ..CASE
        },
        Case {
            name: "valid tls config yml with multiple client ciphers",
            file: Some("web_config_noAuth_someCiphers.good.yml"),
            tls: Some(Tls {
                suites: &[RSA_128, RSA_256],
                expect_suite: Some(RSA_128),
                ..Tls::DEFAULT
            }),
            ..CASE
        },
        Case {
            name: "valid tls config yml with multiple client ciphers, client chooses cipher",
            file: Some("web_config_noAuth_someCiphers_noOrder.good.yml"),
            tls: Some(Tls {
                suites: &[RSA_128, RSA_256],
                expect_suite: Some(RSA_128),
                ..Tls::DEFAULT
            }),
            ..CASE
        },
        Case {
            name: "valid tls config yml with all curves",
            file: Some("web_config_noAuth_allCurves.good.yml"),
            tls: TLS,
            ..CASE
        },
        Case {
            name: "valid tls config yml with some curves",
            file: Some("web_config_noAuth_someCurves.good.yml"),
            // A P-521-only client: rustls has none to offer, and the server does not start.
            tls: TLS,
            ours: Outcome::Refused("tls_server_config.curve_preferences"),
            why: P521,
            ..CASE
        },
        Case {
            name: "valid tls config yml with no common curves",
            file: Some("web_config_noAuth_someCurves.good.yml"),
            tls: Some(Tls { curves: P384_ONLY, ..Tls::DEFAULT }),
            toolkit: Outcome::Fails,
            ours: Outcome::Refused("tls_server_config.curve_preferences"),
            why: P521,
            ..CASE
        },
        Case {
            name: "valid tls config yml with non-http2 ciphers",
            file: Some("web_config_noAuth_noHTTP2.good.yml"),
            tls: TLS,
            ..CASE
        },
        Case {
            name: "valid tls config yml with non-http2 ciphers but http2 enabled",
            file: Some("web_config_noAuth_noHTTP2Cipher.bad.yml"),
            tls: TLS,
            toolkit: Outcome::Refused("http2"),
            ours: Outcome::Ok,
            why: "this server speaks HTTP/1.1 only, so HTTP/2's required cipher suite does not apply",
            ..CASE
        },
        Case { name: "valid headers config", file: Some("web_config_headers.good.yml"), ..CASE },
        Case {
            name: "invalid X-Content-Type-Options headers config",
            file: Some("web_config_headers_content_type_options.bad.yml"),
            toolkit: Outcome::Refused("http_server_config.headers.X-Content-Type-Options"),
            ours: Outcome::Refused("http_server_config.headers.X-Content-Type-Options"),
            ..CASE
        },
        Case {
            name: "invalid X-Frame-Options headers config",
            file: Some("web_config_headers_frame_options.bad.yml"),
            toolkit: Outcome::Refused("http_server_config.headers.X-Frame-Options"),
            ours: Outcome::Refused("http_server_config.headers.X-Frame-Options"),
            ..CASE
        },
        Case {
            name: "HTTP header that can not be overridden",
            file: Some("web_config_headers_extra_header.bad.yml"),
            toolkit: Outcome::Refused("http_server_config.headers.Content-Type"),
            ours: Outcome::Refused("http_server_config.headers.Content-Type"),
            ..CASE
        },
        Case {
            name: "valid tls config yml and tls client with RequireAnyClientCert (present certificate)",
            file: Some("tls_config_noAuth.requireanyclientcert.good.yml"),
            tls: Some(Tls { cert: Some("client_selfsigned"), ..Tls::DEFAULT }),
            ..CASE
        },
        Case {
            name: "valid tls config yml (cert from file, key inline) and tls client with RequireAnyClientCert (present certificate)",
            file: Some("tls_config_noAuth.requireanyclientcertkeyinline.good.yml"),
            tls: Some(Tls { cert: Some("client_selfsigned"), ..Tls::DEFAULT }),
            ..CASE
        },
        Case {
            name: "valid tls config yml and tls client with RequireAndVerifyClientCert (present certificate)",
            file: Some("tls_config_noAuth.requireandverifyclientcert.good.yml"),
            tls: Some(Tls { cert: Some("client_selfsigned"), ..Tls::DEFAULT }),
            ..CASE
        },
        Case {
            name: "valid tls config yml and tls client with VerifyPeerCertificate (present good SAN DNS entry)",
            file: Some("web_config_auth_client_san.good.yaml"),
            tls: Some(Tls { cert: Some("client2_selfsigned"), ..Tls::DEFAULT }),
            ..CASE
        },
        Case {
            name: "valid tls config yml and tls client with VerifyPeerCertificate (present invalid SAN DNS entries)",
            file: Some("web_config_auth_client_san.bad.yaml"),
            tls: Some(Tls { cert: Some("client2_selfsigned"), ..Tls::DEFAULT }),
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "valid rate limiter (no rate limiter set up) that doesn't block",
            file: Some("web_config_rate_limiter_nonblocking.yaml"),
            more_requests: 10,
            ..CASE
        },
        Case {
            name: "valid rate limiter with an interval of one second",
            file: Some("web_config_rate_limiter_one_second.yaml"),
            more_requests: 10,
            toolkit: Outcome::Status(429),
            ours: Outcome::Refused("rate_limit.burst"),
            why: "burst 0 answers every request 429: refused at start with a line saying so",
            ..CASE
        },
        // Ours: the blocking file (a required certificate, no client_ca_file: the system's
        // store, here our CA alone, which did not sign the self-signed client); no
        // certificate, and one the store does not trust, are both refused, as Go refuses them.
        Case {
            name: "ours: RequireAndVerifyClientCert against the system roots, no certificate",
            file: Some("web_config_noAuth.good.blocking.yml"),
            tls: TLS,
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "ours: RequireAndVerifyClientCert against the system roots, an untrusted certificate",
            file: Some("web_config_noAuth.good.blocking.yml"),
            tls: Some(Tls { cert: Some("client_selfsigned"), ..Tls::DEFAULT }),
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "ours: RequireAnyClientCert without a certificate",
            file: Some("tls_config_noAuth.requireanyclientcert.good.yml"),
            tls: TLS,
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "ours: 429 under the rate limiter (burst 1, one a minute)",
            file: Some("ours_rate_limiter_burst_one.good.yml"),
            more_requests: 10,
            toolkit: Outcome::Status(429),
            ours: Outcome::Status(429),
            ..CASE
        },
        Case {
            name: "ours: a client with no curve in common (CurveP256 only against P-384 only)",
            file: Some("ours_curveP256.good.yml"),
            tls: Some(Tls { curves: P384_ONLY, ..Tls::DEFAULT }),
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        // TestUsers.
        Case {
            name: "without basic auth",
            file: Some("web_config_users_noTLS.good.yml"),
            toolkit: Outcome::Status(401),
            ours: Outcome::Status(401),
            ..CASE
        },
        Case {
            name: "with correct basic auth",
            file: Some("web_config_users_noTLS.good.yml"),
            user: Some(("dave", "dave123")),
            ..CASE
        },
        Case {
            name: "without basic auth and TLS",
            file: Some("web_config_users.good.yml"),
            tls: TLS,
            toolkit: Outcome::Status(401),
            ours: Outcome::Status(401),
            ..CASE
        },
        Case {
            name: "with correct basic auth and TLS",
            file: Some("web_config_users.good.yml"),
            tls: TLS,
            user: Some(("dave", "dave123")),
            ..CASE
        },
        Case {
            name: "with another correct basic auth and TLS",
            file: Some("web_config_users.good.yml"),
            tls: TLS,
            user: Some(("carol", "carol123")),
            ..CASE
        },
        Case {
            name: "with bad password and TLS",
            file: Some("web_config_users.good.yml"),
            tls: TLS,
            user: Some(("dave", "bad")),
            toolkit: Outcome::Status(401),
            ours: Outcome::Status(401),
            ..CASE
        },
        Case {
            name: "with bad username and TLS",
            file: Some("web_config_users.good.yml"),
            tls: TLS,
            user: Some(("nonexistent", "nonexistent")),
            toolkit: Outcome::Status(401),
            ours: Outcome::Status(401),
            ..CASE
        },
        // Ours: alice (cost 12) logs in too; bob (cost 18, 25 s of a core per check) is left
        // out of the logins on purpose.
        Case {
            name: "ours: alice, cost 12 among cost 10",
            file: Some("web_config_users.good.yml"),
            tls: TLS,
            user: Some(("alice", "alice123")),
            ..CASE
        },
    ]
}

impl Tls {
    const DEFAULT: Tls = Tls { suites: &[], curves: &[], cert: None, expect_suite: None };

    fn config(&self) -> Arc<rustls::ClientConfig> {
        let mut provider = ring::default_provider();
        let mut versions = vec![&rustls::version::TLS13, &rustls::version::TLS12];
        if !self.suites.is_empty() {
            let all = provider.cipher_suites.clone();
            provider.cipher_suites = self
                .suites
                .iter()
                .map(|want| *all.iter().find(|s| s.suite() == *want).expect("a ring suite"))
                .collect();
            versions = vec![&rustls::version::TLS12];
        }
        if !self.curves.is_empty() {
            provider.kx_groups = self.curves.to_vec();
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(dir().join("ca.crt")).unwrap()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&versions)
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match self.cert {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let cert = CertificateDer::from_pem_file(dir().join(format!("{name}.pem")));
                let key = PrivateKeyDer::from_pem_file(dir().join(format!("{name}.key")));
                builder.with_client_auth_cert(vec![cert.unwrap()], key.unwrap()).unwrap()
            }
        })
    }
}

/// The exporter with `args`, its system trust store our CA alone (through `SSL_CERT_FILE`),
/// so the cases without `client_ca_file` come out the same on every machine, whatever its
/// own store holds or lacks.
fn exporter(args: &[&str]) -> Command {
    let mut command = Command::new(crate::common::exporter_bin());
    command.args(args).env("SSL_CERT_FILE", dir().join("ca.crt")).env_remove("SSL_CERT_DIR");
    command
}

fn dir() -> PathBuf {
    crate::common::fixture("web/toolkit")
}

/// What `case` comes to here.
fn run(case: &Case) -> Result<Outcome, String> {
    let mut args = Vec::new();
    if let Some(file) = case.file {
        args.push("--web.config.file".to_string());
        args.push(dir().join(file).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = exporter(&args).arg("--check-config").output().unwrap();
    let (code, stderr) =
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned());
    if code != 0 {
        let line = stderr.trim();
        if code != 2 || line.lines().count() != 1 {
            return Err(format!("refused without one line and exit 2 ({code}): {line}"));
        }
        let key = line.split(": ").find(|part| part.contains('.') && !part.contains(' '));
        return key
            .map(|key| Outcome::Refused(key.to_string().leak()))
            .ok_or_else(|| format!("the refusal names no key: {line}"));
    }
    let exporter = Exporter::start_command(exporter(&args));
    let authorization = case
        .user
        .map(|(user, password)| {
            format!("Authorization: {}\r\n", basic(&format!("{user}:{password}")))
        })
        .unwrap_or_default();
    for _ in 0..=case.more_requests {
        let status = match &case.tls {
            None => http_request(
                exporter.addr,
                &format!(
                    "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{authorization}\r\n"
                ),
            )
            .map(|r| r.status)
            .map_err(|e| e.to_string()),
            Some(tls) => https_get(exporter.addr, tls.config(), "/metrics", &authorization)
                .and_then(|r| match tls.expect_suite {
                    Some(want) if r.suite != Some(want) => {
                        Err(format!("the server picked {:?}, not {want:?}", r.suite))
                    }
                    _ => Ok(r.status),
                }),
        };
        match status {
            Ok(200) => {}
            Ok(status) => return Ok(Outcome::Status(status)),
            Err(e) if e.contains("the server picked") => return Err(e),
            Err(_) => return Ok(Outcome::Fails),
        }
    }
    Ok(Outcome::Ok)
}

fn check_table(cases: &[Case], run: impl Fn(&Case) -> Result<Outcome, String>) {
    let mut failures = Vec::new();
    let mut differences = 0;
    for case in cases {
        if (case.toolkit == case.ours) != case.why.is_empty() {
            failures
                .push(format!("{}: a difference needs a reason, and only a difference", case.name));
        }
        differences += usize::from(!case.why.is_empty());
        match run(case) {
            Ok(got) if got == case.ours => {}
            Ok(got) => {
                failures.push(format!("{}: expected {:?}, got {got:?}", case.name, case.ours))
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    println!("{} cases, {differences} deliberate differences from the toolkit", cases.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn web_toolkit_server_behaviour_and_users() {
    check_table(&cases(), run);
}

/// Every fixture in tests/fixtures/web/toolkit is some case's, and every case's file exists.
#[test]
fn web_toolkit_every_fixture_has_a_case() {
    let used: Vec<&str> =
        cases().iter().chain(openssl_cases().iter()).filter_map(|c| c.file).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yml") || name.ends_with(".yaml") {
            assert!(used.contains(&name.as_str()), "{name} is in no case");
        }
    }
    for name in used {
        assert!(dir().join(name).is_file(), "{name} is missing");
    }
}

/// `TestServerBehaviour`'s cases whose client rustls cannot be: openssl offering TLS 1.1
/// only, and TLS 1.2 with only a CBC suite.
fn openssl_cases() -> Vec<Case> {
    vec![
        Case {
            name: "valid tls config yml with TLS 1.1 client",
            file: Some("web_config_noAuth.good.yml"),
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
        Case {
            name: "valid tls config yml with no common cipher",
            file: Some("web_config_noAuth_someCiphers.good.yml"),
            toolkit: Outcome::Fails,
            ours: Outcome::Fails,
            ..CASE
        },
    ]
}

#[test]
#[ignore = "needs openssl for the TLS 1.1 and CBC-only clients (scripts/setup.sh installs it)"]
fn web_toolkit_openssl_clients() {
    let openssl = require_tool("openssl", "apt-get install openssl");
    let cases = openssl_cases();
    check_table(&cases, |case| {
        let file = dir().join(case.file.unwrap());
        let exporter =
            Exporter::start_command(exporter(&["--web.config.file", file.to_str().unwrap()]));
        // The same s_client line with a suite and version the server has is the control:
        // the harness itself connects.
        let (bad, good): (&[&str], &[&str]) = if case.name.contains("TLS 1.1") {
            (&["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], &["-tls1_2"])
        } else {
            (
                &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA"],
                &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
            )
        };
        let s_client = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args([
                    "s_client",
                    "-connect",
                    &exporter.addr.to_string(),
                    "-servername",
                    "localhost",
                ])
                .args(["-CAfile", dir().join("ca.crt").to_str().unwrap()])
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success() && text.contains("Verify return code: 0"), text)
        };
        let (ok, text) = s_client(good);
        if !ok {
            return Err(format!("control {good:?} failed: {text}"));
        }
        let (ok, text) = s_client(bad);
        if !ok && !text.contains("SSL alert number") {
            return Err(format!("{bad:?} failed without an alert from the server: {text}"));
        }
        Ok(if ok { Outcome::Ok } else { Outcome::Fails })
    });
}
