//! A small structured logger: levels, and `logfmt` or `json` lines on stderr, as the
//! Prometheus exporters write them (`ts=... level=info msg="..." key=value`).

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// Severity, least to most (`--log.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    /// Details for debugging.
    Debug = 0,
    /// Normal operation.
    Info = 1,
    /// Something an operator should look at.
    Warn = 2,
    /// Something failed.
    Error = 3,
}

impl Level {
    fn as_str(self) -> &'static str {
        ["debug", "info", "warn", "error"][self as usize]
    }
}

/// `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `key=value` pairs.
    Logfmt,
    /// One JSON object per line.
    Json,
}

impl Format {}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets the level and format for the rest of the process.
pub fn init(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    FORMAT.store(u8::from(format == Format::Json), Ordering::Relaxed);
}

/// Logs at debug.
pub fn debug(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Debug, msg, fields)
}
/// Logs at info.
pub fn info(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Info, msg, fields)
}
/// Logs at warn.
pub fn warn(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Warn, msg, fields)
}
/// Logs at error.
pub fn error(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Error, msg, fields)
}

/// Writes one line if `level` is enabled.
pub fn log(level: Level, msg: &str, fields: &[(&str, &str)]) {
    if (level as u8) < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let line = format_line(FORMAT.load(Ordering::Relaxed) == 1, &timestamp(), level, msg, fields);
    // A closed stderr must not take the exporter down.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn format_line(json: bool, ts: &str, level: Level, msg: &str, fields: &[(&str, &str)]) -> String {
    let mut pairs = vec![("ts", ts), ("level", level.as_str()), ("msg", msg)];
    pairs.extend_from_slice(fields);
    let mut line = String::with_capacity(128);
    if json {
        line.push('{');
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&serde_json::to_string(k).unwrap_or_default());
            line.push(':');
            line.push_str(&serde_json::to_string(v).unwrap_or_default());
        }
        line.push('}');
    } else {
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(k);
            line.push('=');
            if v.is_empty() || v.chars().any(|c| c == ' ' || c == '"' || c == '=' || c.is_control())
            {
                line.push_str(&format!("{v:?}"));
            } else {
                line.push_str(v);
            }
        }
    }
    line.push('\n');
    line
}

/// RFC 3339 UTC with milliseconds, from the system clock.
fn timestamp() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::civil_date::civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_values_with_spaces() {
        let line = format_line(
            false,
            "T",
            Level::Warn,
            "collector failed",
            &[("collector", "uid"), ("err", "a b")],
        );
        assert_eq!(line, "ts=T level=warn msg=\"collector failed\" collector=uid err=\"a b\"\n");
    }

    #[test]
    fn json_lines_are_objects() {
        let line = format_line(true, "T", Level::Info, "hi \"x\"", &[("k", "v")]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["msg"], "hi \"x\"");
        assert_eq!(v["level"], "info");
    }

    #[test]
    fn timestamp_is_rfc3339() {
        let ts = timestamp();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.starts_with("20") && ts.ends_with('Z'), "{ts}");
    }
}
