#!/usr/bin/env bash
# Stops what .ci/slurm/start.sh started (only the processes it recorded: a munged it found running is
# left alone), cancels leftover jobs, removes the network namespaces and the /etc/slurm and
# /etc/netns configuration it wrote. Idempotent.
set -uo pipefail
. "$(dirname "$0")/common.sh"
if ours slurmctld >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | xargs)
    [ -n "$jobs" ] && { say "cancelling jobs $jobs"; scancel $jobs; sleep 1; }
fi
rc=0
names=$(cd "$STATE/pids" 2>/dev/null && ls slurmd-* relay-ctld-node* 2>/dev/null)
for name in $names slurmctld relay-ctld-host relay-ctld-ctl relay-dbd-ctl relay-dbd-host slurmdbd mariadbd munged; do
    stop_one "$name" || { echo "[ci-slurm] ERROR: could not stop $name" >&2; rc=1; }
done
if [ "$rc" = 0 ]; then
    for conf in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
        grep -qF "$MARKER" "$conf" 2>/dev/null && rm -f "$conf" && say "removed $conf"
    done
    # The namespaces start.sh created (listed in $STATE/netns); deleting one removes its links too.
    for ns in $(cat "$STATE/netns" 2>/dev/null); do
        if grep -qF "$MARKER" "/etc/netns/$ns/hosts" 2>/dev/null; then
            rm -f "/etc/netns/$ns/hosts"; rmdir "/etc/netns/$ns" 2>/dev/null
        fi
        if ip netns list | grep -qw "$ns"; then
            for ((i = 0; i < 100; i++)); do  # relay children end with their connections
                [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1
            done
            if [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; then
                echo "[ci-slurm] ERROR: processes still run in namespace $ns: $(ip netns pids "$ns" | xargs)" >&2
                rc=1; continue
            fi
            ip netns del "$ns" && say "removed network namespace $ns"
        fi
    done
    rmdir /etc/netns 2>/dev/null
    [ "$rc" = 0 ] && rm -f "$STATE/netns"
fi
exit "$rc"
