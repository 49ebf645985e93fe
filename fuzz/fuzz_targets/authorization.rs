//! The `Authorization` header: any bytes, no panic; what parses re-encodes to the same
//! credentials (the decoder accepts only canonical base64).
#![no_main]

use libfuzzer_sys::fuzz_target;
use libproc_exporter::server::auth::{encode_basic, parse_basic};

fuzz_target!(|data: &[u8]| {
    if let Ok(credentials) = parse_basic(data) {
        let mut joined = credentials.user.clone();
        joined.push(b':');
        joined.extend_from_slice(&credentials.password);
        let encoded = encode_basic(&joined);
        assert_eq!(&encoded.as_bytes()[6..], &data[6..], "not canonical");
        assert_eq!(parse_basic(encoded.as_bytes()), Ok(credentials));
    }
});
