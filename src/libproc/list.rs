//! Listing pids: the NULL-buffer size probe, grow-and-retry, and the per-filter wrappers.

use std::path::{Path, PathBuf};

use super::{Error, Kernel, ListFilter, Op, PROC_CALLNUM_LISTPIDS, Pid};

/// How many fills a listing tries before it gives up on a fork storm.
const MAX_ATTEMPTS: u32 = 8;

/// A reusable pid buffer, so that a scrape lists pids without allocating once it is warm.
#[derive(Debug, Default)]
pub struct PidList {
    pids: Vec<Pid>,
    /// The number of valid pids at the front of `pids`.
    len: usize,
}

impl PidList {
    /// An empty list.
    pub fn new() -> PidList {
        PidList::default()
    }

    /// The pids of the last listing, in the kernel's order (newest first, pid 0 after the
    /// live processes, zombies last; §2.5).
    pub fn as_slice(&self) -> &[Pid] {
        &self.pids[..self.len]
    }

    /// Lists the pids matching `filter` into this buffer.
    ///
    /// The kernel truncates silently when the buffer is too small (§2.3): a result that fills
    /// the buffer exactly may have lost the oldest processes and every zombie. So we probe for
    /// the size with a NULL buffer, allocate the estimate plus headroom, and, whenever a fill
    /// comes back full, grow and fill again, up to `MAX_ATTEMPTS` (8) times. Within one call the
    /// kernel holds `proc_list_lock`, so a complete result has every pid exactly once.
    pub fn fill(&mut self, kernel: &dyn Kernel, filter: ListFilter) -> Result<&[Pid], Error> {
        self.fill_hinted(kernel, filter, 0)
    }

    /// [`fill`](Self::fill), first trying a buffer of `hint` pids without the size probe: one
    /// call instead of two when the caller knows a bound (a filtered listing never has more
    /// pids than the full listing just taken). A full result still means "maybe truncated",
    /// and falls back to probing and growing.
    pub fn fill_hinted(
        &mut self,
        kernel: &dyn Kernel,
        filter: ListFilter,
        hint: usize,
    ) -> Result<&[Pid], Error> {
        let (kind, info) = filter.raw();
        if hint > 0 {
            if self.pids.len() < hint {
                self.pids.resize(hint, 0);
            }
            let written = self.fill_once(kernel, filter, hint)?;
            if written < hint {
                self.len = written;
                return Ok(self.as_slice());
            }
        }
        let op = || Op::List(filter);
        let estimate = kernel
            .proc_info(PROC_CALLNUM_LISTPIDS, kind as i32, info, 0, None)
            .map_err(|e| Error::from_errno(op(), e))?;
        // The estimate has 20 pids of headroom (§2.2); add an eighth more so that a burst of
        // forks between the probe and the fill rarely costs a second fill.
        let estimate_pids = estimate / 4;
        let mut capacity = (estimate_pids + estimate_pids / 8 + 32).max(self.pids.len());
        for _attempt in 0..MAX_ATTEMPTS {
            if self.pids.len() < capacity {
                self.pids.resize(capacity, 0);
            }
            let n = self.fill_once(kernel, filter, capacity)?;
            if n < capacity {
                self.len = n;
                return Ok(self.as_slice());
            }
            capacity *= 2;
        }
        self.len = 0;
        Err(Error::Truncated { filter, attempts: MAX_ATTEMPTS, capacity: capacity / 2 })
    }
}

impl PidList {
    /// One fill of the first `capacity` slots (which exist); the number of pids written.
    fn fill_once(
        &mut self,
        kernel: &dyn Kernel,
        filter: ListFilter,
        capacity: usize,
    ) -> Result<usize, Error> {
        let (kind, info) = filter.raw();
        let buf = &mut self.pids[..capacity];
        // SAFETY: a `[i32]` is valid to view as `len * 4` bytes (u8 has no alignment
        // requirement and every bit pattern of i32 is valid, so the kernel may write any
        // bytes into it). The view lives only for this call.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), capacity * 4) };
        let written = kernel
            .proc_info(PROC_CALLNUM_LISTPIDS, kind as i32, info, 0, Some(bytes))
            .map_err(|e| Error::from_errno(Op::List(filter), e))?;
        Ok((written / 4).min(capacity))
    }
}

/// Lists the pids matching `filter`, race-safe against processes created meanwhile.
pub fn list_pids(kernel: &dyn Kernel, filter: ListFilter) -> Result<Vec<Pid>, Error> {
    let mut list = PidList::new();
    list.fill(kernel, filter)?;
    list.pids.truncate(list.len);
    Ok(list.pids)
}

/// Every pid, zombies and pid 0 included (`PROC_ALL_PIDS`).
pub fn all_pids(kernel: &dyn Kernel) -> Result<Vec<Pid>, Error> {
    list_pids(kernel, ListFilter::All)
}

/// Pids whose effective uid is `uid` (`PROC_UID_ONLY`).
pub fn pids_for_uid(kernel: &dyn Kernel, uid: u32) -> Result<Vec<Pid>, Error> {
    list_pids(kernel, ListFilter::Uid(uid))
}

/// Pids whose real uid is `uid` (`PROC_RUID_ONLY`), the count fork() checks against
/// `kern.maxprocperuid`.
pub fn pids_for_ruid(kernel: &dyn Kernel, uid: u32) -> Result<Vec<Pid>, Error> {
    list_pids(kernel, ListFilter::Ruid(uid))
}

/// Children of `ppid` (`PROC_PPID_ONLY`), including traced processes whose original parent
/// it is (§2.1).
pub fn pids_for_ppid(kernel: &dyn Kernel, ppid: Pid) -> Result<Vec<Pid>, Error> {
    list_pids(kernel, ListFilter::Ppid(ppid))
}

/// Members of process group `pgid` (`PROC_PGRP_ONLY`).
pub fn pids_for_pgrp(kernel: &dyn Kernel, pgid: Pid) -> Result<Vec<Pid>, Error> {
    list_pids(kernel, ListFilter::Pgrp(pgid))
}

/// Processes whose controlling terminal is the device `dev` (`PROC_TTY_ONLY`).
pub fn pids_for_tty(kernel: &dyn Kernel, dev: u32) -> Result<Vec<Pid>, Error> {
    list_pids(kernel, ListFilter::Tty(dev))
}

/// Processes whose controlling terminal is `name` (`ttys003`, `/dev/ttys003`, `s003`).
pub fn pids_for_tty_name(kernel: &dyn Kernel, name: &str) -> Result<Vec<Pid>, Error> {
    let dev = tty_device(name)?;
    pids_for_tty(kernel, dev)
}

/// Resolves a terminal name to the device number `PROC_TTY_ONLY` takes, as `ps -t` does
/// (§2.1): an absolute path is used as is; otherwise `/dev/NAME`, then `/dev/ttyNAME`
/// (so `s003` finds `/dev/ttys003`). The path must be a character device.
///
/// # Platform-specific behavior
/// The device number is `st_rdev` truncated to 32 bits. On macOS that is the whole `dev_t`;
/// on Linux it is the `new_encode_dev` form that `/proc/PID/stat` reports as `tty_nr`.
pub fn tty_device(name: &str) -> Result<u32, Error> {
    tty_device_in(Path::new("/dev"), name)
}

/// [`tty_device`] with another device directory (for tests and replays).
pub fn tty_device_in(dev_dir: &Path, name: &str) -> Result<u32, Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let error = |path: &Path, reason: String| Error::Tty {
        name: name.to_string(),
        path: path.display().to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(error(dev_dir, "empty terminal name".into()));
    }
    let candidates: Vec<PathBuf> = if name.starts_with('/') {
        vec![PathBuf::from(name)]
    } else {
        vec![dev_dir.join(name), dev_dir.join(format!("tty{name}"))]
    };
    let mut first = None;
    for path in &candidates {
        match std::fs::metadata(path) {
            Ok(meta) if meta.file_type().is_char_device() => return Ok(meta.rdev() as u32),
            Ok(_) => return Err(error(path, "not a character device".into())),
            Err(e) => {
                first.get_or_insert((path, e));
            }
        }
    }
    // Report the path the name most directly means (/dev/NAME), not the ps-style fallback.
    let Some((path, e)) = first else { return Err(error(dev_dir, "no candidate path".into())) };
    let reason = if e.kind() == std::io::ErrorKind::NotFound {
        "no such terminal".to_string()
    } else {
        e.to_string()
    };
    Err(error(path, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_device_rejects_a_regular_file() {
        let err = tty_device("/etc/hosts").unwrap_err();
        assert!(err.to_string().contains("not a character device"), "{err}");
    }

    #[test]
    fn tty_device_names_an_unknown_terminal() {
        let err = tty_device("ttys999-no-such").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ttys999-no-such") && text.contains("no such terminal"), "{text}");
    }

    #[test]
    fn tty_device_resolves_dev_null_as_a_character_device() {
        // /dev/null is a character device everywhere; what matters is the path handling.
        assert_eq!(tty_device("/dev/null").unwrap(), tty_device("null").unwrap());
    }
}
