//! The exporter's own `process_*` metrics, as every Prometheus client library exports them.
//!
//! # Platform-specific behavior
//! Linux reads `/proc/self`. macOS asks `__proc_info` about its own pid: task info for CPU
//! time and memory (CPU time is in Mach ticks, converted with `hw.tbfrequency`), BSD info
//! for the start time, `/dev/fd` for open descriptors. Other systems export only the fd limit.

use crate::collect::{Family, Kind, Sample};

/// What we know about ourselves; `None` where the OS does not say.
#[derive(Debug, Default)]
struct OwnProcess {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

/// The `process_*` families for this process.
pub fn families() -> Vec<Family> {
    let me = read();
    let mut out = Vec::new();
    let mut add = |name, help, kind, value: Option<f64>| {
        if let Some(value) = value {
            out.push(Family {
                name,
                help,
                kind,
                label_names: &[],
                samples: vec![Sample { labels: Vec::new(), value }],
            });
        }
    };
    add(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        Kind::Counter,
        me.cpu_seconds,
    );
    add(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        Kind::Gauge,
        me.resident_bytes,
    );
    add(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        Kind::Gauge,
        me.virtual_bytes,
    );
    add(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        Kind::Gauge,
        me.start_time_seconds,
    );
    add("process_open_fds", "Number of open file descriptors.", Kind::Gauge, me.open_fds);
    add("process_max_fds", "Maximum number of open file descriptors.", Kind::Gauge, me.max_fds);
    out
}

fn max_fds() -> Option<f64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: limit is a live rlimit that getrlimit fills.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur as f64)
}

fn count_dir(path: &str) -> Option<f64> {
    // The directory's own descriptor is one of the entries while it is being read.
    std::fs::read_dir(path).ok().map(|d| d.count().saturating_sub(1) as f64)
}

#[cfg(target_os = "linux")]
fn read() -> OwnProcess {
    let mut me = OwnProcess {
        max_fds: max_fds(),
        open_fds: count_dir("/proc/self/fd"),
        ..Default::default()
    };
    let Ok(stat) = std::fs::read("/proc/self/stat") else { return me };
    let Some(close) = stat.iter().rposition(|&b| b == b')') else { return me };
    let fields: Vec<&[u8]> = stat[close + 2..].split(|&b| b == b' ').collect();
    let field =
        |i: usize| -> Option<f64> { std::str::from_utf8(fields.get(i)?).ok()?.trim().parse().ok() };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    // Fields after the comm: state is index 0, so utime (field 14) is 11.
    me.cpu_seconds = field(11).zip(field(12)).map(|(u, s)| (u + s) / ticks);
    me.virtual_bytes = field(20);
    me.resident_bytes = field(21).map(|pages| pages * page);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok()));
    me.start_time_seconds = field(19).zip(boot).map(|(start, boot)| boot + start / ticks);
    me
}

#[cfg(target_os = "macos")]
fn read() -> OwnProcess {
    use crate::libproc::{self, sys::Darwin};
    let mut me =
        OwnProcess { max_fds: max_fds(), open_fds: count_dir("/dev/fd"), ..Default::default() };
    let pid = std::process::id() as i32;
    if let Ok(task) = libproc::pid_task_info(&Darwin, pid) {
        // pti_total_* are Mach absolute-time ticks (reference §3.7, §7 item 11): 1 ns on Intel,
        // 1/24 MHz on Apple Silicon. hw.tbfrequency gives the tick rate even under Rosetta,
        // where mach_timebase_info claims 1/1.
        let ns_per_tick = libproc::sys::sysctl_u64(c"hw.tbfrequency")
            .filter(|&hz| hz > 0)
            .map_or(1.0, |hz| 1e9 / hz as f64);
        me.cpu_seconds =
            Some((task.pti_total_user + task.pti_total_system) as f64 * ns_per_tick / 1e9);
        me.resident_bytes = Some(task.pti_resident_size as f64);
        me.virtual_bytes = Some(task.pti_virtual_size as f64);
    }
    if let Ok(bsd) = libproc::pid_bsd_info(&Darwin, pid, false) {
        me.start_time_seconds =
            Some(bsd.pbi_start_tvsec as f64 + bsd.pbi_start_tvusec as f64 / 1e6);
    }
    me
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn read() -> OwnProcess {
    let _ = count_dir;
    OwnProcess { max_fds: max_fds(), ..Default::default() }
}
