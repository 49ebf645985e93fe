#!/bin/bash
# Stops libproc_exporter and removes what install.sh put in place.
#
#   sudo deploy/launchd/uninstall.sh [--remove-logs] [--remove-user]
#
# Paths come from the plist next to this script, as in install.sh. Safe to run again: what is
# already gone is skipped. The log folder and the service user stay unless asked for.
#
# Options:
#   --plist PATH     the plist install.sh used (default: the one next to this script)
#   --remove-logs    also delete the log folder
#   --remove-user    also delete the service user and its group
#   --root DIR       remove files staged below DIR by `install.sh --root DIR` (launchd and the
#                    user database are not touched)
#
# Written for the /bin/bash 3.2 that ships with macOS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
plist_src="$here/io.github.libproc-exporter.plist"
remove_logs=0
remove_user=0
root=""

while (($#)); do
    common_option "$@"
    if ((shifted)); then
        shift "$shifted"
        continue
    fi
    case "$1" in
        --remove-logs) remove_logs=1; shift ;;
        --remove-user) remove_user=1; shift ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

read_plist

check_live removes
if ((!live)); then
    [[ -d "$root" ]] || { echo "nothing staged below $root"; exit 0; }
    root=$(cd "$root" && pwd)
fi


if ((live)); then
    if launchctl print "system/$label" >/dev/null 2>&1; then
        run launchctl bootout "system/$label" || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            launchctl print "system/$label" >/dev/null 2>&1 || break
            sleep 1
        done
    else
        echo "system/$label is not loaded"
    fi
fi

for file in "$root$plist_path" "$root$bin_path"; do
    if [[ -e "$file" ]]; then
        run rm -f "$file"
    else
        echo "already gone: $file"
    fi
done

if ((remove_logs)) && [[ -d "$root$log_dir" ]]; then
    # Only a folder of our own: a plist logging to /var/log/x.log must not cost /var/log.
    case "$(basename "$log_dir")" in
        *libproc_exporter*) run rm -rf "$root$log_dir" ;;
        *) echo "not removing $log_dir: not a libproc_exporter folder; remove $log_file by hand" ;;
    esac
fi

if ((remove_user)) && [[ -n "$service_user" ]]; then
    if ((!live)); then
        echo "staging: not removing user $service_user"
    else
        if user_exists "$service_user"; then
            run dscl . -delete "/Users/$service_user"
        fi
        if group_exists "$service_user"; then
            run dscl . -delete "/Groups/$service_user"
        fi
    fi
fi

echo "libproc_exporter removed"
