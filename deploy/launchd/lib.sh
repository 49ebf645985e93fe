# shellcheck shell=bash
# plist_src is the caller's (set before sourcing): shellcheck cannot see it assigned here.
# shellcheck disable=SC2154
#
# Shared by install.sh and uninstall.sh (sourced, not run): reading the plist, and the
# service account in the local directory.
#
# Sourced first thing; the plist readers read the caller's plist_src.
# Written for the /bin/bash 3.2 that ships with macOS.

# The message, after the script's name, on stderr; then exit 1.
die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# The script's header comment, as --help.
usage() {
    sed -n '2,/^# Written/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^Written/d'
}

# Runs a command that changes the system, showing it first.
run() {
    echo "+ $*"
    "$@"
}

# The options both scripts take, $1 (and $2): --plist PATH, --root DIR and --help. Sets
# plist_src or root, and `shifted` to the words used: 0 when $1 is none of them.
# plist_src and root are the callers' variables, which shellcheck cannot see used from here.
# shellcheck disable=SC2034
common_option() {
    shifted=0
    case "$1" in
        --plist) plist_src=${2:?--plist needs a path}; shifted=2 ;;
        --plist=*) plist_src=${1#*=}; shifted=1 ;;
        --root) root=${2:?--root needs a directory}; shifted=2 ;;
        --root=*) root=${1#*=}; shifted=1 ;;
        -h | --help) usage; exit 0 ;;
    esac
}

# Sets `live`: 1 for the real thing (macOS, as root), 0 when staging below --root DIR.
# $1 says what the script does, for the refusal on another OS.
# shellcheck disable=SC2034
check_live() {
    live=1
    [[ -n "$root" ]] && live=0
    if ((live)); then
        [[ "$(uname -s)" == Darwin ]] || die "this $1 a macOS LaunchDaemon; use --root DIR for a staged copy"
        [[ "$(id -u)" -eq 0 ]] || die "run as root (sudo $0 ...)"
    fi
}

# The <string> following <key>$1</key> at the top level of the plist.
plist_string() {
    awk -v key="$1" '
        $0 ~ "<key>" key "</key>" { want = 1; next }
        want && /<string>/ { sub(/.*<string>/, ""); sub(/<\/string>.*/, ""); print; exit }
        want && /<key>/ { exit }
    ' "$plist_src"
}

# The ProgramArguments strings, one per line.
plist_program_arguments() {
    awk '
        /<key>ProgramArguments<\/key>/ { inside = 1; next }
        inside && /<\/array>/ { exit }
        inside && /<string>/ { sub(/.*<string>/, ""); sub(/<\/string>.*/, ""); print }
    ' "$plist_src"
}

# What both scripts need from the plist at $plist_src, checked: label, service_user,
# log_file, log_dir, bin_path (ProgramArguments[0]) and plist_path (where it is installed).
# They are the callers' variables, which shellcheck cannot see used from here.
# shellcheck disable=SC2034
read_plist() {
    [[ -f "$plist_src" ]] || die "no plist at $plist_src"
    label=$(plist_string Label)
    service_user=$(plist_string UserName)
    log_file=$(plist_string StandardErrorPath)
    bin_path=$(plist_program_arguments | head -n 1)
    [[ -n "$label" ]] || die "$plist_src has no Label"
    [[ -n "$log_file" ]] || die "$plist_src has no StandardErrorPath"
    [[ -n "$bin_path" ]] || die "$plist_src has no ProgramArguments"
    log_dir=$(dirname "$log_file")
    plist_path=/Library/LaunchDaemons/$label.plist
}

user_exists() {
    dscl . -read "/Users/$1" UniqueID >/dev/null 2>&1
}

group_exists() {
    dscl . -read "/Groups/$1" PrimaryGroupID >/dev/null 2>&1
}

# The highest id from 499 down to 350 that is free both as a uid and as a gid, for account $1.
#
# Below 500 the account is hidden from the login window, the range macOS keeps for daemons.
# Apple's own accounts fill it from 200 up and macOS updates add to them: the macOS 15 update
# took 301-304 from third-party accounts (Nix's build users, which then moved to 350 and up
# on Apple's advice: NixOS/nix#11075). Counting down from 499 stays clear of both blocks.
free_system_id() {
    local used id=499
    used=$({
        dscl . -list /Users UniqueID | awk '{print $2}'
        dscl . -list /Groups PrimaryGroupID | awk '{print $2}'
    } | sort -n -u)
    while grep -qx "$id" <<<"$used"; do
        id=$((id - 1))
    done
    ((id >= 350)) || die "no free id from 499 down to 350 for $1"
    echo "$id"
}

# Creates the hidden service account $1 (and its group) unless it exists: running the
# installer again, or over an older install, keeps the account and its id.
ensure_service_user() {
    local name=$1 id gid
    if user_exists "$name"; then
        echo "user $name exists (uid $(dscl . -read "/Users/$name" UniqueID | awk '{print $2}'))"
        return
    fi
    id=$(free_system_id "$name")
    if ! group_exists "$name"; then
        run dscl . -create "/Groups/$name"
        run dscl . -create "/Groups/$name" PrimaryGroupID "$id"
        run dscl . -create "/Groups/$name" RealName "libproc_exporter daemon"
        run dscl . -create "/Groups/$name" Password "*"
    fi
    gid=$(dscl . -read "/Groups/$name" PrimaryGroupID | awk '{print $2}')
    run dscl . -create "/Users/$name"
    run dscl . -create "/Users/$name" UniqueID "$id"
    run dscl . -create "/Users/$name" PrimaryGroupID "$gid"
    run dscl . -create "/Users/$name" UserShell /usr/bin/false
    run dscl . -create "/Users/$name" NFSHomeDirectory /var/empty
    run dscl . -create "/Users/$name" RealName "libproc_exporter daemon"
    run dscl . -create "/Users/$name" Password "*"
    run dscl . -create "/Users/$name" IsHidden 1
    # Directory services cache negative lookups; launchd and install must see the new user.
    dscacheutil -flushcache 2>/dev/null || true
}

# The pid launchd holds for the running service system/$1 (the `pid = N` line that
# `launchctl print` shows while it runs), or nothing. Anyone may read the system domain
# (launchctl(1)), so this works as any user, where `pgrep -f` does not: xnu hides another
# uid's arguments from a non-root caller (docs/macos-road.md, "Finding the daemon's pid").
service_pid() {
    # Not loaded (launchctl exits 113) is no error here: there is simply no pid.
    { launchctl print "system/$1" 2>/dev/null || true; } |
        awk '$1 == "pid" && $2 == "=" { print $3; exit }'
}

# Waits for launchd to start system/$1 again after the process $2 died: prints the new pid,
# or fails after $3 seconds (default 60; launchd waits ThrottleInterval, and crash
# reporting on a busy runner can add as much again).
wait_for_restart() {
    local service=$1 old=$2 limit=${3:-60} waited=0 pid
    while ((waited < limit)); do
        pid=$(service_pid "$service")
        if [[ -n "$pid" && "$pid" != "$old" ]]; then
            echo "$pid"
            return 0
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "$(basename "$0"): system/$service was not restarted within ${limit}s (pid still ${pid:-none})" >&2
    return 1
}
