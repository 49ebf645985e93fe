//! `comm`: processes per command name, the top K by count, plus declared names that always
//! have a series (0 when no such process runs), so "is sshd running" can page.

use std::collections::HashMap;

use super::{CollectError, Collector, Context, Definition, Family, ListSetting, Output, Setting, Unit};

/// The bytes of a command name both kernels keep: xnu's `p_comm` is `MAXCOMLEN + 1` (16)
/// bytes with a NUL (§3.3), Linux's `TASK_COMM_LEN` is 16 likewise.
const MAXCOMLEN: usize = 15;

/// `--collector.comm.top-k`.
pub static TOP_K: Setting = Setting {
    flag: "top-k",
    help: "Command names shown in libproc_comm_processes (the largest counts), besides the declared ones.",
    default: 20,
    min: 0,
    unit: Unit::Count,
};

/// `--collector.comm.names`.
pub static NAMES: ListSetting = ListSetting {
    flag: "names",
    help: "Command names that always have a series in libproc_comm_processes, 0 when none runs (repeatable, comma-separated).",
    check: check_name,
};

/// The `comm` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "comm",
    help: "processes per command name: the top K and the names declared",
    default_enabled: true,
    settings: &[&TOP_K],
    lists: &[&NAMES],
    borrows: &[],
    build: |s| Box::new(Comm { top_k: s.count(&TOP_K), names: s.list(&NAMES).to_vec() }),
};

/// A declared name must be one a process can have: the kernel keeps 15 bytes of a name, so
/// a longer one would never match, and its series would say 0 forever.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.len() > MAXCOMLEN {
        let mut end = MAXCOMLEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        return Err(format!(
            "is {} bytes; the kernel keeps {MAXCOMLEN} bytes of a command name (MAXCOMLEN), so it \
             would keep {:?}: declare that",
            name.len(),
            &name[..end]
        ));
    }
    Ok(())
}

/// The `comm` collector.
pub struct Comm {
    /// `--collector.comm.top-k`.
    top_k: usize,
    /// `--collector.comm.names`.
    names: Vec<String>,
}

impl Collector for Comm {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let by_comm = super::count_by(ctx.snapshot, |p| Some(p.comm));
        let mut counts: HashMap<String, u64> = HashMap::with_capacity(by_comm.len());
        for (comm, n) in by_comm {
            // Two names that differ only in invalid UTF-8 are one label value.
            *counts.entry(comm.to_string()).or_insert(0) += n;
        }
        // Declared names are shown whatever their count and take no place in the top K.
        let mut shown: Vec<(String, u64)> = Vec::with_capacity(self.top_k + self.names.len());
        for name in &self.names {
            if !shown.iter().any(|(n, _)| n == name) {
                shown.push((name.clone(), counts.remove(name).unwrap_or(0)));
            }
        }
        let (kept, dropped) = super::top(counts, self.top_k, 1);
        shown.extend(kept);
        shown.sort_unstable();

        let family = Family::gauge(
            "libproc_comm_processes",
            "Processes per command name (the 15 bytes the kernel keeps): the top K by count and every name declared with --collector.comm.names.",
            &["comm"],
        );
        super::push_counted(out, family, shown, dropped, |comm| vec![comm]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_longer_than_the_kernel_keeps_is_refused_with_what_it_keeps() {
        assert_eq!(check_name("sshd"), Ok(()));
        assert_eq!(check_name("com.apple.WebKi"), Ok(()));
        let err = check_name("com.apple.WebKit.Networking").unwrap_err();
        assert!(err.contains("\"com.apple.WebKi\""), "{err}");
        assert!(err.contains("MAXCOMLEN"), "{err}");
        assert!(check_name("").is_err());
    }
}
