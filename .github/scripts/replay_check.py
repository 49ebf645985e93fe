#!/usr/bin/env python3
"""Replay check: a table recorded on a real Mac, replayed here, serves the counts the Mac saw.

    python3 .github/scripts/replay_check.py BINARY table.json counts.json

live_check.py --record-to/--counts-to wrote both files on a macOS runner: the table from
`libproc_exporter record`, the counts computed from that file and checked against ps there.
This starts BINARY with `--source replay` on the file (every parent shown), scrapes it once
and requires every count to be exactly the recorded one: uids, real uids, terminals, parents,
totals, zombies. Exit 1 with the differences otherwise. Standard library only.
"""

import collections
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import live_check  # noqa: E402  (the scrape parser and the exporter-side counts)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    binary, table, counts_file = sys.argv[1:]
    with open(counts_file) as f:
        want = {k: collections.Counter(v) for k, v in json.load(f)["counts"].items()}
    with open(table) as f:
        processes = json.load(f)["processes"]
    # The fork counter replays from the processes' uniqueids, which `record` writes where the
    # kernel has them (macOS, flavor 17). A table without any (a Linux recording) replays the
    # forks collector as failed, deliberately; any other failure is a problem.
    may_fail = set() if any("uniqueid" in p for p in processes) else {"forks"}

    port = live_check.free_port()
    exporter = subprocess.Popen([
        binary, f"--web.listen-address=127.0.0.1:{port}", "--source=replay",
        f"--source.replay-file={table}", "--collector.ppid.top-k=100000",
        "--collector.ppid.min-children=1", "--log.level=warn",
    ])
    try:
        for _ in range(100):
            try:
                samples = live_check.scrape(port)
                break
            except OSError:
                if exporter.poll() is not None:
                    sys.exit(f"exporter exited with {exporter.returncode}")
                time.sleep(0.1)
        else:
            sys.exit("the replaying exporter never answered")
    finally:
        exporter.terminate()
        exporter.wait()

    got, _ = live_check.exporter_counts(samples)
    problems = []
    for family in sorted(want):
        for key in sorted(set(want[family]) | set(got[family])):
            if want[family][key] != got[family][key]:
                problems.append(f"{family}={key!r}: replayed {got[family][key]}, "
                                f"recorded {want[family][key]}")
    for name, labels, v in samples:
        if name == "libproc_scrape_collector_success" and v != 1:
            if labels["collector"] not in may_fail:
                problems.append(f"collector {labels['collector']} failed")
    if problems:
        sys.exit(f"replay of {table} disagrees with the counts recorded beside it:\n  "
                 + "\n  ".join(problems))
    total = sum(want["total"].values())
    print(f"replay of {table}: {total} processes, every count as recorded")


if __name__ == "__main__":
    main()
