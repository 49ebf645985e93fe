//! `client_allowed_sans`: a verified client certificate must carry one of the listed subject
//! alternative names, compared exactly, as the toolkit's Go x509 does. (The verifier that
//! asks this is `client::Verifier`.)

use std::net::IpAddr;

use rustls_pki_types::{CertificateDer, ServerName};

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

#[cfg(test)]
mod tests {
    use super::*;

    use rustls_pki_types::pem::PemObject;

    use super::super::tests::fixture;

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
}
