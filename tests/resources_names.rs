//! The `resources` families under hostile names: command and user names holding quotes,
//! backslashes, newlines, braces, `=` and bytes that are not UTF-8 come out as escaped label
//! values Prometheus reads back, one series per label set, and promtool accepts the page.

use std::collections::BTreeSet;

use libproc_exporter::collect;
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::{self, Comm, DiskBytes, Os, Process, Snapshot, Source, Usage};

use crate::common::{fixture, promtool_check_metrics};

/// Command names a process can give itself (`prctl(PR_SET_NAME)`, `exec` of any file name),
/// each at most the 15 bytes kernels keep.
const HOSTILE: &[&[u8]] = &[
    b"a\"b\\c",
    b"new\nline",
    b"x} 1\ny{z=\"",
    b"\xff\xfeboth",
    b"\xfe\xffboth",
    b"sp ace\ttab",
    b"",
];

/// One fixed table, served again at every scrape with a second more CPU for everyone: the
/// recorded Mac's snapshot with its processes replaced by hostile ones.
struct Hostile {
    scrapes: u64,
    base: Snapshot,
}

impl Hostile {
    fn new(os: Os) -> Hostile {
        let mut replay = table::replay::open(&fixture("snapshots/mac.json")).unwrap();
        let mut base = replay.snapshot().unwrap();
        (base.os, base.origin, base.privileged) = (os, os, true);
        // User names as hostile as the commands (a password database says what it says).
        base.users = (0..HOSTILE.len() as u32)
            .map(|i| (500 + i, String::from_utf8_lossy(HOSTILE[i as usize]).into_owned()))
            .collect();
        Hostile { scrapes: 0, base }
    }
}

impl Source for Hostile {
    fn name(&self) -> &'static str {
        "hostile"
    }

    fn snapshot(&mut self) -> Result<Snapshot, table::Error> {
        self.scrapes += 1;
        let second = 1_000_000_000 * self.scrapes;
        let mut snapshot = self.base.clone();
        let template = snapshot.processes[1].clone();
        snapshot.processes = HOSTILE
            .iter()
            .enumerate()
            .map(|(i, &name)| Process {
                pid: 100 + i as i32,
                ruid: 500 + i as u32,
                comm: Comm::new(name),
                uniqueid: Some(1000 + i as u64),
                usage: Some(Usage {
                    user_ns: second,
                    system_ns: second / 2,
                    child_user_ns: second,
                    child_system_ns: 0,
                    resident_bytes: 1 << 20,
                    footprint_bytes: 1 << 19,
                    disk: Some(DiskBytes { read: 4096, written: 8192 }),
                }),
                ..template.clone()
            })
            .collect();
        Ok(snapshot)
    }
}

/// Prometheus's escaping of a label value.
fn escaped(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn hostile_command_and_user_names_are_escaped_once_each_and_promtool_reads_them() {
    for os in [Os::Macos, Os::Linux] {
        let resources = collect::find("resources").unwrap().default_instance();
        let exporter = Exporter::new(Box::new(Hostile::new(os)), vec![resources], false);
        exporter.scrape(None);
        let body = exporter.scrape(None);
        promtool_check_metrics(body.as_bytes());

        let series: Vec<&str> = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
            .collect();
        let unique: BTreeSet<&str> = series.iter().copied().collect();
        assert_eq!(unique.len(), series.len(), "a label set twice:\n{body}");

        // The two names that differ only in invalid bytes are one command, with both's CPU.
        let both = escaped(&String::from_utf8_lossy(b"\xff\xfeboth"));
        let line = format!("libproc_comm_cpu_seconds_total{{comm=\"{both}\",mode=\"user\"}} 4");
        assert!(body.lines().any(|l| l == line), "{os:?}: no {line:?} in\n{body}");
        for name in HOSTILE.iter().map(|n| String::from_utf8_lossy(n)) {
            let comm = format!("comm=\"{}\"", escaped(&name));
            for family in ["libproc_comm_cpu_seconds_total", "libproc_comm_resident_bytes"] {
                let found = series.iter().any(|s| s.starts_with(family) && s.contains(&comm));
                assert!(found, "{os:?}: {family} has no {comm} in\n{body}");
            }
            let user = format!("user=\"{}\"", escaped(&name));
            let found = series.iter().any(|s| s.contains("ruid_cpu") && s.contains(&user));
            assert!(found, "{os:?}: no {user} in\n{body}");
            let parent = format!("parent=\"{}\"", escaped(&name));
            assert!(series.iter().any(|s| s.contains("children_cpu") && s.contains(&parent)));
        }
        let mac_only = body.contains("libproc_comm_footprint_bytes{");
        assert_eq!(mac_only, os == Os::Macos, "footprint is macOS's only");
        assert_eq!(body.contains("libproc_comm_disk_read_bytes_total{"), os == Os::Macos);
    }
}
