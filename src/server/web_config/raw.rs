//! The web config file as written: serde types that mirror the toolkit's YAML key for key,
//! and the YAML reading with one-line errors. Nothing here judges a value; the parent module
//! validates.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::WebConfigError;

/// The file as written. Every level refuses unknown keys, like the toolkit's
/// `yaml.UnmarshalStrict`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) tls_server_config: Option<RawTls>,
    pub(super) http_server_config: Option<RawHttp>,
    pub(super) basic_auth_users: Option<BTreeMap<String, String>>,
    pub(super) rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) interval: Option<String>,
    pub(super) burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: Option<String>,
    pub(super) cert_file: Option<String>,
    pub(super) key: Option<String>,
    pub(super) key_file: Option<String>,
    pub(super) client_auth_type: Option<String>,
    pub(super) client_ca: Option<String>,
    pub(super) client_ca_file: Option<String>,
    pub(super) client_allowed_sans: Option<Vec<String>>,
    pub(super) cipher_suites: Option<Vec<String>>,
    pub(super) curve_preferences: Option<Vec<String>>,
    pub(super) min_version: Option<String>,
    pub(super) max_version: Option<String>,
    pub(super) prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) http2: Option<bool>,
    pub(super) headers: Option<BTreeMap<String, String>>,
}

pub(super) fn parse_yaml(text: &str) -> Result<RawConfig, WebConfigError> {
    // An empty file (or one of comments only) is a valid, empty config, as in the toolkit.
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(RawConfig::default());
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<Option<RawConfig>>(text, options)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            // The parser's message says what and where; the line's key names the key. Only
            // the key: the value may be a password hash.
            let message = one_line(&e.to_string())
                .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            let line = e.location().and_then(|at| {
                let text = text.lines().nth(usize::try_from(at.line()).ok()?.checked_sub(1)?)?;
                let key = text.split_once(':').map_or(text, |(key, _)| key);
                Some(key.trim().chars().take(80).collect::<String>())
            });
            match line {
                Some(line) if !line.is_empty() => {
                    WebConfigError::new("", format!("{message} (key `{line}`)"))
                }
                _ => WebConfigError::new("", message),
            }
        })
}

/// Error text on one line: the start-up error is one line naming what and where.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
