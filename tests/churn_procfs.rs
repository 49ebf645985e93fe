//! The procfs reader against a fake /proc caught in the middle of churn: what a reader finds
//! when processes change between the directory listing and each file read, frozen into the
//! tree so that every seed is reproducible (`CHURN_SEED=n`).
//!
//! The reader lists and reads with real system calls (`opendir`, `openat`), and offers no
//! seam to change the tree between the listing and a read; a mutating thread would not be
//! deterministic. So each pid directory is left in one of the states churn leaves it in at
//! the moment its files are read: intact; gone before `stat` (the directory was listed, its
//! files are gone: ENOENT); gone between `stat` and `status`; its pid reused by another
//! process (other comm, parent and ids); `status` cut short before its `Uid` line; `stat`
//! empty or cut mid-line.

use std::collections::BTreeMap;
use std::path::Path;

use libproc_exporter::libproc::sim::churn::SplitMix;
use libproc_exporter::table::procfs::ProcfsSource;

const SEEDS: u64 = 150;

/// What a pid directory holds when the reader gets to it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Left {
    Intact,
    GoneBeforeStat,
    GoneBeforeStatus,
    Reused,
    StatusCut,
    StatEmpty,
    StatCut,
}

const LEFT: [Left; 7] = [
    Left::Intact,
    Left::GoneBeforeStat,
    Left::GoneBeforeStatus,
    Left::Reused,
    Left::StatusCut,
    Left::StatEmpty,
    Left::StatCut,
];

/// The process a full directory describes: (comm, ppid, uid).
type Described = (String, i32, u32);

fn write_tree(root: &Path, seed: u64) -> (BTreeMap<i32, Left>, BTreeMap<i32, Described>) {
    let mut rng = SplitMix::new(seed);
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("stat"), "cpu 1 2 3\nbtime 1700000000\nprocesses 9000\n").unwrap();
    let (mut left, mut described) = (BTreeMap::new(), BTreeMap::new());
    let n = 5 + rng.below(60);
    for i in 0..n {
        let pid = 1 + i as i32 * (1 + rng.below(3) as i32);
        if left.contains_key(&pid) {
            continue;
        }
        // Most directories are intact; the rest spread over what churn leaves.
        let mut state =
            if rng.below(3) == 0 { LEFT[1 + rng.below(LEFT.len() - 1)] } else { Left::Intact };
        let (comm, ppid, uid) = match state {
            Left::Reused => (format!("new{pid}"), 1, 1000 + rng.below(3) as u32),
            _ => (format!("p{pid}"), if pid == 1 { 0 } else { 1 }, rng.below(3) as u32),
        };
        let stat = format!(
            "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n"
        );
        let status = format!("Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t0\t0\t0\t0\n");
        let dir = root.join(pid.to_string());
        std::fs::create_dir(&dir).unwrap();
        match state {
            Left::GoneBeforeStat => {}
            Left::GoneBeforeStatus => std::fs::write(dir.join("stat"), &stat).unwrap(),
            Left::StatusCut => {
                std::fs::write(dir.join("stat"), &stat).unwrap();
                std::fs::write(dir.join("status"), &status[..status.find("Uid").unwrap()]).unwrap();
            }
            Left::StatEmpty | Left::StatCut => {
                let cut =
                    if state == Left::StatEmpty { 0 } else { rng.below(stat.find(')').unwrap()) };
                if cut == 0 {
                    state = Left::StatEmpty;
                }
                std::fs::write(dir.join("stat"), &stat[..cut]).unwrap();
                std::fs::write(dir.join("status"), &status).unwrap();
            }
            Left::Intact | Left::Reused => {
                std::fs::write(dir.join("stat"), &stat).unwrap();
                std::fs::write(dir.join("status"), &status).unwrap();
                described.insert(pid, (comm, ppid, uid));
            }
        }
        left.insert(pid, state);
    }
    (left, described)
}

#[test]
fn churn_procfs_counts_each_listed_pid_once_as_read_or_unreadable() {
    let root = std::env::temp_dir().join(format!("libproc-churn-procfs-{}", std::process::id()));
    let seeds: Vec<u64> = match std::env::var("CHURN_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..SEEDS).collect(),
    };
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for seed in seeds {
        let (left, described) = write_tree(&root, seed);
        let snap = ProcfsSource::open(&root)
            .and_then(|mut source| source.read())
            .unwrap_or_else(|e| panic!("seed {seed}: a churned /proc failed the scrape: {e}"));
        let u = &snap.unreadable;
        assert_eq!(
            snap.processes.len() as u64 + u.total(),
            left.len() as u64,
            "seed {seed}: counted + unreadable {u:?} is not the {} listed",
            left.len()
        );
        // An empty file is a task torn down between open and read: vanished too.
        let gone = left.values().filter(|s| {
            matches!(s, Left::GoneBeforeStat | Left::GoneBeforeStatus | Left::StatEmpty)
        });
        assert_eq!(u.vanished, gone.count() as u64, "seed {seed}: vanished {left:?}");
        let read: BTreeMap<i32, Described> =
            snap.processes.iter().map(|p| (p.pid, (p.comm.to_string(), p.ppid, p.euid))).collect();
        assert_eq!(read, described, "seed {seed}: every whole directory as its files say");
        for state in left.values() {
            *seen.entry(format!("{state:?}")).or_default() += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    if seen.len() > 1 {
        assert_eq!(seen.len(), LEFT.len(), "every state met: {seen:?}");
    }
}
