//! The text formats of Linux's `/proc/PID/stat` and `/proc/PID/status`, parsed on bytes in one
//! pass: [`parse_stat`], [`parse_status_ids`]. Pure functions, so the table reader (every
//! pid) and [`crate::host::own_process`] (`/proc/self`) share them, and the fuzz targets can reach
//! them on any OS.

/// A non-empty run of ASCII digits as a number.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        // checked: "-9223372036854775808" is representable, but -(v as i64) would overflow.
        Some((b'-', rest)) => parse_u64(rest).and_then(|v| 0i64.checked_sub_unsigned(v)),
        _ => parse_u64(s).map(|v| v as i64),
    }
}

/// The `processes N` line of `/proc/stat` (proc(5): forks since boot).
pub fn parse_processes(stat: &[u8]) -> Option<u64> {
    stat.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"processes "))
        .and_then(parse_u64)
}

/// The fields of `/proc/PID/stat` the exporter uses (proc(5)).
#[derive(Debug, PartialEq, Eq)]
pub struct Stat<'a> {
    /// Command name (between the first `(` and the last `)`), as the kernel printed it.
    pub comm: &'a [u8],
    /// State letter.
    pub state: u8,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Session.
    pub sid: i32,
    /// Controlling terminal (`new_encode_dev` form), 0 for none.
    pub tty_nr: u32,
    /// User CPU time (field 14), clock ticks.
    pub utime: u64,
    /// System CPU time (field 15), clock ticks.
    pub stime: u64,
    /// User CPU time of the children this process waited for (field 16, `cutime`), clock
    /// ticks. proc(5) prints it signed; a negative value (never seen) reads as 0.
    pub cutime: u64,
    /// System CPU time of the waited-for children (field 17, `cstime`), clock ticks.
    pub cstime: u64,
    /// Threads (field 20, `num_threads`); `None` when it is not a number that fits.
    pub threads: Option<u32>,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set size, pages.
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The command name may hold spaces, parentheses and even `) (`,
/// so it ends at the *last* `)` in the line.
pub fn parse_stat(buf: &[u8]) -> Option<Stat<'_>> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = rfind_byte(buf, b')')?;
    if close < open {
        return None;
    }
    let comm = &buf[open + 1..close];
    let mut fields = Fields(&buf[close + 1..]);
    let state = *fields.next()?.first()?;
    let ppid = parse_i64(fields.next()?)? as i32;
    let pgid = parse_i64(fields.next()?)? as i32;
    let sid = parse_i64(fields.next()?)? as i32;
    // tty_nr is printed as a signed int; the device number is its 32 bits.
    let tty_nr = parse_i64(fields.next()?)? as u32;
    // tpgid flags minflt cminflt majflt cmajflt, then utime and stime.
    let utime = parse_u64(fields.nth(6)?)?;
    let stime = parse_u64(fields.next()?)?;
    let cutime = parse_i64(fields.next()?)?.max(0) as u64;
    let cstime = parse_i64(fields.next()?)?.max(0) as u64;
    // priority nice, then num_threads; itrealvalue, then starttime, vsize, rss.
    let threads = fields.nth(2)?;
    let threads = parse_u64(threads).and_then(|n| u32::try_from(n).ok());
    let start_ticks = parse_u64(fields.nth(1)?)?;
    // A line cut short after starttime (as older tests and fuzz inputs are) still gives the
    // fields the table needs; the memory figures are then 0.
    let vsize = fields.next().and_then(parse_u64).unwrap_or(0);
    let rss_pages = fields.next().and_then(parse_i64).map_or(0, |p| p.max(0) as u64);
    Some(Stat {
        comm,
        state,
        ppid,
        pgid,
        sid,
        tty_nr,
        utime,
        stime,
        cutime,
        cstime,
        threads,
        start_ticks,
        vsize,
        rss_pages,
    })
}

/// Real, effective, saved and filesystem ids, and the thread count, from `/proc/PID/status`.
#[derive(Debug, PartialEq, Eq)]
pub struct StatusIds {
    /// `Uid:` line.
    pub uid: [u32; 4],
    /// `Gid:` line.
    pub gid: [u32; 4],
    /// `Threads:` line; `None` when it is not in `buf` (a status longer than the buffer,
    /// which only a very long `Groups:` line makes).
    pub threads: Option<u32>,
}

/// Parses the `Uid:`, `Gid:` and `Threads:` lines of `/proc/PID/status`.
///
/// One pass from the top, hopping from line to line: the two id lines are about 100 bytes
/// in, one after the other, and `Threads:` follows the memory lines, about a kilobyte in.
/// The `Name:` line cannot fake any of them: the kernel escapes a newline in the name.
pub fn parse_status_ids(buf: &[u8]) -> Option<StatusIds> {
    let mut uid_line = Fields(after_line_key(buf, b"Uid:")?);
    let uid = uid_line.ids()?;
    let mut gid_line = Fields(after_line_key(uid_line.0, b"Gid:")?);
    let gid = gid_line.ids()?;
    let threads = after_line_key(gid_line.0, b"Threads:")
        .and_then(|rest| Fields(rest).next())
        .and_then(parse_u64)
        .and_then(|n| u32::try_from(n).ok());
    Some(StatusIds { uid, gid, threads })
}

/// `read_bytes` and `write_bytes` of `/proc/PID/io` (proc(5)): bytes the process made the
/// storage layer fetch and send, as opposed to `rchar`/`wchar` (any read or write, the page
/// cache and pipes included).
pub fn parse_io(buf: &[u8]) -> Option<(u64, u64)> {
    let mut read = Fields(after_line_key(buf, b"read_bytes:")?);
    let read_bytes = parse_u64(read.next()?)?;
    let written = parse_u64(Fields(after_line_key(read.0, b"write_bytes:")?).next()?)?;
    Some((read_bytes, written))
}

/// What follows `key` on the first line of `buf` that starts with it, and the rest of `buf`.
fn after_line_key<'a>(mut buf: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    loop {
        if let Some(rest) = buf.strip_prefix(key) {
            return Some(rest);
        }
        buf = &buf[buf.iter().position(|&b| b == b'\n')? + 1..];
    }
}

/// The blank-separated fields of one line, left to right; a newline ends the line.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|&b| b != b' ' && b != b'\t')?;
        let rest = &self.0[start..];
        let len = rest.iter().position(|&b| matches!(b, b' ' | b'\t' | b'\n'));
        let (field, tail) = rest.split_at(len.unwrap_or(rest.len()));
        self.0 = tail;
        (!field.is_empty()).then_some(field)
    }
}

impl Fields<'_> {
    /// The four ids of a `Uid:` or `Gid:` line: real, effective, saved, filesystem.
    fn ids(&mut self) -> Option<[u32; 4]> {
        let mut ids = [0u32; 4];
        for id in &mut ids {
            *id = u32::try_from(parse_u64(self.next()?)?).ok()?;
        }
        Some(ids)
    }
}

/// The position of the last `byte` in `buf`, eight bytes at a time. The end of a stat line
/// is 150-250 bytes of numbers after the command name; scanning them back a byte at a time
/// was half of the stat parser's time.
fn rfind_byte(buf: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let chunks = buf.rchunks_exact(8);
    let head = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Zero where the byte is; (w - 1) & !w & 0x80 per lane is non-zero iff some lane is.
        let w = u64::from_ne_bytes(word) ^ (ONES * u64::from(byte));
        if w.wrapping_sub(ONES) & !w & HIGHS != 0 {
            let start = buf.len() - (i + 1) * 8;
            return chunk.iter().rposition(|&b| b == byte).map(|p| start + p);
        }
    }
    head.iter().rposition(|&b| b == byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_line_of_status_after_the_memory_lines() {
        let status = b"Name:\tThreads: 99\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nVmRSS:\t  1 kB\nThreads:\t17\nSigQ:\t0/1\n";
        let ids = parse_status_ids(status).unwrap();
        assert_eq!(ids.threads, Some(17));
        // Cut before the line (a status longer than the buffer): the ids still parse.
        let cut = &status[..status.len() - 20];
        assert_eq!(parse_status_ids(cut).unwrap().threads, None);
    }

    #[test]
    fn io_storage_bytes_not_characters() {
        let io = b"rchar: 323934931\nwchar: 323929600\nsyscr: 632687\nsyscw: 632675\nread_bytes: 4096\nwrite_bytes: 323932160\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), Some((4096, 323_932_160)));
        assert_eq!(parse_io(b"rchar: 1\nwchar: 2\n"), None);
    }

    #[test]
    fn processes_line_of_proc_stat() {
        // "procs_running" and "processes" share no prefix with the space; "ctxt" precedes.
        let stat = b"cpu  1 2 3\nctxt 99\nbtime 1700000000\nprocesses 123456\nprocs_running 2\n";
        assert_eq!(parse_processes(stat), Some(123456));
        assert_eq!(parse_processes(b"cpu 1\nprocs_running 2\n"), None);
    }

    #[test]
    fn stat_with_parentheses_and_spaces_in_comm() {
        let line = b"4242 (a) (b c)) S 1 4242 4242 34816 4242 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1000 100\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, b"a) (b c)");
        assert_eq!((stat.state, stat.ppid, stat.pgid, stat.sid), (b'S', 1, 4242, 4242));
        assert_eq!(stat.tty_nr, 34816);
        assert_eq!(stat.start_ticks, 987654);
    }

    #[test]
    fn stat_of_a_kernel_thread() {
        let line = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.ppid, stat.pgid, stat.tty_nr, stat.start_ticks), (0, 0, 0, 3));
    }

    #[test]
    fn stat_with_i64_min_is_parsed_not_a_panic() {
        // Found by the proc_stat fuzz target: negating i64::MIN overflowed.
        let line = b"1 (a) S -9223372036854775808 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5 0";
        assert_eq!(parse_stat(line).map(|s| s.start_ticks), Some(5));
    }

    #[test]
    fn stat_truncated_is_rejected_not_misread() {
        assert_eq!(parse_stat(b"12 (x) S 1 12"), None);
        assert_eq!(parse_stat(b"12 )x( S 1 12 12 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn status_ids() {
        let status = b"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nUid:\t1000\t0\t1000\t0\nGid:\t20\t21\t22\t23\nFDSize:\t64\n";
        let ids = parse_status_ids(status).unwrap();
        assert_eq!(ids.uid, [1000, 0, 1000, 0]);
        assert_eq!(ids.gid, [20, 21, 22, 23]);
        assert_eq!(parse_status_ids(b"Name:\tx\nUid:\t1\t2\n"), None);
    }

    #[test]
    fn rfind_byte_agrees_with_a_plain_scan() {
        let line =
            b"4242 (a) (b c)) S 1 4242 4242 34816 4242 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654";
        for len in 0..line.len() {
            for byte in [b')', b'(', b'4', b'x', b'S'] {
                let plain = line[..len].iter().rposition(|&b| b == byte);
                assert_eq!(rfind_byte(&line[..len], byte), plain, "len {len} byte {byte}");
            }
        }
        // Bytes with the high bit set must not fool the word test.
        assert_eq!(
            rfind_byte(&[0xff, b')', 0x80, 0xa9, 0xff, 0xfe, 0x7f, 0x29, 0x01], b')'),
            Some(7)
        );
    }

    #[test]
    fn stat_cpu_and_memory_fields() {
        // Fields 14-15 (utime, stime), 22-24 (starttime, vsize, rss) of proc(5).
        let line = b"7 (x) S 1 7 7 0 -1 4194304 10 0 0 0 250 50 70 30 20 0 1 0 1234 8192000 300 18446744073709551615\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.utime, stat.stime, stat.start_ticks), (250, 50, 1234));
        // Fields 16-17: the waited-for children's times, beside the process's own.
        assert_eq!((stat.cutime, stat.cstime), (70, 30));
        assert_eq!((stat.vsize, stat.rss_pages), (8_192_000, 300));
    }

    #[test]
    fn stat_threads_field_20() {
        // num_threads is the 20th field; the 18th and 19th (priority, nice) are beside it.
        let line = b"7 (x) S 1 7 7 0 -1 4194304 10 0 0 0 250 50 0 0 20 -5 17 0 1234 8192000 300\n";
        assert_eq!(parse_stat(line).unwrap().threads, Some(17));
        let huge = b"7 (x) S 1 7 7 0 -1 4194304 10 0 0 0 250 50 0 0 20 -5 4294967296 0 1234 1 1\n";
        let stat = parse_stat(huge).unwrap();
        assert_eq!((stat.threads, stat.start_ticks), (None, 1234));
    }
}
