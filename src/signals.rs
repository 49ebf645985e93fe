//! The signals a supervisor sends: SIGTERM and SIGINT stop the server gracefully, SIGHUP
//! re-reads the web config (mini-redis keeps shutdown in a file of its own likewise).
//!
//! Both are installed when called, not when first polled: a signal that arrives right after
//! the start-up line must already be caught, not take its default action.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::log;

/// A message per SIGHUP, for the server to re-read `--web.config.file`. SIGHUP's default
/// action would end the process, so it is caught even without a web config file. Call
/// inside the runtime.
pub fn reload_on_sighup() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
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

/// Completes on SIGTERM (what launchd and systemd send) or SIGINT. Call inside the runtime.
pub fn shutdown() -> impl Future<Output = ()> {
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
