//! `--web.config.file`: any text, no panic, and an error always names what is wrong.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use libproc_exporter::server::web_config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = web_config::parse(text, Path::new("/etc/libproc_exporter")) {
            assert!(!e.reason.is_empty());
        }
    }
});
