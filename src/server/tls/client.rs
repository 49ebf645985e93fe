//! Client-certificate verifiers for what webpki alone does not do the way Go does: the modes
//! that take a certificate without verifying it (`RequestClientCert`,
//! `RequireAnyClientCert`), a self-signed certificate that is itself a configured client CA,
//! and `client_allowed_sans` after verification.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::sans::has_allowed_san;

/// Asks for a certificate and does not verify its chain: `accept` takes any certificate (the
/// client still proves it holds the key: the handshake signature is checked), `!accept`
/// refuses every one (verifying against an empty trust store, as Go's
/// `VerifyClientCertIfGiven` does with no CA at all).
#[derive(Debug)]
pub(super) struct Unverified {
    /// A certificate is required (`RequireAnyClientCert`).
    pub(super) mandatory: bool,
    /// A given certificate is taken; `false`: refused.
    pub(super) accept: bool,
    /// The provider's signature algorithms, for the handshake signature.
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for Unverified {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.accept {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// webpki's verifier with what Go adds around it:
/// - a client certificate that is byte for byte one of the configured client CAs is
///   trusted, as Go trusts it (its verifier finds the certificate in the root pool and stops
///   there), within the certificate's validity dates. webpki refuses it as a CA used as an
///   end entity; the toolkit's own tests present a self-signed CA:TRUE certificate that is
///   also the `client_ca_file`. The client still proves it holds the key (handshake
///   signature);
/// - then, with `client_allowed_sans`, the certificate must carry one of them
///   ([`has_allowed_san`]).
#[derive(Debug)]
pub(super) struct Verifier {
    /// webpki's verifier, against the configured CAs or the system's roots.
    pub(super) inner: Arc<dyn ClientCertVerifier>,
    /// The configured client CAs (`client_ca_file` or `client_ca`), DER; empty with the
    /// system's roots.
    pub(super) cas: Vec<CertificateDer<'static>>,
    /// `client_allowed_sans`; empty: any verified certificate.
    pub(super) allowed_sans: Vec<String>,
}

impl Verifier {
    /// The inner verdict, or the configured-CA exception.
    fn chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let refused = match self.inner.verify_client_cert(end_entity, intermediates, now) {
            Ok(verified) => return Ok(verified),
            Err(refused) => refused,
        };
        if !self.cas.iter().any(|ca| ca.as_ref() == end_entity.as_ref()) {
            return Err(refused);
        }
        match own_ca(end_entity, now) {
            Ok(()) => Ok(ClientCertVerified::assertion()),
            Err(Some(why)) => Err(rustls::Error::InvalidCertificate(why)),
            Err(None) => Err(refused),
        }
    }
}

impl ClientCertVerifier for Verifier {
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
        let verified = self.chain(end_entity, intermediates, now)?;
        if self.allowed_sans.is_empty() || has_allowed_san(end_entity, &self.allowed_sans) {
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

/// What Go checks of a certificate it finds in its root pool: `now` within notBefore and
/// notAfter, and an extended key usage, if the certificate has one, that allows client
/// authentication. `Err(None)` if the DER does not parse.
fn own_ca(cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), Option<CertificateError>> {
    use x509_cert::der::Decode as _;
    use x509_cert::der::oid::db::rfc5280::{ANY_EXTENDED_KEY_USAGE, ID_KP_CLIENT_AUTH};
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).map_err(|_| None)?;
    let tbs = cert.tbs_certificate();
    let now = now.as_secs();
    if now < tbs.validity().not_before.to_unix_duration().as_secs() {
        return Err(Some(CertificateError::NotValidYet));
    }
    if now > tbs.validity().not_after.to_unix_duration().as_secs() {
        return Err(Some(CertificateError::Expired));
    }
    match tbs.get_extension::<ExtendedKeyUsage>() {
        Ok(None) => Ok(()),
        Ok(Some((_critical, ExtendedKeyUsage(usages))))
            if usages.iter().any(|u| *u == ID_KP_CLIENT_AUTH || *u == ANY_EXTENDED_KEY_USAGE) =>
        {
            Ok(())
        }
        Ok(Some(_)) => Err(Some(CertificateError::InvalidPurpose)),
        Err(_) => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls_pki_types::pem::PemObject;

    use super::super::tests::fixture;

    #[test]
    fn the_own_ca_exception_checks_dates_and_usage() {
        // certs/ca.crt is valid from its making for 100 years and has no extended key usage;
        // the parity fixture client_selfsigned.pem allows client authentication; the server
        // certificate allows server authentication only.
        let read = |path: std::path::PathBuf| CertificateDer::from_pem_file(path).unwrap();
        let ca = read(fixture("ca.crt"));
        let parity = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/web/toolkit/client_selfsigned.pem");
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let year = 365 * 24 * 3600;
        let now = UnixTime::now().as_secs();
        assert_eq!(own_ca(&ca, at(now)), Ok(()));
        assert_eq!(own_ca(&read(parity), at(now)), Ok(()));
        assert_eq!(own_ca(&ca, at(now + 200 * year)), Err(Some(CertificateError::Expired)));
        assert_eq!(own_ca(&ca, at(0)), Err(Some(CertificateError::NotValidYet)));
        assert_eq!(
            own_ca(&read(fixture("server.crt")), at(now)),
            Err(Some(CertificateError::InvalidPurpose))
        );
        assert_eq!(own_ca(&CertificateDer::from(vec![0x30, 0x00]), UnixTime::now()), Err(None));
    }
}
