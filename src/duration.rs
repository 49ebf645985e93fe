//! Durations written the way Prometheus writes them, for flags and the web config alike: a
//! leaf, so `config` and `server` both use it without importing each other.

use std::time::Duration;

/// Parses a duration the way Prometheus writes them: a number and a unit (`ms`, `s`, `m`,
/// `h`), e.g. `10s`, `1.5s`, `500ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}
