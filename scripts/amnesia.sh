#!/usr/bin/env bash
# A server that comes back with an empty data directory at its old address votes as its old self.
#
# The scenario (Raft "amnesia"), on any target the harness runs (default: real Consul):
#   1. a 3-server cluster; n3 is cut off from n1 and n2 (nftables, through the fault helper);
#   2. the harness writes keys through the leader: acknowledged, so committed on n1 and n2 only;
#   3. n1 and n2 crash together (SIGKILL); n2 lost its disk: it comes back as a fresh container
#      (empty /data, so a new node id) at the same address; n1 stays down;
#   4. n3's partition is healed.
# n3 (which never saw the writes) asks n2's address for its vote. The fresh n2 has no Raft
# configuration and an empty log, so it grants it, and n3 counts the answer as the old n2's vote:
# n3 leads with a "majority" of itself and an empty n2, and the acknowledged writes are gone.
# Raft assumes that a voter's log survives; the question is whether the system notices when it
# did not.
#
# usage: scripts/amnesia.sh [--target consul|agent] [writes]      (AMNESIA_LOGS=DIR keeps node logs)
# Needs Docker and a checkout; prints each step and exits 1 if acknowledged writes were lost,
# 0 if all of them survived, 2 if the scenario could not be set up.
set -uo pipefail
cd "$(dirname "$0")/.."
target=consul; writes=20
while [ $# -gt 0 ]; do
  case $1 in
    --target) target=$2; shift 2;;
    *) writes=$1; shift;;
  esac
done
h=${HARNESS:-/tmp/harness-amnesia}
go build -o "$h" ./cmd/harness || exit 2
store=$(mktemp -d)
up=$("$h" cluster up --target "$target" --store "$store" 2>&1) || { echo "$up"; exit 2; }
id=$(echo "$up" | awk '/^cluster .* is up/ {print $2}')
mapfile -t ips < <(echo "$up" | sed -n 's|.*http://\(.*\):8500|\1|p')
logs=${AMNESIA_LOGS:-}  # a folder: keep every node's log there
cleanup() {
  if [ -n "$logs" ]; then
    mkdir -p "$logs"
    for n in n1 n2 n3; do docker logs "harness-$id-$n" > "$logs/$n.log" 2>&1; done
  fi
  "$h" cluster down "$id" --store "$store" >/dev/null 2>&1; rm -rf "$store"
}
trap cleanup EXIT
helper=$("$h" build --target "$target" 2>/dev/null | awk '/^helper image:/ {print $3}')
c() { echo "harness-$id-$1"; }
net() { docker run --rm --network "container:$(c "$1")" --cap-add NET_ADMIN --label "harness.run=$id" "$helper" net "${@:2}"; }
leader_of() { curl -s -m 2 "http://$1:8500/v1/status/leader" | tr -d '"' | cut -d: -f1; }
echo "== cluster $id ($target): n1=${ips[0]} n2=${ips[1]} n3=${ips[2]}; leader $(leader_of "${ips[0]}")"

# Make n1 the leader: it must be one of the two that get the writes.
for _ in $(seq 1 20); do
  [ "$(leader_of "${ips[0]}")" = "${ips[0]}" ] && break
  l=$(leader_of "${ips[0]}")
  for i in 0 1 2; do [ "${ips[$i]}" = "$l" ] && docker restart -t 0 "$(c n$((i+1)))" >/dev/null; done
  sleep 3
done
[ "$(leader_of "${ips[0]}")" = "${ips[0]}" ] || { echo "could not make n1 the leader"; exit 2; }

echo "== 1. cut n3 off from n1 and n2"
net n3 set --drop-in "${ips[0]},${ips[1]}" --drop-out "${ips[0]},${ips[1]}" >/dev/null
net n1 set --drop-in "${ips[2]}" --drop-out "${ips[2]}" >/dev/null
net n2 set --drop-in "${ips[2]}" --drop-out "${ips[2]}" >/dev/null
sleep 3
echo "== 2. $writes writes through n1"
acked=0
for k in $(seq 1 "$writes"); do
  r=$(curl -s -m 5 -X PUT "http://${ips[0]}:8500/v1/kv/amnesia/$k" -d "$k")
  [ "$r" = "true" ] && acked=$((acked+1))
done
echo "   acknowledged: $acked of $writes"
[ "$acked" -gt 0 ] || { echo "no write was acknowledged"; exit 2; }
echo "== 3. n1 and n2 crash; n2 comes back with an empty disk at the same address; n1 stays down"
spec=$(docker inspect "$(c n2)" --format '{{json .Config.Cmd}}')
docker kill "$(c n1)" "$(c n2)" >/dev/null
docker rm -f "$(c n2)" >/dev/null
nw=$(docker inspect "$(c n1)" --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}')
image=$(docker inspect "$(c n1)" --format '{{.Config.Image}}')
eval "args=($(echo "$spec" | python3 -c 'import json,sys,shlex; print(" ".join(shlex.quote(a) for a in json.load(sys.stdin)))'))"
docker create --name "$(c n2)" --hostname n2 --network "$nw" --ip "${ips[1]}" --cap-add NET_ADMIN \
  --label "harness.run=$id" --label harness.node=n2 --label harness.role=node "$image" "${args[@]}" >/dev/null
docker start "$(c n2)" >/dev/null
echo "== 4. heal n3's partition"
net n3 heal >/dev/null
for s in $(seq 1 30); do
  sleep 1
  l=$(leader_of "${ips[2]}")
  [ -n "$l" ] && break
done
echo "   after ${s}s: n3 says leader=${l:-none}, n2 says leader=$(leader_of "${ips[1]}")"
echo "   n3's log: $(docker logs "$(c n3)" 2>&1 | grep -E 'election won|entering leader' | tail -2 | tr '\n' ' ' | cut -c1-300)"
reads() { # $1: node index to read through; sets seen and lost
  lost=0; seen=0
  for k in $(seq 1 "$writes"); do
    v=$(curl -s -m 5 "http://${ips[$1]}:8500/v1/kv/amnesia/$k?consistent&raw") || continue
    if [ "$v" = "$k" ]; then seen=$((seen+1)); else lost=$((lost+1)); fi
  done
}
reads 2
echo "== consistent reads through n3: $seen present, $lost missing (of $acked acknowledged)"
echo "== 5. n1, which holds every write, comes back"
docker start "$(c n1)" >/dev/null
for s in $(seq 1 30); do
  sleep 1
  l=$(leader_of "${ips[0]}")
  [ -n "$l" ] && [ "$(leader_of "${ips[2]}")" = "$l" ] && break
done
echo "   after ${s}s: leader ${l:-none}; n3's config: $(curl -s -m 2 "http://${ips[2]}:8500/v1/operator/raft/configuration" | python3 -c 'import json,sys; print([(s["Node"], s["Address"], s["Voter"]) for s in json.load(sys.stdin)["Servers"]])' 2>/dev/null)"
reads 0
echo "== consistent reads through n1: $seen present, $lost missing (of $acked acknowledged)"
if [ "$lost" -gt 0 ]; then echo "ACKNOWLEDGED WRITES LOST"; exit 1; fi
[ "$seen" -gt 0 ] || { echo "no read succeeded: no verdict"; exit 2; }
echo "no acknowledged write lost"; exit 0
