//! libproc_exporter: the macOS process table as Prometheus metrics, through `__proc_info`
//! (the system call behind libproc.dylib), and Linux's through `/proc`.
//!
//! # Layout
//!
//! Each arrow points one way: `server -> metrics -> collect -> table -> libproc | procfs`,
//! and `host -> libproc | procfs`. The two bindings and `host` are the only modules with
//! `unsafe` code.
//!
//! - [`libproc`]: the binding. Constants, the [`Kernel`](libproc::Kernel) trait (the
//!   syscall contract), listing with grow-and-retry and the `pids_for_*` wrappers, the
//!   `#[repr(C)]` pid-info structures; `sys` is the real call (macOS only), [`libproc::sim`]
//!   the simulated xnu every test runs against.
//! - [`procfs`]: the Linux binding, depending on nothing else in the crate: the raw reader
//!   (the mount as a directory descriptor, `openat`/`read` of `PID/stat` and `PID/status`),
//!   their byte parsers, the ids through a pidfd (`PIDFD_GET_INFO`, Linux 6.13+) instead
//!   of `status`, the `/proc/sys` limits, boot time and fork counter, and the names of
//!   Linux's terminal numbers. It compiles on every Unix (a copied tree reads the same).
//! - [`table`]: one [`Snapshot`](table::Snapshot) of the process table per scrape, from
//!   `darwin` (any libproc kernel), `procfs` (Linux) or `replay` (a `snapshot_file` through
//!   the simulated kernel): thin assemblers of the bindings' records, with no `unsafe`
//!   and no OS test; [`table::open`] picks the source.
//! - [`host`]: the process we are and the machine it runs on, one file per OS chosen once
//!   (and with it [`NATIVE_BINDING`](host::NATIVE_BINDING), what `--source=auto` reads): the
//!   exporter's own figures, effective uid, clock ticks and descriptor limits, systemd's
//!   sockets, the password database, the terminal devices in `/dev`, the kernel's limits.
//! - [`collect`]: snapshot -> counts, one pure function per collector, with top-K and
//!   series caps.
//! - [`metrics`]: one scrape end to end below HTTP ([`metrics::Exporter::scrape`]):
//!   snapshot, collectors, the exporter's own metrics, the text format.
//! - [`server`]: hyper on tokio, one room per job: `mod.rs` accepts under the connection
//!   cap and runs each connection (TLS, then HTTP/1.1) until graceful shutdown; `routes`
//!   answers a request; `flight` shares one collection between concurrent scrapes, each by
//!   its own deadline; `selection` reads `collect[]`/`exclude[]`; `gzip` negotiates and
//!   compresses; `rate_limit` is the token bucket; `web_state` is the web config in force
//!   and its SIGHUP reload; [`web_config`](server::web_config) parses the file;
//!   [`tls`](server::tls) builds rustls (`client`: client-certificate verifiers; `sans`:
//!   client names; `reload`: certificate rotation); [`auth`](server::auth) checks basic auth (`basic`: the header; `hash`: bcrypt
//!   costs; `pool`: the bcrypt threads and verdict cache). Durations in flags and the web
//!   config are read by the leaf `duration`, which `config` shares.
//! - [`daemon`]: from a valid config to a running server (sockets, runtime, descriptor
//!   limit, start-up line); [`signals`]: SIGTERM/SIGINT to stop, SIGHUP to reload. The
//!   binary (`main.rs`) only parses, validates and calls `daemon::serve` or a subcommand.
//! - [`cli`] parses flags, [`config`] validates them into a [`Config`](config::Config);
//!   [`commands`] are the `listpids` and `record` subcommands; [`users`] maps uids to names;
//!   [`log`] writes logfmt or JSON lines.
//!
//! Kernel facts are cited from `docs/xnu-proc-info.md` by section (§).
#![deny(missing_docs)]
// Every unsafe block says why it is sound, so a reviewer checks the argument, not the code.
#![deny(clippy::undocumented_unsafe_blocks)]

mod civil_date;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod daemon;
mod duration;
pub mod host;
pub mod libproc;
pub mod log;
pub mod metrics;
pub mod procfs;
pub mod server;
pub mod signals;
pub mod table;
pub mod users;
