//! libproc_exporter: process counts from macOS's `__proc_info` (and Linux's `/proc`) as
//! Prometheus metrics.
#![deny(missing_docs)]

pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod libproc;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod server;
pub mod table;
pub mod users;
