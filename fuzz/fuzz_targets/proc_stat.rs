//! `/proc/<pid>/stat`: any bytes, no panic; a parsed line's command name came from between
//! its first `(` and last `)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libproc_exporter::procfs::stat::parse_stat;

fuzz_target!(|data: &[u8]| {
    if let Some(stat) = parse_stat(data) {
        let open = data.iter().position(|&b| b == b'(').expect("parsed without '('");
        let close = data.iter().rposition(|&b| b == b')').expect("parsed without ')'");
        assert!(open < close);
        assert_eq!(stat.comm, &data[open + 1..close]);
    }
});
