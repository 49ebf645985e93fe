//! The `files` collector against this machine's file table: its figures are the ones
//! `/proc/sys/fs/file-nr` and `/proc/sys/fs/nr_open` give at the same moment.

use std::path::Path;

use libproc_exporter::collect;
use libproc_exporter::metrics::Exporter;
use libproc_exporter::procfs::sys::parse_file_nr;
use libproc_exporter::table::procfs::ProcfsSource;

use crate::common::sample;

fn file_nr() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/sys/fs/file-nr").expect("read fs/file-nr");
    parse_file_nr(&text).unwrap_or_else(|| panic!("fs/file-nr is not three numbers: {text:?}"))
}

#[test]
fn open_files_equal_fs_file_nr_read_around_the_scrape() {
    let source = ProcfsSource::open(Path::new("/proc")).expect("open /proc");
    let files = collect::find("files").expect("the files collector");
    let exporter = Exporter::new(Box::new(source), vec![files.default_instance()], false);
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("read fs/nr_open")
        .trim()
        .parse()
        .expect("fs/nr_open is a number");
    // Other tests of this binary open and close files meanwhile: a scrape bracketed by two
    // equal readings must match them exactly; if the table never holds still, the figure
    // must lie between the last two readings.
    let mut last = None;
    for _ in 0..50 {
        let (before, max) = file_nr();
        let body = exporter.scrape(None);
        let (after, _) = file_nr();
        let open = sample(&body, "libproc_open_files", "").expect("libproc_open_files") as u64;
        assert_eq!(sample(&body, "libproc_open_files_limit", ""), Some(max as f64));
        assert_eq!(sample(&body, "libproc_open_files_per_process_limit", ""), Some(nr_open as f64));
        assert_eq!(
            sample(&body, "libproc_scrape_collector_success", "collector=\"files\""),
            Some(1.0)
        );
        if before == after {
            assert_eq!(open, before, "fs/file-nr said {before} before and after the scrape");
            return;
        }
        last = Some((before, open, after));
    }
    let (before, open, after) = last.expect("at least one attempt");
    assert!(
        (before.min(after)..=before.max(after)).contains(&open),
        "{open} open files, fs/file-nr said {before} before and {after} after"
    );
}
