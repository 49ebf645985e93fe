//! Integration tests, compiled into one binary (one link, one place to list them).
#![deny(clippy::undocumented_unsafe_blocks)]

mod churn;
mod citations;
mod comm;
mod common;
mod crash_signal;
mod darwin_sim;
mod deploy;
mod docs;
mod fleet;
mod forks;
mod golden;
mod label_stability;
mod leftovers_sim;
mod prometheus_e2e;
mod replay;
mod resources_names;
mod resources_sim;
// Real processes on this machine (Linux /proc, or a Mac's proc_pid_rusage); needs cc.
mod resources_real;
mod sim_costs;
mod sim_kernel;
mod single_flight;
mod socket_activation;
mod subcommands;
// The web surface: TLS, basic auth, limits, timeouts, hostile input, load.
mod web_auth;
mod web_config;
mod web_limits;
mod web_load;
mod web_support;
mod web_tls;
mod web_toolkit;
mod workflows;
// Against this machine's real processes (they start process trees, read /proc, run ps/pgrep).
#[cfg(target_os = "linux")]
mod binary_serves_real_processes;
#[cfg(target_os = "linux")]
mod churn_procfs;
#[cfg(target_os = "linux")]
mod container;
#[cfg(target_os = "linux")]
mod descriptors;
#[cfg(target_os = "linux")]
mod file_table;
#[cfg(target_os = "linux")]
mod leftovers;
#[cfg(target_os = "linux")]
mod linux_threads;
#[cfg(target_os = "linux")]
mod linux_tree;
#[cfg(target_os = "linux")]
mod listpids_agrees_with_pgrep;
#[cfg(target_os = "linux")]
mod procfs_reads_real_processes;
#[cfg(target_os = "linux")]
mod stuck_read;
