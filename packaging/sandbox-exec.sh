#!/usr/bin/env bash
# sandbox-exec.sh UNIT RUNTIME_DIR STATE_DIR -- COMMAND [ARGS...]
#
# Runs COMMAND with the kernel-level equivalents of UNIT's sandbox options,
# for machines without systemd (the lab) and to check that the unit's
# options leave ipoed working:
#   CapabilityBoundingSet=  -> setpriv --bounding-set (and nothing else held)
#   NoNewPrivileges=yes     -> setpriv --no-new-privs
#   ProtectSystem=strict    -> a private mount namespace where every mount
#                              but /proc, /sys and /dev is read-only, except
#                              RUNTIME_DIR and STATE_DIR (RuntimeDirectory=,
#                              StateDirectory=)
#   ProtectHome=yes         -> /home and /root hidden by empty tmpfs
#   PrivateTmp=yes          -> a private /tmp
#   UMask=                  -> umask
# The other options (seccomp filters, RestrictAddressFamilies, ...) need
# systemd; they only forbid what ipoed never does.
set -euo pipefail
unit=$1 runtime=$2 state=$3
shift 3
[[ ${1:-} == -- ]] && shift

opt() { sed -n "s/^$1=//p" "$unit" | tail -n1; }

caps=$(opt CapabilityBoundingSet | tr 'A-Z' 'a-z' | sed 's/cap_//g')
bounding="-all"
for c in $caps; do bounding+=",+$c"; done
setpriv=(setpriv "--bounding-set=$bounding" "--inh-caps=-all")
[[ $(opt NoNewPrivileges) == yes ]] && setpriv+=(--no-new-privs)
umask_v=$(opt UMask)

mkdir -p "$runtime" "$state"
# The mount work runs in the new namespace, then execs COMMAND.
exec unshare --mount --propagation private bash -c '
    set -euo pipefail
    runtime=$1 state=$2 protect_system=$3 protect_home=$4 private_tmp=$5 umask_v=$6
    shift 6
    if [[ $protect_system == strict ]]; then
        # Bind the writable directories onto themselves first, so they are
        # mounts of their own that keep rw below a read-only parent.
        mount --bind "$runtime" "$runtime"
        mount --bind "$state" "$state"
        awk "{print \$2}" /proc/self/mounts | sort -u | while read -r m; do
            case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
            [[ $m == "$runtime" || $m == "$state" ]] && continue
            mount -o remount,bind,ro "$m" 2>/dev/null || true
        done
    fi
    if [[ $private_tmp == yes ]]; then mount -t tmpfs -o mode=1777 private-tmp /tmp; fi
    if [[ $protect_home == yes ]]; then
        for h in /home /root; do [[ -d $h ]] && mount -t tmpfs -o ro,mode=0755 protect-home "$h"; done
    fi
    [[ -n $umask_v ]] && umask "$umask_v"
    exec "$@"
' sandbox "$runtime" "$state" "$(opt ProtectSystem)" "$(opt ProtectHome)" "$(opt PrivateTmp)" "$umask_v" \
    "${setpriv[@]}" "$@"
