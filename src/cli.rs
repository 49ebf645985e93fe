//! The command line as clap parses it: raw values, checked for shape only. [`crate::config`]
//! turns them into a [`Config`](crate::config::Config) that can only exist valid.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, Parser, Subcommand};

use crate::collect;
use crate::log;
use crate::table::SourceKind;

/// libproc_exporter: Prometheus metrics of the process table (macOS `__proc_info`, Linux /proc).
#[derive(Debug, Parser)]
#[command(name = "libproc_exporter", version = crate::metrics::LONG_VERSION, about, long_about = None)]
pub struct Cli {
    /// Address to listen on, HOST:PORT or :PORT for every interface (repeatable).
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = ":10077")]
    pub listen_address: Vec<String>,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics")]
    pub telemetry_path: String,

    /// Most scrapes answered at once; more get 503 (0 = no limit).
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40)]
    pub max_requests: usize,

    /// Serve on the listening sockets systemd passes (socket activation, `LISTEN_FDS`)
    /// instead of --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,

    /// Most connections held open at once; at the cap new ones wait in the listen backlog
    /// (0 = no limit). Lowered at start to leave 64 descriptors for the table read.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 256)]
    pub max_connections: usize,

    /// Web config (exporter-toolkit format): TLS, basic auth, response headers.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Time a client gets for the TLS handshake and then for each request's headers, e.g.
    /// 10s or 500ms; slower clients are disconnected.
    #[arg(long = "web.header-read-timeout", value_name = "DURATION", default_value = "10s")]
    pub header_read_timeout: String,

    /// Leave out the exporter's own process_* metrics.
    #[arg(long = "web.disable-exporter-metrics")]
    pub disable_exporter_metrics: bool,

    /// Which collectors run (--collector.NAME / --no-collector.NAME).
    #[command(flatten)]
    pub collectors: CollectorFlags,

    /// Where the process table comes from.
    #[arg(long = "source", value_name = "SOURCE", value_enum, default_value_t = SourceKind::Auto, global = true)]
    pub source: SourceKind,

    /// Snapshot file served by --source=replay.
    #[arg(long = "source.replay-file", value_name = "FILE", global = true)]
    pub replay_file: Option<PathBuf>,

    /// procfs mount point (Linux).
    #[arg(long = "path.procfs", value_name = "PATH", default_value = "/proc", global = true)]
    pub procfs: PathBuf,

    /// Log level.
    #[arg(long = "log.level", value_name = "LEVEL", value_enum, default_value_t = log::Level::Info, global = true)]
    pub log_level: log::Level,

    /// Log format.
    #[arg(long = "log.format", value_name = "FORMAT", value_enum, default_value_t = log::Format::Logfmt, global = true)]
    pub log_format: log::Format,

    /// Validate flags and files, print "configuration ok" and exit without serving.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Subcommands>,
}

/// Subcommands; without one the exporter serves.
#[derive(Debug, Subcommand)]
pub enum Subcommands {
    /// List pids by a PROC_* filter, like the Python libproc package's listpids tool.
    Listpids(ListpidsArgs),
    /// Write the current process table as a snapshot file (for --source=replay).
    Record(RecordArgs),
}

/// `listpids` flags.
#[derive(Debug, Args)]
pub struct ListpidsArgs {
    /// Which processes.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// A ps-like table instead of bare pids.
    #[arg(short = 'l', long = "long")]
    pub long: bool,
}

/// At most one `PROC_*` filter; none means `--all`.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct FilterArgs {
    /// Every process (PROC_ALL_PIDS).
    #[arg(long)]
    pub all: bool,
    /// Processes with this effective uid or user name (PROC_UID_ONLY).
    #[arg(long, value_name = "USER")]
    pub uid: Option<String>,
    /// Processes with this real uid or user name (PROC_RUID_ONLY).
    #[arg(long, value_name = "USER")]
    pub ruid: Option<String>,
    /// Children of this pid (PROC_PPID_ONLY).
    #[arg(long, value_name = "PID", allow_hyphen_values = true)]
    pub ppid: Option<String>,
    /// Members of this process group (PROC_PGRP_ONLY).
    #[arg(long, value_name = "PGID", allow_hyphen_values = true)]
    pub pgrp: Option<String>,
    /// Processes on this controlling terminal, by name or path (PROC_TTY_ONLY).
    #[arg(long, value_name = "TTY")]
    pub tty: Option<String>,
}

/// `record` flags.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Write here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `--collector.NAME` / `--no-collector.NAME`, `--collector.disable-defaults` and every
/// collector's own `--collector.NAME.FLAG`, generated from [`collect::ALL`]: a collector gets
/// its flags by declaring them in its own file.
#[derive(Clone, Debug, Default)]
pub struct CollectorFlags {
    /// Each collector as given, in [`collect::ALL`] order.
    pub collectors: Vec<CollectorChoice>,
}

/// One collector as the command line gives it: whether it runs, and its settings' values
/// (every setting present: clap fills in the default the declaration gives), not yet checked.
#[derive(Clone, Debug)]
pub struct CollectorChoice {
    /// The collector.
    pub definition: &'static collect::Definition,
    /// Whether it runs.
    pub enabled: bool,
    /// Its settings' values.
    pub settings: collect::Settings,
}

const DISABLE_DEFAULTS: &str = "collector.disable-defaults";

/// A duration flag's value in whole seconds (`90s`, `2m`, `1h`).
fn parse_seconds(text: &str) -> Result<u64, String> {
    crate::duration::parse_duration(text)
        .map(|d| d.as_secs())
        .ok_or_else(|| "expected a duration such as 90s, 30m or 1h".to_string())
}

/// Whole seconds the way a person writes them: `1h`, `30m`, `90s`.
fn seconds_text(seconds: u64) -> String {
    match seconds {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A flag id clap can keep: clap wants `'static` names, made once per process.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// The generated flag ids: (`collector.NAME`, `no-collector.NAME`, the settings' ids, the
/// list settings' ids).
type FlagIds = (&'static str, &'static str, Vec<&'static str>, Vec<&'static str>);

fn flag_ids() -> &'static [FlagIds] {
    static IDS: OnceLock<Vec<FlagIds>> = OnceLock::new();
    IDS.get_or_init(|| {
        collect::ALL
            .iter()
            .map(|d| {
                let id = |flag: &str| leak(format!("collector.{}.{flag}", d.name));
                (
                    leak(format!("collector.{}", d.name)),
                    leak(format!("no-collector.{}", d.name)),
                    d.settings.iter().map(|s| id(s.flag)).collect(),
                    d.lists.iter().map(|l| id(l.flag)).collect(),
                )
            })
            .collect()
    })
}

impl FromArgMatches for CollectorFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = CollectorFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        // node_exporter's meaning: only the collectors named with --collector.NAME run.
        let defaults = !matches.get_flag(DISABLE_DEFAULTS);
        self.collectors.clear();
        for (definition, (on, off, settings, lists)) in collect::ALL.iter().zip(flag_ids()) {
            // The two flags override each other, so the last one given wins.
            let enabled = if matches.get_flag(on) {
                true
            } else if matches.get_flag(off) {
                false
            } else {
                defaults && definition.default_enabled
            };
            let mut values = collect::Settings::default();
            for (setting, id) in definition.settings.iter().zip(settings) {
                // Every setting but a switch has clap's default value, the one its
                // declaration gives; a switch is 1 when given.
                if setting.unit == collect::Unit::Switch {
                    values = values.with(setting, u64::from(matches.get_flag(id)));
                } else if let Some(&value) = matches.get_one::<u64>(id) {
                    values = values.with(setting, value);
                }
            }
            for (list, id) in definition.lists.iter().zip(lists) {
                let given = matches.get_many::<String>(id).into_iter().flatten();
                values = values.with_list(list, given.cloned().collect());
            }
            self.collectors.push(CollectorChoice { definition, enabled, settings: values });
        }
        // A borrowed list is given once, on its owner's flag: copy the owner's values.
        let given: Vec<_> = self
            .collectors
            .iter()
            .flat_map(|c| c.settings.lists().map(|(list, v)| (list, v.to_vec())))
            .collect();
        for choice in &mut self.collectors {
            for &borrowed in choice.definition.borrows {
                if let Some((_, v)) = given.iter().find(|(list, _)| std::ptr::eq(*list, borrowed)) {
                    choice.settings = choice.settings.clone().with_list(borrowed, v.clone());
                }
            }
        }
        Ok(())
    }
}

impl Args for CollectorFlags {
    fn augment_args(mut cmd: Command) -> Command {
        cmd = cmd.arg(
            Arg::new(DISABLE_DEFAULTS)
                .long(DISABLE_DEFAULTS)
                .action(ArgAction::SetTrue)
                .help("Run only the collectors enabled with --collector.NAME"),
        );
        for (definition, (on, off, settings, lists)) in collect::ALL.iter().zip(flag_ids()) {
            let default = if definition.default_enabled { "on" } else { "off" };
            cmd = cmd
                .arg(Arg::new(*on).long(*on).action(ArgAction::SetTrue).overrides_with(*off).help(
                    format!(
                        "Enable the {} collector: {} [default: {default}]",
                        definition.name, definition.help
                    ),
                ))
                .arg(
                    Arg::new(*off)
                        .long(*off)
                        .action(ArgAction::SetTrue)
                        .overrides_with(*on)
                        .help(format!("Disable the {} collector", definition.name)),
                );
            for (setting, id) in definition.settings.iter().zip(settings) {
                let arg = Arg::new(*id).long(*id).help(setting.help);
                cmd = cmd.arg(match setting.unit {
                    collect::Unit::Count => arg
                        .value_name("N")
                        .value_parser(clap::value_parser!(u64))
                        .default_value(leak(setting.default.to_string())),
                    collect::Unit::Seconds => arg
                        .value_name("DURATION")
                        .value_parser(parse_seconds)
                        .default_value(leak(seconds_text(setting.default))),
                    collect::Unit::Switch => arg.action(ArgAction::SetTrue),
                });
            }
            for (list, id) in definition.lists.iter().zip(lists) {
                cmd = cmd.arg(
                    Arg::new(*id)
                        .long(*id)
                        .value_name("NAME,...")
                        .action(ArgAction::Append)
                        .value_delimiter(',')
                        .help(list.help),
                );
            }
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
