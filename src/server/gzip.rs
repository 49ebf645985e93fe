//! gzip for scrape answers: whether a client's `Accept-Encoding` allows it, and the
//! compression itself.

use hyper::body::Bytes;
use hyper::header::HeaderValue;

/// Whether an `Accept-Encoding` header allows gzip: `gzip` or `*` listed with a q-value above
/// 0 (RFC 9110, section 12.5.3), `gzip` taking precedence over `*`. `x-gzip` counts as gzip.
pub(super) fn accepts_gzip(header: Option<&HeaderValue>) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else { return false };
    let (mut gzip, mut any) = (None, None);
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => any = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// `text` gzipped at the default level.
pub(super) fn gzip(text: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(text);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_by_name_or_star_unless_its_q_is_zero() {
        let accepts = |v: &str| accepts_gzip(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(!accepts_gzip(None));
        for yes in [
            "gzip",
            "GZIP",
            "gzip, deflate",
            "deflate, gzip;q=0.5",
            "*",
            "br;q=1, *;q=0.1",
            "x-gzip",
            "gzip;q=0.001",
            "identity, gzip ; q=1",
        ] {
            assert!(accepts(yes), "{yes}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.000",
            "*;q=0",
            "gzip;q=0, *",
            "*, gzip;q=0",
        ] {
            assert!(!accepts(no), "{no}");
        }
    }
}
