#!/usr/bin/env bash
# benches/run.sh - what a scrape costs on Linux, against the floor and the peers, in one run.
#
# At N extra processes (N_LIST, default 1,000 5,000 10,000; exec'd /bin/sleep children held
# by benches/floor/spawn.c) it measures, interleaved so that drifts in background load hit
# every tool alike:
#   * libproc_exporter (release build, default collectors, procfs source): wall per scrape
#     (curl), CPU per scrape (utime + stime of the whole process from /proc/PID/stat, which
#     keeps the CPU of exited threads: the reader's worker threads live for one scrape),
#     RSS after the scrapes, bytes served, heap allocations of one /proc snapshot. It reads
#     the ids through pidfds where the kernel has PIDFD_GET_INFO (6.13+);
#   * the same binary on the status path ("ours_status", STATUS_PATH=1, root): started in a
#     pid namespace of its own (unshare --pid --fork), so /proc is another namespace's and
#     it reads every process's ids from /proc/PID/status, as on a kernel before 6.13;
#   * the C floor (benches/floor/floor.c), modes stat, status and pidfd: the least work per
#     scrape; status (stat + status of every pid, exact uids) is the reference for the CPU
#     goal, pidfd (stat + PIDFD_GET_INFO) the floor of the pidfd path;
#   * per-uid and per-ruid counts of the two paths and of ps, for the uids other than root
#     (root's processes come and go with whatever else the machine runs);
#   * node_exporter (--collector.disable-defaults --collector.processes) and
#     process-exporter (grouped by user), when installed (INSTALL_PEERS=1 installs the Debian
#     packages when run as root);
#   * at the largest N, BURST (50) scrapes at once, BURST_REPS times, each paired with a lone
#     scrape: one collection per burst, the burst's CPU against the lone scrape's;
#   * the macOS path on SimKernel (cargo bench --bench sim_costs): calls and allocations.
# Then benches/report.py prints the figures, the ratios, the slope per 1,000 processes and
# which goals are met; the raw records and the report stay in the work directory.
#
# Only processes this script starts are ever signalled: by pid, or by the process groups
# spawn.c created. The EXIT trap stops all of them, on failure and on Ctrl-C / TERM too.
#
# Usage:  benches/run.sh                        (as root; about 10 minutes on 2 cores)
#         N_LIST="1000 5000" ROUNDS=1 benches/run.sh
#         COMPARE_BIN=/path/to/other/libproc_exporter benches/run.sh   (A/B in the same run)
#         COMPARE_BIN=target/release/libproc_exporter COMPARE_ARGS=--no-collector.resources \
#           PEERS=0 benches/run.sh                  (one collector's cost: the same build without it)
# Exit status: 0 all goals met, 2 some goal missed (the report says which), 1 error.
set -u
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
N_LIST=${N_LIST:-"1000 5000 10000"}   # extra processes on top of the machine's own
ROUNDS=${ROUNDS:-2}                   # passes over N_LIST; odd passes run it in reverse order
SCRAPES=${SCRAPES:-20}                # timed scrapes per exporter per N per round (two halves)
PE_SCRAPES=${PE_SCRAPES:-6}           # process-exporter takes seconds per scrape at 10k
WARMUP=${WARMUP:-2}                   # untimed scrapes before each half
FLOOR_ITERS=${FLOOR_ITERS:-20}        # in-process iterations per floor run
FLOOR_REPS=${FLOOR_REPS:-3}           # floor runs per mode per N per round
BURST=${BURST:-50}                    # concurrent scrapes at the largest N
BURST_REPS=${BURST_REPS:-5}           # bursts, each paired with one lone scrape
PARENTS=${PARENTS:-10}                # process groups holding the extra processes
UIDS=${UIDS:-0,1,2,33,65534,1000}     # uids handed out to them in turn (root only)
INSTALL_PEERS=${INSTALL_PEERS:-0}     # 1: apt-get install the peers when missing (root)
PEERS=${PEERS:-1}                     # 0: leave the peers out (quick A/B runs with COMPARE_BIN)
SIM=${SIM:-1}                         # 1: also run the SimKernel cost bench
PORT=${PORT:-19077}                   # ours; the rest follow
ALT_PORT=${ALT_PORT:-19078}
NE_PORT=${NE_PORT:-19100}
PE_PORT=${PE_PORT:-19256}
COMPARE_BIN=${COMPARE_BIN:-}          # a second libproc_exporter binary measured beside ours
COMPARE_ARGS=${COMPARE_ARGS:-}        # flags for it (split on blanks), e.g. --no-collector.NAME
STATUS_PATH=${STATUS_PATH:-1}         # 1: also run ours on the status path (needs root and unshare)
STATUS_PORT=${STATUS_PORT:-19079}
WORK=${WORK:-$(mktemp -d /tmp/libproc-bench.XXXXXX)}
RAW=$WORK/raw.jsonl

STARTED_PIDS=()   # exporters this script started
SPAWN_PID=""      # the current spawn.c top process
SPAWN_PGIDS=""    # its process groups, comma separated

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A WORK given by the caller may not exist yet; everything below writes into it.
mkdir -p "$WORK" || die "cannot create the work directory $WORK"

stop_spawn() {
    [ -n "$SPAWN_PID" ] || return 0
    kill -TERM "$SPAWN_PID" 2>/dev/null
    local left=0
    for _ in $(seq 1 100); do kill -0 "$SPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SPAWN_PID" 2>/dev/null; then
        log "spawn $SPAWN_PID ignored TERM; killing its process groups"
        for g in ${SPAWN_PGIDS//,/ }; do kill -KILL -- "-$g" 2>/dev/null; done
        kill -KILL "$SPAWN_PID" 2>/dev/null
    fi
    wait "$SPAWN_PID" 2>/dev/null
    if [ -n "$SPAWN_PGIDS" ]; then
        for _ in $(seq 1 100); do
            left=$(pgrep -g "$SPAWN_PGIDS" -c 2>/dev/null || true)
            [ "${left:-0}" = 0 ] && break
            sleep 0.1
        done
        [ "${left:-0}" = 0 ] || log "WARNING: $left processes left in groups $SPAWN_PGIDS"
    fi
    SPAWN_PID=""; SPAWN_PGIDS=""
}

cleanup() {
    stop_spawn
    local p
    for p in "${STARTED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${STARTED_PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    STARTED_PIDS=()
    log "cleaned up; raw records and report in $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nprocs() { local n=0 d; for d in /proc/[0-9]*; do n=$((n+1)); done; echo "$n"; }
# utime + stime of the whole process in clock ticks, exited threads included (fields 14 and
# 15; counted after the comm, which may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# all CPUs' busy and total ticks from /proc/stat: user..steal (guest time is already in user)
# and busy = all but idle and iowait
machine_ticks() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_http() {
    for _ in $(seq 1 200); do
        curl -s -o /dev/null --max-time 30 "http://127.0.0.1:$1/metrics" && return 0
        sleep 0.1
    done
    return 1
}
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# ---------------------------------------------------------------- setup
[ "$(uname -s)" = Linux ] || die "the suite reads /proc: run it on Linux (the SimKernel bench runs anywhere: cargo bench --bench sim_costs)"
for t in cargo cc curl python3 awk sed pgrep ss; do
    command -v "$t" >/dev/null || die "missing $t"
done
MAX_N=0; for n in $N_LIST; do [ "$n" -gt "$MAX_N" ] && MAX_N=$n; done
if [ "$(id -u)" != 0 ]; then
    log "not root: the extra processes all run as uid $(id -u) (UIDS needs root)"
    UIDS=$(id -u)
fi
need=$(( $(nprocs) + MAX_N + PARENTS + 1000 ))
[ "$need" -lt "$(cat /proc/sys/kernel/pid_max)" ] || die "N=$MAX_N would come too close to kernel.pid_max"
ulimit_u=$(ulimit -u)
[ "$ulimit_u" = unlimited ] || [ "$need" -lt "$ulimit_u" ] || die "ulimit -u ($ulimit_u) is too low for N=$MAX_N"

NE_BIN=$(command -v prometheus-node-exporter || command -v node_exporter || true)
PE_BIN=$(command -v prometheus-process-exporter || command -v process-exporter || true)
[ "$PEERS" = 1 ] || { NE_BIN=""; PE_BIN=""; INSTALL_PEERS=0; }
if { [ -z "$NE_BIN" ] || [ -z "$PE_BIN" ]; } && [ "$INSTALL_PEERS" = 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing the peers (Debian packages)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            prometheus-node-exporter prometheus-process-exporter >"$WORK/apt.log" 2>&1 \
            || log "WARNING: apt-get failed (see $WORK/apt.log)"
        NE_BIN=$(command -v prometheus-node-exporter || true)
        PE_BIN=$(command -v prometheus-process-exporter || true)
    else
        log "INSTALL_PEERS=1 needs root and apt-get"
    fi
fi
[ -n "$NE_BIN" ] || log "node_exporter not installed (INSTALL_PEERS=1, as root, installs prometheus-node-exporter)"
[ -n "$PE_BIN" ] || log "process-exporter not installed (INSTALL_PEERS=1, as root, installs prometheus-process-exporter)"

log "building (release) in $REPO"
(cd "$REPO" && cargo build --release -q --bin libproc_exporter) || die "cargo build failed"
TARGET_DIR=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') \
    || die "cargo metadata failed"
# Copies: a rebuild in the tree during the run (others at work) must not change what is measured.
cp "$TARGET_DIR/release/libproc_exporter" "$WORK/libproc_exporter" || die "no release binary"
OURS_BIN="$WORK/libproc_exporter"
SIM_BIN=$(cd "$REPO" && cargo bench -q --bench sim_costs --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "sim_costs" and m.get("executable"):
        print(m["executable"])') || die "building the sim_costs bench failed"
[ -n "$SIM_BIN" ] && cp "$SIM_BIN" "$WORK/sim_costs" || die "building the sim_costs bench failed"
SIM_BIN="$WORK/sim_costs"
cc -O2 -Wall -o "$WORK/floor" "$HERE/floor/floor.c" || die "building the floor failed"
cc -O2 -Wall -o "$WORK/spawn" "$HERE/floor/spawn.c" || die "building spawn failed"

# tool name, port, pid: the exporters, in the order of a half batch
TOOLS=()
start_exporter() {  # NAME PORT LOGFILE COMMAND...
    local name=$1 port=$2 logf=$3; shift 3
    port_free "$port" || die "port $port (for $name) is in use; set the *_PORT variables"
    "$@" >"$logf" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    wait_http "$port" || die "$name did not answer on :$port (see $logf)"
    TOOLS+=("$name:$port:$pid")
    log "$name up: pid $pid :$port"
}
# Allow the whole burst in (the default --web.max-requests=40 answers the rest with 503).
start_exporter ours "$PORT" "$WORK/ours.log" \
    "$OURS_BIN" --web.listen-address="127.0.0.1:$PORT" --web.max-requests="$((BURST + 10))"
# Which path a libproc_exporter took: its start-up line says source=procfs/pidfd or procfs/status.
ids_path() { sed -n 's/.*source=procfs\/\([a-z]*\).*/\1/p' "$1" | head -1; }
OURS_IDS=$(ids_path "$WORK/ours.log")
log "ours reads the ids from: ${OURS_IDS:-unknown}"
STATUS_IDS=""
if [ "$STATUS_PATH" = 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    port_free "$STATUS_PORT" || die "port $STATUS_PORT (for ours_status) is in use; set STATUS_PORT"
    # unshare forks the exporter as pid 1 of a new pid namespace and waits for it; /proc stays
    # this namespace's mount, whose self link then names another pid than getpid().
    unshare --pid --fork --kill-child "$OURS_BIN" --web.listen-address="127.0.0.1:$STATUS_PORT" \
        --web.max-requests="$((BURST + 10))" >"$WORK/ours_status.log" 2>&1 &
    unshare_pid=$!
    STARTED_PIDS+=("$unshare_pid")
    wait_http "$STATUS_PORT" || die "ours_status did not answer on :$STATUS_PORT (see $WORK/ours_status.log)"
    status_pid=$(pgrep -P "$unshare_pid" | head -1)
    [ -n "$status_pid" ] || die "no exporter under unshare $unshare_pid"
    TOOLS+=("ours_status:$STATUS_PORT:$status_pid")
    STATUS_IDS=$(ids_path "$WORK/ours_status.log")
    log "ours_status up: pid $status_pid :$STATUS_PORT, reads the ids from: ${STATUS_IDS:-unknown}"
    [ "$STATUS_IDS" = status ] || die "ours_status did not take the status path (see $WORK/ours_status.log)"
elif [ "$STATUS_PATH" = 1 ]; then
    log "the status path is not measured: it needs root and unshare (STATUS_PATH=0 to skip)"
fi
if [ -n "$COMPARE_BIN" ]; then
    start_exporter alt "$ALT_PORT" "$WORK/alt.log" \
        "$COMPARE_BIN" --web.listen-address="127.0.0.1:$ALT_PORT" --web.max-requests="$((BURST + 10))" \
        $COMPARE_ARGS
fi
if [ -n "$NE_BIN" ]; then
    start_exporter ne "$NE_PORT" "$WORK/ne.log" \
        "$NE_BIN" --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults --collector.processes
fi
if [ -n "$PE_BIN" ]; then
    printf 'process_names:\n  - name: "{{.Username}}"\n    cmdline:\n    - ".*"\n' >"$WORK/pe.yml"
    start_exporter pe "$PE_PORT" "$WORK/pe.log" \
        "$PE_BIN" -web.listen-address "127.0.0.1:$PE_PORT" -config.path "$WORK/pe.yml"
fi

{
    printf '{"kind": "env", "date": "%s", "kernel": "%s", ' "$(date -u +%FT%TZ)" "$(uname -r)"
    printf '"cpu": %s, ' "$(json_str "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)")"
    printf '"cores": %s, "ram_gib": %s, ' "$(nproc)" "$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
    printf '"rustc": %s, ' "$(json_str "$(rustc --version)")"
    printf '"revision": %s, ' "$(json_str "$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown)")"
    printf '"ne": %s, ' "$(json_str "$([ -n "$NE_BIN" ] && "$NE_BIN" --version 2>&1 | head -1 || echo 'not installed')")"
    printf '"pe": %s, ' "$(json_str "$([ -n "$PE_BIN" ] && (dpkg-query -W -f='${Version}' prometheus-process-exporter 2>/dev/null || echo installed) || echo 'not installed')")"
    printf '"compare_bin": %s, ' "$(json_str "$COMPARE_BIN $COMPARE_ARGS")"
    printf '"ours_ids": %s, "ours_status_ids": %s, ' "$(json_str "$OURS_IDS")" "$(json_str "$STATUS_IDS")"
    printf '"clk_tck": %s, "settings": %s}\n' "$(getconf CLK_TCK)" \
        "$(json_str "N_LIST='$N_LIST' ROUNDS=$ROUNDS SCRAPES=$SCRAPES PE_SCRAPES=$PE_SCRAPES WARMUP=$WARMUP FLOOR_ITERS=$FLOOR_ITERS FLOOR_REPS=$FLOOR_REPS BURST=$BURST BURST_REPS=$BURST_REPS PARENTS=$PARENTS UIDS=$UIDS")"
} >>"$RAW"

# ---------------------------------------------------------------- measurements
# scrape_batch NAME PORT PID N_EXTRA SCRAPES: WARMUP untimed, then timed scrapes.
scrape_batch() {
    local name=$1 port=$2 pid=$3 nx=$4 k=$5 url="http://127.0.0.1:$2/metrics"
    local body="$WORK/body.$name.$nx" times="$WORK/times" i c0 c1 n0 m0 m1 mt0 mt1
    for ((i = 0; i < WARMUP; i++)); do curl -s -o /dev/null --max-time 300 "$url"; done
    n0=$(nprocs)
    read -r m0 mt0 < <(machine_ticks)
    c0=$(cpu_ticks "$pid")
    : >"$times"
    for ((i = 0; i < k; i++)); do
        curl -s -o "$body" --max-time 300 -w '%{time_total}\n' "$url" >>"$times"
    done
    c1=$(cpu_ticks "$pid")
    read -r m1 mt1 < <(machine_ticks)
    # machine_* say how busy the machine was meanwhile, for reading the wall figures
    printf '{"kind": "scrape", "tool": "%s", "round": %d, "batch": %d, "n_extra": %d, "n_procs": %d, "scrapes": %d, "cpu_ticks": %d, "machine_busy_ticks": %d, "machine_ticks": %d, "times_s": [%s], "rss_kib": %d, "hwm_kib": %d, "bytes": %d, "series": %d, "threads": %d}\n' \
        "$name" "$ROUND" "$BATCH" "$nx" "$n0" "$k" $((c1 - c0)) $((m1 - m0)) $((mt1 - mt0)) "$(paste -sd, "$times")" \
        "$(status_kib "$pid" VmRSS)" "$(status_kib "$pid" VmHWM)" "$(wc -c <"$body")" \
        "$(grep -vc '^#' "$body")" "$(status_kib "$pid" Threads)" >>"$RAW"
}

half_batch() {  # N_EXTRA, tools in the given order
    local nx=$1 entry name port pid k; shift
    for entry in "$@"; do
        IFS=: read -r name port pid <<<"$entry"
        k=$((SCRAPES / 2)); [ "$name" = pe ] && k=$((PE_SCRAPES / 2))
        scrape_batch "$name" "$port" "$pid" "$nx" "$k"
    done
}

floor_runs() {
    local nx=$1 mode r line
    for ((r = 0; r < FLOOR_REPS; r++)); do
        for mode in stat status pidfd; do
            line=$("$WORK/floor" -q -n "$FLOOR_ITERS" -m "$mode" 2>&1 >/dev/null)
            # key=value pairs -> JSON (mode is the one string)
            printf '%s\n' "$line" | awk -v nx="$nx" -v rnd="$ROUND" '{
                printf "{\"kind\": \"floor\", \"round\": %d, \"n_extra\": %d", rnd, nx
                for (i = 1; i <= NF; i++) { split($i, kv, "=")
                    if (kv[1] == "mode") printf ", \"mode\": \"%s\"", kv[2]; else printf ", \"%s\": %s", kv[1], kv[2] }
                print "}" }' >>"$RAW"
        done
    done
}

allocs_run() {
    local nx=$1 line
    line=$("$SIM_BIN" procfs) || { log "allocation count failed"; return; }
    printf '{"kind": "allocs", "round": %d, "n_extra": %d, "result": %s}\n' "$ROUND" "$nx" "$line" >>"$RAW"
}

# uid=count pairs of one metric in a body, root left out, sorted: "33=1000 65534=1000 ..."
uid_counts() {
    awk -v m="$2" 'index($0, m "{") == 1 && match($0, /uid="[0-9]+"/) {
        u = substr($0, RSTART + 5, RLENGTH - 6); if (u != "0") print u "=" $NF }' "$1" | sort | paste -sd' '
}
# ps's view of the same: per euid and per ruid, root left out.
ps_counts() { ps -e -o "$1=" | awk '$1 != 0 {n[$1]++} END {for (u in n) print u "=" n[u]}' | sort | paste -sd' '; }
# The per-uid and per-ruid counts of both paths and of ps, back to back (the spawned
# processes do not change meanwhile; the machine's own non-root processes rarely do).
uid_check() {
    local nx=$1 entry name port pid
    [ -n "$STATUS_IDS" ] || return 0
    for entry in "${TOOLS[@]}"; do
        IFS=: read -r name port pid <<<"$entry"
        case $name in ours | ours_status) curl -s -o "$WORK/uids.$name" --max-time 300 "http://127.0.0.1:$port/metrics" ;; esac
    done
    printf '{"kind": "uids", "round": %d, "n_extra": %d, "ours_uid": %s, "status_uid": %s, "ps_uid": %s, "ours_ruid": %s, "status_ruid": %s, "ps_ruid": %s}\n' \
        "$ROUND" "$nx" \
        "$(json_str "$(uid_counts "$WORK/uids.ours" libproc_uid_processes)")" \
        "$(json_str "$(uid_counts "$WORK/uids.ours_status" libproc_uid_processes)")" \
        "$(json_str "$(ps_counts euid)")" \
        "$(json_str "$(uid_counts "$WORK/uids.ours" libproc_ruid_processes)")" \
        "$(json_str "$(uid_counts "$WORK/uids.ours_status" libproc_ruid_processes)")" \
        "$(json_str "$(ps_counts ruid)")" >>"$RAW"
}

collections() {  # PORT: scrape once, print libproc_collections_total (this scrape's included)
    curl -s --max-time 300 "http://127.0.0.1:$1/metrics" | awk '$1 == "libproc_collections_total" {print $2}'
}

# BURST_REPS times: BURST scrapes at once, then one lone scrape, each timed in CPU; the lone
# scrape also reads libproc_collections_total, so the collections a burst ran are counted.
burst_run() {
    local nx=$1 entry name port pid c0 c1 c2 out before after rep
    for entry in "${TOOLS[@]}"; do
        IFS=: read -r name port pid <<<"$entry"
        case $name in ours | alt) ;; *) continue ;; esac
        before=$(collections "$port")
        for ((rep = 0; rep < BURST_REPS; rep++)); do
            c0=$(cpu_ticks "$pid")
            out=$(python3 "$HERE/burst.py" 127.0.0.1 "$port" /metrics "$BURST") || { log "burst failed"; break; }
            c1=$(cpu_ticks "$pid")
            after=$(collections "$port")   # counts itself: before + the burst's + 1
            c2=$(cpu_ticks "$pid")
            printf '{"kind": "burst", "tool": "%s", "round": %d, "rep": %d, "n_extra": %d, "cpu_ticks": %d, "single_cpu_ticks": %d, "collections_before": %s, "collections_after": %s, "result": %s}\n' \
                "$name" "$ROUND" "$rep" "$nx" $((c1 - c0)) $((c2 - c1)) "${before:-null}" "${after:-null}" "$out" >>"$RAW"
            before=$after
        done
    done
}

start_spawn() {
    local n=$1
    "$WORK/spawn" -n "$n" -p "$PARENTS" -u "$UIDS" -t 3600 -x >"$WORK/spawn.out" 2>&1 &
    SPAWN_PID=$!
    for _ in $(seq 1 600); do grep -q '^ready' "$WORK/spawn.out" && break; sleep 0.1; done
    grep -q '^ready' "$WORK/spawn.out" || die "spawn did not get ready: $(cat "$WORK/spawn.out")"
    SPAWN_PGIDS=$(sed -n 's/^pgids: //p' "$WORK/spawn.out" | tr ' ' ',')
    local got=0
    for _ in $(seq 1 600); do   # until every child has exec'd sleep
        got=$(pgrep -g "$SPAWN_PGIDS" -x sleep -c 2>/dev/null || true)
        [ "${got:-0}" -ge "$n" ] && break
        sleep 0.1
    done
    log "spawned $got/$n in groups $SPAWN_PGIDS; /proc has $(nprocs) processes; load $(cut -d' ' -f1-3 /proc/loadavg)"
    sleep 1
}

run_n() {
    local nx=$1 reversed=() i
    start_spawn "$nx"
    printf '{"kind": "load", "round": %d, "n_extra": %d, "loadavg": "%s"}\n' "$ROUND" "$nx" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"
    for ((i = ${#TOOLS[@]} - 1; i >= 0; i--)); do reversed+=("${TOOLS[i]}"); done
    BATCH=0; half_batch "$nx" "${TOOLS[@]}"
    floor_runs "$nx"
    allocs_run "$nx"
    BATCH=1; half_batch "$nx" "${reversed[@]}"
    uid_check "$nx"
    [ "$nx" = "$MAX_N" ] && burst_run "$nx"
    stop_spawn
    log "round $ROUND N=$nx done"
}

for ((ROUND = 0; ROUND < ROUNDS; ROUND++)); do
    order=$N_LIST
    ((ROUND % 2 == 1)) && order=$(echo $N_LIST | tr ' ' '\n' | tac | tr '\n' ' ')
    for nx in $order; do run_n "$nx"; done
done

if [ "$SIM" = 1 ]; then
    log "SimKernel cost bench"
    "$SIM_BIN" >"$WORK/sim.md" 2>"$WORK/sim.err"
    echo "{\"kind\": \"sim\", \"status\": $?}" >>"$RAW"
fi

python3 "$HERE/report.py" "$RAW" "$WORK/sim.md" | tee "$WORK/report.md"
status=${PIPESTATUS[0]}
log "report: $WORK/report.md"
[ "$status" = 0 ] || [ "$status" = 2 ] || die "report failed"
exit "$status"
