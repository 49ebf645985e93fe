#!/bin/bash
# Installs libproc_exporter as a macOS LaunchDaemon and starts it.
#
#   sudo deploy/launchd/install.sh --binary ./libproc_exporter --create-user
#
# Every path comes from the plist next to this script (the binary is ProgramArguments[0], the
# log folder is the folder of StandardErrorPath, the user is UserName), so the plist is the
# one place to change them. Safe to run again: an upgrade stops the running job, replaces the
# binary and the plist, and starts it again.
#
# Options:
#   --binary PATH   the libproc_exporter binary to install (default: ./libproc_exporter, then
#                   target/release/libproc_exporter of this checkout)
#   --plist PATH    the LaunchDaemon plist (default: the one next to this script)
#   --create-user   create the service user (UserName in the plist) if it does not exist
#   --as-root       run the exporter as root: drops UserName/GroupName from the installed
#                   plist (see README.md, "Which user", for what that does and does not buy)
#   --root DIR      stage the files below DIR instead of /, without touching launchd or the
#                   user database (for packaging, and for the tests on Linux)
#
# Written for the /bin/bash 3.2 that ships with macOS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
binary=""
plist_src="$here/io.github.libproc-exporter.plist"
create_user=0
as_root=0
root=""

while (($#)); do
    common_option "$@"
    if ((shifted)); then
        shift "$shifted"
        continue
    fi
    case "$1" in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --create-user) create_user=1; shift ;;
        --as-root) as_root=1; shift ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# ---------------------------------------------------------------- read the plist
read_plist
if ((as_root)); then
    service_user=""
fi

case "$bin_path" in
    /*) ;;
    *) die "ProgramArguments[0] must be an absolute path, not $bin_path" ;;
esac
case "$log_dir" in
    /tmp | /tmp/* | /private/tmp | /private/tmp/*) die "logs belong in a system log folder, not $log_dir" ;;
esac

# ---------------------------------------------------------------- checks
check_live installs
if ((!live)); then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
fi

if [[ -z "$binary" ]]; then
    for candidate in ./libproc_exporter "$here/../../target/release/libproc_exporter"; do
        if [[ -x "$candidate" ]]; then
            binary=$candidate
            break
        fi
    done
fi
[[ -n "$binary" ]] || die "no binary found: pass --binary PATH (cargo build --release makes target/release/libproc_exporter)"
[[ -f "$binary" && -x "$binary" ]] || die "$binary is not an executable file"


# ---------------------------------------------------------------- the service user
if [[ -n "$service_user" ]]; then
    if ((!live)); then
        echo "staging: not checking or creating user $service_user"
    elif user_exists "$service_user"; then
        ensure_service_user "$service_user"
    elif ((create_user)); then
        ensure_service_user "$service_user"
    else
        die "user $service_user does not exist: pass --create-user to create it, or --as-root"
    fi
fi

# ---------------------------------------------------------------- stop the old job
is_loaded() {
    launchctl print "system/$label" >/dev/null 2>&1
}

if ((live)) && is_loaded; then
    run launchctl bootout "system/$label" || true
    # bootout returns before the job is gone; bootstrapping too early fails with EIO.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        is_loaded || break
        sleep 1
    done
    ! is_loaded || die "system/$label is still loaded after bootout"
fi

# ---------------------------------------------------------------- files
owner_opts=()
log_owner_opts=()
if ((live)); then
    owner_opts=(-o root -g wheel)
    if [[ -n "$service_user" ]]; then
        # Numeric ids straight from the directory: right after --create-user, name lookups
        # through the cache may not see the user yet.
        log_owner_opts=(
            -o "$(dscl . -read "/Users/$service_user" UniqueID | awk '{print $2}')"
            -g "$(dscl . -read "/Users/$service_user" PrimaryGroupID | awk '{print $2}')"
        )
    else
        log_owner_opts=(-o root -g wheel)
    fi
fi

run install -d -m 0755 "$root$(dirname "$bin_path")"
run install ${owner_opts[@]+"${owner_opts[@]}"} -m 0755 "$binary" "$root$bin_path"
if ((live)); then
    # A binary downloaded with a browser carries the quarantine flag; launchd would then have
    # Gatekeeper kill it at every start.
    xattr -d com.apple.quarantine "$bin_path" 2>/dev/null || true
fi

run install -d ${log_owner_opts[@]+"${log_owner_opts[@]}"} -m 0750 "$root$log_dir"

run install -d -m 0755 "$root$(dirname "$plist_path")"
tmp_plist=$(mktemp "${TMPDIR:-/tmp}/libproc_exporter.plist.XXXXXX")
trap 'rm -f "$tmp_plist"' EXIT
if ((as_root)); then
    # Drop <key>UserName</key> and <key>GroupName</key> with the line that follows each.
    awk '/<key>(UserName|GroupName)<\/key>/ { skip = 2 } skip { skip--; next } { print }' \
        "$plist_src" >"$tmp_plist"
else
    cp "$plist_src" "$tmp_plist"
fi
run install ${owner_opts[@]+"${owner_opts[@]}"} -m 0644 "$tmp_plist" "$root$plist_path"
if ((live)); then
    run plutil -lint "$plist_path"
fi

# The flags in the plist, parsed by the binary that will run them.
args=()
while IFS= read -r arg; do
    args+=("$arg")
done < <(plist_program_arguments)
set -- "${args[@]}"
shift
echo "+ $root$bin_path $* --check-config"
"$root$bin_path" "$@" --check-config || die "the binary rejected the flags in $plist_src"

# ---------------------------------------------------------------- start
if ((!live)); then
    echo "staged below $root (launchd not touched)"
    exit 0
fi

run launchctl enable "system/$label"
run launchctl bootstrap system "$plist_path"

for _ in 1 2 3 4 5 6 7 8 9 10; do
    if launchctl print "system/$label" 2>/dev/null | grep -q 'state = running'; then
        echo "libproc_exporter is running: curl -s http://localhost:10077/metrics | head"
        echo "logs: $log_file"
        exit 0
    fi
    sleep 1
done
die "system/$label did not reach the running state; see $log_file and: launchctl print system/$label"
