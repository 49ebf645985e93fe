#!/usr/bin/env python3
"""Writes a large snapshot file (libproc-exporter/snapshot-v1) for measuring replay cost.

    benches/make_big_snapshot.py PROCESSES TERMINALS [--privileged] > big.json

Deterministic. Shaped like a busy build host: kernel_task and launchd, then PROCESSES - 2
processes in families of 50 under parents owned by 100 users; every tenth process sits on one
of TERMINALS ttys (spread over all of them, so an unprivileged reader needs every
PROC_TTY_ONLY listing), and every hundredth is a zombie. One process per line, as `record`
writes it; 1,000,000 processes is about 225 MB, so generate it, do not commit it.
"""
import sys

CONTROLT, LP64, INEXIT = 0x80, 0x10, 0x4


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    n, t = int(args[0]), int(args[1])
    privileged = "--privileged" in sys.argv
    euid = 0 if privileged else 501
    out = sys.stdout
    w = out.write
    w("{\n")
    w('  "format": "libproc-exporter/snapshot-v1",\n  "os": "macos",\n')
    w(f'  "privileged": {"true" if privileged else "false"},\n  "caller_euid": {euid},\n')
    w('  "limits": {"maxproc": 4000000, "maxprocperuid": 4000000, "ptmx_max": 999999},\n')
    w('  "ttys": [')
    w(",".join(f'\n    {{"name":"ttys{i:03d}","dev":{0x10000000 | i}}}' for i in range(t)))
    w("\n  ],\n")
    users = ", ".join(f'"{500 + u}": "user{u}"' for u in range(100))
    w(f'  "users": {{"0": "root", {users}}},\n')
    w('  "processes": [\n')

    def proc(pid, ppid, pgid, uid, status, flags, comm, tdev, zombie, sec):
        gid = 0 if uid == 0 else 20
        return (f'    {{"pid":{pid},"ppid":{ppid},"pgid":{pgid},"euid":{uid},"ruid":{uid},'
                f'"svuid":{uid},"egid":{gid},"rgid":{gid},"status":{status},"flags":{flags},'
                f'"comm":"{comm}","tdev":{tdev},"zombie":{zombie},'
                f'"start_sec":{sec},"start_usec":{pid % 1000000}}}')

    w(proc(0, 0, 0, 0, 2, 0x1, "kernel_task", "null", "false", 1732700000))
    w(",\n" + proc(1, 0, 1, 0, 2, LP64, "launchd", "null", "false", 1732700001))
    lines = []
    parent = 1
    for i in range(n - 2):
        pid = 100 + i
        uid = 500 + (i // 50) % 100
        if i % 50 == 0:
            parent, ppid, comm = pid, 1, "make"
        else:
            ppid, comm = parent, "cc1plus"
        on_tty = t > 0 and i % 10 == 0
        zombie = i % 100 == 99
        flags = LP64 | (CONTROLT if on_tty else 0) | (INEXIT if zombie else 0)
        tdev = str(0x10000000 | ((i // 10) % t)) if on_tty else "null"
        lines.append(",\n" + proc(pid, ppid, parent, uid, 5 if zombie else 2, flags, comm, tdev,
                          "true" if zombie else "false", 1732700100 + i))
        if len(lines) >= 10000:
            w("".join(lines))
            lines = []
    w("".join(lines) + "\n  ]\n}\n")


main()
