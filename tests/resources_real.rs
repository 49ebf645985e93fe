//! `resources` against real processes, on Linux (`/proc`) and on a Mac (`proc_pid_rusage`,
//! where it checks the Mach tick conversion, §9.6): what a child's own `getrusage` says it
//! used is what its command's counters show, its touched memory is its command's resident
//! bytes, and the children a parent reaped are its children's CPU. The helpers are a small C
//! program (the process under test must not be this test binary, whose threads run other
//! tests), built under three names so each has a command name of its own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use libproc_exporter::collect;
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::{self, SourceConfig};

use crate::common::{TempDir, require_tool, sample};

/// `burn`: uses 2 s of CPU; `touch`: writes every page of 200 MiB; `reap`: forks, and waits
/// for, 200 children that use 10 ms of CPU each. Then prints its own figure (CPU seconds,
/// bytes, or its reaped children's CPU seconds) and waits for stdin to close.
const HELPER: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

static double cpu(int who) {
    struct rusage r;
    getrusage(who, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void burn(double seconds) {
    volatile unsigned long x = 0;
    while (cpu(RUSAGE_SELF) < seconds)
        for (int i = 0; i < 10000; i++) x += i;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "burn")) {
        burn(2.0);
        printf("%f\n", cpu(RUSAGE_SELF));
    } else if (!strcmp(argv[1], "touch")) {
        size_t n = (size_t)200 << 20;
        char *p = malloc(n);
        if (!p) return 1;
        for (size_t i = 0; i < n; i += 4096) p[i] = 1;
        printf("%zu\n", n);
    } else if (!strcmp(argv[1], "reap")) {
        for (int i = 0; i < 200; i++) {
            pid_t c = fork();
            if (c == 0) { burn(0.01); _exit(0); }
            if (c < 0 || waitpid(c, 0, 0) != c) return 1;
        }
        printf("%f\n", cpu(RUSAGE_CHILDREN));
    } else {
        return 2;
    }
    fflush(stdout);
    char b;
    while (read(0, &b, 1) > 0) {}
    return 0;
}
"#;

/// The helper built as `dir/name` (its command name).
fn build(dir: &TempDir, name: &str) -> PathBuf {
    let cc = require_tool("cc", "apt-get install gcc");
    let source = dir.write("helper.c", HELPER);
    let out = dir.join(name);
    let status = Command::new(cc).arg("-O1").arg("-o").arg(&out).arg(&source).status().unwrap();
    assert!(status.success(), "cc failed on the helper");
    out
}

/// A running helper, ended (stdin closed, waited for) on drop.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program mode` and returns it with the figure it printed once done.
fn start(program: &Path, mode: &str) -> (Helper, f64) {
    let mut child = Command::new(program)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let figure = line.trim().parse().unwrap_or_else(|_| panic!("helper printed {line:?}"));
    (Helper(child), figure)
}

/// An exporter of this machine's table (its native source) with only `resources`, nothing declared, that has
/// scraped once: the families rank groups by what they used since the previous scrape, and
/// an exporter runs before the processes it is asked about start (at its first scrape every
/// process's whole life is new, and long-lived daemons come first).
fn running_exporter() -> Exporter {
    let source = table::open(&SourceConfig { usage: true, ..SourceConfig::default() }).unwrap();
    let resources = collect::find("resources").unwrap().default_instance();
    let exporter = Exporter::new(source, vec![resources], false);
    exporter.scrape(None);
    exporter
}

/// `user` + `system` of a `mode`-labelled family's series with `labels`.
fn both_modes(body: &str, name: &str, labels: &str) -> f64 {
    ["user", "system"]
        .iter()
        .map(|mode| {
            let labels = format!("{labels},mode=\"{mode}\"");
            sample(body, name, &labels).unwrap_or_else(|| panic!("no {name}{{{labels}}}"))
        })
        .sum()
}

fn assert_within(what: &str, got: f64, want: f64, lo: f64, hi: f64) {
    assert!(
        got >= want * lo && got <= want * hi,
        "{what}: {got} against {want} (must be {lo}-{hi}x)"
    );
}

#[test]
fn a_child_burning_2s_of_cpu_shows_in_its_commands_counter() {
    let dir = TempDir::new("resources-burn");
    let exporter = running_exporter();
    let (_child, own) = start(&build(&dir, "rsburn"), "burn");
    assert!(own >= 2.0, "the helper burned {own} s");
    let body = exporter.scrape(None);
    let cpu = both_modes(&body, "libproc_comm_cpu_seconds_total", "comm=\"rsburn\"");
    assert_within("libproc_comm_cpu_seconds_total{comm=\"rsburn\"}", cpu, own, 0.9, 1.1);
}

#[test]
fn a_child_touching_200_mib_shows_in_its_commands_resident_bytes() {
    let dir = TempDir::new("resources-touch");
    let exporter = running_exporter();
    let (_child, touched) = start(&build(&dir, "rstouch"), "touch");
    let body = exporter.scrape(None);
    let resident = sample(&body, "libproc_comm_resident_bytes", "comm=\"rstouch\"").unwrap();
    assert_within("libproc_comm_resident_bytes{comm=\"rstouch\"}", resident, touched, 0.9, 1.1);
}

#[test]
fn a_parent_that_reaped_200_children_shows_their_cpu_as_its_childrens() {
    let dir = TempDir::new("resources-reap");
    let exporter = running_exporter();
    let (child, reaped) = start(&build(&dir, "rsreaper"), "reap");
    assert_within("the helper's RUSAGE_CHILDREN", reaped, 2.0, 0.9, 1.1);
    let body = exporter.scrape(None);
    let labels = format!("ppid=\"{}\",parent=\"rsreaper\"", child.0.id());
    let cpu = both_modes(&body, "libproc_ppid_children_cpu_seconds_total", &labels);
    assert_within("libproc_ppid_children_cpu_seconds_total", cpu, reaped, 0.9, 1.1);
}
