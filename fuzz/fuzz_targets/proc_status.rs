//! `/proc/<pid>/status`: any bytes, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libproc_exporter::procfs::stat::parse_status_ids;

fuzz_target!(|data: &[u8]| {
    let _ = parse_status_ids(data);
});
