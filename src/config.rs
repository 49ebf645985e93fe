//! Validated configuration: what the raw [`Cli`] becomes once every value has been checked.
//! A [`Config`] can only be built valid; a bad value is one [`ConfigError`] naming the flag.

use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

use crate::cli::Cli;
use crate::collect::{self, Settings};
use crate::duration::parse_duration;
use crate::log;
use crate::server::ServerConfig;
use crate::server::web_config;
use crate::table::{SourceConfig, SourceKind};

/// A bad flag value: which flag, the value, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag, with its dashes.
    pub flag: String,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error for `flag` given `value`.
    pub fn new(flag: &str, value: impl fmt::Display, reason: impl Into<String>) -> ConfigError {
        ConfigError { flag: flag.to_string(), value: value.to_string(), reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.flag, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// One `--web.listen-address`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddr {
    /// As given.
    pub text: String,
    /// What to bind: for `:PORT`, the IPv6 wildcard (which also accepts IPv4 where the
    /// system allows dual-stack sockets), then the IPv4 wildcard as a fallback.
    pub candidates: Vec<SocketAddr>,
}

impl ListenAddr {
    /// Parses `HOST:PORT`, `[V6]:PORT` or `:PORT`.
    pub fn parse(text: &str) -> Result<ListenAddr, ConfigError> {
        let bad = |reason: &str| ConfigError::new("--web.listen-address", text, reason);
        if let Some(port) = text.strip_prefix(':') {
            let port: u16 =
                port.parse().map_err(|_| bad("the port must be a number from 0 to 65535"))?;
            let candidates =
                vec![SocketAddr::from(([0u16; 8], port)), SocketAddr::from(([0u8; 4], port))];
            return Ok(ListenAddr { text: text.to_string(), candidates });
        }
        let (_, port) = text.rsplit_once(':').ok_or_else(|| bad("expected HOST:PORT or :PORT"))?;
        port.parse::<u16>().map_err(|_| bad("the port must be a number from 0 to 65535"))?;
        let candidates: Vec<SocketAddr> = text
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve the host: {e}")))?
            .collect();
        if candidates.is_empty() {
            return Err(bad("the host resolves to no address"));
        }
        Ok(ListenAddr { text: text.to_string(), candidates: candidates[..1].to_vec() })
    }

    /// Binds the first candidate that works; the error is the first candidate's (an address
    /// in use, say), which is the one the operator asked about.
    pub fn bind(&self) -> Result<TcpListener, ConfigError> {
        let mut first_error = None;
        for addr in &self.candidates {
            match TcpListener::bind(addr) {
                Ok(listener) => return Ok(listener),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let e = first_error.map_or_else(|| "nothing to bind".to_string(), |e| e.to_string());
        Err(ConfigError::new("--web.listen-address", &self.text, e))
    }
}

/// Everything the exporter needs, validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: Vec<ListenAddr>,
    /// `--web.systemd-socket`: listen on the sockets systemd passes instead of `listen`.
    pub systemd_socket: bool,
    /// The HTTP side.
    pub server: ServerConfig,
    /// Enabled collectors with their settings, in exposition order.
    pub collectors: Vec<(&'static collect::Definition, Settings)>,
    /// Export `process_*` of the exporter itself.
    pub exporter_metrics: bool,
    /// Where the table comes from.
    pub source: SourceConfig,
    /// Log level.
    pub log_level: log::Level,
    /// Log format.
    pub log_format: log::Format,
    /// Legal but risky settings (basic auth without TLS, optional client certificates):
    /// logged once logging is set up.
    pub warnings: Vec<String>,
}

impl Config {
    /// Checks every value of `cli`.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let (log_level, log_format, kind) = (cli.log_level, cli.log_format, cli.source);
        let listen = cli
            .listen_address
            .iter()
            .map(|a| ListenAddr::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let path = &cli.telemetry_path;
        check_telemetry_path(path)?;
        check_source(kind, cli.replay_file.as_deref())?;
        let collectors = collectors(&cli.collectors)?;
        // The one setting a source needs: what the resources collector shows decides what
        // procfs reads.
        let resources = collectors
            .iter()
            .find(|(definition, _)| definition.name == collect::resources::DEFINITION.name);
        let disk_io = resources.is_some_and(|(_, s)| s.get(&collect::resources::IO) != 0);
        let usage = resources.is_some();
        let header_read_timeout = parse_duration(&cli.header_read_timeout)
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
            .ok_or_else(|| {
                ConfigError::new(
                    "--web.header-read-timeout",
                    &cli.header_read_timeout,
                    "expected a duration from 1ms to 1h such as 10s or 500ms",
                )
            })?;
        let web = match &cli.web_config_file {
            Some(path) => crate::server::load_web_config(path).map_err(|e| {
                ConfigError::new("--web.config.file", path.display(), e.to_string())
            })?,
            None => web_config::WebConfig::default(),
        };
        let warnings = web
            .warnings
            .iter()
            .map(|w| {
                format!(
                    "--web.config.file {}: {w}",
                    cli.web_config_file.as_deref().unwrap_or(std::path::Path::new("")).display()
                )
            })
            .collect();
        Ok(Config {
            listen,
            systemd_socket: cli.systemd_socket,
            server: ServerConfig {
                telemetry_path: path.clone(),
                max_requests: cli.max_requests,
                max_connections: cli.max_connections,
                web_config_file: cli.web_config_file.clone(),
                header_read_timeout,
                web,
                ..ServerConfig::default()
            },
            collectors,
            exporter_metrics: !cli.disable_exporter_metrics,
            source: SourceConfig {
                kind,
                replay_file: cli.replay_file.clone(),
                procfs: cli.procfs.clone(),
                disk_io,
                usage,
            },
            log_level,
            log_format,
            warnings,
        })
    }

    /// The collectors this configuration enables, built.
    pub fn build_collectors(&self) -> Vec<collect::Instance> {
        self.collectors.iter().map(|(definition, settings)| definition.instance(settings)).collect()
    }

    /// The names of the enabled collectors, in exposition order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|(definition, _)| definition.name).collect()
    }
}

/// The enabled collectors with their settings, every given setting checked (whether its
/// collector runs or not: a bad flag is a bad flag).
fn collectors(
    flags: &crate::cli::CollectorFlags,
) -> Result<Vec<(&'static collect::Definition, Settings)>, ConfigError> {
    let mut collectors = Vec::new();
    for choice in &flags.collectors {
        let flag = |name: &str| format!("--collector.{}.{name}", choice.definition.name);
        for (list, values) in choice.settings.lists() {
            for value in values {
                (list.check)(value)
                    .map_err(|why| ConfigError::new(&flag(list.flag), value, why))?;
            }
        }
        for (setting, value) in choice.settings.numbers() {
            if value < setting.min {
                let why = format!("must be at least {}", setting.min);
                return Err(ConfigError::new(&flag(setting.flag), value, why));
            }
        }
        if choice.enabled {
            collectors.push((choice.definition, choice.settings.clone()));
        }
    }
    Ok(collectors)
}

/// `--web.telemetry-path`: a path of its own, not the landing page.
fn check_telemetry_path(path: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') || path == "/" || path.contains(['?', '#', ' ']) {
        return Err(ConfigError::new(
            "--web.telemetry-path",
            path,
            "must be a path starting with / other than / itself (the landing page), without ? # or spaces",
        ));
    }
    Ok(())
}

/// `--source` and `--source.replay-file` go together.
fn check_source(
    kind: SourceKind,
    replay_file: Option<&std::path::Path>,
) -> Result<(), ConfigError> {
    match (kind, replay_file) {
        (SourceKind::Replay, None) => {
            Err(ConfigError::new("--source", "replay", "needs --source.replay-file"))
        }
        (SourceKind::Replay, Some(_)) | (_, None) => Ok(()),
        (_, Some(file)) => Err(ConfigError::new(
            "--source.replay-file",
            file.display(),
            "is only read with --source=replay",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli =
            Cli::try_parse_from(std::iter::once("libproc_exporter").chain(args.iter().copied()))
                .unwrap();
        Config::from_cli(&cli)
    }

    /// The collectors of `collect::ALL` that `keep` keeps, in its order.
    fn default_names(keep: impl Fn(&collect::Definition) -> bool) -> Vec<&'static str> {
        collect::ALL.iter().filter(|d| keep(d)).map(|d| d.name).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = config(&[]).unwrap();
        assert_eq!(c.collector_names(), default_names(|d| d.default_enabled));
        assert_eq!(c.listen[0].candidates[0].port(), 10077);
        assert_eq!(c.server.telemetry_path, "/metrics");
    }

    #[test]
    fn collector_flags_toggle_and_the_last_wins() {
        let c = config(&[
            "--collector.pgrp",
            "--no-collector.uid",
            "--collector.uid",
            "--no-collector.tty",
        ])
        .unwrap();
        // pgrp on, tty off, uid off then on again: the last flag wins.
        let want = default_names(|d| (d.default_enabled || d.name == "pgrp") && d.name != "tty");
        assert_eq!(c.collector_names(), want);
    }

    #[test]
    fn disable_defaults_runs_only_the_collectors_named() {
        let c = config(&["--collector.disable-defaults", "--collector.uid", "--collector.pgrp"]);
        assert_eq!(c.unwrap().collector_names(), ["uid", "pgrp"]);
        assert!(config(&["--collector.disable-defaults"]).unwrap().collectors.is_empty());
    }

    #[test]
    fn comm_names_repeat_and_split_on_commas() {
        let c = config(&["--collector.comm.names=sshd,cron", "--collector.comm.names", "launchd"]);
        let c = c.unwrap();
        let comm = c.collectors.iter().find(|(d, _)| d.name == "comm").unwrap();
        assert_eq!(comm.1.list(&collect::comm::NAMES), ["sshd", "cron", "launchd"]);
        assert_eq!(comm.1.get(&collect::comm::TOP_K), 20);
    }

    #[test]
    fn a_comm_name_longer_than_the_kernel_keeps_stops_start_up_saying_what_it_keeps() {
        let err = config(&["--collector.comm.names=sshd,com.apple.WebKit.Networking"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--collector.comm.names"), "{err}");
        assert!(err.contains("would keep \"com.apple.WebKi\""), "{err}");
    }

    #[test]
    fn a_collectors_own_flags_reach_it() {
        let c = config(&["--collector.ppid.top-k", "3", "--collector.pgrp.min-members=5"]).unwrap();
        let ppid = c.collectors.iter().find(|(d, _)| d.name == "ppid").unwrap();
        let (top_k, min_children) = (&collect::ppid::TOP_K, &collect::ppid::MIN_CHILDREN);
        assert_eq!((ppid.1.get(top_k), ppid.1.get(min_children)), (3, 5));
        // pgrp is off, but its flag is still checked and kept for when it is turned on.
        let c = config(&["--collector.pgrp", "--collector.pgrp.min-members=5"]).unwrap();
        let pgrp = c.collectors.iter().find(|(d, _)| d.name == "pgrp").unwrap();
        assert_eq!(pgrp.1.get(&collect::pgrp::MIN_MEMBERS), 5);
        let e = config(&["--collector.uid.max-series", "0"]).unwrap_err();
        assert_eq!(e.to_string(), "--collector.uid.max-series \"0\": must be at least 1");
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = config(&["--collector.ppid.top-k", "0"]).unwrap_err();
        assert_eq!(e.to_string(), "--collector.ppid.top-k \"0\": must be at least 1");
        let e = config(&["--web.listen-address", "nonsense"]).unwrap_err();
        assert_eq!(e.flag, "--web.listen-address");
        let e = config(&["--web.listen-address", ":99999"]).unwrap_err();
        assert!(e.reason.contains("port"), "{e}");
        let e = config(&["--source", "replay"]).unwrap_err();
        assert!(e.reason.contains("--source.replay-file"), "{e}");
        let e = config(&["--web.telemetry-path", "metrics"]).unwrap_err();
        assert_eq!(e.flag, "--web.telemetry-path");
    }

    #[test]
    fn value_lists_are_refused_by_the_parser_with_the_choices() {
        for (flag, value) in [("--source", "kvm"), ("--log.level", "loud"), ("--log.format", "xml")]
        {
            let e = Cli::try_parse_from(["libproc_exporter", flag, value]).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(flag) && text.contains(value), "{text}");
            assert!(text.contains("[possible values:"), "{text}");
        }
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "10", "s", "10x", "-1s", "1e9h", "..s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let e = config(&["--web.header-read-timeout", "0s"]).unwrap_err();
        assert_eq!(e.flag, "--web.header-read-timeout");
        assert_eq!(config(&[]).unwrap().server.header_read_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_bad_web_config_names_the_flag_and_the_key() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web");
        let e = config(&["--web.config.file", dir.join("tls11.bad.yml").to_str().unwrap()])
            .unwrap_err();
        assert_eq!(e.flag, "--web.config.file");
        assert!(e.reason.starts_with("tls_server_config.min_version: "), "{e}");
        let e = config(&["--web.config.file", "/nonexistent/web.yml"]).unwrap_err();
        assert!(e.reason.contains("cannot read"), "{e}");
        let c =
            config(&["--web.config.file", dir.join("users.good.yml").to_str().unwrap()]).unwrap();
        assert!(c.warnings[0].contains("clear text"), "{:?}", c.warnings);
        assert!(c.server.web.users.is_some());
    }

    #[test]
    fn ipv6_and_host_addresses_parse() {
        assert_eq!(
            ListenAddr::parse("[::1]:9100").unwrap().candidates,
            ["[::1]:9100".parse().unwrap()]
        );
        assert_eq!(
            ListenAddr::parse("127.0.0.1:0").unwrap().candidates,
            ["127.0.0.1:0".parse().unwrap()]
        );
    }
}
