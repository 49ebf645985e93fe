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
//! [`parse`] touches no file (the fuzz target drives it); [`read`] reads the file and resolves
//! paths relative to it; [`super::load_web_config`] then loads the certificates and key once
//! to prove they work (there, not here: `tls` builds on this module, not the other way).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hyper::header::{HeaderName, HeaderValue};
use rustls::CipherSuite;
use serde::Deserialize;

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

/// The file as written. Every level refuses unknown keys, like the toolkit's
/// `yaml.UnmarshalStrict`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    interval: Option<String>,
    burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    cert_file: Option<String>,
    key: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

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

/// Where a PEM certificate or key comes from: a file (re-read when it changes; resolved
/// against the config file's folder) or the config itself (`cert`, `key`, `client_ca`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    /// `*_file`.
    File(PathBuf),
    /// The inline form.
    Inline(String),
}

impl Pem {
    /// The file, if it is one (for change detection and messages).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Pem::File(path) => Some(path),
            Pem::Inline(_) => None,
        }
    }

    /// How to name it in a message: the path, or "the inline PEM".
    pub fn describe(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Inline(_) => "the inline PEM".into(),
        }
    }
}

/// `tls_server_config`, validated; the files are read by `server::tls::build`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `cert` or `cert_file`.
    pub cert: Pem,
    /// `key` or `key_file`.
    pub key: Pem,
    /// `client_auth_type`.
    pub client_auth: ClientAuth,
    /// `client_ca` or `client_ca_file`; present exactly when `client_auth` verifies.
    pub client_ca: Option<Pem>,
    /// `client_allowed_sans`: a verified client certificate must carry one of these as a DNS
    /// name, IP address, e-mail address or URI subject alternative name (as the toolkit
    /// checks). Empty: any verified certificate.
    pub client_allowed_sans: Vec<String>,
    /// Lowest protocol version offered.
    pub min_version: TlsVersion,
    /// Highest protocol version offered.
    pub max_version: TlsVersion,
    /// TLS 1.2 suites in preference order; empty: rustls's defaults.
    pub cipher_suites: Vec<CipherSuite>,
    /// Key-exchange groups in preference order; empty: the provider's defaults.
    pub curves: Vec<Curve>,
    /// `prefer_server_cipher_suites` (default true): our order wins over the client's.
    pub prefer_server_cipher_suites: bool,
}

/// `client_auth_type`, restricted to the modes that verify what they accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert` (or absent): no certificate asked for.
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, and verified when given.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`: a certificate from `client_ca_file` is required.
    RequireAndVerify,
}

/// A protocol version rustls speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A key-exchange group the `ring` provider implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// `X25519`.
    X25519,
    /// `CurveP256` (secp256r1).
    P256,
    /// `CurveP384` (secp384r1).
    P384,
}

/// The TLS 1.2 suites rustls implements with the `ring` provider, by their Go (and IANA)
/// names, which is what the toolkit's files use.
pub const TLS12_CIPHER_SUITES: &[(&str, CipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// TLS 1.3 suite names Go accepts in `cipher_suites` and ignores (1.3 suites are not
/// configurable there); so do we.
const TLS13_CIPHER_SUITES: &[&str] =
    &["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

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

fn parse_yaml(text: &str) -> Result<RawConfig, WebConfigError> {
    // An empty file (or one of comments only) is a valid, empty config, as in the toolkit.
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(RawConfig::default());
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<Option<RawConfig>>(text, options)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            // The parser's message says what and where; the line's key names the key. Only
            // the key: the value may be a password hash.
            let message = one_line(&e.to_string())
                .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            let line = e.location().and_then(|at| {
                let text = text.lines().nth(usize::try_from(at.line()).ok()?.checked_sub(1)?)?;
                let key = text.split_once(':').map_or(text, |(key, _)| key);
                Some(key.trim().chars().take(80).collect::<String>())
            });
            match line {
                Some(line) if !line.is_empty() => {
                    WebConfigError::new("", format!("{message} (key `{line}`)"))
                }
                _ => WebConfigError::new("", message),
            }
        })
}

/// Error text on one line: the start-up error is one line naming what and where.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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

fn version(
    key: &str,
    text: Option<&str>,
    default: TlsVersion,
) -> Result<TlsVersion, WebConfigError> {
    match text {
        None => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(old @ ("TLS10" | "TLS11")) => Err(WebConfigError::new(
            key,
            format!(
                "{old} is not supported: only TLS12 and TLS13 are (rustls implements no older version)"
            ),
        )),
        Some(other) => Err(WebConfigError::new(
            key,
            format!("unknown TLS version {other:?}, expected TLS12 or TLS13"),
        )),
    }
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

fn tls_key(k: &str) -> String {
    format!("tls_server_config.{k}")
}

/// `cipher_suites`: TLS 1.2 suites rustls implements, in order; TLS 1.3 names are noted in
/// `ignored` (they are not configurable), anything else is refused by name.
fn cipher_suites(
    names: &[String],
    ignored: &mut Vec<String>,
) -> Result<Vec<CipherSuite>, WebConfigError> {
    let mut suites = Vec::new();
    for name in names {
        if let Some((_, suite)) = TLS12_CIPHER_SUITES.iter().find(|(n, _)| n == name) {
            suites.push(*suite);
        } else if TLS13_CIPHER_SUITES.contains(&name.as_str()) {
            ignored.push(name.clone());
        } else {
            let names: Vec<&str> = TLS12_CIPHER_SUITES.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::new(
                tls_key("cipher_suites"),
                format!(
                    "{name} is not a TLS 1.2 cipher suite rustls implements; choose from {}",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(suites)
}

/// One `curve_preferences` entry, by the toolkit's (Go's) name.
fn curve(name: &str) -> Result<Curve, WebConfigError> {
    let why = match name {
        "X25519" => return Ok(Curve::X25519),
        "CurveP256" => return Ok(Curve::P256),
        "CurveP384" => return Ok(Curve::P384),
        "CurveP521" => "CurveP521 is not offered by the TLS library (rustls with ring); use X25519, CurveP256 or CurveP384".to_string(),
        other => format!("unknown curve {other:?}, expected X25519, CurveP256 or CurveP384"),
    };
    Err(WebConfigError::new(tls_key("curve_preferences"), why))
}

/// `client_auth_type`, refusing the modes that accept a certificate without verifying it.
fn client_auth(text: &str) -> Result<ClientAuth, WebConfigError> {
    let why = match text {
        "" | "NoClientCert" => return Ok(ClientAuth::None),
        "VerifyClientCertIfGiven" => return Ok(ClientAuth::VerifyIfGiven),
        "RequireAndVerifyClientCert" => return Ok(ClientAuth::RequireAndVerify),
        unverified @ ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert") => {
            format!(
                "{unverified} accepts client certificates without verifying them, which authenticates nobody; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
            )
        }
        other => format!(
            "unknown value {other:?}, expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        ),
    };
    Err(WebConfigError::new(tls_key("client_auth_type"), why))
}

/// A PEM given inline (`inline`) or as a file (`file`), at most one of them, as the toolkit
/// requires; `None` when neither is set.
fn pem(
    inline_key: &str,
    inline: &Option<String>,
    file: &Option<String>,
    base: &Path,
) -> Result<Option<Pem>, WebConfigError> {
    let set = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_string);
    match (set(inline), set(file)) {
        (Some(_), Some(_)) => Err(WebConfigError::new(
            tls_key(inline_key),
            format!("set together with {inline_key}_file: give one of them"),
        )),
        (Some(text), None) => Ok(Some(Pem::Inline(text))),
        (None, Some(path)) => Ok(Some(Pem::File(base.join(path)))),
        (None, None) => Ok(None),
    }
}

fn tls_settings(
    raw: RawTls,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<TlsSettings>, WebConfigError> {
    // Values first, so a bad name is reported even when TLS ends up off (the toolkit
    // parses them while reading the YAML).
    let min_version =
        version(&tls_key("min_version"), raw.min_version.as_deref(), TlsVersion::Tls12)?;
    let max_version =
        version(&tls_key("max_version"), raw.max_version.as_deref(), TlsVersion::Tls13)?;
    let mut ignored = Vec::new();
    let cipher_suites = cipher_suites(raw.cipher_suites.as_deref().unwrap_or(&[]), &mut ignored)?;
    let curves =
        raw.curve_preferences.iter().flatten().map(|n| curve(n)).collect::<Result<_, _>>()?;
    let client_auth = client_auth(raw.client_auth_type.as_deref().unwrap_or(""))?;
    let cert = pem("cert", &raw.cert, &raw.cert_file, base)?;
    let key = pem("key", &raw.key, &raw.key_file, base)?;
    let client_ca = pem("client_ca", &raw.client_ca, &raw.client_ca_file, base)?;
    // As in the toolkit: TLS is on when a certificate, key, CA or client auth type is set.
    if cert.is_none()
        && key.is_none()
        && client_ca.is_none()
        && client_auth == ClientAuth::None
        && raw.client_auth_type.as_deref().unwrap_or("").is_empty()
    {
        return Ok(None);
    }
    let missing = |k: &str| {
        WebConfigError::new(
            tls_key(k),
            "missing (TLS needs cert_file or cert, and key_file or key)",
        )
    };
    let cert = cert.ok_or_else(|| missing("cert_file"))?;
    let key = key.ok_or_else(|| missing("key_file"))?;
    let client_ca = match (client_auth, client_ca) {
        (ClientAuth::None, Some(_)) => {
            return Err(WebConfigError::new(
                tls_key("client_ca_file"),
                "set without a client_auth_type that verifies client certificates",
            ));
        }
        (ClientAuth::None, None) => None,
        (_, Some(ca)) => Some(ca),
        (_, None) => {
            return Err(WebConfigError::new(
                tls_key("client_ca_file"),
                "missing: client certificates are verified against the CAs in client_ca_file (or client_ca)",
            ));
        }
    };
    let client_allowed_sans = raw.client_allowed_sans.unwrap_or_default();
    // As the toolkit documents: a client without a certificate has no SAN to match, so the
    // list needs a required certificate.
    if !client_allowed_sans.is_empty() && client_auth != ClientAuth::RequireAndVerify {
        return Err(WebConfigError::new(
            tls_key("client_allowed_sans"),
            "needs client_auth_type RequireAndVerifyClientCert: without a required client certificate there is no SAN to check",
        ));
    }
    if min_version > max_version {
        return Err(WebConfigError::new(
            tls_key("min_version"),
            "is above max_version: no protocol version is left",
        ));
    }
    if client_auth == ClientAuth::VerifyIfGiven {
        warnings.push(
            "client_auth_type VerifyClientCertIfGiven lets clients without a certificate in; use RequireAndVerifyClientCert to require one"
                .into(),
        );
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "tls_server_config.cipher_suites: {} are TLS 1.3 suites, which are not configurable; ignored",
            ignored.join(", ")
        ));
    }
    Ok(Some(TlsSettings {
        cert,
        key,
        client_auth,
        client_ca,
        client_allowed_sans,
        min_version,
        max_version,
        cipher_suites,
        curves,
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
