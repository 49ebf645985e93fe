//! Snapshot files (`--source.replay-file`): any text, no panic; a file that parses also
//! builds its simulated kernel.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libproc_exporter::table::replay;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(file) = replay::parse(text) {
            let _ = file.kernel();
        }
    }
});
