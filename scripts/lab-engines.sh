#!/usr/bin/env bash
# A lab of several Docker Engines on this one machine, joined as a swarm with an attachable
# overlay network: the stand-in for "several hosts" (issue #21, item 7; docs/engines.md).
#
# usage: scripts/lab-engines.sh up [N] | down | status          (N engines, default 3, at most 12)
#
# Engine i (1..N) is a "host":
#   network namespace rclab<i>, a veth (rclab<i>h in the root namespace, eth0 inside) into the
#   bridge rclab0; host address $RCLAB_BASE.0.(10+i)/24, the bridge $RCLAB_BASE.0.1 (default
#   RCLAB_BASE=10.199); no default route, so nothing in the lab reaches beyond this machine.
#   dockerd started with `nsenter --net=/run/netns/rclab<i>` (not `ip netns exec`, which remounts
#   /sys: "Devices cgroup isn't mounted"), with its own --config-file (/var/lib/rclab/e<i>/daemon.json;
#   the machine's /etc/docker/daemon.json sets data-root), --data-root /var/lib/rclab/e<i>/root,
#   --exec-root /run/rclab/e<i>, --pidfile /run/rclab/e<i>.pid, -H unix:///run/rclab/e<i>.sock,
#   the main engine's storage driver, bip $RCLAB_BASE.<i>.1/24, local address pool
#   $RCLAB_BASE.(16i).0/20, cgroup parent /rclab-e<i>; it starts its own containerd.
# Engine 1 runs `swarm init` (manager), engines 2..N `swarm join` as workers; the swarm's ingress
# network is removed (no routing mesh is needed) and docker_gwbridge is created beforehand with the
# label harness.run=lab. The overlay network rclab-net ($RCLAB_BASE.240.0/24, attachable,
# harness.run=lab) spans all engines. The endpoints go to /run/rclab/engines, one unix:// URL a line.
#
# The root namespace's iptables filter bridged traffic (bridge-nf-call-iptables=1, FORWARD policy
# DROP set by Docker): one rule in DOCKER-USER accepts rclab0 -> rclab0 and nothing else.
#
# up is idempotent (a second up with everything running changes nothing) and cleans everything up
# if it fails half-way (RCLAB_KEEP=1 keeps the wreck for debugging). down removes whatever exists,
# whatever N was. Needs root, iproute2, nsenter, iptables and dockerd; only one instance runs at a time.
set -uo pipefail

BASE=${RCLAB_BASE:-10.199}
BR=rclab0
LIB=/var/lib/rclab
RUN=/run/rclab
NET=rclab-net
NET_SUBNET=$BASE.240.0/24
SWARM_POOL=$BASE.224.0/20       # default pool of swarm-scoped networks (only ingress, which up removes)
LABEL=harness.run=lab
MAXN=12
DOCKERD=${RCLAB_DOCKERD:-dockerd}   # the daemon binary (the test makes it fail with RCLAB_DOCKERD=false)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

host_ip() { echo "$BASE.0.$((10 + $1))"; }
sock() { echo "$RUN/e$1.sock"; }
ep() { echo "unix://$(sock "$1")"; }
dk() { local i=$1; shift; docker -H "$(ep "$i")" "$@"; }
ns() { echo "rclab$1"; }

# poll SECONDS DESCRIPTION COMMAND...: run COMMAND every 0.2 s until it succeeds or time is up.
poll() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "timed out after ${limit}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

answers() { dk "$1" version >/dev/null 2>&1; }
daemon_pid() {
  local p
  p=$(cat "$RUN/e$1.pid" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -d "/proc/$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "--exec-root $RUN/e$1 " && echo "$p"
}

# engines that exist in any form: a namespace, a folder or a pid file
existing() {
  { ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^rclab\([0-9][0-9]*\)$/\1/p'
    for d in "$LIB"/e* "$RUN"/e*; do [ -e "$d" ] && basename "$d" | sed -n 's/^e\([0-9][0-9]*\)\(\.pid\|\.sock\)\{0,1\}$/\1/p'; done
  } | sort -un
}

# ---------------------------------------------------------------- up

preflight() {
  [ "$(id -u)" = 0 ] || die "needs root"
  for c in ip nsenter setsid iptables "$DOCKERD" docker findmnt flock; do command -v "$c" >/dev/null || die "needs $c"; done
  driver=$(docker info -f '{{.Driver}}' 2>/dev/null) || die "the machine's main Docker Engine does not answer (its storage driver is copied)"
  [ -n "$driver" ] || die "no storage driver reported by the main engine"
  # Our /16 must not be routed anywhere else in the root namespace (Docker's bridges included).
  local clash
  clash=$(ip -4 route show root "$BASE.0.0/16" | grep -v " dev $BR " || true)
  [ -z "$clash" ] || die "$BASE.0.0/16 clashes with existing routes (set RCLAB_BASE):
$clash"
  if ip -4 route show match "$BASE.0.1" | grep -v "^default" | grep -qv " dev $BR "; then
    die "$BASE.0.0/24 is covered by another route (set RCLAB_BASE)"
  fi
  local more
  more=$(existing | awk -v n="$N" '$1 > n' | tr '\n' ' ')
  [ -z "$more" ] || die "engines beyond $N exist ($more); run down first"
}

ensure_bridge() {
  if ! ip link show "$BR" >/dev/null 2>&1; then
    log "bridge $BR $BASE.0.1/24"
    ip link add "$BR" type bridge || return 1
  fi
  ip -4 addr show dev "$BR" | grep -q "inet $BASE.0.1/24" || ip addr add "$BASE.0.1/24" dev "$BR" || return 1
  ip link set "$BR" up
}

ensure_filter() {
  local chain=DOCKER-USER
  iptables -S "$chain" >/dev/null 2>&1 || chain=FORWARD
  iptables -C "$chain" -i "$BR" -o "$BR" -m comment --comment rclab -j ACCEPT 2>/dev/null && return 0
  log "iptables: accept $BR -> $BR in $chain"
  iptables -I "$chain" -i "$BR" -o "$BR" -m comment --comment rclab -j ACCEPT
}

ensure_netns() {
  local i=$1 n h
  n=$(ns "$i"); h=rclab${i}h
  if ! ip netns list | awk '{print $1}' | grep -qx "$n"; then
    [ -d /run/netns ] || { mkdir -p "$RUN" && touch "$RUN/netns-dir-made"; }
    log "netns $n, host address $(host_ip "$i")"
    ip netns add "$n" || return 1
  fi
  if ! ip -n "$n" link show eth0 >/dev/null 2>&1; then
    ip link del "$h" 2>/dev/null
    ip link add "$h" type veth peer name "rclab${i}n" netns "$n" || return 1
    ip -n "$n" link set "rclab${i}n" name eth0 || return 1
  fi
  ip link set "$h" master "$BR" up || return 1
  ip -n "$n" link set lo up || return 1
  ip -n "$n" -4 addr show dev eth0 | grep -q "inet $(host_ip "$i")/24" ||
    ip -n "$n" addr add "$(host_ip "$i")/24" dev eth0 || return 1
  ip -n "$n" link set eth0 up
}

write_config() {
  local i=$1 f="$LIB/e$1/daemon.json" tmp
  mkdir -p "$LIB/e$i" "$RUN/e$i" || return 1
  tmp=$(mktemp "$f.XXXX") || return 1
  cat >"$tmp" <<EOF
{
  "storage-driver": "$driver",
  "bip": "$BASE.$i.1/24",
  "default-address-pools": [{"base": "$BASE.$((16 * i)).0/20", "size": 24}],
  "cgroup-parent": "/rclab-e$i",
  "shutdown-timeout": 5,
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"},
  "labels": ["rclab.engine=e$i"]
}
EOF
  if cmp -s "$tmp" "$f"; then rm -f "$tmp"; else mv "$tmp" "$f"; fi
}

ensure_daemon() {
  local i=$1
  write_config "$i" || return 1
  if daemon_pid "$i" >/dev/null; then
    poll 60 "engine e$i to answer" answers "$i"
    return
  fi
  log "dockerd e$i in netns $(ns "$i") ($driver)"
  rm -f "$(sock "$i")" "$RUN/e$i.pid"
  # setsid: a Ctrl-C meant for this script does not reach the daemon; 9<&-: nor does our lock
  nsenter --net="/run/netns/$(ns "$i")" -- setsid -w "$DOCKERD" \
    --config-file "$LIB/e$i/daemon.json" --data-root "$LIB/e$i/root" --exec-root "$RUN/e$i" \
    --pidfile "$RUN/e$i.pid" -H "$(ep "$i")" \
    </dev/null >>"$LIB/e$i/dockerd.log" 2>&1 9<&- &
  local dpid=$! end=$((SECONDS + 90))
  until answers "$i"; do
    if ! kill -0 "$dpid" 2>/dev/null; then
      log "dockerd e$i exited; the end of $LIB/e$i/dockerd.log:"; tail -5 "$LIB/e$i/dockerd.log" >&2; return 1
    fi
    if [ $SECONDS -ge $end ]; then
      log "dockerd e$i did not answer in 90 s; the end of $LIB/e$i/dockerd.log:"; tail -5 "$LIB/e$i/dockerd.log" >&2; return 1
    fi
    sleep 0.2
  done
}

# docker_gwbridge made by us (with our label) before the engine joins a swarm
ensure_gwbridge() {
  local i=$1
  dk "$i" network inspect docker_gwbridge >/dev/null 2>&1 && return 0
  dk "$i" network create --label "$LABEL" \
    -o com.docker.network.bridge.name=docker_gwbridge \
    -o com.docker.network.bridge.enable_icc=false \
    -o com.docker.network.bridge.enable_ip_masquerade=true \
    docker_gwbridge >/dev/null
}

swarm_state() { dk "$1" info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
node_id() { dk "$1" info -f '{{.Swarm.NodeID}}' 2>/dev/null; }
ready_count() { dk 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$'; }
node_ready() { [ "$(dk 1 node inspect -f '{{.Status.State}}' "$1" 2>/dev/null)" = ready ]; }
all_ready() { [ "$(ready_count)" -ge "$N" ]; }

ensure_swarm() {
  local i state token id
  ensure_gwbridge 1 || return 1
  state=$(swarm_state 1)
  if [ "$state" != active ] || [ "$(dk 1 info -f '{{.Swarm.ControlAvailable}}')" != true ]; then
    [ "$state" = inactive ] || dk 1 swarm leave --force >/dev/null 2>&1
    log "swarm init on e1 ($(host_ip 1))"
    dk 1 swarm init --advertise-addr "$(host_ip 1)" --listen-addr "$(host_ip 1):2377" \
      --default-addr-pool "$SWARM_POOL" --default-addr-pool-mask-length 24 >/dev/null || return 1
  fi
  # no routing mesh: the ingress network only costs a namespace per engine
  if dk 1 network inspect ingress >/dev/null 2>&1; then
    log "removing the swarm's ingress network (no published ports are used)"
    echo y | dk 1 network rm ingress >/dev/null || return 1
  fi
  token=$(dk 1 swarm join-token -q worker) || return 1
  for i in $(seq 2 "$N"); do
    ensure_gwbridge "$i" || return 1
    state=$(swarm_state "$i"); id=$(node_id "$i")
    # joined, and to e1's swarm (e1's manager knows the node): nothing to do
    if [ "$state" = active ] && [ -n "$id" ] && dk 1 node inspect "$id" >/dev/null 2>&1; then continue; fi
    [ "$state" = inactive ] || dk "$i" swarm leave --force >/dev/null 2>&1
    log "e$i joins the swarm ($(host_ip "$i"))"
    dk "$i" swarm join --token "$token" --advertise-addr "$(host_ip "$i")" \
      --listen-addr "$(host_ip "$i"):2377" "$(host_ip 1):2377" >/dev/null || return 1
  done
  for i in $(seq 1 "$N"); do
    poll 60 "swarm node e$i Ready" node_ready "$(node_id "$i")" || return 1
  done
  # nodes of an earlier swarm that are gone: drop them, so node ls shows the lab as it is
  local gone
  gone=$(dk 1 node ls --filter role=worker --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" {print $1}')
  [ -z "$gone" ] || dk 1 node rm --force $gone >/dev/null 2>&1
}

ensure_network() {
  local subnet
  if subnet=$(dk 1 network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Driver}} {{.Attachable}}' "$NET" 2>/dev/null); then
    [ "$subnet" = "$NET_SUBNET overlay true" ] && return 0
    die "network $NET exists as \"$subnet\", not \"$NET_SUBNET overlay true\"; run down first"
  fi
  log "overlay network $NET $NET_SUBNET"
  dk 1 network create -d overlay --attachable --subnet "$NET_SUBNET" --label "$LABEL" "$NET" >/dev/null
}

write_endpoints() {
  local i tmp
  tmp=$(mktemp "$RUN/engines.XXXX") || return 1
  for i in $(seq 1 "$N"); do ep "$i"; done >"$tmp"
  if cmp -s "$tmp" "$RUN/engines"; then rm -f "$tmp"; else mv "$tmp" "$RUN/engines"; fi
}

up() {
  preflight
  on_exit() {
    local rc=$?
    if [ -n "${RCLAB_KEEP:-}" ]; then log "up failed (exit $rc); RCLAB_KEEP is set: leaving it as it is"; return; fi
    log "up failed (exit $rc): removing everything"
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null; done   # engines still being waited for
    wait 2>/dev/null
    down
    exit "$((rc == 0 ? 1 : rc))"
  }
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local start=$SECONDS i
  mkdir -p "$LIB" "$RUN" || exit 1
  ensure_bridge || die "bridge $BR"
  ensure_filter || die "iptables rule for $BR"
  for i in $(seq 1 "$N"); do ensure_netns "$i" || die "netns $(ns "$i")"; done
  # the daemons start in parallel (each takes a few seconds of CPU), then each is waited for
  for i in $(seq 1 "$N"); do (ensure_daemon "$i") & done
  local fail=0
  for i in $(seq 1 "$N"); do wait -n || fail=1; done
  [ "$fail" = 0 ] || die "an engine did not start"
  ensure_swarm || die "swarm"
  ensure_network || die "network $NET"
  write_endpoints || die "$RUN/engines"
  trap - EXIT INT TERM
  log "up: $N engines in $((SECONDS - start)) s"
  status
}

# ---------------------------------------------------------------- status

status() {
  local i any=0
  [ -f "$RUN/engines" ] && printf 'endpoints file: %s\n' "$RUN/engines"
  printf '%-6s %-28s %-14s %-8s %-26s %s\n' engine endpoint host pid swarm docker
  for i in $(existing); do
    any=1
    local pid="-" sw="-" ver="-"
    pid=$(daemon_pid "$i") || pid="-"
    if answers "$i"; then
      ver=$(dk "$i" version -f '{{.Server.Version}}' 2>/dev/null)
      sw=$(dk "$i" info -f '{{.Swarm.LocalNodeState}}{{if .Swarm.ControlAvailable}}/manager{{else}}/worker{{end}}' 2>/dev/null)
    else
      ver="not answering"
    fi
    printf '%-6s %-28s %-14s %-8s %-26s %s\n' "e$i" "$(ep "$i")" "$(host_ip "$i")" "$pid" "$sw" "$ver"
  done
  [ "$any" = 1 ] || { echo "no rclab engines"; return 0; }
  if answers 1 && [ "$(swarm_state 1)" = active ]; then
    echo "swarm nodes (from e1):"
    dk 1 node ls --format '{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}} {{.EngineVersion}}' 2>/dev/null | sed 's/^/  /'
    for i in $(existing); do
      answers "$i" && printf '  e%s is node %s\n' "$i" "$(node_id "$i")"
    done
    if dk 1 network inspect "$NET" >/dev/null 2>&1; then
      dk 1 network inspect -f 'network: {{.Name}} {{.ID}} driver={{.Driver}} scope={{.Scope}} attachable={{.Attachable}} subnet={{range .IPAM.Config}}{{.Subnet}}{{end}} labels={{json .Labels}}' "$NET"
    else
      echo "network: $NET missing"
    fi
  fi
}

# ---------------------------------------------------------------- down

# this engine's daemons: dockerd, its containerd, shims, fuse-overlayfs (by name and by our folders)
engine_procs() {
  local i=$1 p
  for p in /proc/[0-9]*; do
    case $(cat "$p/comm" 2>/dev/null) in
      dockerd|containerd|containerd-shim*|fuse-overlayfs|docker-proxy|runc) ;;
      *) continue;;
    esac
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qE "($RUN|$LIB)/e$i([/. ]|\$)" && echo "${p#/proc/}"
  done
}
# processes in this engine's cgroups (the containers)
cgroup_procs() { cat /sys/fs/cgroup/*/rclab-e"$1"/*/cgroup.procs /sys/fs/cgroup/*/rclab-e"$1"/cgroup.procs 2>/dev/null | sort -un; }

stop_engine() {
  local i=$1 pid p end
  if pid=$(daemon_pid "$i"); then
    log "stopping dockerd e$i (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    end=$((SECONDS + 30))
    while [ -d "/proc/$pid" ] && [ $SECONDS -lt $end ]; do sleep 0.2; done
    [ -d "/proc/$pid" ] && { log "dockerd e$i did not stop: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
  fi
  # whatever outlived it (containers, containerd, shims, fuse-overlayfs, a daemon that had not
  # written its pid file yet), again until none is left: a dying daemon may still start one
  local ps
  end=$((SECONDS + 15))
  while ps=$(cgroup_procs "$i"; engine_procs "$i") && [ -n "$ps" ]; do
    [ $SECONDS -lt $end ] || { log "processes of e$i remain:" $ps; break; }
    kill -KILL $ps 2>/dev/null
    sleep 0.2
  done
}

unmount_under() {
  local m
  # deepest first
  findmnt -rn -o TARGET | awk -v a="$1" 'index($0, a) == 1' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
}

down() {
  trap - EXIT
  [ "$(id -u)" = 0 ] || die "needs root"
  local i d chain
  # in parallel: each dockerd takes a few seconds to shut down
  for i in $(existing); do stop_engine "$i" & done
  wait
  unmount_under "$RUN/"; unmount_under "$LIB/"
  for i in $(existing); do
    if ip netns list | awk '{print $1}' | grep -qx "$(ns "$i")"; then
      log "netns $(ns "$i")"; ip netns del "$(ns "$i")"
    fi
    ip link del "rclab${i}h" 2>/dev/null
    for d in $(find /sys/fs/cgroup/*/rclab-e"$i" -depth -type d 2>/dev/null); do rmdir "$d" 2>/dev/null; done
  done
  if ip link show "$BR" >/dev/null 2>&1; then log "bridge $BR"; ip link del "$BR"; fi
  for chain in DOCKER-USER FORWARD; do
    while iptables -D "$chain" -i "$BR" -o "$BR" -m comment --comment rclab -j ACCEPT 2>/dev/null; do
      log "iptables rule in $chain"
    done
  done
  # /run/netns was made by our first `ip netns add`: take it away again when nobody uses it
  if [ -e "$RUN/netns-dir-made" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
    umount /run/netns 2>/dev/null; rmdir /run/netns 2>/dev/null
  fi
  if findmnt -rn -o TARGET | grep -qE "^($RUN|$LIB)(/|$)"; then
    die "mounts remain under $RUN or $LIB; not removing the folders"
  fi
  rm -rf --one-file-system "$RUN" "$LIB"
  log "down: nothing of the lab is left"
}

cmd=${1:-}
N=${2:-3}
case $N in ''|*[!0-9]*) echo "N must be a number" >&2; exit 2;; esac
[ "$N" -ge 1 ] && [ "$N" -le $MAXN ] || { echo "N must be 1..$MAXN" >&2; exit 2; }
case $cmd in
  up|down|status) ;;
  *) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2;;
esac
# one instance at a time (the lock is on this file, so nothing is left behind)
exec 9<"$0"
flock -w 300 9 || die "another lab-engines.sh is running"
case $cmd in
  up) up;;
  down) down;;
  status) status;;
esac
