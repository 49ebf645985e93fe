//! TLS with rustls and its `ring` crypto provider: the server configuration built from
//! [`TlsSettings`], client-certificate verification with `client_allowed_sans`, and
//! certificate rotation without a restart.
//!
//! # Layout
//! - `mod.rs`: the rustls server configuration from the settings and their PEM files.
//! - `client`: client-certificate verifiers: unverified (`RequestClientCert`,
//!   `RequireAnyClientCert`), and webpki's with a self-signed configured CA presented as the
//!   client's own certificate and `client_allowed_sans`.
//! - `sans`: the SAN match of `client_allowed_sans`.
//! - `reload`: rebuilding the configuration when its files change; the handshake.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, ring};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::web_config::{ClientAuth, Curve, Pem, TlsSettings, TlsVersion, WebConfigError};

mod client;
mod reload;
mod sans;

pub use reload::Reloader;
pub use sans::has_allowed_san;

use client::{Unverified, Verifier};

/// The crypto provider: rustls's `ring` backend, restricted to what the settings allow.
fn provider(settings: &TlsSettings) -> CryptoProvider {
    let mut provider = ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        // TLS 1.3 suites stay (they are not configurable); TLS 1.2 ones in the configured order.
        let mut suites: Vec<SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .collect();
        for wanted in &settings.cipher_suites {
            suites.extend(provider.cipher_suites.iter().copied().filter(|s| s.suite() == *wanted));
        }
        provider.cipher_suites = suites;
    }
    if !settings.curves.is_empty() {
        provider.kx_groups = settings
            .curves
            .iter()
            .map(|c| match c {
                Curve::X25519 => ring::kx_group::X25519,
                Curve::P256 => ring::kx_group::SECP256R1,
                Curve::P384 => ring::kx_group::SECP384R1,
            })
            .collect();
    }
    provider
}

/// Reads the files named by `settings` and builds the rustls server configuration. Errors
/// name the key whose file is at fault.
pub fn build(settings: &TlsSettings) -> Result<Arc<ServerConfig>, WebConfigError> {
    let key = |k: String| format!("tls_server_config.{k}");
    let certs = read_certs(&settings.cert, key(pem_key("cert", &settings.cert)))?;
    let private_key = match &settings.key {
        Pem::File(path) => PrivateKeyDer::from_pem_file(path),
        Pem::Inline(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
    }
    .map_err(|e| {
        WebConfigError::new(
            key(pem_key("key", &settings.key)),
            format!("{}: no usable PEM private key: {e}", settings.key.describe()),
        )
    })?;
    let provider = Arc::new(provider(settings));
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::new(key("cipher_suites".into()), e.to_string()))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Request | ClientAuth::RequireAny => {
            builder.with_client_cert_verifier(Arc::new(Unverified {
                mandatory: settings.client_auth == ClientAuth::RequireAny,
                accept: true,
                algorithms: provider.signature_verification_algorithms,
            }))
        }
        ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify => {
            builder.with_client_cert_verifier(client_verifier(settings, provider)?)
        }
    };
    let mut config = builder.with_single_cert(certs, private_key).map_err(|e| {
        WebConfigError::new(
            key(pem_key("key", &settings.key)),
            format!(
                "{} does not fit the certificate in {}: {e}",
                settings.key.describe(),
                settings.cert.describe()
            ),
        )
    })?;
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    Ok(Arc::new(config))
}

/// The verifier of `VerifyClientCertIfGiven` and `RequireAndVerifyClientCert`: against
/// `client_ca`, or without one against the system's trust store (as Go does), then
/// `client_allowed_sans`.
fn client_verifier(
    settings: &TlsSettings,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let optional = settings.client_auth == ClientAuth::VerifyIfGiven;
    // Why the system's store gave nothing, if it said.
    let mut store_error = None;
    let (roots, cas) = match &settings.client_ca {
        Some(ca) => {
            let ca_key = format!("tls_server_config.{}", pem_key("client_ca", ca));
            let mut roots = RootCertStore::empty();
            let cas = read_certs(ca, ca_key.clone())?;
            for cert in &cas {
                roots.add(cert.clone()).map_err(|e| {
                    WebConfigError::new(
                        &ca_key,
                        format!("{}: not a usable CA certificate: {e}", ca.describe()),
                    )
                })?;
            }
            (roots, cas)
        }
        None => {
            let (roots, why) = system_roots();
            store_error = why;
            (roots, Vec::new())
        }
    };
    if roots.is_empty() {
        if optional {
            // Go with an empty pool: clients without a certificate get in, every given
            // certificate is refused.
            return Ok(Arc::new(Unverified {
                mandatory: false,
                accept: false,
                algorithms: provider.signature_verification_algorithms,
            }));
        }
        let why = store_error.map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(WebConfigError::new(
            "tls_server_config.client_ca_file",
            format!(
                "not set, and the system trust store (SSL_CERT_FILE, SSL_CERT_DIR or the OS's) has no certificate to verify client certificates against{why}, so no client could connect; set client_ca_file"
            ),
        ));
    }
    let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if optional {
        verifier = verifier.allow_unauthenticated();
    }
    let verifier = verifier
        .build()
        .map_err(|e| WebConfigError::new("tls_server_config.client_ca_file", e.to_string()))?;
    Ok(Arc::new(Verifier {
        inner: verifier,
        cas,
        allowed_sans: settings.client_allowed_sans.clone(),
    }))
}

/// The system's trusted roots: `SSL_CERT_FILE` or `SSL_CERT_DIR` when set, else the OS's
/// store (the keychain's trust settings on macOS, the distribution's bundle on Linux). Roots
/// that do not parse are left out, as Go's pool leaves them out.
///
/// # Platform-specific behavior
/// On macOS Go asks the platform verifier (Security.framework) about the whole chain; here
/// the keychain's trusted roots are read once per build and the chain is verified by webpki.
/// The first error met reading the store comes along, for the message when it gave nothing.
fn system_roots() -> (RootCertStore, Option<String>) {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    (roots, found.errors.first().map(ToString::to_string))
}

/// The web config key a PEM was given under: `cert_file` or `cert`, and so on.
fn pem_key(inline_key: &'static str, pem: &Pem) -> String {
    match pem {
        Pem::File(_) => format!("{inline_key}_file"),
        Pem::Inline(_) => inline_key.to_string(),
    }
}

/// The certificates in `pem`, named by the web config key `key` on error.
fn read_certs(pem: &Pem, key: String) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let certs = match pem {
        Pem::File(path) => {
            CertificateDer::pem_file_iter(path).and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        }
        Pem::Inline(text) => CertificateDer::pem_slice_iter(text.as_bytes()).collect(),
    }
    .map_err(|e| WebConfigError::new(&key, format!("{}: {e}", pem.describe())))?;
    if certs.is_empty() {
        let reason = format!("{}: no PEM certificate in it", pem.describe());
        return Err(WebConfigError::new(key, reason));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    pub(super) fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web/certs").join(name)
    }

    pub(super) fn settings() -> TlsSettings {
        TlsSettings {
            cert: Pem::File(fixture("server.crt")),
            key: Pem::File(fixture("server.key")),
            client_auth: ClientAuth::None,
            client_ca: None,
            client_allowed_sans: Vec::new(),
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            curves: Vec::new(),
            prefer_server_cipher_suites: true,
        }
    }

    #[test]
    fn builds_from_the_fixture_certificates() {
        build(&settings()).unwrap();
        let mut s = settings();
        s.client_auth = ClientAuth::RequireAndVerify;
        s.client_ca = Some(Pem::File(fixture("ca.crt")));
        s.client_allowed_sans = vec!["localhost".into()];
        build(&s).unwrap();
    }

    #[test]
    fn a_key_that_does_not_fit_is_named() {
        let mut s = settings();
        s.key = Pem::File(fixture("other.key"));
        assert_eq!(build(&s).unwrap_err().key, "tls_server_config.key_file");
        let mut s = settings();
        s.cert = Pem::File(fixture("server.key"));
        assert_eq!(build(&s).unwrap_err().key, "tls_server_config.cert_file");
    }

    #[test]
    fn inline_pems_build_like_files() {
        let mut s = settings();
        let read = |name: &str| std::fs::read_to_string(fixture(name)).unwrap();
        s.cert = Pem::Inline(read("server.crt"));
        s.key = Pem::Inline(read("server.key"));
        assert!(build(&s).is_ok());
        s.key = Pem::Inline(read("other.key"));
        assert_eq!(build(&s).unwrap_err().key, "tls_server_config.key");
        s.cert = Pem::Inline("not a certificate".into());
        let e = build(&s).unwrap_err();
        assert_eq!(e.key, "tls_server_config.cert");
        assert!(e.reason.contains("the inline PEM"), "{e}");
    }

    #[test]
    fn cipher_suites_restrict_tls12_only() {
        let mut s = settings();
        s.cipher_suites = vec![rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
        let p = provider(&s);
        let tls12: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|c| matches!(c, SupportedCipherSuite::Tls12(_)))
            .collect();
        assert_eq!(tls12.len(), 1);
        assert!(p.cipher_suites.iter().any(|c| matches!(c, SupportedCipherSuite::Tls13(_))));
    }
}
