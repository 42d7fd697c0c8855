#!/usr/bin/env bash
# A two-node Slurm on one machine (with accounting, so `sacct` works as the Snakemake plugin expects)
# for the `slurm`-marked tests, on Debian/Ubuntu as root: installs what is missing, writes
# /etc/slurm/*.conf, starts munged, a private MariaDB and slurmdbd (host namespace, 127.0.0.1), then
# slurmctld and one slurmd per node, each in its own network + UTS namespace, and waits for the nodes
# to be idle. Idempotent. ALWAYS run .ci/slurm/stop.sh afterwards: while /etc/slurm/slurm.conf exists
# without a running slurmctld, every Snakemake start waits ~9 s in `scontrol show config`.
#
# Network (docs/multinode.md): namespace $NS-ctl holds a bridge with $NET.1 (hostname ab-ctl, slurmctld);
# $NS-node<i> holds one veth end with $NET.1<i> (hostname ab-node<i>, slurmd). Only these namespaces get
# addresses; the host's network is not touched. Slurm talks to slurmctld at 127.0.0.1:6817 everywhere
# (one slurm.conf): socat relays forward it from the host (clients: sbatch, squeue) and from each node
# namespace to slurmctld, and slurmctld's 127.0.0.1:6819 to slurmdbd on the host (through unix sockets
# in $STATE/run). Everything else (slurmctld <-> slurmd, srun <-> slurmstepd, the training ranks' gloo
# traffic) goes over the bridge; /etc/netns/<ns>/hosts names the three hosts inside the namespaces.
# Partition: $ARCHBENCH_SLURM_PARTITION (default debug), LLN (least loaded node first, so that parallel
# jobs spread over the nodes). Node: all CPUs, 90% of memory / $NODES each.
set -euo pipefail
. "$(dirname "$0")/common.sh"
PARTITION=${ARCHBENCH_SLURM_PARTITION:-debug}
DB_PORT=${ARCHBENCH_SLURM_DB_PORT:-13306}
mkdir -p "$STATE"/{log,pids,ctld,run,db}

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
for bin in munged slurmctld slurmd slurmdbd sinfo sacctmgr mariadbd mariadb-install-db socat ip; do
    command -v "$bin" >/dev/null || need+=("$bin")
done
if [ "${#need[@]}" -gt 0 ]; then
    say "installing Slurm and MariaDB (missing: ${need[*]})"
    pkgs=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server-core mariadb-client-core socat iproute2)
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
nodes=(); for ((i = 1; i <= NODES; i++)); do nodes+=("ab-node$i"); done
mem=$(awk -v n="$NODES" '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9 / n}' /proc/meminfo)
node_lines=$(for ((i = 1; i <= NODES; i++)); do
    echo "NodeName=ab-node$i NodeAddr=$NET.1$i CPUs=$(nproc) RealMemory=$mem State=UNKNOWN"; done)
[ -s "$STATE/db_pass" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$STATE/db_pass")
mkdir -p /etc/slurm
changed=0
write_conf /etc/slurm/slurm.conf 644 <<CONF && changed=1 || true
$MARKER
ClusterName=archbench-ci
SlurmctldHost=ab-ctl(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
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
$node_lines
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP LLN=YES
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
[ "$changed" = 1 ] && for d in "${nodes[@]/#/slurmd-}" slurmctld slurmdbd; do stop_one "$d"; done

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
start_relay() {  # start_relay NAME [nsenter --net=NS] socat ARGS...: detached, output in log/NAME.log
    local name=$1 socat i; shift
    ours "$name" >/dev/null && return 0
    socat=$(readlink -f "$(command -v socat)")
    setsid "$@" </dev/null >>"$STATE/log/$name.log" 2>&1 &
    local pid=$!
    for ((i = 0; i < 50; i++)); do  # recorded once nsenter has become socat
        [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$socat" ] && { record "$name" "$pid"; return 0; }
        alive "$pid" || break; sleep 0.1
    done
    die "$name failed to start ($STATE/log/$name.log)"
}
in_ns() {  # in_ns NS HOSTNAME CMD...: CMD in network namespace NS, with its own UTS (HOSTNAME) and mount
    # namespace (/etc/netns/NS/hosts over /etc/hosts). Not `ip netns exec`: it remounts /sys, which hides
    # the cgroup file system slurmd needs.
    local ns=$1 host=$2; shift 2
    nsenter --net="/run/netns/$ns" unshare --uts --mount --propagation private \
        sh -c 'mount --bind "/etc/netns/$0/hosts" /etc/hosts && hostname "$1" && shift && exec "$@"' "$ns" "$host" "$@"
}

# Network: the namespaces, the bridge in $NS-ctl, one veth per node; /etc/netns/<ns>/hosts (`ip netns
# exec` mounts it over /etc/hosts) resolves every cluster hostname to its bridge address, so that
# Lightning's MASTER_ADDR (the first node's name) and gloo's own address are reachable from all nodes.
hosts="$MARKER
127.0.0.1 localhost
$NET.1 ab-ctl"
for ((i = 1; i <= NODES; i++)); do hosts+=$'\n'"$NET.1$i ab-node$i"; done
for ns in "$NS-ctl" $(seq -f "$NS-node%g" "$NODES"); do
    ip netns list | grep -qw "$ns" || ip netns add "$ns" || die "ip netns add $ns failed (needs CAP_NET_ADMIN)"
    echo "$ns" >>"$STATE/netns"
    mkdir -p "/etc/netns/$ns"
    write_conf "/etc/netns/$ns/hosts" 644 <<<"$hosts" || true
    ip -n "$ns" link set lo up
done
sort -u -o "$STATE/netns" "$STATE/netns"
if ! ip -n "$NS-ctl" link show abbr0 >/dev/null 2>&1; then
    ip -n "$NS-ctl" link add abbr0 type bridge
    ip -n "$NS-ctl" addr add "$NET.1/24" dev abbr0
    ip -n "$NS-ctl" link set abbr0 up
fi
for ((i = 1; i <= NODES; i++)); do
    ns=$NS-node$i
    ip -n "$NS-ctl" link show "abv$i" >/dev/null 2>&1 && continue
    ip -n "$NS-ctl" link add "abv$i" type veth peer name eth0 netns "$ns"
    ip -n "$NS-ctl" link set "abv$i" master abbr0 up
    ip -n "$ns" addr add "$NET.1$i/24" dev eth0
    ip -n "$ns" link set eth0 up
done

# Relays to the daemons' 127.0.0.1 ports (see the top): slurmctld <- host and nodes, slurmdbd <- slurmctld.
start_daemon slurmdbd "$STATE/run/slurmdbd.pid" slurmdbd
wait_for sacctmgr -n list cluster || die "slurmdbd does not answer ($STATE/log/slurmdbd.log)"
relay() { echo "TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr"; }
start_relay relay-dbd-host socat "UNIX-LISTEN:$STATE/run/dbd.sock,fork,unlink-early" TCP:127.0.0.1:6819
start_relay relay-dbd-ctl nsenter --net="/run/netns/$NS-ctl" socat "$(relay 6819)" "UNIX-CONNECT:$STATE/run/dbd.sock"
start_daemon slurmctld "$STATE/run/slurmctld.pid" in_ns "$NS-ctl" ab-ctl slurmctld
start_relay relay-ctld-ctl nsenter --net="/run/netns/$NS-ctl" socat "UNIX-LISTEN:$STATE/run/ctld.sock,fork,unlink-early" \
    TCP:127.0.0.1:6817
start_relay relay-ctld-host socat "$(relay 6817)" "UNIX-CONNECT:$STATE/run/ctld.sock"
wait_for scontrol ping || die "slurmctld does not answer ($STATE/log/slurmctld.log)"
for ((i = 1; i <= NODES; i++)); do
    start_relay "relay-ctld-node$i" nsenter --net="/run/netns/$NS-node$i" socat "$(relay 6817)" "TCP:$NET.1:6817"
    mkdir -p "$STATE/slurmd/ab-node$i"  # SlurmdSpoolDir, per node (%n)
    start_daemon "slurmd-ab-node$i" "$STATE/run/slurmd-ab-node$i.pid" in_ns "$NS-node$i" "ab-node$i" slurmd
done

idle() {
    local states; states=$(sinfo -h -N -o %t | sort -u | xargs)
    [ "$(sinfo -h -N -o %N | sort -u | wc -l)" = "$NODES" ] && [[ " $states " =~ ^( (idle|mix|alloc))+\ $ ]]
}
if ! wait_for idle; then
    scontrol update NodeName="$(IFS=,; echo "${nodes[*]}")" State=RESUME >/dev/null 2>&1 || true  # left down earlier
    wait_for idle || { sinfo -N -l >&2; tail -5 "$STATE/log/slurmctld.log" "$STATE"/log/slurmd-*.log >&2
                       die "nodes ${nodes[*]} are not idle"; }
fi
say "ready: partition $PARTITION, nodes ${nodes[*]} (namespaces $NS-*, $NET.0/24)"
