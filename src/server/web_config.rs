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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
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
    /// Legal but worth an operator's attention; logged at start-up.
    pub warnings: Vec<String>,
}

/// `tls_server_config`, validated; the files are read by `server::tls::build`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `cert_file`, resolved against the config file's folder.
    pub cert_file: PathBuf,
    /// `key_file`, resolved likewise.
    pub key_file: PathBuf,
    /// `client_auth_type`.
    pub client_auth: ClientAuth,
    /// `client_ca_file`, resolved; present exactly when `client_auth` verifies.
    pub client_ca_file: Option<PathBuf>,
    /// `client_allowed_sans`: a verified client certificate must carry one of these as a DNS
    /// name, IP address or URI subject alternative name. Empty: any verified certificate.
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
    if let Some(http) = raw.http_server_config {
        // http2 is accepted for compatibility; this server speaks HTTP/1.1, which every
        // Prometheus speaks too.
        let _ = http.http2;
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

fn tls_settings(
    raw: RawTls,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<TlsSettings>, WebConfigError> {
    let key = |k: &str| format!("tls_server_config.{k}");
    // Values first, so a bad name is reported even when TLS ends up off (the toolkit
    // parses them while reading the YAML).
    let min_version = version(&key("min_version"), raw.min_version.as_deref(), TlsVersion::Tls12)?;
    let max_version = version(&key("max_version"), raw.max_version.as_deref(), TlsVersion::Tls13)?;
    let mut cipher_suites = Vec::new();
    let mut ignored = Vec::new();
    for name in raw.cipher_suites.iter().flatten() {
        if let Some((_, suite)) = TLS12_CIPHER_SUITES.iter().find(|(n, _)| n == name) {
            cipher_suites.push(*suite);
        } else if TLS13_CIPHER_SUITES.contains(&name.as_str()) {
            ignored.push(name.as_str());
        } else {
            let names: Vec<&str> = TLS12_CIPHER_SUITES.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::new(
                key("cipher_suites"),
                format!(
                    "{name} is not a TLS 1.2 cipher suite rustls implements; choose from {}",
                    names.join(", ")
                ),
            ));
        }
    }
    let mut curves = Vec::new();
    for name in raw.curve_preferences.iter().flatten() {
        curves.push(match name.as_str() {
            "X25519" => Curve::X25519,
            "CurveP256" => Curve::P256,
            "CurveP384" => Curve::P384,
            "CurveP521" => {
                return Err(WebConfigError::new(
                    key("curve_preferences"),
                    "CurveP521 is not offered by the TLS library (rustls with ring); use X25519, CurveP256 or CurveP384",
                ));
            }
            other => {
                return Err(WebConfigError::new(
                    key("curve_preferences"),
                    format!("unknown curve {other:?}, expected X25519, CurveP256 or CurveP384"),
                ));
            }
        });
    }
    let client_auth = match raw.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        unverified @ ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert") => {
            return Err(WebConfigError::new(
                key("client_auth_type"),
                format!(
                    "{unverified} accepts client certificates without verifying them, which authenticates nobody; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
                ),
            ));
        }
        other => {
            return Err(WebConfigError::new(
                key("client_auth_type"),
                format!(
                    "unknown value {other:?}, expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    // As in the toolkit: TLS is on when any of these four is set.
    if !nonempty(&raw.cert_file)
        && !nonempty(&raw.key_file)
        && raw.client_auth_type.as_deref().unwrap_or("").is_empty()
        && !nonempty(&raw.client_ca_file)
    {
        return Ok(None);
    }
    let resolve = |k: &str, value: &Option<String>| -> Result<PathBuf, WebConfigError> {
        match value.as_deref() {
            Some(v) if !v.is_empty() => Ok(base.join(v)),
            _ => Err(WebConfigError::new(key(k), "missing (TLS needs cert_file and key_file)")),
        }
    };
    let cert_file = resolve("cert_file", &raw.cert_file)?;
    let key_file = resolve("key_file", &raw.key_file)?;
    let client_ca_file = match (client_auth, nonempty(&raw.client_ca_file)) {
        (ClientAuth::None, true) => {
            return Err(WebConfigError::new(
                key("client_ca_file"),
                "set without a client_auth_type that verifies client certificates",
            ));
        }
        (ClientAuth::None, false) => None,
        (_, true) => Some(resolve("client_ca_file", &raw.client_ca_file)?),
        (_, false) => {
            return Err(WebConfigError::new(
                key("client_ca_file"),
                "missing: client certificates are verified against the CAs in client_ca_file",
            ));
        }
    };
    let client_allowed_sans = raw.client_allowed_sans.unwrap_or_default();
    if !client_allowed_sans.is_empty() && client_auth == ClientAuth::None {
        return Err(WebConfigError::new(
            key("client_allowed_sans"),
            "set without a client_auth_type that verifies client certificates",
        ));
    }
    if min_version > max_version {
        return Err(WebConfigError::new(
            key("min_version"),
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
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
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
        assert_eq!(tls.cert_file, Path::new("/etc/exporter/a.crt"));
        assert_eq!(tls.key_file, Path::new("/abs/a.key"));
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
