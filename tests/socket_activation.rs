//! `--web.systemd-socket`: the exporter serves on a listening socket passed the way systemd
//! passes it (descriptor 3, `LISTEN_FDS=1`, `LISTEN_PID` = the exporter's pid), and refuses
//! with one line when started without one.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::common::{Exporter, exporter_bin};

#[test]
fn serves_on_the_socket_systemd_passes() {
    // Bound here, as systemd binds it for a .socket unit; the exporter never binds.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    // sh sets LISTEN_PID to its own pid, which exec keeps for the exporter (as
    // systemd-socket-activate does); the socket goes to descriptor 3 in between.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#)
        .arg(exporter_bin())
        .arg("--web.systemd-socket");
    // SAFETY: dup2 and fcntl are async-signal-safe and only change the child's descriptor
    // table. Close-on-exec is cleared on 3 explicitly: when the listener already is 3, dup2
    // does nothing and would leave it set.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // start_command also passes --web.listen-address=127.0.0.1:0, which the flag overrides.
    let exporter = Exporter::start_command(command);
    assert_eq!(exporter.addr, addr, "it serves where systemd's socket listens, and only there");
    assert!(exporter.scrape().contains("libproc_build_info"));
    assert!(
        !exporter.stderr.lock().unwrap().contains("listen=127.0.0.1:0"),
        "--web.listen-address ignored under --web.systemd-socket"
    );
}

#[test]
fn without_systemds_variables_the_flag_fails_with_one_line() {
    let out = Command::new(exporter_bin())
        .arg("--web.systemd-socket")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--web.systemd-socket: LISTEN_FDS and LISTEN_PID are not set"),
        "{stderr}"
    );
    // Variables meant for another process (inherited) are not taken.
    let out = Command::new(exporter_bin())
        .arg("--web.systemd-socket")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LISTEN_PID=1 is not this process"));
}
