//! The `libproc_exporter` binary: parse flags, set up logging, hand over to the library.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use libproc_exporter::cli::{Cli, Subcommands};
use libproc_exporter::config::Config;
use libproc_exporter::{commands, daemon, log, table};

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
    match daemon::serve(config, source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, e),
    }
}
