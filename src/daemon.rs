//! From a valid [`Config`] to a running exporter: the listening sockets (bound here or
//! passed by systemd), the async runtime, the signals, the descriptor limit, the start-up
//! line, then [`server::run`] until SIGTERM. The binary calls [`serve`] and nothing else.

use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::{Exporter, VERSION};
use crate::{host, log, server, signals, table};

/// Why the exporter could not start serving, or stopped with an error.
#[derive(Debug)]
pub enum DaemonError {
    /// A listening socket could not be bound, passed or set up (the flag named).
    Listen(String),
    /// The async runtime could not start.
    Runtime(std::io::Error),
    /// The server stopped with an error.
    Server(server::ServeError),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Listen(why) => f.write_str(why),
            DaemonError::Runtime(e) => write!(f, "starting the async runtime: {e}"),
            DaemonError::Server(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// Serves `source` as `config` says until SIGTERM or SIGINT.
pub fn serve(config: Config, source: Box<dyn table::Source>) -> Result<(), DaemonError> {
    let listeners = listeners(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let exporter =
        Arc::new(Exporter::new(source, config.build_collectors(), config.exporter_metrics));
    let result = runtime.block_on(async move {
        // Signals first: the start-up line tells supervisors and tests the exporter is up,
        // and a SIGTERM or SIGHUP right after it must be handled, not take the default action.
        let (shutdown, reload) = (signals::shutdown(), signals::reload_on_sighup());
        let mut tokio_listeners = Vec::new();
        let mut addresses = Vec::new();
        for listener in listeners {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| DaemonError::Listen(format!("--web.listen-address: {e}")))?;
            addresses.push(listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
            tokio_listeners.push(listener);
        }
        log::info(
            "starting libproc_exporter",
            &[
                ("version", VERSION),
                ("source", exporter.source_name()),
                ("collectors", &config.collector_names().join(",")),
                ("listen", &addresses.join(",")),
                ("telemetry_path", &config.server.telemetry_path),
            ],
        );
        // As every Go exporter does: a low soft limit (launchd's 256, a shell's ulimit) must
        // not cap connections and the table read below what the hard limit allows.
        let open_files = host::raise_open_files_limit();
        log::debug("descriptor limit", &[("open_files", &open_files.unwrap_or(0).to_string())]);
        if host::euid() == 0 {
            log::warn(
                "running as root: not needed for any count; a dedicated user sees the same counts (see README, Privileges)",
                &[],
            );
        }
        server::run(tokio_listeners, exporter, config.server.clone(), shutdown, reload)
            .await
            .map_err(DaemonError::Server)?;
        log::info("stopped", &[]);
        Ok(())
    });
    // Not a plain drop, which would wait for every blocking task: a table read stuck in a
    // hung /proc must not keep the process alive after "stopped".
    runtime.shutdown_background();
    result
}

/// The listening sockets: the ones systemd passes with --web.systemd-socket, else one per
/// --web.listen-address, bound here. Non-blocking, for tokio. Called before the runtime
/// starts: socket activation reads and clears LISTEN_* while the process is single-threaded.
fn listeners(config: &Config) -> Result<Vec<TcpListener>, DaemonError> {
    let listeners = if config.systemd_socket {
        host::systemd::listeners()
            .map_err(|e| DaemonError::Listen(format!("--web.systemd-socket: {e}")))?
    } else {
        let mut bound = Vec::new();
        for listen in &config.listen {
            bound.push(listen.bind().map_err(|e| DaemonError::Listen(e.to_string()))?);
        }
        bound
    };
    for listener in &listeners {
        listener
            .set_nonblocking(true)
            .map_err(|e| DaemonError::Listen(format!("listening socket: {e}")))?;
    }
    Ok(listeners)
}
