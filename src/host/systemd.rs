//! systemd socket activation (`--web.systemd-socket`): the listening sockets systemd opened
//! for a `.socket` unit, passed as descriptors 3, 4, ... with `LISTEN_FDS` saying how many and
//! `LISTEN_PID` naming the process they are for (sd_listen_fds(3)). Plain POSIX descriptors
//! and environment variables, so it builds everywhere; only systemd sets them.

use std::fmt;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Why no sockets could be taken from systemd.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketActivationError {
    /// `LISTEN_FDS` or `LISTEN_PID` is unset: not started by a `.socket` unit.
    NotActivated,
    /// `LISTEN_PID` names another process (the variables were inherited, not meant for us).
    OtherProcess(String),
    /// A variable is not a number, or `LISTEN_FDS` is 0.
    Malformed(&'static str, String),
    /// Descriptor `fd` is not a listening TCP socket.
    NotTcpListener(RawFd),
}

impl fmt::Display for SocketActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketActivationError::NotActivated => {
                f.write_str("LISTEN_FDS and LISTEN_PID are not set: start the exporter from a .socket unit (deploy/systemd/libproc_exporter.socket)")
            }
            SocketActivationError::OtherProcess(pid) => {
                write!(f, "LISTEN_PID={pid} is not this process ({})", std::process::id())
            }
            SocketActivationError::Malformed(name, value) => write!(f, "{name}={value:?} is not a positive number"),
            SocketActivationError::NotTcpListener(fd) => {
                write!(f, "descriptor {fd} from systemd is not a listening TCP socket (ListenStream= wants an address)")
            }
        }
    }
}

impl std::error::Error for SocketActivationError {}

/// Takes the listening sockets systemd passed this process, and unsets `LISTEN_FDS`,
/// `LISTEN_PID` and `LISTEN_FDNAMES` so that no child inherits them. Call it while the
/// process has one thread (main does, before starting the runtime): it changes the
/// environment.
pub fn listeners() -> Result<Vec<TcpListener>, SocketActivationError> {
    let (Ok(pid), Ok(fds)) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS")) else {
        return Err(SocketActivationError::NotActivated);
    };
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: single-threaded at this point (see the function's callers), so no other
        // thread reads the environment meanwhile.
        unsafe { std::env::remove_var(name) };
    }
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Err(SocketActivationError::OtherProcess(pid));
    }
    let count = fds
        .parse::<RawFd>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(SocketActivationError::Malformed("LISTEN_FDS", fds))?;
    (LISTEN_FDS_START..LISTEN_FDS_START + count).map(take_listener).collect()
}

fn take_listener(fd: RawFd) -> Result<TcpListener, SocketActivationError> {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: kind and len are live and len holds kind's size; getsockopt writes at most that.
    let rc = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&raw mut kind).cast(), &mut len)
    };
    if rc != 0 || kind != libc::SOCK_STREAM {
        return Err(SocketActivationError::NotTcpListener(fd));
    }
    // SAFETY: systemd handed this descriptor to us alone (LISTEN_PID is our pid) and nothing
    // else in the process owns it; from here the listener does.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    if listener.local_addr().is_err() {
        return Err(SocketActivationError::NotTcpListener(fd));
    }
    // Not inherited by anything we might run.
    // SAFETY: fd is open (we own it now); F_SETFD only changes its flags.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(listener)
}
