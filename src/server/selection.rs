//! Which collectors a scrape asks for: `collect[]` and `exclude[]` in its query string,
//! decoded and checked against the collectors the exporter runs.

use crate::metrics::Exporter;

/// Which collectors a scrape asks for, as node_exporter takes them: `collect[]=NAME`
/// (repeatable) for only those, `exclude[]=NAME` for all but those; the exporter's own
/// metrics are always answered.
pub(super) enum Selection {
    All,
    Only(Vec<String>),
    AllBut(Vec<String>),
}

impl Selection {
    /// The selection in a query string, checked against the collectors `exporter` runs: an
    /// unknown or disabled name, or both parameters at once, is an error naming it.
    pub(super) fn of(query: Option<&str>, exporter: &Exporter) -> Result<Selection, String> {
        let (mut collect, mut exclude) = (Vec::new(), Vec::new());
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key).as_str() {
                "collect[]" => collect.push(percent_decode(value)),
                "exclude[]" => exclude.push(percent_decode(value)),
                // Other parameters are not ours to refuse (node_exporter ignores them too).
                _ => {}
            }
        }
        if !collect.is_empty() && !exclude.is_empty() {
            return Err("collect[] and exclude[] cannot be used together\n".into());
        }
        for name in collect.iter().chain(&exclude) {
            if !exporter.collector_names().any(|enabled| enabled == name) {
                return Err(match crate::collect::find(name) {
                    Some(_) => format!("collector {name:?} is not enabled (--collector.{name})\n"),
                    None => format!("unknown collector {name:?} in collect[] or exclude[]\n"),
                });
            }
        }
        Ok(match (collect.is_empty(), exclude.is_empty()) {
            (true, true) => Selection::All,
            (false, _) => Selection::Only(collect),
            (_, false) => Selection::AllBut(exclude),
        })
    }

    pub(super) fn keeps(&self, collector: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(names) => names.iter().any(|n| n == collector),
            Selection::AllBut(names) => !names.iter().any(|n| n == collector),
        }
    }
}

/// A query-string component decoded as `application/x-www-form-urlencoded` is (what the
/// `url` crate's `form_urlencoded` does): `+` is a space, `%XX` escapes are decoded by the
/// `percent-encoding` crate, and a malformed escape is kept as written (it then names no
/// collector, which is reported).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(percent_decode("collect%5B%5D"), "collect[]");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
    }
}
