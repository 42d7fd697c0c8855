#!/usr/bin/env bash
# Stops what .ci/slurm/start.sh started (only the processes it recorded: a munged it found running is
# left alone), cancels leftover jobs, and removes the /etc/slurm configuration it wrote. Idempotent.
set -uo pipefail
. "$(dirname "$0")/common.sh"
if ours slurmctld >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | xargs)
    [ -n "$jobs" ] && { say "cancelling jobs $jobs"; scancel $jobs; sleep 1; }
fi
rc=0
for name in slurmd slurmctld slurmdbd mariadbd munged; do
    stop_one "$name" || { echo "[ci-slurm] ERROR: could not stop $name" >&2; rc=1; }
done
if [ "$rc" = 0 ]; then
    for conf in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
        grep -qF "$MARKER" "$conf" 2>/dev/null && rm -f "$conf" && say "removed $conf"
    done
fi
exit "$rc"
