#!/usr/bin/env bash
# A single-node Slurm (with accounting, so `sacct` works as the Snakemake plugin expects) for the
# `slurm`-marked tests, on Debian/Ubuntu as root: installs what is missing, writes /etc/slurm/*.conf,
# starts munged, a private MariaDB, slurmdbd, slurmctld and slurmd, and waits for the node to be idle.
# Idempotent. ALWAYS run .ci/slurm/stop.sh afterwards: while /etc/slurm/slurm.conf exists without a
# running slurmctld, every Snakemake start waits ~9 s in `scontrol show config`.
# Partition: $ARCHBENCH_SLURM_PARTITION (default debug). Node: `hostname -s`, all CPUs, 90% of memory.
set -euo pipefail
. "$(dirname "$0")/common.sh"
PARTITION=${ARCHBENCH_SLURM_PARTITION:-debug}
DB_PORT=${ARCHBENCH_SLURM_DB_PORT:-13306}
mkdir -p "$STATE"/{log,pids,ctld,slurmd,run,db}

wait_for() {  # wait_for CMD...: up to 60 s
    local i; for ((i = 0; i < 240; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done; return 1
}
pidfile() { wait_for test -s "$1" && tr -dc 0-9 <"$1"; }
record() { echo "$2 $(readlink "/proc/$2/exe")" >"$STATE/pids/$1"; }
write_conf() {  # write_conf PATH MODE < text: refuses to replace a configuration that is not ours
    local text; text=$(cat)
    if [ -e "$1" ] && ! grep -qF "$MARKER" "$1"; then die "$1 exists and is not ours; not replacing it"; fi
    [ "$(cat "$1" 2>/dev/null)" = "$text" ] && return 1
    (umask 077; printf '%s\n' "$text" >"$1"); chmod "$2" "$1"
}

# Packages (Debian's): ~17 with their dependencies, seconds when cached.
need=()
for bin in munged slurmctld slurmd slurmdbd sinfo sacctmgr mariadbd mariadb-install-db; do
    command -v "$bin" >/dev/null || need+=("$bin")
done
if [ "${#need[@]}" -gt 0 ]; then
    say "installing Slurm and MariaDB (missing: ${need[*]})"
    pkgs=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server-core mariadb-client-core)
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >"$STATE/log/apt.log" 2>&1 \
        || { apt-get update >>"$STATE/log/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$STATE/log/apt.log" 2>&1; } \
        || die "apt-get install failed (log: $STATE/log/apt.log)"
fi

# munge: reuse a running one (not ours: stop.sh leaves it alone), else start our own.
munge_ok() { munge -n </dev/null | unmunge >/dev/null; }
if ! ours munged >/dev/null && ! munge_ok 2>/dev/null; then
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    chmod 600 /etc/munge/munge.key
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --force || die "munged failed (/var/log/munge/munged.log)"
    record munged "$(pidfile /run/munge/munged.pid)"
    wait_for munge_ok || die "munge does not work (/var/log/munge/munged.log)"
fi

# Configuration. Changing it restarts our daemons.
node=$(hostname -s)
mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
[ -s "$STATE/db_pass" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$STATE/db_pass")
mkdir -p /etc/slurm
changed=0
write_conf /etc/slurm/slurm.conf 644 <<CONF && changed=1 || true
$MARKER
ClusterName=archbench-ci
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=300
DefMemPerCPU=1000
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
write_conf /etc/slurm/slurmdbd.conf 600 <<CONF && changed=1 || true
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$STATE/db_pass")
StorageLoc=slurm_acct_db
CONF
[ "$changed" = 1 ] && for d in slurmd slurmctld slurmdbd; do stop_one "$d"; done

# Accounting database: a private MariaDB on 127.0.0.1:$DB_PORT, data under $STATE/db.
sql() { mariadb --no-defaults -S "$STATE/db/sock" -u root "$@"; }
if ! ours mariadbd >/dev/null; then
    [ -d "$STATE/db/data/mysql" ] || mariadb-install-db --no-defaults --user=root --datadir="$STATE/db/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 \
        || die "mariadb-install-db failed ($STATE/log/mariadb-install.log)"
    rm -f "$STATE/db/pid"
    setsid /usr/sbin/mariadbd --no-defaults --user=root --datadir="$STATE/db/data" --socket="$STATE/db/sock" \
        --pid-file="$STATE/db/pid" --port="$DB_PORT" --bind-address=127.0.0.1 --log-error="$STATE/log/mariadbd.log" \
        </dev/null >/dev/null 2>&1 &
    wait_for sql -e "SELECT 1" || die "MariaDB did not start ($STATE/log/mariadbd.log)"
    record mariadbd "$(pidfile "$STATE/db/pid")"
fi
pass=$(cat "$STATE/db_pass")
sql -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
        ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

start_daemon() {  # start_daemon NAME PIDFILE CMD...
    local name=$1 pf=$2; shift 2
    ours "$name" >/dev/null && return 0
    rm -f "$pf"
    "$@" || die "$name failed to start ($STATE/log/$name.log)"
    record "$name" "$(pidfile "$pf")"
}
start_daemon slurmdbd "$STATE/run/slurmdbd.pid" slurmdbd
wait_for sacctmgr -n list cluster || die "slurmdbd does not answer ($STATE/log/slurmdbd.log)"
start_daemon slurmctld "$STATE/run/slurmctld.pid" slurmctld
wait_for scontrol ping || die "slurmctld does not answer ($STATE/log/slurmctld.log)"
start_daemon slurmd "$STATE/run/slurmd.pid" slurmd -N "$node"

idle() { case "$(sinfo -h -n "$node" -o %t)" in idle | mix | alloc) return 0 ;; *) return 1 ;; esac; }
if ! wait_for idle; then
    scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true  # left down by an earlier run
    wait_for idle || { sinfo -N -l >&2; tail -5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2
                       die "node $node is not idle"; }
fi
say "ready: partition $PARTITION, node $node"
