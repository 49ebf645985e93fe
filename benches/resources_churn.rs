//! Memory under process churn: the `resources` collector keeps state between scrapes (one
//! entry per live process, one per remembered group), so a host that starts and reaps
//! processes all day must not make it grow. This bench churns 100,000 process lifetimes
//! through a fake `/proc` (pids reused from a 32,768 range, as on a default Linux; 40 command
//! names; a tenth of the processes have reaped children; five users), scraping with every
//! default collector after each round, and compares the exporter's resident memory after the
//! warm-up with its value at the end.
//!
//! `cargo bench --bench resources_churn` prints one JSON line and exits 1 when the end is
//! more than 10% above the warm-up.

use std::collections::HashSet;
use std::path::Path;

use libproc_exporter::collect::{self, Settings};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::procfs::ProcfsSource;

/// Processes alive at any scrape.
const LIVE: usize = 1000;
/// Of them, replaced between two scrapes.
const PER_ROUND: usize = 500;
/// Lifetimes before the warm-up figure is taken, and in all.
const WARMUP: usize = 30_000;
const LIFETIMES: usize = 100_000;
/// `--collector.resources.forget-after`, seconds: well inside the warm-up.
const FORGET_AFTER: u64 = 2;
/// Pids are handed out in turn from 300 to this, then reused (Linux's default pid_max).
const PID_MAX: u32 = 32_768;

/// splitmix64: deterministic, so two runs churn the same table.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Hands out processes as a kernel would: the next free pid, wrapping at [`PID_MAX`].
struct Churn {
    rng: Rng,
    next_pid: u32,
    clock: u64,
    in_use: HashSet<u32>,
}

impl Churn {
    fn spawn(&mut self) -> Fake {
        loop {
            self.next_pid = if self.next_pid >= PID_MAX { 300 } else { self.next_pid + 1 };
            if self.in_use.insert(self.next_pid) {
                break;
            }
        }
        self.clock += 1;
        let rng = &mut self.rng;
        Fake {
            pid: self.next_pid,
            comm: format!("cmd{}", rng.below(40)),
            uid: [0, 1, 33, 1000, 65534][rng.below(5) as usize],
            start: self.clock,
            ticks: rng.below(500),
            child_ticks: if rng.below(10) == 0 { rng.below(5000) } else { 0 },
        }
    }
}

/// One process of the fake table.
struct Fake {
    pid: u32,
    comm: String,
    uid: u32,
    start: u64,
    ticks: u64,
    child_ticks: u64,
}

fn write(root: &Path, p: &Fake) {
    let dir = root.join(p.pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let stat = format!(
        "{} ({}) S 1 {} {} 0 -1 0 0 0 0 0 {} {} {} 0 20 0 1 0 {} 10000000 500\n",
        p.pid,
        p.comm,
        p.pid,
        p.pid,
        p.ticks,
        p.ticks / 3,
        p.child_ticks,
        p.start
    );
    std::fs::write(dir.join("stat"), stat).unwrap();
    let u = p.uid;
    let status = format!("Name:\t{}\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t0\t0\t0\t0\n", p.comm);
    std::fs::write(dir.join("status"), status).unwrap();
}

/// This process's resident memory, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn main() {
    let root = std::env::temp_dir().join(format!("libproc-resources-churn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("sys/kernel/pty")).unwrap();
    std::fs::write(root.join("stat"), "cpu 0 0 0 0\nbtime 1700000000\nprocesses 1\n").unwrap();
    std::fs::write(root.join("sys/kernel/pid_max"), format!("{PID_MAX}\n")).unwrap();
    // The files collector's counters (allocated, free, fs.file-max), so it runs as on a host.
    std::fs::create_dir_all(root.join("sys/fs")).unwrap();
    std::fs::write(root.join("sys/fs/file-nr"), "1000\t0\t100000\n").unwrap();
    std::fs::write(root.join("sys/fs/nr_open"), "1048576\n").unwrap();

    let mut churn = Churn {
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        next_pid: 300,
        clock: 1000,
        in_use: HashSet::new(),
    };
    let mut live: Vec<Fake> = (0..LIVE).map(|_| churn.spawn()).collect();
    live.iter().for_each(|p| write(&root, p));

    let source = ProcfsSource::open(&root).unwrap();
    // Groups that were shown are remembered for forget-after (1 h by default): a host reaches
    // that steady state after an hour of scrapes, this bench after FORGET_AFTER seconds, so
    // that the warm-up includes it and what is measured is growth per process lifetime.
    let settings = Settings::default().with(&collect::resources::FORGET_AFTER, FORGET_AFTER);
    let collectors =
        collect::ALL.iter().filter(|d| d.default_enabled).map(|d| d.instance(&settings)).collect();
    let exporter = Exporter::new(Box::new(source), collectors, true);
    let mut lifetimes = 0;
    let mut warm = None;
    let mut bytes = 0;
    while lifetimes < LIFETIMES {
        for _ in 0..PER_ROUND {
            let i = churn.rng.below(live.len() as u64) as usize;
            churn.in_use.remove(&live[i].pid);
            std::fs::remove_dir_all(root.join(live[i].pid.to_string())).unwrap();
            live[i] = churn.spawn();
            write(&root, &live[i]);
            lifetimes += 1;
        }
        for p in &mut live {
            if churn.rng.below(4) == 0 {
                p.ticks += churn.rng.below(50);
                write(&root, p);
            }
        }
        bytes = exporter.scrape(None).len();
        if warm.is_none() && lifetimes >= WARMUP {
            warm = Some(rss());
        }
    }
    let (warm, end) = (warm.unwrap(), rss());
    std::fs::remove_dir_all(&root).unwrap();
    let ratio = end as f64 / warm as f64;
    println!(
        "{{\"kind\": \"resources_churn\", \"lifetimes\": {lifetimes}, \"live\": {LIVE}, \"rss_after_warmup\": {warm}, \"rss_end\": {end}, \"ratio\": {ratio:.3}, \"bytes_served\": {bytes}}}"
    );
    if ratio > 1.10 {
        eprintln!("resident memory grew {ratio:.3}x under churn (goal: at most 1.10x)");
        std::process::exit(1);
    }
}
