#!/usr/bin/env python3
"""report.py RAW.jsonl [SIM.md] - the markdown report of benches/run.sh (stdout).

Exit status: 0 when every goal is met, 2 when one is missed.
Times are milliseconds; CPU is user + system time of the whole process per scrape.
"""
import json
import statistics as st
import sys

recs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
try:
    sim_text = open(sys.argv[2]).read() if len(sys.argv) > 2 else ""
except FileNotFoundError:  # SIM=0
    sim_text = ""
env = next((r for r in recs if r["kind"] == "env"), {})
hz = env.get("clk_tck", 100)
cores = env.get("cores", 1)
ns = sorted({r["n_extra"] for r in recs if r["kind"] == "scrape"})
rounds = sorted({r["round"] for r in recs if r["kind"] == "scrape"})
NAMES = {"ours": "libproc_exporter", "ours_status": "libproc_exporter, status path",
         "alt": "libproc_exporter (COMPARE_BIN)",
         "ne": "node_exporter (processes)", "pe": "process-exporter"}
tools = [t for t in NAMES if any(r["kind"] == "scrape" and r["tool"] == t for r in recs)]
MIB = 1024.0


def scrape(tool, nx, rnd=None):
    """Pooled figures of one exporter at one N (one round, or all)."""
    rs = [r for r in recs if r["kind"] == "scrape" and r["tool"] == tool and r["n_extra"] == nx
          and (rnd is None or r["round"] == rnd)]
    if not rs:
        return None
    times = sorted(t * 1e3 for r in rs for t in r["times_s"])
    k = sum(r["scrapes"] for r in rs)
    last = [r for r in rs if r["batch"] == 1] or rs  # after all the scrapes at this N
    return dict(
        n=st.mean(r["n_procs"] for r in rs),
        wall=st.median(times),
        p90=times[int(len(times) * 0.9)],
        cpu=sum(r["cpu_ticks"] for r in rs) * 1e3 / hz / k,
        rss=max(r["rss_kib"] for r in last) / MIB,
        hwm=max(r["hwm_kib"] for r in rs) / MIB,
        bytes=rs[-1]["bytes"],
        series=rs[-1]["series"],
        threads=max(r["threads"] for r in rs),
        scrapes=k,
        # cores the exporter used while scraping, and cores busy with everything else
        cores=sum(r["cpu_ticks"] for r in rs) * cores / sum(r["machine_ticks"] for r in rs)
        if all("machine_ticks" in r for r in rs) else None,
        others=sum(r["machine_busy_ticks"] - r["cpu_ticks"] for r in rs) * cores / sum(r["machine_ticks"] for r in rs)
        if all("machine_ticks" in r for r in rs) else None,
    )


def floor(mode, nx, rnd=None):
    rs = [r for r in recs if r["kind"] == "floor" and r["mode"] == mode and r["n_extra"] == nx
          and (rnd is None or r["round"] == rnd)]
    if not rs:
        return None
    return dict(n=st.mean(r["procs"] for r in rs), wall=st.median(r["wall_med_ms"] for r in rs),
                cpu=st.median(r["cpu_med_ms"] for r in rs),
                rss=max(r["maxrss_kib"] for r in rs) / MIB, bytes=int(rs[-1]["body_bytes"]))


def fit(pts):
    """Least squares y = a + b x over (x, y); returns a, b, r2."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    mx, my = st.mean(xs), st.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else float("nan")
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum((y - a - b * x) ** 2 for x, y in pts) / ss_tot if ss_tot else float("nan")
    return a, b, r2


def f(x, d=1):
    return "–" if x is None else f"{x:,.{d}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


out = []
w = out.append
w("# libproc_exporter benchmark (benches/run.sh)\n")
w(f"- date {env.get('date')}, revision {env.get('revision')}, {env.get('rustc')}")
w(f"- kernel {env.get('kernel')}; {env.get('cpu')}, {env.get('cores')} cores; {env.get('ram_gib')} GiB RAM")
w(f"- node_exporter: {env.get('ne')}; process-exporter: {env.get('pe')}")
if env.get("compare_bin"):
    w(f"- alt = COMPARE_BIN {env['compare_bin']}")
w(f"- ours reads the ids from: {env.get('ours_ids') or 'unknown'}; ours_status (own pid namespace, "
  f"unshare --pid) from: {env.get('ours_status_ids') or 'not run'}")
w(f"- settings: {env.get('settings')}")
loads = [f"N={r['n_extra']} r{r['round']}: {r['loadavg']}" for r in recs if r["kind"] == "load"]
w(f"- load average when each N started: {'; '.join(loads)}\n")

w("## Figures\n")
w("N = processes in /proc. Exporters: median wall of a scrape (curl), CPU per scrape (utime +")
w("stime of the whole process over the timed scrapes), RSS after them, body bytes. Floor")
w("(benches/floor/floor.c, single-threaded): median per-iteration wall and CPU; `stat` reads")
w("/proc/PID/stat (+fstat), `status` also /proc/PID/status (exact uids: the reference), `pidfd`")
w("stat and the ids through pidfd_open + PIDFD_GET_INFO (the floor of the pidfd path).\n")
head = ["N"]
for t in tools:
    head += [f"{t} wall", f"{t} CPU", f"{t} RSS MiB", f"{t} bytes"]
head += ["floor stat wall", "floor stat CPU", "floor status wall", "floor status CPU",
         "floor pidfd wall", "floor pidfd CPU"]
w("| " + " | ".join(head) + " |")
w("|" + "---:|" * len(head))
rows = {}
for nx in ns:
    row = {t: scrape(t, nx) for t in tools}
    row["fs"], row["fu"], row["fp"] = floor("stat", nx), floor("status", nx), floor("pidfd", nx)
    rows[nx] = row
    n = st.mean(x["n"] for x in row.values() if x)
    cells = [f"{n:,.0f}"]
    for t in tools:
        d = row[t]
        cells += [f(d and d["wall"]), f(d and d["cpu"]), f(d and d["rss"]), f(d and d["bytes"], 0)]
    for k in ("fs", "fu", "fp"):
        cells += [f(row[k] and row[k]["wall"]), f(row[k] and row[k]["cpu"])]
    w("| " + " | ".join(cells) + " |")
w("")

w("## Ratios (same run)\n")
w("Pooled over the rounds; the per-round values follow in brackets.\n")
w("| N | our CPU / floor status CPU | our CPU / floor pidfd CPU | status path CPU / floor status CPU | our wall / floor status wall | our wall / floor stat wall | node_exporter wall / ours | node_exporter CPU / ours | process-exporter wall / ours |" + (" alt CPU / ours | alt wall / ours |" if "alt" in tools else ""))
w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if "alt" in tools else ""))


def ratios(nx, rnd=None):
    o, fu, fs = scrape("ours", nx, rnd), floor("status", nx, rnd), floor("stat", nx, rnd)
    fp, os_ = floor("pidfd", nx, rnd), scrape("ours_status", nx, rnd)
    ne, pe, alt = scrape("ne", nx, rnd), scrape("pe", nx, rnd), scrape("alt", nx, rnd)
    g = lambda d, k: d and d[k]
    return dict(
        cpu_floor=ratio(g(o, "cpu"), g(fu, "cpu")), cpu_floor_pidfd=ratio(g(o, "cpu"), g(fp, "cpu")),
        status_cpu_floor=ratio(g(os_, "cpu"), g(fu, "cpu")), wall_floor=ratio(g(o, "wall"), g(fu, "wall")),
        wall_floor_stat=ratio(g(o, "wall"), g(fs, "wall")),
        ne_wall=ratio(g(ne, "wall"), g(o, "wall")), ne_cpu=ratio(g(ne, "cpu"), g(o, "cpu")),
        pe_wall=ratio(g(pe, "wall"), g(o, "wall")),
        alt_cpu=ratio(g(alt, "cpu"), g(o, "cpu")), alt_wall=ratio(g(alt, "wall"), g(o, "wall")))


keys = ["cpu_floor", "cpu_floor_pidfd", "status_cpu_floor", "wall_floor", "wall_floor_stat", "ne_wall", "ne_cpu", "pe_wall"] + (["alt_cpu", "alt_wall"] if "alt" in tools else [])
pooled = {}
for nx in ns:
    pooled[nx] = ratios(nx)
    per = [ratios(nx, r) for r in rounds]
    cells = [f"{rows[nx]['ours']['n']:,.0f}"]
    for k in keys:
        vals = [p[k] for p in per if p[k] is not None]
        cells.append(f"{f(pooled[nx][k], 2)} [{', '.join(f'{v:.2f}' for v in vals)}]" if vals else "–")
    w("| " + " | ".join(cells) + " |")
w("")

w("## How much of the machine each tool had\n")
w("cores used = the exporter's CPU over the batch's elapsed time; others = cores busy with")
w("anything else meanwhile (other users' work, the peers' idle threads, curl). A scrape can only")
w(f"be faster than its CPU time when a second core is free: others near {cores - 1} or more means")
w("it was not, and the wall figures then follow the CPU figures.\n")
w("| N | " + " | ".join(f"{t} cores used | others" for t in tools) + " |")
w("|---:|" + "---:|---:|" * len(tools))
for nx in ns:
    cells = [f"{rows[nx]['ours']['n']:,.0f}"]
    for t in tools:
        d = rows[nx][t]
        cells += [f(d and d["cores"], 2), f(d and d["others"], 2)]
    w("| " + " | ".join(cells) + " |")
w("")

w("## Growth with N (least squares over the N points)\n")
w("slope = extra ms (MiB) per 1,000 more processes; per process = the slope in µs (KiB);")
w("R² near 1 means linear.\n")
w("| series | intercept | slope per 1,000 | per process | R² |")
w("|---|---:|---:|---:|---:|")
series = [("libproc_exporter wall ms", "ours", "wall"), ("libproc_exporter CPU ms", "ours", "cpu"),
          ("libproc_exporter RSS MiB", "ours", "rss"),
          ("floor status wall ms", "fu", "wall"), ("floor status CPU ms", "fu", "cpu"),
          ("floor stat CPU ms", "fs", "cpu"), ("floor pidfd CPU ms", "fp", "cpu"),
          ("status path wall ms", "ours_status", "wall"), ("status path CPU ms", "ours_status", "cpu"),
          ("node_exporter wall ms", "ne", "wall"), ("node_exporter CPU ms", "ne", "cpu"),
          ("process-exporter wall ms", "pe", "wall"), ("process-exporter CPU ms", "pe", "cpu"),
          ("alt wall ms", "alt", "wall"), ("alt CPU ms", "alt", "cpu")]
fits = {}
for label, key, field in series:
    pts = [(rows[nx][key]["n"], rows[nx][key][field]) for nx in ns if rows[nx].get(key)]
    if len(pts) < 2:
        continue
    a, b, r2 = fit(pts)
    fits[(key, field)] = (a, b, r2)
    unit = "KiB" if field == "rss" else "µs"
    w(f"| {label} | {a:.2f} | {b * 1000:.2f} | {b * (1024 if unit == 'KiB' else 1000):.2f} {unit} | {r2:.4f} |")
w("")

allocs = [r for r in recs if r["kind"] == "allocs"]
if allocs:
    w("## Heap allocations of one warm /proc snapshot\n")
    w("| N (pids read) | allocations | KiB requested |")
    w("|---:|---:|---:|")
    for r in sorted(allocs, key=lambda r: (r["result"]["pids"], r["round"])):
        w(f"| {r['result']['pids']:,} | {r['result']['allocs']} | {r['result']['bytes'] / 1024:,.0f} |")
    w("")

bursts = [r for r in recs if r["kind"] == "burst"]
burst_sums = {}
if bursts:
    w(f"## {bursts[0]['result']['count']} concurrent scrapes\n")
    w("Each burst is followed by one lone scrape. collections = libproc_collections_total read by")
    w("that lone scrape, less the value before the burst, less the lone scrape's own; ratio = the")
    w("CPU of all bursts over the CPU of all lone scrapes (10 ms ticks, hence the sums).\n")
    w("| tool | N | round | bursts | statuses | collections per burst | distinct values in bodies | burst wall ms (median) | burst CPU ms (sum) | lone scrape CPU ms (sum) | ratio |")
    w("|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|")
    for key in sorted({(b["tool"], b["n_extra"], b["round"]) for b in bursts}):
        bs = [b for b in bursts if (b["tool"], b["n_extra"], b["round"]) == key]
        ran = [b["collections_after"] - b["collections_before"] - 1
               if b.get("collections_before") is not None and b.get("collections_after") is not None else None
               for b in bs]
        statuses = {}
        for b in bs:
            for code, k in b["result"]["statuses"].items():
                statuses[code] = statuses.get(code, 0) + k
        cpu = sum(b["cpu_ticks"] for b in bs) * 1e3 / hz
        single = sum(b["single_cpu_ticks"] for b in bs) * 1e3 / hz
        distinct = [len(b["result"]["collections"]) for b in bs]
        burst_sums[key] = dict(ran=ran, distinct=distinct, ratio=ratio(cpu, single), statuses=statuses)
        n = st.mean(r["n_procs"] for r in recs if r["kind"] == "scrape" and r["n_extra"] == key[1])
        w(f"| {key[0]} | {n:,.0f} | {key[2]} | {len(bs)} | {statuses} | {ran} | {distinct} | "
          f"{st.median(b['result']['wall_ms'] for b in bs):.0f} | {cpu:.0f} | {single:.0f} | {f(burst_sums[key]['ratio'], 2)} |")
    w("")

# ---- goals, at the largest N
goals = []
top = ns[-1] if ns else None
if top is not None:
    o, p = rows[top]["ours"], pooled[top]
    n = o["n"]
    fu_cpu = f(rows[top]["fu"] and rows[top]["fu"]["cpu"])
    if env.get("ours_ids") == "pidfd":
        goals.append((f"pidfd path: CPU per scrape <= 0.8x floor (stat+status) at {n:,.0f} processes",
                      f"{f(p['cpu_floor'], 2)}x ({f(o['cpu'])} vs {fu_cpu} ms; the floor's pidfd mode: "
                      f"{f(rows[top]['fp'] and rows[top]['fp']['cpu'])} ms, ours {f(p['cpu_floor_pidfd'], 2)}x of it)",
                      p["cpu_floor"] is not None and p["cpu_floor"] <= 0.8))
    status_row, status_ratio = (rows[top].get("ours_status"), p["status_cpu_floor"]) \
        if rows[top].get("ours_status") else (o, p["cpu_floor"]) if env.get("ours_ids") != "pidfd" else (None, None)
    if status_row:
        goals.append((f"status path: CPU per scrape <= 1.15x floor (stat+status) at {n:,.0f} processes",
                      f"{f(status_ratio, 2)}x ({f(status_row['cpu'])} vs {fu_cpu} ms)",
                      status_ratio is not None and status_ratio <= 1.15))
    uids = [r for r in recs if r["kind"] == "uids"]
    if uids:
        same = all(r["ours_uid"] == r["status_uid"] == r["ps_uid"] and
                   r["ours_ruid"] == r["status_ruid"] == r["ps_ruid"] for r in uids)
        differ = [f"N={r['n_extra']} r{r['round']}: uid pidfd {r['ours_uid']} / status {r['status_uid']} / ps {r['ps_uid']}; "
                  f"ruid {r['ours_ruid']} / {r['status_ruid']} / {r['ps_ruid']}" for r in uids
                  if not (r["ours_uid"] == r["status_uid"] == r["ps_uid"] and r["ours_ruid"] == r["status_ruid"] == r["ps_ruid"])]
        goals.append(("per-uid and per-ruid counts (uids other than 0): pidfd path = status path = ps",
                      f"{len(uids)} checks, e.g. {uids[-1]['ours_uid']}" if same else "; ".join(differ), same))
    goals.append(("wall per scrape below the single-threaded floor's",
                  f"{f(o['wall'])} vs {f(rows[top]['fu'] and rows[top]['fu']['wall'])} ms ({f(p['wall_floor'], 2)}x)",
                  p["wall_floor"] is not None and p["wall_floor"] < 1.0))
    if rows[top].get("ne"):
        goals.append((">= 1.5x less wall than node_exporter's processes collector",
                      f"{f(p['ne_wall'], 2)}x ({f(rows[top]['ne']['wall'])} vs {f(o['wall'])} ms)",
                      p["ne_wall"] is not None and p["ne_wall"] >= 1.5))
    else:
        goals.append((">= 1.5x less wall than node_exporter's processes collector", "node_exporter not installed", None))
    goals.append(("RSS <= 12 MiB", f"{f(o['rss'])} MiB (peak {f(o['hwm'])})", o["rss"] <= 12.0))
    lin = fits.get(("ours", "cpu"))
    if lin:
        per_n = [rows[nx]["ours"]["cpu"] / rows[nx]["ours"]["n"] * 1e3 for nx in ns]
        goals.append(("cost linear in N (CPU fit R² >= 0.99)",
                      f"slope {lin[1] * 1000:.1f} ms per 1,000 processes, R² {lin[2]:.4f}; µs per process at each N: "
                      + ", ".join(f"{x:.1f}" for x in per_n), lin[2] >= 0.99))
    ours_bursts = {k: v for k, v in burst_sums.items() if k[0] == "ours"}
    if ours_bursts:
        one_collection = all(r == 1 for v in ours_bursts.values() for r in v["ran"]) and \
            all(d == 1 for v in ours_bursts.values() for d in v["distinct"])
        goals.append((f"{bursts[0]['result']['count']} concurrent scrapes: one collection each time",
                      "; ".join(f"round {k[2]}: {v['ran']} collections, statuses {v['statuses']}" for k, v in ours_bursts.items()),
                      one_collection))
        worst = max((v["ratio"] for v in ours_bursts.values() if v["ratio"] is not None), default=None)
        goals.append(("... a burst's CPU within 1.2x of one scrape's",
                      ", ".join(f"round {k[2]}: {f(v['ratio'], 2)}x" for k, v in ours_bursts.items()),
                      worst is not None and worst <= 1.2))
sim = next((r for r in recs if r["kind"] == "sim"), None)
if sim is not None:
    goals.append(("macOS on SimKernel: <= N+T+3 calls, no allocation per pid",
                  "see the SimKernel table below", sim["status"] == 0 and "sim goals: met" in sim_text))

w("## Goals\n")
w("| goal | measured | met |")
w("|---|---|:---:|")
for goal, measured, ok in goals:
    w(f"| {goal} | {measured} | {'–' if ok is None else ('yes' if ok else 'NO')} |")
w("")
if sim_text:
    w("## SimKernel (cargo bench --bench sim_costs)\n")
    w(sim_text.strip())
    w("")
print("\n".join(out))
sys.exit(0 if all(ok is not False for _, _, ok in goals) else 2)
