//! Terminal devices: which `/dev` entries can be a controlling terminal, and in which order
//! the macOS reader asks `PROC_TTY_ONLY` about them. (Linux's own names for its fixed device
//! numbers are the binding's: `procfs::tty`.)
//!
//! On macOS a process's controlling terminal is any character device its session leader
//! opened without `O_NOCTTY` (xnu `bsd/kern/tty.c`, `ttyopen` -> `tty_set_controlling`,
//! reference §2.1 notes on TTY): a Terminal.app or ssh pty (`ttys000`), the console, a
//! legacy BSD pty (`ttyp0`..`ttywf`, created at boot by `pty_init` in `bsd/kern/tty_pty.c`),
//! a serial port's dial-in side (`tty.usbserial-1410`) or its call-out side
//! (`cu.usbserial-1410`), which daemons talking to modems and boards open. `ps` prints the
//! `/dev` name (adv_cmds `ps/print.c` `longtname`, through `devname`, reference §5), so the
//! label is that name.

use std::path::Path;

/// A terminal device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tty {
    /// Device number (`st_rdev`, 32 bits).
    pub dev: u32,
    /// Name below /dev (`ttys003`, `cu.usbserial-1410`, `pts/3`).
    pub name: String,
}

/// Whether a `/dev` entry of this name can be a controlling terminal: `console`, `tty*`
/// except `tty` itself (the per-process alias for one's own terminal, never a session's
/// device) and the call-out devices `cu.*`.
pub fn is_terminal_name(name: &str) -> bool {
    name == "console" || (name.starts_with("tty") && name != "tty") || name.starts_with("cu.")
}

/// The terminal devices in `dir` (usually `/dev`), in [`scan_order`].
///
/// Character devices only, symbolic links not followed (ps would not print their name
/// either). Two names for one device number (a hard link) are one terminal: the first name
/// in byte order is kept, so the label does not change between scrapes.
pub fn scan(dir: &Path) -> std::io::Result<Vec<Tty>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut ttys = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_terminal_name(name) {
            continue;
        }
        // A device removed mid-scan (a pty closing) is simply not listed.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if meta.file_type().is_char_device() {
            ttys.push(Tty { dev: meta.rdev() as u32, name: name.to_string() });
        }
    }
    Ok(scan_order(ttys))
}

/// Drops all but the first name (in byte order) of each device number, then orders the
/// devices most-likely-first for the `PROC_TTY_ONLY` scan: the ptmx ptys `ttysNNN` (every
/// Terminal, iTerm and ssh session), then `console`, then the rest (legacy ptys, serial ports), each group
/// by name.
pub fn scan_order(mut ttys: Vec<Tty>) -> Vec<Tty> {
    ttys.sort_unstable_by(|a, b| a.dev.cmp(&b.dev).then_with(|| a.name.cmp(&b.name)));
    ttys.dedup_by_key(|t| t.dev);
    ttys.sort_by_cached_key(|t| (likelihood_rank(&t.name), t.name.clone()));
    ttys
}

fn likelihood_rank(name: &str) -> u8 {
    // ptmx ptys are `ttys` and at least three digits (`PTSD_TEMPLATE "ttys%03d"`, xnu
    // `bsd/kern/tty_ptmx.c`); the legacy `ttys0`..`ttysf` are BSD ptys of the `s` row, rarely used.
    let ptmx = name
        .strip_prefix("ttys")
        .is_some_and(|n| n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit()));
    if ptmx {
        0
    } else if name == "console" {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tty(dev: u32, name: &str) -> Tty {
        Tty { dev, name: name.to_string() }
    }

    #[test]
    fn terminal_names_include_call_out_devices_and_exclude_the_alias() {
        for name in ["console", "ttys000", "ttyp0", "tty.usbserial-1410", "cu.usbserial-1410"] {
            assert!(is_terminal_name(name), "{name}");
        }
        for name in ["tty", "null", "ptyp0", "cuaa", "ptmx", "disk0"] {
            assert!(!is_terminal_name(name), "{name}");
        }
    }

    #[test]
    fn scan_order_puts_ptys_first_then_console_then_the_rest() {
        let order = scan_order(vec![
            tty(0x0400_0000, "ttyp0"),
            tty(0x0400_0030, "ttys0"),
            tty(0x0900_0001, "cu.Bluetooth-Incoming-Port"),
            tty(0, "console"),
            tty(0x1000_0001, "ttys001"),
            tty(0x1000_0000, "ttys000"),
            tty(0x0900_0000, "tty.Bluetooth-Incoming-Port"),
        ]);
        let names: Vec<&str> = order.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ttys000",
                "ttys001",
                "console",
                "cu.Bluetooth-Incoming-Port",
                "tty.Bluetooth-Incoming-Port",
                "ttyp0",
                "ttys0"
            ]
        );
    }

    #[test]
    fn one_device_under_two_names_is_one_terminal_named_stably() {
        let a = scan_order(vec![tty(7, "ttyz"), tty(7, "ttya"), tty(8, "console")]);
        let b = scan_order(vec![tty(7, "ttya"), tty(8, "console"), tty(7, "ttyz")]);
        assert_eq!(a, b);
        assert_eq!(a, [tty(8, "console"), tty(7, "ttya")]);
    }
}
