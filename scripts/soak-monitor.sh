#!/usr/bin/env bash
# Runs a soak and samples, every 30 s, the harness's resident memory, the number of containers,
# networks and images with the harness label, and the store's size on disk. Output: a TSV on
# stdout (elapsed_s, rss_kib, containers, networks, images, store_kib) and the soak's summary in
# the store. Usage: scripts/soak-monitor.sh DURATION STORE [extra soak flags…]
set -euo pipefail
duration=${1:?duration, e.g. 30m}; store=${2:?store folder}; shift 2
go build -o /tmp/harness-soak ./cmd/harness
/tmp/harness-soak soak --duration "$duration" --store "$store" --keep-going "$@" \
  >"$store.soak.out" 2>"$store.soak.err" &
pid=$!
start=$(date +%s)
printf 'elapsed_s\trss_kib\tcontainers\tnetworks\timages\tstore_kib\n'
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  c=$(docker ps -aq --filter label=harness.run | wc -l)
  n=$(docker network ls -q --filter label=harness.run | wc -l)
  i=$(docker images -q --filter label=harness.run | wc -l)
  s=$(du -sk "$store" 2>/dev/null | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' $(( $(date +%s) - start )) "${rss:-0}" "$c" "$n" "$i" "${s:-0}"
  sleep 30
done
wait "$pid" || echo "soak exit code $?" >&2
