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

pub(super) fn tls_settings(
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
