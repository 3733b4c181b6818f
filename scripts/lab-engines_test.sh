#!/usr/bin/env bash
# Tests scripts/lab-engines.sh on this machine (root, Docker; about a minute, 2 cores):
#   1. up (3 engines), then a second up changes nothing (same daemons, namespaces, swarm nodes,
#      networks, iptables rules, file times) and exits 0; status names every engine and rclab-net;
#   2. down leaves nothing: no rclab namespace, link, iptables rule, mount, cgroup, process, folder;
#   3. an up whose dockerd exits at once (RCLAB_DOCKERD=false) fails and leaves nothing;
#   4. an up interrupted by SIGTERM while its daemons start leaves nothing.
# Refuses to run when a lab is up (it would take it down). Exit 0 when every check passed.
set -uo pipefail
cd "$(dirname "$0")/.."
lab=scripts/lab-engines.sh
unset RCLAB_BASE RCLAB_KEEP RCLAB_DOCKERD
fails=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# everything of the lab that could be left on the machine, one line each
leftovers() {
  ip netns list 2>/dev/null | grep rclab
  ip -br link | grep rclab
  iptables -S 2>/dev/null | grep -- '--comment rclab'
  findmnt -rn -o TARGET | grep rclab
  ls -d /sys/fs/cgroup/*/rclab-e* 2>/dev/null
  local p
  for p in /proc/[0-9]*; do
    case $(cat "$p/comm" 2>/dev/null) in dockerd|containerd|containerd-shim*|fuse-overlayfs) ;; *) continue;; esac
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q rclab && echo "process ${p#/proc/} $(cat "$p/comm")"
  done
  ls -d /run/rclab /var/lib/rclab 2>/dev/null
  [ "$netns_before" = yes ] || ls -d /run/netns 2>/dev/null
}
fingerprint() {
  local i
  for i in 1 2 3; do
    cat "/run/rclab/e$i.pid"; echo
    readlink "/proc/$(cat "/run/rclab/e$i.pid")/ns/net"
    stat -c '%Y %i %n' "/var/lib/rclab/e$i/daemon.json"
    docker -H "unix:///run/rclab/e$i.sock" info -f '{{.Swarm.NodeID}} {{.Swarm.LocalNodeState}}'
    docker -H "unix:///run/rclab/e$i.sock" network ls -q --no-trunc | sort
  done
  docker -H unix:///run/rclab/e1.sock node ls -q | sort
  iptables -S 2>/dev/null | grep -- '--comment rclab'
  stat -c '%Y %i' /run/rclab/engines
  ip -br link | grep rclab
}

[ "$(id -u)" = 0 ] || { echo "needs root"; exit 2; }
docker info >/dev/null 2>&1 || { echo "needs the main Docker Engine"; exit 2; }
if [ -e /run/rclab ] || ip netns list 2>/dev/null | grep -q rclab; then
  echo "a lab is up; take it down first ($lab down)"; exit 2
fi
netns_before=no; [ -d /run/netns ] && netns_before=yes
trap '"$lab" down >/dev/null 2>&1' EXIT

# 1. up, up again
start=$SECONDS
if "$lab" up >/tmp/rclab-test.out 2>&1; then pass "up in $((SECONDS - start)) s"; else fail "up"; cat /tmp/rclab-test.out; fi
before=$(fingerprint 2>&1)
if "$lab" up >/tmp/rclab-test.out 2>&1; then pass "second up exits 0"; else fail "second up"; cat /tmp/rclab-test.out; fi
after=$(fingerprint 2>&1)
if [ "$before" = "$after" ]; then pass "second up changed nothing"; else fail "second up changed:"; diff <(echo "$before") <(echo "$after"); fi
grep -q 'up: 3 engines' /tmp/rclab-test.out && ! grep -qE 'dockerd e[0-9] in netns|swarm init|joins|overlay network' /tmp/rclab-test.out \
  && pass "second up did no work" || { fail "second up did work:"; cat /tmp/rclab-test.out; }
st=$("$lab" status 2>&1)
n=$(echo "$st" | grep -cE '^e[123] +unix:///run/rclab/e[123]\.sock +10\.199\.0\.1[123] +[0-9]+ +active/(manager|worker)')
[ "$n" = 3 ] && echo "$st" | grep -q 'network: rclab-net .*attachable=true subnet=10.199.240.0/24 labels={"harness.run":"lab"}' \
  && pass "status: 3 engines in the swarm, rclab-net" || { fail "status:"; echo "$st"; }
[ "$(cat /run/rclab/engines)" = "$(printf 'unix:///run/rclab/e%s.sock\n' 1 2 3)" ] \
  && pass "/run/rclab/engines" || fail "/run/rclab/engines: $(cat /run/rclab/engines)"
[ "$(docker -H unix:///run/rclab/e1.sock node ls --format '{{.Status}}' | grep -c Ready)" = 3 ] \
  && pass "3 swarm nodes Ready" || fail "swarm nodes: $(docker -H unix:///run/rclab/e1.sock node ls)"

# 2. down
start=$SECONDS
"$lab" down >/tmp/rclab-test.out 2>&1 && pass "down in $((SECONDS - start)) s" || { fail "down"; cat /tmp/rclab-test.out; }
left=$(leftovers)
[ -z "$left" ] && pass "nothing left after down" || { fail "left after down:"; echo "$left"; }

# 3. an up that fails half-way
RCLAB_DOCKERD=false "$lab" up >/tmp/rclab-test.out 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q 'dockerd e1 exited' /tmp/rclab-test.out && pass "failing up exits $rc" || { fail "failing up exited $rc"; cat /tmp/rclab-test.out; }
left=$(leftovers)
[ -z "$left" ] && pass "nothing left after the failing up" || { fail "left after the failing up:"; echo "$left"; }

# 4. an up interrupted while its daemons start
"$lab" up >/tmp/rclab-test.out 2>&1 &
pid=$!
end=$((SECONDS + 60))
until [ -s /run/rclab/e1.pid ] || [ $SECONDS -ge $end ]; do sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" = 143 ] && pass "interrupted up exits 143" || { fail "interrupted up exited $rc"; cat /tmp/rclab-test.out; }
left=$(leftovers)
[ -z "$left" ] && pass "nothing left after the interrupted up" || { fail "left after the interrupted up:"; echo "$left"; }

rm -f /tmp/rclab-test.out
trap - EXIT
[ "$fails" = 0 ] && { echo "PASS"; exit 0; }
echo "$fails check(s) failed"; exit 1
