//! Terminal devices: which `/dev` entries can be a controlling terminal, in which order the
//! macOS reader asks `PROC_TTY_ONLY` about them, and what each device number is called.
//!
//! On macOS a process's controlling terminal is any character device its session leader
//! opened without `O_NOCTTY` (xnu `bsd/kern/tty.c`, `ttyopen` -> `tty_set_controlling`,
//! reference §2.1 notes on TTY): a Terminal.app or ssh pty (`ttys000`), the console, a
//! legacy BSD pty (`ttyp0`..`ttywf`, created at boot by `pty_init` in `bsd/kern/tty_pty.c`),
//! a serial port's dial-in side (`tty.usbserial-1410`) or its call-out side
//! (`cu.usbserial-1410`), which daemons talking to modems and boards open. `ps` prints the
//! `/dev` name (adv_cmds `ps/print.c` `longtname`, through `devname`, reference §5), so the
//! label is that name.

use std::collections::HashMap;
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

fn dev_major(dev: u32) -> u32 {
    (dev >> 8) & 0xfff
}

fn dev_minor(dev: u32) -> u32 {
    (dev & 0xff) | ((dev >> 12) & 0xfff00)
}

/// Names the Linux terminals whose numbers are fixed by the kernel
/// (`Documentation/admin-guide/devices.txt`): Unix98 ptys (majors 136-143, `pts/N`),
/// virtual consoles (`ttyN`), 8250 serial ports (`ttySN`) and the console.
///
/// Two numbers can give one name: the kernel's `new_encode_dev` packs pts 300 as 136:300,
/// while the legacy encoding gives 137:44. Counting is per name, so both land in one series.
pub fn linux_name(dev: u32) -> Option<String> {
    let (major, minor) = (dev_major(dev), dev_minor(dev));
    match major {
        136..=143 => Some(format!("pts/{}", (major - 136) * 256 + minor)),
        4 if minor < 64 => Some(format!("tty{minor}")),
        4 => Some(format!("ttyS{}", minor - 64)),
        5 if minor == 1 => Some("console".to_string()),
        _ => None,
    }
}

/// Names Linux terminal devices for one scrape after another.
///
/// Most numbers name themselves ([`linux_name`]). The rest (a USB serial adapter, a
/// terminal of a driver with a dynamic major) are looked up in `/dev`: one scan per scrape
/// at most, however many unknown devices the table holds, and the cache keeps only the
/// devices of the last scrape, so it cannot grow past the size of one table.
#[derive(Debug)]
pub struct LinuxNamer {
    dev_dir: std::path::PathBuf,
    cache: HashMap<u32, String>,
    scans: u64,
}

impl LinuxNamer {
    /// A namer looking up unknown devices in `dev_dir` (usually `/dev`).
    pub fn new(dev_dir: &Path) -> LinuxNamer {
        LinuxNamer { dev_dir: dev_dir.to_path_buf(), cache: HashMap::new(), scans: 0 }
    }

    /// The terminals `devs` (sorted, without duplicates) with their names.
    pub fn name_all(&mut self, devs: &[u32]) -> Vec<Tty> {
        let mut scanned: Option<HashMap<u32, String>> = None;
        let mut cache = HashMap::new();
        let mut ttys = Vec::with_capacity(devs.len());
        for &dev in devs {
            let name = match linux_name(dev) {
                Some(name) => name,
                None => {
                    let name = match self.cache.remove(&dev) {
                        Some(name) => name,
                        None => {
                            let found = scanned.get_or_insert_with(|| {
                                self.scans += 1;
                                scan(&self.dev_dir)
                                    .map(|ttys| ttys.into_iter().map(|t| (t.dev, t.name)).collect())
                                    .unwrap_or_default()
                            });
                            found
                                .remove(&dev)
                                .unwrap_or_else(|| format!("{}:{}", dev_major(dev), dev_minor(dev)))
                        }
                    };
                    cache.insert(dev, name.clone());
                    name
                }
            };
            ttys.push(Tty { dev, name });
        }
        self.cache = cache;
        ttys
    }

    /// How many times `/dev` was scanned (tests count them).
    pub fn scans(&self) -> u64 {
        self.scans
    }

    /// Devices whose names are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
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

    #[test]
    fn linux_names_of_fixed_numbers() {
        assert_eq!(linux_name((136 << 8) | 3).as_deref(), Some("pts/3"));
        // new_encode_dev of pts 300: minor 300 = 0x12c, low byte 0x2c, high bits at 20.
        assert_eq!(linux_name((136 << 8) | 0x2c | (1 << 20)).as_deref(), Some("pts/300"));
        assert_eq!(linux_name((137 << 8) | 44).as_deref(), Some("pts/300"));
        assert_eq!(linux_name((4 << 8) | 1).as_deref(), Some("tty1"));
        assert_eq!(linux_name((4 << 8) | 64).as_deref(), Some("ttyS0"));
        assert_eq!(linux_name((5 << 8) | 1).as_deref(), Some("console"));
        assert_eq!(linux_name((204 << 8) | 64), None);
    }

    #[test]
    fn fifty_thousand_unknown_devices_cost_one_scan_and_the_cache_forgets_them() {
        let dir = std::env::temp_dir().join(format!("libproc-namer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut namer = LinuxNamer::new(&dir);
        // Major 204 (low-density serial) has no fixed name: every device is unknown.
        let devs: Vec<u32> =
            (0..50_000u32).map(|i| (204 << 8) | (i & 0xff) | ((i >> 8) << 20)).collect();
        let mut sorted = devs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let ttys = namer.name_all(&sorted);
        assert_eq!(namer.scans(), 1, "one /dev scan for the whole scrape");
        assert_eq!(ttys.len(), sorted.len());
        assert_eq!(ttys[0].name, "204:0");
        assert_eq!(namer.cached(), sorted.len());

        // The next scrape has three of them: known names, no scan, and the cache shrinks.
        let next = &sorted[..3];
        namer.name_all(next);
        assert_eq!(namer.scans(), 1, "cached names need no scan");
        assert_eq!(namer.cached(), 3);
        // Fixed numbers never scan and are not cached.
        namer.name_all(&[(136 << 8) | 1]);
        assert_eq!((namer.scans(), namer.cached()), (1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
