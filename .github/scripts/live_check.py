#!/usr/bin/env python3
"""Live check: libproc_exporter's counts against `ps` on the same machine, at the same moment.

    python3 .github/scripts/live_check.py target/release/libproc_exporter [--source libproc]
        [--arch x86_64] [--record-to table.json --counts-to counts.json]

Starts the exporter on a free loopback port, then takes `ps -A -o pid,ppid,pgid,uid,ruid,tty,stat`,
scrapes /metrics, and takes ps again. Every count the exporter serves per effective uid, real
uid, terminal and parent (and the totals) must lie between the two ps counts, widened by the
number of processes that came or went between the two ps runs (plus 2 for ps itself). A busy
machine gets three attempts.

With --record-to and --counts-to it then records the table (`libproc_exporter record`) between
two more ps runs, checks the recorded file's own counts against ps the same way, and writes
those counts as JSON: a Linux job replays the file and must serve exactly these counts
(.github/scripts/replay_check.py). With --arch the binary runs under `arch -ARCH` (the
x86_64 slice of a universal binary under Rosetta on an arm64 Mac).

Runs on macOS (the CI runners, real __proc_info) and on Linux (/proc); standard library only.
"""

import argparse
import collections
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
NO_TTY = {"?", "??", "-"}


def ps():
    """The process table as ps sees it: a list of dicts."""
    out = subprocess.run(
        ["ps", "-A", "-o", "pid,ppid,pgid,uid,ruid,tty,stat"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 7:
            continue
        pid, ppid, pgid, uid, ruid, tty, stat = parts[:7]
        rows.append({
            "pid": int(pid), "ppid": int(ppid), "pgid": int(pgid), "uid": uid, "ruid": ruid,
            "tty": normalise_tty(tty), "stat": stat,
        })
    if sys.platform == "darwin" and not any(r["pid"] == 0 for r in rows):
        # The kernel lists kernel_task (pid 0), through __proc_info (docs/xnu-proc-info.md §2.5: pid 0
        # last) as through sysctl KERN_PROC; it is ps itself that leaves it out when it
        # walks the table (adv_cmds ps/ps.c). Add it back for the comparison.
        rows.append({"pid": 0, "ppid": 0, "pgid": 0, "uid": "0", "ruid": "0", "tty": None,
                     "stat": "R"})
    return rows


def normalise_tty(tty):
    """ps's terminal column as the exporter's tty label (ttys000, pts/0), or None."""
    if tty in NO_TTY:
        return None
    tty = tty.rstrip("-")
    if tty.startswith("/dev/"):
        tty = tty[5:]
    # `-o tty` prints the full device name (ttys000, cu.usbserial-1410, pts/0); it is `-o tt`
    # (tname) that abbreviates, and this script does not ask for it.
    return tty


def parents(procs):
    """Children per parent as the exporter counts them (src/collect/ppid.rs `parent_in`): pid 0
    is nobody's child, and a parent only where the table lists it (xnu's kernel_task); Linux's
    pid 0, the idle task, is not in /proc, so init and kthreadd are counted under no parent."""
    pid0_listed = any(p["pid"] == 0 for p in procs)
    return collections.Counter(str(p["ppid"]) for p in procs
                               if p["pid"] != 0 and (p["ppid"] != 0 or pid0_listed))


def counts(rows):
    """Counts per family, in the exporter's label terms."""
    c = {
        "uid": collections.Counter(r["uid"] for r in rows),
        "ruid": collections.Counter(r["ruid"] for r in rows),
        "tty": collections.Counter(r["tty"] for r in rows if r["tty"]),
        "ppid": parents(rows),
        "total": collections.Counter({"": len(rows)}),
        "zombie": collections.Counter({"": sum(1 for r in rows if r["stat"].startswith("Z"))}),
    }
    c["ttys"] = collections.Counter({"": len(c["tty"])})
    return c


def scrape(port):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = []
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m:
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def exporter_counts(samples):
    """The exporter's counts, in the same shape as counts()."""
    c = {k: collections.Counter() for k in ("uid", "ruid", "tty", "ppid", "total", "zombie", "ttys")}
    top_parents = set()
    for name, labels, value in samples:
        v = int(value)
        if name == "libproc_uid_processes":
            c["uid"][labels["uid"]] += v
        elif name == "libproc_ruid_processes":
            c["ruid"][labels["uid"]] += v
        elif name == "libproc_tty_processes":
            c["tty"][labels["tty"]] += v
        elif name == "libproc_ppid_processes":
            c["ppid"][labels["ppid"]] += v
            top_parents.add(labels["ppid"])
        elif name == "libproc_processes":
            c["total"][""] += v
            if labels.get("state") == "zombie":
                c["zombie"][""] += v
        elif name == "libproc_ttys":
            c["ttys"][""] = v
    return c, top_parents


def value(samples, name):
    for n, _, v in samples:
        if n == name:
            return v
    return None


def compare(port):
    before = ps()
    samples = scrape(port)
    after = ps()
    churn = len({r["pid"] for r in before} ^ {r["pid"] for r in after})
    slack = churn + 2
    a, b = counts(before), counts(after)
    e, top_parents = exporter_counts(samples)

    problems = []
    checked = 0
    for family in ("uid", "ruid", "tty", "total", "zombie", "ttys", "ppid"):
        keys = set(a[family]) | set(b[family]) | set(e[family])
        if family == "ppid":
            # The exporter serves the top-K parents only: compare those.
            keys = top_parents
        for key in sorted(keys):
            lo = min(a[family][key], b[family][key]) - slack
            hi = max(a[family][key], b[family][key]) + slack
            got = e[family][key]
            checked += 1
            if not lo <= got <= hi:
                problems.append(f"{family}={key!r}: exporter {got}, ps {a[family][key]} then "
                                f"{b[family][key]} (slack {slack})")

    # The parent with the most children, compared with ps's.
    most = value(samples, "libproc_ppid_processes_max")
    ps_most = [max(c["ppid"].values()) for c in (a, b)]
    if most is None or not min(ps_most) - slack <= most <= max(ps_most) + slack:
        problems.append(f"libproc_ppid_processes_max {most}, ps {ps_most}")

    for name, labels, v in samples:
        if name == "libproc_scrape_collector_success" and v != 1:
            problems.append(f"collector {labels['collector']} failed")
    print(f"compared {checked} counts ({len(after)} processes, churn {churn})")
    return problems


def is_zombie(process):
    """Whether the exporter counts a recorded process as a zombie (src/table/mod.rs, State)."""
    return process["status"] == 5 or process["flags"] & 0x4 != 0


def file_counts(table):
    """A recorded table's counts, in the shape of counts(): what the Mac's kernel said."""
    names = {t["dev"]: t["name"] for t in table["ttys"]}
    procs = table["processes"]
    c = {
        "uid": collections.Counter(str(p["euid"]) for p in procs),
        "ruid": collections.Counter(str(p["ruid"]) for p in procs),
        "tty": collections.Counter(names.get(p["tdev"], f"dev:{p['tdev']:#x}")
                                   for p in procs if p["tdev"] is not None),
        "ppid": parents(procs),
        "total": collections.Counter({"": len(procs)}),
        # As the exporter counts them: p_stat SZOMB (5), or a process caught in exit, which
        # may still show SRUN with PROC_FLAG_INEXIT (0x4) (docs/xnu-proc-info.md §2.4, §3.5).
        "zombie": collections.Counter({"": sum(1 for p in procs if is_zombie(p))}),
    }
    c["ttys"] = collections.Counter({"": len(c["tty"])})
    return c


def within(before, after, got, slack, families):
    """Problems where `got` lies outside the two ps readings widened by `slack`."""
    problems = []
    for family in families:
        for key in sorted(set(before[family]) | set(after[family]) | set(got[family])):
            lo = min(before[family][key], after[family][key]) - slack
            hi = max(before[family][key], after[family][key]) + slack
            if not lo <= got[family][key] <= hi:
                problems.append(f"{family}={key!r}: got {got[family][key]}, ps "
                                f"{before[family][key]} then {after[family][key]} (slack {slack})")
    return problems


def record(command, table_path, counts_path):
    """Records the table between two ps runs, checks its counts against ps, saves both."""
    for attempt in range(1, 4):
        before = ps()
        with open(table_path, "w") as out:
            subprocess.run(command + ["record"], stdout=out, check=True)
        after = ps()
        with open(table_path) as f:
            table = json.load(f)
        churn = len({r["pid"] for r in before} ^ {r["pid"] for r in after})
        got = file_counts(table)
        # Every family but ppid: ps's parents include the recording process's own.
        problems = within(counts(before), counts(after), got, churn + 2,
                          ("uid", "ruid", "tty", "total", "zombie", "ttys"))
        if not problems:
            with open(counts_path, "w") as f:
                json.dump({
                    "table": table_path,
                    "privileged": table["privileged"],
                    "processes": len(table["processes"]),
                    "counts": {k: dict(v) for k, v in got.items()},
                }, f, indent=1, sort_keys=True)
            print(f"recorded {len(table['processes'])} processes to {table_path} "
                  f"(privileged: {table['privileged']}), counts in {counts_path}")
            return
        print(f"record attempt {attempt}:\n  " + "\n  ".join(problems))
        time.sleep(2)
    sys.exit("live check failed: the recorded table disagrees with ps")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--source", default="auto")
    parser.add_argument("--arch", help="run the binary under `arch -ARCH` (Rosetta)")
    parser.add_argument("--record-to", help="then record the table to this file")
    parser.add_argument("--counts-to", help="and write the recorded table's counts here")
    args = parser.parse_args()
    if bool(args.record_to) != bool(args.counts_to):
        sys.exit("--record-to and --counts-to go together")

    command = ["arch", f"-{args.arch}", args.binary] if args.arch else [args.binary]
    port = free_port()
    exporter = subprocess.Popen(command + [
        f"--web.listen-address=127.0.0.1:{port}", f"--source={args.source}",
        "--collector.ppid.top-k=20", "--log.level=warn",
    ])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if exporter.poll() is not None:
                    sys.exit(f"exporter exited with {exporter.returncode}")
                time.sleep(0.1)
        problems = []
        for attempt in range(1, 4):
            problems = compare(port)
            if not problems:
                print(f"live check passed (attempt {attempt})")
                if args.record_to:
                    record(command, args.record_to, args.counts_to)
                return
            print(f"attempt {attempt}:\n  " + "\n  ".join(problems))
            time.sleep(2)
        sys.exit("live check failed: the exporter disagrees with ps")
    finally:
        exporter.terminate()
        exporter.wait()


if __name__ == "__main__":
    main()
