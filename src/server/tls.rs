//! TLS with rustls and its `ring` crypto provider: the server configuration built from
//! [`TlsSettings`], client-certificate verification with `client_allowed_sans`, and
//! certificate rotation without a restart.
//!
//! Rotation: before each handshake the certificate, key and client-CA files are `stat`ed;
//! when any of them changed (size, mtime, ctime or inode: a rewrite or a rename over it),
//! the configuration is rebuilt. A rebuild that fails (a certificate written before its key,
//! say) keeps the previous configuration and is retried when the files change again.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, ring};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::web_config::{ClientAuth, Curve, Pem, TlsSettings, TlsVersion, WebConfigError};
use crate::log;

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
    let builder = match (&settings.client_auth, &settings.client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let ca_key = key(pem_key("client_ca", ca));
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca, ca_key.clone())? {
                roots.add(cert).map_err(|e| {
                    WebConfigError::new(
                        &ca_key,
                        format!("{}: not a usable CA certificate: {e}", ca.describe()),
                    )
                })?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if *mode == ClientAuth::VerifyIfGiven {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier =
                verifier.build().map_err(|e| WebConfigError::new(&ca_key, e.to_string()))?;
            let verifier: Arc<dyn ClientCertVerifier> = if settings.client_allowed_sans.is_empty() {
                verifier
            } else {
                Arc::new(SanVerifier {
                    inner: verifier,
                    allowed: settings.client_allowed_sans.clone(),
                })
            };
            builder.with_client_cert_verifier(verifier)
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

/// Checks a verified client certificate against `client_allowed_sans`: one of its DNS-name,
/// IP-address, e-mail or URI subject alternative names must be listed (compared exactly, as
/// the toolkit's Go x509 does).
#[derive(Debug)]
struct SanVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

/// Whether the certificate carries one of `allowed` as a SAN.
pub fn has_allowed_san(cert: &CertificateDer<'_>, allowed: &[String]) -> bool {
    let der: &[u8] = cert.as_ref();
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    allowed.iter().any(|want| {
        if let Ok(ip) = want.parse::<IpAddr>() {
            return cert
                .verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
                .is_ok();
        }
        cert.valid_dns_names().any(|name| name.eq_ignore_ascii_case(want))
            || cert.valid_uri_names().any(|uri| uri == want)
    }) || {
        // webpki reads no e-mail names; they are the rfc822Name entries of the certificate's
        // subjectAltName extension (webpki has checked the signature).
        let emails = email_sans(der);
        allowed.iter().any(|want| emails.iter().any(|email| email == want))
    }
}

impl ClientCertVerifier for SanVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if has_allowed_san(end_entity, &self.allowed) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rfc822Name (e-mail) subject alternative names of a DER certificate (RFC 5280
/// 4.2.1.6), read with RustCrypto's `x509-cert`. Malformed input gives none.
fn email_sans(cert: &[u8]) -> Vec<String> {
    use x509_cert::der::Decode as _;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else { return Vec::new() };
    let Ok(Some((_critical, SubjectAltName(names)))) =
        cert.tbs_certificate().get_extension::<SubjectAltName>()
    else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::Rfc822Name(email) => Some(email.to_string()),
            _ => None,
        })
        .collect()
}

/// What identifies a file's content without reading it: device, inode, size, mtime and ctime
/// (seconds and nanoseconds each: two changes a whole number of seconds apart differ in the
/// seconds only); `None` for a file that cannot be `stat`ed.
type FileStamp = Option<(u64, u64, i64, (i64, i64), (i64, i64))>;

/// The stamps of the certificate, key and client-CA files.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Vec<FileStamp>);

impl Stamp {
    fn of(settings: &TlsSettings) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        // Inline PEMs never change; only files are watched.
        let files = [Some(&settings.cert), Some(&settings.key), settings.client_ca.as_ref()]
            .map(|pem| pem.and_then(Pem::file));
        Stamp(
            files
                .into_iter()
                .flatten()
                .map(|path| {
                    std::fs::metadata(path).ok().map(|m| {
                        (
                            m.dev(),
                            m.ino(),
                            m.size() as i64,
                            (m.mtime(), m.mtime_nsec()),
                            (m.ctime(), m.ctime_nsec()),
                        )
                    })
                })
                .collect(),
        )
    }
}

struct Current {
    config: Arc<ServerConfig>,
    /// The files as they were when `config` was built.
    loaded: Stamp,
    /// The files as they were when a rebuild last failed: not retried until they change.
    failed: Option<Stamp>,
}

/// The TLS configuration in force, rebuilt when its files change.
pub struct Reloader {
    settings: TlsSettings,
    current: Mutex<Current>,
}

impl Reloader {
    /// Loads the files once; an error here is a start-up error.
    pub fn new(settings: TlsSettings) -> Result<Reloader, WebConfigError> {
        let loaded = Stamp::of(&settings);
        let config = build(&settings)?;
        Ok(Reloader { settings, current: Mutex::new(Current { config, loaded, failed: None }) })
    }

    /// An acceptor with the configuration for the next handshake, rebuilt first if the files
    /// changed. The files are small and local, so this runs inline.
    pub fn acceptor(&self) -> TlsAcceptor {
        let stamp = Stamp::of(&self.settings);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if stamp != current.loaded && current.failed.as_ref() != Some(&stamp) {
            match build(&self.settings) {
                Ok(config) => {
                    log::info(
                        "reloaded the TLS certificate",
                        &[("cert", &self.settings.cert.describe())],
                    );
                    *current = Current { config, loaded: stamp, failed: None };
                }
                Err(e) => {
                    log::error(
                        "reloading the TLS certificate failed; still serving the previous one",
                        &[("err", &e.to_string())],
                    );
                    current.failed = Some(stamp);
                }
            }
        }
        TlsAcceptor::from(current.config.clone())
    }

    /// The server side of a handshake on `io`, given up after `timeout` so a client that
    /// connects and says nothing (or too little) holds nothing for long.
    pub async fn handshake<IO>(&self, io: IO, timeout: Duration) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(timeout, self.acceptor().accept(io)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the TLS handshake did not complete in time",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web/certs").join(name)
    }

    fn settings() -> TlsSettings {
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
    fn sans_match_dns_and_ip_exactly() {
        let pem = std::fs::read(fixture("server.crt")).unwrap();
        let cert = CertificateDer::from_pem_slice(&pem).unwrap();
        assert!(has_allowed_san(&cert, &["localhost".into()]));
        assert!(has_allowed_san(&cert, &["127.0.0.1".into()]));
        assert!(!has_allowed_san(&cert, &["127.0.0.2".into(), "example.com".into()]));
        assert!(!has_allowed_san(&cert, &["local".into()]));
    }

    #[test]
    fn sans_match_email_and_uri_too() {
        let pem = std::fs::read(fixture("client-sans.crt")).unwrap();
        let cert = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(email_sans(cert.as_ref()), ["prometheus@example.com"]);
        assert!(has_allowed_san(&cert, &["prometheus@example.com".into()]));
        assert!(has_allowed_san(&cert, &["spiffe://example.com/prometheus".into()]));
        assert!(!has_allowed_san(&cert, &["other@example.com".into(), "prometheus".into()]));
        // The server certificate has DNS and IP names only.
        let server =
            CertificateDer::from_pem_slice(&std::fs::read(fixture("server.crt")).unwrap()).unwrap();
        assert!(email_sans(server.as_ref()).is_empty());
        // Truncated or garbage DER reads as no names, never a panic.
        for len in 0..cert.as_ref().len() {
            let _ = email_sans(&cert.as_ref()[..len]);
        }
        assert!(email_sans(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_empty());
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

    /// A client that opens the connection and never sends a ClientHello is dropped after
    /// the handshake timeout; time is paused, so the test takes no time.
    #[tokio::test(start_paused = true)]
    async fn a_silent_client_hits_the_handshake_timeout() {
        let reloader = Reloader::new(settings()).unwrap();
        let (server, _client) = tokio::io::duplex(1024);
        let started = tokio::time::Instant::now();
        let err = reloader.handshake(server, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 10);
    }
}
