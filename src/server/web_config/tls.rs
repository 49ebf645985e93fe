//! `tls_server_config`, validated: the settings `server::tls` builds rustls from, and the
//! toolkit's names for versions, cipher suites, curves and client-certificate modes.

use std::path::{Path, PathBuf};

use rustls::CipherSuite;

use super::WebConfigError;
use super::raw::RawTls;

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
    /// `client_ca` or `client_ca_file`. `None` with a verifying `client_auth`: client
    /// certificates are verified against the system's trust store, as Go does.
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

/// `client_auth_type`: Go's five modes, by the toolkit's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert` (or absent): no certificate asked for.
    None,
    /// `RequestClientCert`: a certificate is asked for, optional, and not verified.
    Request,
    /// `RequireAnyClientCert` (or the toolkit's older `RequireClientCert`): a certificate is
    /// required but not verified; the client only proves it holds the certificate's key.
    RequireAny,
    /// `VerifyClientCertIfGiven`: a certificate is optional, and verified when given.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`: a verified certificate is required.
    RequireAndVerify,
}

impl ClientAuth {
    /// Whether a given certificate is verified against CAs.
    pub fn verifies(self) -> bool {
        matches!(self, ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify)
    }
}

/// A protocol version rustls speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A key-exchange group the `ring` provider implements. (Go's `CurveP521` is not one: it is
/// skipped with a warning naming it, and refused when it is the only curve listed.)
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

/// The rest of Go's `tls.CipherSuites()`, the names the toolkit accepts: CBC-mode suites,
/// which rustls does not implement (CBC with HMAC is the construction behind Lucky13 and
/// its kin). They are skipped with a warning each, as a client offering only them would
/// find no common suite with Go either once a GCM suite is listed first.
const TLS12_CBC_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

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

fn tls_key(k: &str) -> String {
    format!("tls_server_config.{k}")
}

/// `cipher_suites`: the TLS 1.2 suites rustls implements, in order. TLS 1.3 names are noted
/// in `ignored` (not configurable, as in Go), Go's CBC suites in `skipped`; a name Go does not
/// know is refused by name, as the toolkit refuses it.
fn cipher_suites(
    names: &[String],
    ignored: &mut Vec<String>,
    skipped: &mut Vec<String>,
) -> Result<Vec<CipherSuite>, WebConfigError> {
    let mut suites = Vec::new();
    for name in names {
        if let Some((_, suite)) = TLS12_CIPHER_SUITES.iter().find(|(n, _)| n == name) {
            suites.push(*suite);
        } else if TLS13_CIPHER_SUITES.contains(&name.as_str()) {
            ignored.push(name.clone());
        } else if TLS12_CBC_SUITES.contains(&name.as_str()) {
            skipped.push(name.clone());
        } else {
            let names: Vec<&str> = TLS12_CIPHER_SUITES.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::new(
                tls_key("cipher_suites"),
                format!("unknown cipher {name}; the TLS 1.2 suites here are {}", names.join(", ")),
            ));
        }
    }
    Ok(suites)
}

/// `curve_preferences`, by the toolkit's (Go's) names, in order. `CurveP521` is noted in
/// `skipped`: neither of rustls's providers offers it for key exchange.
fn curves(names: &[String], skipped: &mut Vec<String>) -> Result<Vec<Curve>, WebConfigError> {
    let mut curves = Vec::new();
    for name in names {
        match name.as_str() {
            "X25519" => curves.push(Curve::X25519),
            "CurveP256" => curves.push(Curve::P256),
            "CurveP384" => curves.push(Curve::P384),
            "CurveP521" => skipped.push(name.clone()),
            other => {
                return Err(WebConfigError::new(
                    tls_key("curve_preferences"),
                    format!(
                        "unknown curve {other:?}, expected X25519, CurveP256, CurveP384 or CurveP521"
                    ),
                ));
            }
        }
    }
    Ok(curves)
}

/// `client_auth_type`, by Go's names (and the toolkit's older `RequireClientCert`).
fn client_auth(text: &str) -> Result<ClientAuth, WebConfigError> {
    match text {
        "" | "NoClientCert" => Ok(ClientAuth::None),
        "RequestClientCert" => Ok(ClientAuth::Request),
        "RequireAnyClientCert" | "RequireClientCert" => Ok(ClientAuth::RequireAny),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerify),
        other => Err(WebConfigError::new(
            tls_key("client_auth_type"),
            format!(
                "invalid ClientAuth {other:?}, expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ),
        )),
    }
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

pub(super) fn tls_settings(
    raw: RawTls,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<TlsSettings>, WebConfigError> {
    // Values first, so a bad name is reported even when TLS ends up off (the toolkit
    // parses them while reading the YAML).
    let mut min_version =
        version(&tls_key("min_version"), raw.min_version.as_deref(), TlsVersion::Tls12)?;
    let max_version =
        version(&tls_key("max_version"), raw.max_version.as_deref(), TlsVersion::Tls13)?;
    let (mut ignored, mut skipped_suites, mut skipped_curves) =
        (Vec::new(), Vec::new(), Vec::new());
    let cipher_suites = cipher_suites(
        raw.cipher_suites.as_deref().unwrap_or(&[]),
        &mut ignored,
        &mut skipped_suites,
    )?;
    let curves = curves(raw.curve_preferences.as_deref().unwrap_or(&[]), &mut skipped_curves)?;
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
    if client_auth == ClientAuth::None && client_ca.is_some() {
        // The toolkit's words: "client CA's have been configured without a Client Auth Policy".
        return Err(WebConfigError::new(
            tls_key("client_ca_file"),
            "client CAs are configured without a client_auth_type (Client Auth Policy) that asks for a certificate",
        ));
    }
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
    for name in &skipped_suites {
        warnings.push(format!(
            "tls_server_config.cipher_suites: {name} skipped: rustls implements no CBC-mode suite"
        ));
    }
    if cipher_suites.is_empty() && !skipped_suites.is_empty() && min_version == TlsVersion::Tls12 {
        // Every TLS 1.2 suite listed was skipped: TLS 1.2 would fall back to suites nobody
        // chose. A TLS 1.2 client of Go's server would have had only those CBC suites.
        if max_version == TlsVersion::Tls12 {
            return Err(WebConfigError::new(
                tls_key("cipher_suites"),
                format!(
                    "none of the listed suites is implemented by rustls ({} are CBC-mode) and TLS 1.3 is off: no cipher suite is left",
                    skipped_suites.join(", ")
                ),
            ));
        }
        warnings.push(format!(
            "tls_server_config.cipher_suites: no listed TLS 1.2 suite is implemented ({}), so TLS 1.2 is off and only TLS 1.3 is served",
            skipped_suites.join(", ")
        ));
        min_version = TlsVersion::Tls13;
    }
    for name in &skipped_curves {
        warnings.push(format!(
            "tls_server_config.curve_preferences: {name} skipped: rustls's crypto providers implement no P-521 key exchange"
        ));
    }
    if curves.is_empty() && !skipped_curves.is_empty() {
        return Err(WebConfigError::new(
            tls_key("curve_preferences"),
            format!(
                "only {} listed, which rustls does not implement: no key exchange is left; add X25519, CurveP256 or CurveP384",
                skipped_curves.join(", ")
            ),
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
