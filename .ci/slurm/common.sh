# Shared by start.sh and stop.sh: where the test cluster keeps its state, and its pid records.
# A record is "<pid> <exe>"; a daemon counts as ours only while that pid still runs that exe.
STATE=${ARCHBENCH_SLURM_DIR:-/tmp/archbench-slurm}
MARKER="# written by archbench .ci/slurm/start.sh (state in $STATE)"
# The emulated nodes: each slurmd in its own network + UTS namespace (hostname ab-node<i>, address
# $NET.1<i> on a bridge inside the controller's namespace); slurmctld in a third one (ab-ctl, $NET.1).
NODES=${ARCHBENCH_SLURM_NODES:-2}
NET=${ARCHBENCH_SLURM_NET:-10.213.0}
NS=archbench-slurm  # namespace names: $NS-ctl, $NS-node<i>
export PATH=$PATH:/usr/sbin:/sbin
say() { echo "[ci-slurm] $*"; }
die() { echo "[ci-slurm] ERROR: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: it installs packages and starts system daemons"

ours() {  # ours NAME -> prints the pid while the recorded process still runs the recorded exe
    local pid exe
    read -r pid exe 2>/dev/null <"$STATE/pids/$1" || return 1
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid"
}
alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
stop_one() {  # stop_one NAME: TERM, then KILL after 30 s; only a process this script recorded
    local pid i
    pid=$(ours "$1") || { rm -f "$STATE/pids/$1"; return 0; }
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null && sleep 0.5
    alive "$pid" && return 1
    rm -f "$STATE/pids/$1"
}
