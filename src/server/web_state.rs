//! The web config file in force: loaded into what serving uses (TLS, basic auth, the rate
//! limit), swapped whole when SIGHUP re-reads it, and the change logged.

use std::path::Path;
use std::sync::Arc;

use super::rate_limit::TokenBucket;
use super::web_config::{self, WebConfig, WebConfigError};
use super::{ServeError, Shared, auth, tls};
use crate::log;

/// The web config file, loaded: TLS, basic auth, response headers.
pub(super) struct WebState {
    pub(super) config: WebConfig,
    pub(super) tls: Option<tls::Reloader>,
    pub(super) auth: Option<auth::Authenticator>,
    pub(super) rate_limit: Option<TokenBucket>,
}

impl WebState {
    pub(super) fn load(config: WebConfig) -> Result<WebState, ServeError> {
        let tls = match &config.tls {
            Some(settings) => Some(tls::Reloader::new(settings.clone()).map_err(ServeError::Tls)?),
            None => None,
        };
        let auth = match &config.users {
            Some(users) => Some(auth::Authenticator::new(users).map_err(ServeError::Auth)?),
            None => None,
        };
        let rate_limit = config.rate_limit.map(TokenBucket::new);
        Ok(WebState { config, tls, auth, rate_limit })
    }

    /// What differs from `old`, for the log: users added, removed or given a new password,
    /// TLS and headers changed.
    fn changes_from(&self, old: &WebConfig) -> String {
        let empty = Default::default();
        let (before, after) =
            (old.users.as_ref().unwrap_or(&empty), self.config.users.as_ref().unwrap_or(&empty));
        let mut changes = Vec::new();
        for (user, hash) in after {
            match before.get(user) {
                None => changes.push(format!("+user {user}")),
                Some(old_hash) if old_hash != hash => changes.push(format!("~user {user}")),
                Some(_) => {}
            }
        }
        changes.extend(
            before.keys().filter(|u| !after.contains_key(*u)).map(|u| format!("-user {u}")),
        );
        if old.users.is_some() != self.config.users.is_some() {
            changes.push(format!(
                "basic auth {}",
                if self.config.users.is_some() { "on" } else { "off" }
            ));
        }
        if old.tls != self.config.tls {
            changes.push("tls_server_config".into());
        }
        if old.headers != self.config.headers {
            changes.push("headers".into());
        }
        if old.rate_limit != self.config.rate_limit {
            changes.push("rate_limit".into());
        }
        if changes.is_empty() { "none".into() } else { changes.join(",") }
    }
}

impl Shared {
    /// The web state in force.
    pub(super) fn web(&self) -> Arc<WebState> {
        self.web.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads `--web.config.file` (on SIGHUP). A file that does not load, or whose
    /// certificates or hashes are bad, is reported and the running config kept.
    pub(super) fn reload_web_config(&self) {
        let Some(path) = &self.config.web_config_file else {
            log::info("SIGHUP: no --web.config.file to re-read", &[]);
            return;
        };
        let file = path.display().to_string();
        let loaded = load_web_config(path)
            .map_err(|e| e.to_string())
            .and_then(|config| WebState::load(config).map_err(|e| e.to_string()));
        match loaded {
            Ok(state) => {
                let changes = state.changes_from(&self.web().config);
                *self.web.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
                log::info("web config reloaded", &[("file", &file), ("changes", &changes)]);
            }
            Err(e) => log::error(
                "web config not reloaded; the running one stays in force",
                &[("file", &file), ("err", &e)],
            ),
        }
    }
}

/// Reads the web config at `path`, validates it, and loads its certificates and keys once,
/// so a bad file or a key that does not match its certificate fails at start-up, not at the
/// first handshake. (Here rather than in `web_config`, which `tls` builds on: the arrow
/// between them points one way.)
pub fn load_web_config(path: &Path) -> Result<WebConfig, WebConfigError> {
    let config = web_config::read(path)?;
    if let Some(settings) = &config.tls {
        tls::build(settings)?;
    }
    Ok(config)
}
