//! `--web.config.file`: the prometheus/exporter-toolkit web configuration (`tls_server_config`,
//! `http_server_config`, `basic_auth_users`), parsed strictly and validated before serving.
//!
//! The format is the toolkit's, key for key, so one file can serve every exporter on a host.
//! Where we are stricter than the toolkit, it is on purpose and the error says why:
//! - TLS 1.0 and 1.1 are refused (rustls implements 1.2 and 1.3 only);
//! - `cipher_suites` must be TLS 1.2 suites rustls implements (no CBC); TLS 1.3 suite names
//!   are accepted and ignored, as Go ignores them;
//! - `curve_preferences` cannot name P-521 (the `ring` provider has no P-521 key exchange);
//! - the client-certificate modes that never verify (`RequestClientCert`,
//!   `RequireAnyClientCert`) are refused, a verifying mode needs `client_ca_file`, and
//!   `client_allowed_sans` needs a verifying mode;
//! - `min_version` above `max_version`, and a user name containing `:`, are refused.
//!
//! # Layout
//! - `mod.rs`: [`WebConfig`], [`parse`] and [`read`], headers, basic-auth users, the rate
//!   limit.
//! - `raw`: the YAML as written (serde types) and its one-line errors.
//! - `tls`: `tls_server_config` into [`TlsSettings`].
//!
//! [`parse`] touches no file (the fuzz target drives it); [`read`] reads the file and resolves
//! paths relative to it; [`super::load_web_config`] then loads the certificates and key once
//! to prove they work (there, not here: `tls` builds on this module, not the other way).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hyper::header::{HeaderName, HeaderValue};

mod raw;
mod tls;

pub use tls::{ClientAuth, Curve, Pem, TLS12_CIPHER_SUITES, TlsSettings, TlsVersion};

use raw::{RawRateLimit, parse_yaml};
use tls::tls_settings;

/// A web config that cannot be used: the key (a dotted path, empty for the file as a whole)
/// and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebConfigError {
    /// Dotted path of the offending key, e.g. `tls_server_config.min_version`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl WebConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> WebConfigError {
        WebConfigError { key: key.into(), reason: reason.into() }
    }
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for WebConfigError {}

/// A validated web config: what the server takes.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// TLS, when the file configures a certificate; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// `basic_auth_users`: user name -> bcrypt hash (each checked to be one). `None` when the
    /// key is absent; an empty map means auth is on and nobody can log in, as in the toolkit.
    pub users: Option<BTreeMap<String, String>>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit`: requests allowed, all clients together (a token bucket, as the
    /// toolkit's); `None` without the key or with interval 0.
    pub rate_limit: Option<RateLimit>,
    /// Legal but worth an operator's attention; logged at start-up.
    pub warnings: Vec<String>,
}

/// `rate_limit`: one token every `interval`, at most `burst` saved up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Time between two requests in the long run.
    pub interval: std::time::Duration,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// The headers the toolkit lets a config set, with the values allowed (empty: any value).
/// Names are matched exactly, as the toolkit does.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Reads `path` and validates it; relative paths in it are resolved against its folder. The
/// certificate and key files it names are read by [`super::load_web_config`].
pub fn read(path: &Path) -> Result<WebConfig, WebConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| WebConfigError::new("", format!("cannot read the file: {e}")))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")))
}

/// Parses and validates a web config's text; relative paths are resolved against `base`.
/// Reads no file.
pub fn parse(text: &str, base: &Path) -> Result<WebConfig, WebConfigError> {
    let raw = parse_yaml(text)?;
    let mut config = WebConfig::default();
    if let Some(users) = raw.basic_auth_users {
        for (user, hash) in &users {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                return Err(WebConfigError::new(
                    key,
                    "a user name cannot contain ':' (basic auth splits user and password at the first colon)",
                ));
            }
            super::auth::check_hash(hash).map_err(|e| WebConfigError::new(key, e.to_string()))?;
        }
        let costs = super::auth::cost_report(&users)
            .map_err(|e| WebConfigError::new("basic_auth_users", e.to_string()))?;
        config.warnings.extend(costs.warning());
        config.users = Some(users);
    }
    if let Some(limit) = raw.rate_limit {
        config.rate_limit = rate_limit(limit)?;
    }
    if let Some(http) = raw.http_server_config {
        // http2 is accepted and ignored: this server speaks HTTP/1.1, which every Prometheus
        // speaks too (the toolkit's default is true, and it only applies with TLS).
        if http.http2 == Some(true) && raw.tls_server_config.is_some() {
            config.warnings.push(
                "http_server_config.http2: accepted and ignored; this exporter serves HTTP/1.1 only".into(),
            );
        }
        for (name, value) in http.headers.unwrap_or_default() {
            config.headers.push(header(&name, &value)?);
        }
    }
    config.tls =
        tls_settings(raw.tls_server_config.unwrap_or_default(), base, &mut config.warnings)?;
    let unverified = config
        .tls
        .as_ref()
        .map(|tls| tls.client_auth)
        .filter(|mode| matches!(mode, ClientAuth::Request | ClientAuth::RequireAny));
    if let (Some(mode), None) = (unverified, &config.users) {
        let name =
            if mode == ClientAuth::Request { "RequestClientCert" } else { "RequireAnyClientCert" };
        config.warnings.push(format!(
            "UNAUTHENTICATED: tls_server_config.client_auth_type {name} takes any client certificate without verifying it, so a certificate authenticates nobody and every client is let in; set basic_auth_users too, or use RequireAndVerifyClientCert"
        ));
    }
    if config.users.is_some() && config.tls.is_none() {
        config.warnings.push(
            "basic_auth_users is set without tls_server_config: passwords cross the network in clear text"
                .into(),
        );
    }
    Ok(config)
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), WebConfigError> {
    let key = format!("http_server_config.headers.{name}");
    let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
        return Err(WebConfigError::new(
            key,
            format!("this header cannot be configured (allowed: {})", names.join(", ")),
        ));
    };
    if !allowed.is_empty() && !allowed.contains(&value) {
        return Err(WebConfigError::new(
            key,
            format!("invalid value {value:?} for {name}, expected one of: {}", allowed.join(", ")),
        ));
    }
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| WebConfigError::new(&key, e.to_string()))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| WebConfigError::new(&key, "the value is not a valid HTTP header value"))?;
    Ok((name, value))
}

/// `rate_limit`, validated: interval 0 (or absent) turns it off, as in the toolkit.
fn rate_limit(raw: RawRateLimit) -> Result<Option<RateLimit>, WebConfigError> {
    let interval = match raw.interval.as_deref() {
        None | Some("0") => return Ok(None),
        Some(text) => crate::duration::parse_duration(text).ok_or_else(|| {
            WebConfigError::new(
                "rate_limit.interval",
                format!("{text:?} is not a duration such as 1s or 100ms"),
            )
        })?,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    match raw.burst {
        Some(burst) if burst > 0 => Ok(Some(RateLimit { interval, burst })),
        _ => Err(WebConfigError::new(
            "rate_limit.burst",
            format!(
                "missing or 0 with interval {}: the toolkit would answer every request 429; set burst to at least 1, or interval to 0 to turn the limiter off",
                raw.interval.as_deref().unwrap_or_default()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::CipherSuite;

    const HASH: &str = "$2y$04$cWeJSkPEThTyMQkRzs.e1ecZxSx8/jpwDY8JdlHp6ejbU/zGUdGC2";

    fn parse_err(text: &str) -> WebConfigError {
        parse(text, Path::new("/etc/exporter")).unwrap_err()
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_configs() {
        for text in ["", "\n", "# nothing\n", "---\n", "tls_server_config:\n"] {
            let c = parse(text, Path::new("/")).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(c.tls.is_none() && c.users.is_none() && c.headers.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn paths_are_relative_to_the_config_file() {
        let c = parse(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: /abs/a.key\n",
            Path::new("/etc/exporter"),
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, Pem::File("/etc/exporter/a.crt".into()));
        assert_eq!(tls.key, Pem::File("/abs/a.key".into()));
        assert_eq!((tls.min_version, tls.max_version), (TlsVersion::Tls12, TlsVersion::Tls13));
        assert!(tls.prefer_server_cipher_suites);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let e = parse_err("tls_server_config:\n  cert_file: a\n  keyfile: b\n");
        assert!(e.to_string().contains("keyfile"), "{e}");
        let e = parse_err("basic_auth_user:\n  a: b\n");
        assert!(e.to_string().contains("basic_auth_user"), "{e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }

    #[test]
    fn old_protocol_versions_are_refused_by_name() {
        let e =
            parse_err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n");
        assert_eq!(e.key, "tls_server_config.min_version");
        assert!(e.reason.contains("TLS11 is not supported"), "{e}");
    }

    /// Issue 24: Go's unverified modes start, with one loud warning unless basic auth is
    /// also set; the toolkit's older `RequireClientCert` is `RequireAnyClientCert`.
    #[test]
    fn unverified_client_cert_modes_start_with_a_warning() {
        for (mode, want) in [
            ("RequestClientCert", ClientAuth::Request),
            ("RequireAnyClientCert", ClientAuth::RequireAny),
            ("RequireClientCert", ClientAuth::RequireAny),
        ] {
            let tls = format!(
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: {mode}\n"
            );
            let c = parse(&tls, Path::new("/")).unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!(c.tls.as_ref().map(|t| t.client_auth), Some(want));
            let loud: Vec<_> =
                c.warnings.iter().filter(|w| w.contains("UNAUTHENTICATED")).collect();
            assert_eq!(loud.len(), 1, "{mode}: {:?}", c.warnings);
            assert!(loud[0].contains("basic_auth_users"), "{}", loud[0]);
            let with_users = format!("{tls}basic_auth_users:\n  alice: {HASH}\n");
            let c = parse(&with_users, Path::new("/")).unwrap();
            assert!(!c.warnings.iter().any(|w| w.contains("UNAUTHENTICATED")), "{:?}", c.warnings);
        }
        let e =
            parse_err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: x\n");
        assert!(e.reason.contains("invalid ClientAuth"), "{e}");
    }

    /// Issue 24: a verifying mode without client_ca_file verifies against the system's
    /// roots, as Go does: no CA in the settings.
    #[test]
    fn verifying_without_a_client_ca_uses_the_system_roots() {
        for mode in ["VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] {
            let c = parse(
                &format!("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: {mode}\n"),
                Path::new("/"),
            )
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!(c.tls.unwrap().client_ca, None);
        }
        let e =
            parse_err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n");
        assert_eq!(e.key, "tls_server_config.client_ca_file");
    }

    /// Issue 24: Go's CBC suites and CurveP521 are skipped with a warning each; a list left
    /// empty is refused, or, for suites with TLS 1.3 on, leaves TLS 1.3 only.
    #[test]
    fn unimplemented_suites_and_curves_are_skipped_by_name() {
        let tls = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
        let c = parse(
            &format!("{tls}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA]\n  curve_preferences: [CurveP521, X25519]\n"),
            Path::new("/"),
        )
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cipher_suites, [CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]);
        assert_eq!(t.curves, [Curve::X25519]);
        for name in [
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
            "CurveP521",
        ] {
            assert_eq!(
                c.warnings.iter().filter(|w| w.contains(name)).count(),
                1,
                "{name}: {:?}",
                c.warnings
            );
        }
        let e = parse_err(&format!("{tls}  curve_preferences: [CurveP521]\n"));
        assert!(
            e.key == "tls_server_config.curve_preferences"
                && e.reason.contains("no key exchange is left"),
            "{e}"
        );
        let cbc = "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA]\n";
        let e = parse_err(&format!("{tls}{cbc}  max_version: TLS12\n"));
        assert!(
            e.key == "tls_server_config.cipher_suites"
                && e.reason.contains("no cipher suite is left"),
            "{e}"
        );
        let c = parse(&format!("{tls}{cbc}"), Path::new("/")).unwrap();
        assert_eq!(c.tls.unwrap().min_version, TlsVersion::Tls13);
        assert!(c.warnings.iter().any(|w| w.contains("TLS 1.2 is off")), "{:?}", c.warnings);
        let e = parse_err(&format!(
            "{tls}  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048]\n"
        ));
        assert!(e.reason.contains("unknown cipher"), "{e}");
        let e = parse_err(&format!("{tls}  curve_preferences: [CurveP257]\n"));
        assert!(e.reason.contains("unknown curve"), "{e}");
    }

    /// Issue 24: interval 0 (a YAML integer, as the toolkit's file has it) with burst 0 is
    /// no limiter; a non-zero interval with burst 0 is refused with a line saying why.
    #[test]
    fn rate_limit_zero_is_off_and_burst_zero_is_refused() {
        for interval in ["0", "0s", "\"0\""] {
            let c = parse(
                &format!("rate_limit:\n  interval: {interval}\n  burst: 0\n"),
                Path::new("/"),
            )
            .unwrap_or_else(|e| panic!("{interval}: {e}"));
            assert_eq!(c.rate_limit, None, "{interval}");
        }
        let e = parse_err("rate_limit:\n  interval: \"1s\"\n  burst: 0\n");
        assert_eq!(e.key, "rate_limit.burst");
        assert!(
            e.reason.contains("every request 429") && e.reason.contains("interval to 0"),
            "{e}"
        );
    }

    #[test]
    fn verify_if_given_and_auth_without_tls_warn() {
        let c = parse(
                            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca\n"
            ,
            Path::new("/"),
        )
        .unwrap();
        assert!(c.warnings[0].contains("VerifyClientCertIfGiven"), "{:?}", c.warnings);
        let c = parse(&format!("basic_auth_users:\n  alice: {HASH}\n"), Path::new("/")).unwrap();
        assert!(c.warnings[0].contains("clear text"), "{:?}", c.warnings);
    }

    #[test]
    fn bad_hashes_and_colon_users_name_the_user() {
        let e = parse_err("basic_auth_users:\n  alice: hunter2\n");
        assert_eq!(e.key, "basic_auth_users.alice");
        let e = parse_err(&format!("basic_auth_users:\n  \"a:b\": {HASH}\n"));
        assert_eq!(e.key, "basic_auth_users.a:b");
    }

    #[test]
    fn duplicate_users_are_errors() {
        let e = parse_err(&format!("basic_auth_users:\n  a: {HASH}\n  a: {HASH}\n"));
        assert!(e.to_string().to_lowercase().contains("duplicate"), "{e}");
    }

    #[test]
    fn headers_follow_the_toolkit_allow_list() {
        let c =
            parse("http_server_config:\n  headers:\n    X-Frame-Options: deny\n", Path::new("/"))
                .unwrap();
        assert_eq!(c.headers[0].0, "x-frame-options");
        let e = parse_err("http_server_config:\n  headers:\n    Server: me\n");
        assert_eq!(e.key, "http_server_config.headers.Server");
        let e = parse_err("http_server_config:\n  headers:\n    X-Frame-Options: \"deny\\n\"\n");
        assert_eq!(e.key, "http_server_config.headers.X-Frame-Options");
    }

    #[test]
    fn cipher_suites_keep_their_order_and_tls13_names_are_ignored() {
        let c = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            c.tls.unwrap().cipher_suites,
            [
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            ]
        );
        assert!(c.warnings.iter().any(|w| w.contains("TLS_AES_128_GCM_SHA256")));
    }
}
