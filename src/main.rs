//! The `libproc_exporter` binary: parse flags, set up logging, hand over to the library.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use libproc_exporter::cli::{Cli, Subcommands};
use libproc_exporter::config::Config;
use libproc_exporter::metrics::{Exporter, VERSION};
use libproc_exporter::{commands, log, server, table};

/// Prints one line and returns the exit code for a usage error (2) or a runtime one (1).
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "libproc_exporter: error: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's first line names the flag and what is wrong; a value list follows on its
            // own line, then the usage block. One line: the first, with the list.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let choices = text.lines().map(str::trim).find(|l| l.starts_with("[possible values:"));
            let line = match choices {
                Some(choices) => format!("{} {choices}", first.trim_start_matches("error: ")),
                None => first.trim_start_matches("error: ").to_string(),
            };
            return fail(2, line);
        }
    };
    let config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(e) => return fail(2, e),
    };
    log::init(config.log_level, config.log_format);
    for warning in &config.warnings {
        log::warn(warning, &[]);
    }

    let mut source = match table::open(&config.source) {
        Ok(source) => source,
        Err(e) => return fail(1, e),
    };
    match &cli.command {
        Some(Subcommands::Listpids(args)) => {
            let mut stdout = std::io::stdout().lock();
            return match commands::listpids(source.as_mut(), args, &mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(1, e),
            };
        }
        Some(Subcommands::Record(args)) => {
            return match commands::record(source.as_mut(), args.output.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(1, e),
            };
        }
        None => {}
    }

    if cli.check_config {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    serve(config, source)
}

/// The listening sockets: the ones systemd passes with --web.systemd-socket, else one per
/// --web.listen-address, bound here. Non-blocking, for tokio. Call before the runtime
/// starts: socket activation reads and clears LISTEN_* while the process is single-threaded.
fn listeners(config: &Config) -> Result<Vec<std::net::TcpListener>, String> {
    let listeners = if config.systemd_socket {
        libproc_exporter::host::systemd::listeners()
            .map_err(|e| format!("--web.systemd-socket: {e}"))?
    } else {
        let mut bound = Vec::new();
        for listen in &config.listen {
            bound.push(listen.bind().map_err(|e| e.to_string())?);
        }
        bound
    };
    for listener in &listeners {
        listener.set_nonblocking(true).map_err(|e| format!("listening socket: {e}"))?;
    }
    Ok(listeners)
}

fn serve(config: Config, source: Box<dyn table::Source>) -> ExitCode {
    let listeners = match listeners(&config) {
        Ok(listeners) => listeners,
        Err(e) => return fail(1, e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, format!("starting the async runtime: {e}")),
    };
    let exporter =
        Arc::new(Exporter::new(source, config.build_collectors(), config.exporter_metrics));
    let code = runtime.block_on(async move {
        // Signals first: the start-up line tells supervisors and tests the exporter is up,
        // and a SIGTERM or SIGHUP right after it must be handled, not take the default action.
        let (shutdown, reload) = (shutdown_signal(), reload_on_sighup());
        let mut tokio_listeners = Vec::new();
        let mut addresses = Vec::new();
        for listener in listeners {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => {
                    addresses.push(l.local_addr().map(|a| a.to_string()).unwrap_or_default());
                    tokio_listeners.push(l);
                }
                Err(e) => return fail(1, format!("--web.listen-address: {e}")),
            }
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
        let open_files = libproc_exporter::host::raise_open_files_limit();
        log::debug("descriptor limit", &[("open_files", &open_files.unwrap_or(0).to_string())]);
        if libproc_exporter::host::euid() == 0 {
            log::warn(
                "running as root: not needed for any count; a dedicated user sees the same counts (see README, Privileges)",
                &[],
            );
        }
        match server::run(tokio_listeners, exporter, config.server.clone(), shutdown, reload)
            .await
        {
            Ok(()) => {
                log::info("stopped", &[]);
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, e),
        }
    });
    // Not a plain drop, which would wait for every blocking task: a table read stuck in a
    // hung /proc must not keep the process alive after "stopped".
    runtime.shutdown_background();
    code
}

/// A message per SIGHUP, for the server to re-read `--web.config.file`. SIGHUP's default
/// action would end the process, so it is caught even without a web config file.
fn reload_on_sighup() -> tokio::sync::mpsc::Receiver<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    log::info("received SIGHUP, re-reading the web config", &[]);
                    // One pending reload is enough: a burst of SIGHUPs reads the file once more.
                    let _ = tx.try_send(());
                }
            });
        }
        Err(e) => {
            log::error("cannot catch SIGHUP; it will stop the exporter", &[("err", &e.to_string())])
        }
    }
    rx
}

/// Completes on SIGTERM (what launchd and systemd send) or SIGINT.
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that arrives right after the start-up line must already be caught.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            log::error("cannot install signal handlers; stop with SIGKILL", &[]);
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => log::info("received SIGTERM, shutting down", &[]),
            _ = int.recv() => log::info("received SIGINT, shutting down", &[]),
        }
    }
}
