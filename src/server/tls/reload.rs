//! Certificate rotation: the TLS configuration rebuilt when its files change, and the
//! handshake under a timeout.
//!
//! Before each handshake the certificate, key and client-CA files are `stat`ed;
//! when any of them changed (size, mtime, ctime or inode: a rewrite or a rename over it),
//! the configuration is rebuilt. A rebuild that fails (a certificate written before its key,
//! say) keeps the previous configuration and is retried when the files change again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::super::web_config::{Pem, TlsSettings, WebConfigError};
use super::build;
use crate::log;

/// What identifies a file's content without reading it: device, inode, size, mtime and ctime
/// (seconds and nanoseconds each: two changes a whole number of seconds apart differ in the
/// seconds only); `None` for a file that cannot be `stat`ed.
type FileStamp = Option<(u64, u64, i64, (i64, i64), (i64, i64))>;

/// The stamps of the certificate, key and client-CA files.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Vec<FileStamp>);

impl Stamp {
    fn of(settings: &TlsSettings) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        // Inline PEMs never change; only files are watched.
        let files = [Some(&settings.cert), Some(&settings.key), settings.client_ca.as_ref()]
            .map(|pem| pem.and_then(Pem::file));
        Stamp(
            files
                .into_iter()
                .flatten()
                .map(|path| {
                    std::fs::metadata(path).ok().map(|m| {
                        (
                            m.dev(),
                            m.ino(),
                            m.size() as i64,
                            (m.mtime(), m.mtime_nsec()),
                            (m.ctime(), m.ctime_nsec()),
                        )
                    })
                })
                .collect(),
        )
    }
}

struct Current {
    config: Arc<ServerConfig>,
    /// The files as they were when `config` was built.
    loaded: Stamp,
    /// The files as they were when a rebuild last failed: not retried until they change.
    failed: Option<Stamp>,
}

/// The TLS configuration in force, rebuilt when its files change.
pub struct Reloader {
    settings: TlsSettings,
    current: Mutex<Current>,
}

impl Reloader {
    /// Loads the files once; an error here is a start-up error.
    pub fn new(settings: TlsSettings) -> Result<Reloader, WebConfigError> {
        let loaded = Stamp::of(&settings);
        let config = build(&settings)?;
        Ok(Reloader { settings, current: Mutex::new(Current { config, loaded, failed: None }) })
    }

    /// An acceptor with the configuration for the next handshake, rebuilt first if the files
    /// changed. The files are small and local, so this runs inline.
    pub fn acceptor(&self) -> TlsAcceptor {
        let stamp = Stamp::of(&self.settings);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if stamp != current.loaded && current.failed.as_ref() != Some(&stamp) {
            match build(&self.settings) {
                Ok(config) => {
                    log::info(
                        "reloaded the TLS certificate",
                        &[("cert", &self.settings.cert.describe())],
                    );
                    *current = Current { config, loaded: stamp, failed: None };
                }
                Err(e) => {
                    log::error(
                        "reloading the TLS certificate failed; still serving the previous one",
                        &[("err", &e.to_string())],
                    );
                    current.failed = Some(stamp);
                }
            }
        }
        TlsAcceptor::from(current.config.clone())
    }

    /// The server side of a handshake on `io`, given up after `timeout` so a client that
    /// connects and says nothing (or too little) holds nothing for long.
    pub async fn handshake<IO>(&self, io: IO, timeout: Duration) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(timeout, self.acceptor().accept(io)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the TLS handshake did not complete in time",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::tests::settings;

    /// A client that opens the connection and never sends a ClientHello is dropped after
    /// the handshake timeout; time is paused, so the test takes no time.
    #[tokio::test(start_paused = true)]
    async fn a_silent_client_hits_the_handshake_timeout() {
        let reloader = Reloader::new(settings()).unwrap();
        let (server, _client) = tokio::io::duplex(1024);
        let started = tokio::time::Instant::now();
        let err = reloader.handshake(server, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 10);
    }
}
