//! The exporter's own `process_*` metrics, as every Prometheus client library exports them,
//! from [`host::own_process`] (which says what each OS provides).

use crate::collect::{Family, Kind, Sample};
use crate::host;

/// The `process_*` families for this process; a figure the OS does not give is left out.
pub fn families() -> Vec<Family> {
    let me = host::own_process();
    let figures = [
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Kind::Counter,
            me.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Kind::Gauge,
            me.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Kind::Gauge,
            me.virtual_bytes,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Kind::Gauge,
            me.start_time_seconds,
        ),
        ("process_open_fds", "Number of open file descriptors.", Kind::Gauge, me.open_fds),
        ("process_max_fds", "Maximum number of open file descriptors.", Kind::Gauge, me.max_fds),
    ];
    figures
        .into_iter()
        .filter_map(|(name, help, kind, value)| {
            Some(Family {
                name,
                help,
                kind,
                label_names: &[],
                samples: vec![Sample { labels: Vec::new(), value: value? }],
            })
        })
        .collect()
}
