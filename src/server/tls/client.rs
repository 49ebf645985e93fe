//! Client-certificate verifiers for what webpki alone does not do the way Go does: the modes
//! that take a certificate without verifying it (`RequestClientCert`,
//! `RequireAnyClientCert`), a self-signed certificate that is itself a configured client CA,
//! and `client_allowed_sans` after verification.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
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
        match within_validity(end_entity, now) {
            Some(true) => Ok(ClientCertVerified::assertion()),
            Some(false) => {
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
            }
            None => Err(refused),
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

/// Whether `now` lies within the certificate's notBefore..=notAfter; `None` if the DER does
/// not parse.
fn within_validity(cert: &CertificateDer<'_>, now: UnixTime) -> Option<bool> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let validity = cert.tbs_certificate().validity();
    let now = now.as_secs();
    Some(
        validity.not_before.to_unix_duration().as_secs() <= now
            && now <= validity.not_after.to_unix_duration().as_secs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls_pki_types::pem::PemObject;

    use super::super::tests::fixture;

    #[test]
    fn validity_dates_bound_the_self_signed_ca() {
        // certs/ca.crt is valid from its making for 100 years.
        let ca = CertificateDer::from_pem_file(fixture("ca.crt")).unwrap();
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let year = 365 * 24 * 3600;
        let now = UnixTime::now().as_secs();
        assert_eq!(within_validity(&ca, at(now)), Some(true));
        assert_eq!(within_validity(&ca, at(now + 200 * year)), Some(false));
        assert_eq!(within_validity(&ca, at(0)), Some(false));
        assert_eq!(within_validity(&CertificateDer::from(vec![0x30, 0x00]), UnixTime::now()), None);
    }
}
