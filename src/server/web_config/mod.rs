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
        super::auth::check_costs(&users)
            .map_err(|e| WebConfigError::new("basic_auth_users", e.to_string()))?;
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
            "missing or 0: with an interval set, burst is how many requests may come at once",
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

    #[test]
    fn unverified_client_cert_modes_are_refused() {
        for mode in ["RequestClientCert", "RequireAnyClientCert", "RequireClientCert"] {
            let e = parse_err(&format!(
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: {mode}\n"
            ));
            assert_eq!(e.key, "tls_server_config.client_auth_type", "{mode}");
        }
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
