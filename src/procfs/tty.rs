//! Linux terminal names: the device numbers the kernel fixes, named as `ps` names them, and
//! a namer that asks a `/dev` scan only for the rest.

use std::collections::HashMap;

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
/// devices of the last scrape, so it cannot grow past the size of one table. The scan is
/// the caller's (the host's `/dev`, which is not this binding's to read).
#[derive(Debug, Default)]
pub struct Namer {
    cache: HashMap<u32, String>,
    scans: u64,
}

impl Namer {
    /// A namer with nothing cached.
    pub fn new() -> Namer {
        Namer::default()
    }

    /// The terminals `devs` (sorted, without duplicates) with their names, as
    /// `(device number, name)`. `scan` lists the terminal devices of `/dev` as
    /// `(device number, name)`; it is called at most once, and only when a number is neither
    /// fixed nor cached. A number it does not list is named `major:minor`.
    pub fn name_all(
        &mut self,
        devs: &[u32],
        scan: impl FnOnce() -> Vec<(u32, String)>,
    ) -> Vec<(u32, String)> {
        let mut scan = Some(scan);
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
                                scan.take()
                                    .map(|scan| scan().into_iter().collect())
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
            ttys.push((dev, name));
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
        // An empty /dev: every unknown number is named major:minor.
        let empty_dev = Vec::new;
        let mut namer = Namer::new();
        // Major 204 (low-density serial) has no fixed name: every device is unknown.
        let devs: Vec<u32> =
            (0..50_000u32).map(|i| (204 << 8) | (i & 0xff) | ((i >> 8) << 20)).collect();
        let mut sorted = devs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let ttys = namer.name_all(&sorted, empty_dev);
        assert_eq!(namer.scans(), 1, "one /dev scan for the whole scrape");
        assert_eq!(ttys.len(), sorted.len());
        assert_eq!(ttys[0].1, "204:0");
        assert_eq!(namer.cached(), sorted.len());

        // The next scrape has three of them: known names, no scan, and the cache shrinks.
        let next = &sorted[..3];
        namer.name_all(next, empty_dev);
        assert_eq!(namer.scans(), 1, "cached names need no scan");
        assert_eq!(namer.cached(), 3);
        // Fixed numbers never scan and are not cached.
        namer.name_all(&[(136 << 8) | 1], empty_dev);
        assert_eq!((namer.scans(), namer.cached()), (1, 0));
    }

    #[test]
    fn a_number_the_scan_lists_is_named_as_in_dev() {
        let usb = 188 << 8; // ttyUSB0: major 188, minor 0
        let mut namer = Namer::new();
        let ttys = namer.name_all(&[usb], || vec![(usb, "ttyUSB0".to_string())]);
        assert_eq!(ttys, [(usb, "ttyUSB0".to_string())]);
    }
}
