//! The `Authorization: Basic` header: parsed as Go's `Request.BasicAuth` parses it, and
//! written for tests and probes.

use base64::Engine as _;

/// Why a request carries no usable credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The value does not start with the `Basic ` scheme.
    NotBasic,
    /// The credentials are not valid base64.
    BadBase64,
    /// The decoded credentials have no `:` between user and password.
    NoColon,
}

/// Credentials from an `Authorization: Basic` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Everything before the first `:`.
    pub user: Vec<u8>,
    /// Everything after it.
    pub password: Vec<u8>,
}

/// Parses an `Authorization` header value the way Go's `Request.BasicAuth` does: the scheme
/// `Basic` in any case, one space, standard base64 with padding, split at the first colon.
pub fn parse_basic(value: &[u8]) -> Result<Credentials, AuthError> {
    const PREFIX: &[u8] = b"basic ";
    if value.len() < PREFIX.len() || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return Err(AuthError::NotBasic);
    }
    let decoded = decode_base64(&value[PREFIX.len()..]).ok_or(AuthError::BadBase64)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(AuthError::NoColon)?;
    Ok(Credentials { user: decoded[..colon].to_vec(), password: decoded[colon + 1..].to_vec() })
}

/// The `Authorization` value a client sends for `user:password` (the inverse of
/// [`parse_basic`]; for tests and probes).
pub fn encode_basic(user_password: &[u8]) -> String {
    format!("Basic {}", BASE64.encode(user_password))
}

/// Standard base64 (RFC 4648 section 4) as Go's `StdEncoding` decodes it: padding required
/// and canonical, and no bits set past the last byte (the `base64` crate's `STANDARD` engine
/// refuses both, so "YR==" and "YTpi=" are errors as Go makes them).
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `input` decoded as [`BASE64`]; `None` for anything it refuses.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    BASE64.decode(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::fixtures::basic;

    fn encode(input: &[u8]) -> String {
        encode_basic(input).split_off("Basic ".len())
    }

    #[test]
    fn parse_basic_follows_go() {
        assert_eq!(
            parse_basic(&basic("alice:pa:ss")),
            Ok(Credentials { user: b"alice".to_vec(), password: b"pa:ss".to_vec() })
        );
        assert_eq!(
            parse_basic(b"bAsIc YTpi"),
            Ok(Credentials { user: b"a".to_vec(), password: b"b".to_vec() })
        );
        assert_eq!(parse_basic(b"Bearer abc"), Err(AuthError::NotBasic));
        assert_eq!(parse_basic(b"Basic"), Err(AuthError::NotBasic));
        assert_eq!(parse_basic(b"Basic  YTpi"), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic YTpi="), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic YWJj"), Err(AuthError::NoColon));
        assert_eq!(parse_basic(b"Basic YQ=="), Err(AuthError::NoColon));
        // "YR==" has bits set past the last byte: not canonical.
        assert_eq!(parse_basic(b"Basic YR=="), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic ===="), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic YQ==YTpi"), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic \xff\xfe"), Err(AuthError::BadBase64));
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode_base64(encode(&data).as_bytes()), Some(data));
        }
    }
}
