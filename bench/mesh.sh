#!/usr/bin/env bash
# bench/mesh.sh N [IDLE_SECS] [UDP_PORT]: the MESH bench (bench/run mesh). Starts N nodes
# (bench/mesh.lua) together on 127.0.0.1 with discovery on and one secret,
# waits for a full mesh (every node with N-1 peers; at most MESH_TIMEOUT
# seconds, 60), then measures them idle for IDLE_SECS (10) after MESH_REST
# seconds (10: links turn idle 8 s after their last message),
# then one lone node (discovery on a port of its own) for the baseline RSS; stops them all (by
# PID). Prints one line:
#   MESH n=N started_s=T full_s=S settle_s=U full=K/N links=L cpu_pct=C
#        rss_node_kb=R rss_lone_kb=R0 link_kb=B
# started_s: from just before the first start until the last node listens
# (process start-up: on a loaded machine most of the time); full_s: until
# the last node has N-1 peers (wall clock); settle_s: full_s - started_s,
# the mesh's own part; full: nodes that got there; links: pairs up at the end;
# cpu_pct: CPU of all N nodes (user + system, every thread) over the idle
# seconds, in % of one core; rss_node_kb: mean RSS of a node;
# link_kb: (rss_node_kb - rss_lone_kb) / (N - 1).
set -u
cd "$(dirname "$0")/.." || exit 2
N=${1:?usage: bench/mesh.sh N [IDLE_SECS] [UDP_PORT]}
IDLE=${2:-10}
UDP=${3:-42731}
ACORO=${ACORO:-build/acoro}
TMO=${MESH_TIMEOUT:-60}
D=$(mktemp -d /tmp/acoro_mesh.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ -n "${MESH_KEEP:-}" ]; then rm -rf "$MESH_KEEP"; mv "$D" "$MESH_KEEP"; else rm -rf "$D"; fi
}
trap cleanup EXIT
ulimit -n 4096 2>/dev/null || true
MESH_SECRET=$("$ACORO" --gen-secret) || exit 2
export MESH_SECRET

now() { date +%s.%N; }
# CPU ticks (utime + stime, all threads) of the given PIDs.
ticks() {
  local p s=0 f
  for p in "$@"; do
    f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
    s=$((s + $(echo "$f" | awk '{print $12 + $13}')))
  done
  echo "$s"
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

t0=$(now)
echo "$t0" >"$D/t0"
for ((i = 1; i <= N; i++)); do
  "$ACORO" bench/mesh.lua "$N" "$UDP" >"$D/$i.out" 2>"$D/$i.err" &
  PIDS+=($!)
done
last() { tail -n 1 "$D/$1.out" 2>/dev/null; }
deadline=$(awk "BEGIN { printf \"%.3f\", $t0 + $TMO }")
while :; do
  full=0
  for ((i = 1; i <= N; i++)); do
    set -- $(last "$i")
    [ "${2:-0}" = $((N - 1)) ] && full=$((full + 1))
  done
  [ "$full" = "$N" ] && break
  [ "$(awk "BEGIN { print ($(now) > $deadline) }")" = 1 ] && break
  sleep 0.2
done
# the last node to reach N-1 peers (its first time there)
full_s=$(for ((i = 1; i <= N; i++)); do
  awk -v n=$((N - 1)) '$1 == "peers" && $2 == n { print $3; exit }' "$D/$i.out"; done |
  sort -g | tail -n 1)
last_start=$(cat "$D"/*.out | awk '$1 == "start" { print $3 }' | sort -g | tail -n 1)
if [ "$full" = "$N" ]; then
  settle_s=$(awk "BEGIN { printf \"%.2f\", $full_s - $last_start }")
  full_s=$(awk "BEGIN { printf \"%.2f\", $full_s - $t0 }")
else
  full_s=none settle_s=none
fi
started_s=$(awk "BEGIN { printf \"%.2f\", ${last_start:-$t0} - $t0 }")
sleep "${MESH_REST:-10}"
c0=$(ticks "${PIDS[@]}")
sleep "$IDLE"
c1=$(ticks "${PIDS[@]}")
hz=$(getconf CLK_TCK)
cpu=$(awk "BEGIN { printf \"%.1f\", ($c1 - $c0) * 100 / $hz / $IDLE }")
links=0 sum=0
for ((i = 1; i <= N; i++)); do
  set -- $(last "$i")
  links=$((links + ${2:-0}))
  sum=$((sum + $(rss "${PIDS[$((i - 1))]}")))
done
links=$((links / 2))
rnode=$((sum / N))
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
# the lone node: the same script, discovery on a port no one else uses
"$ACORO" bench/mesh.lua 2 $((UDP + 1)) >/dev/null 2>&1 &
lone=$!
PIDS+=("$lone")
sleep 3
r0=$(rss "$lone")
link_kb=$(awk "BEGIN { printf \"%.1f\", ($rnode - $r0) / ($N - 1) }")
echo "MESH n=$N started_s=$started_s full_s=$full_s settle_s=$settle_s full=$full/$N links=$links cpu_pct=$cpu rss_node_kb=$rnode rss_lone_kb=$r0 link_kb=$link_kb"
# the nodes' log lines, numbers masked, most frequent first (MESH_LOG=1)
[ -n "${MESH_LOG:-}" ] && cat "$D"/*.err | sed -E 's/[0-9]+/#/g' | sort | uniq -c | sort -rn | head -15 >&2
