#!/usr/bin/env bash
# bench/w6_cpu.sh — CPU per W6 round trip of acoro builds, side by side:
#   bench/w6_cpu.sh TREE[:BUILD] ...      (e.g. . /tmp/old:build)
# For each run and each tree (BUILD defaults to build), starts
# TREE/BUILD/acoro bench/w6_remote.lua server, runs N (50,000) W6 round
# trips against it under `perf stat`, and prints the W6 line with the ping
# process's user and system µs and the server's user µs (from
# /proc/PID/stat, clock ticks) per round trip. R (3) runs, trees alternate.
# CPU per round trip is steadier than the rate on a shared machine.
set -u
N=${N:-50000}
R=${R:-3}
tick=$(getconf CLK_TCK)
tmp=$(mktemp -d /tmp/w6_cpu.XXXXXX)
SP=
trap '[ -n "$SP" ] && kill "$SP" 2>/dev/null; rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || { sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 2; }
for ((r = 1; r <= R; r++)); do
  for spec in "$@"; do
    d=${spec%%:*} b=${spec#*:}
    [ "$b" = "$spec" ] && b=build
    (cd "$d" && exec "$b/acoro" bench/w6_remote.lua server) >"$tmp/srv" 2>&1 &
    SP=$!
    for _ in $(seq 100); do grep -q PORT= "$tmp/srv" && break; sleep 0.1; done
    P=$(sed -n 's/PORT=//p' "$tmp/srv")
    [ -n "$P" ] || { echo "w6_cpu: $spec: the server did not start" >&2; cat "$tmp/srv" >&2; exit 1; }
    s0=$(awk '{print $14}' "/proc/$SP/stat")
    out=$(cd "$d" && timeout 120 perf stat -x, -e user_time,system_time -- \
      "$b/acoro" bench/w6_remote.lua ping "$P" "$N" 2>"$tmp/stat")
    s1=$(awk '{print $14}' "/proc/$SP/stat")
    kill "$SP"; wait "$SP" 2>/dev/null; SP=
    cu=$(sed -n 's/^\([0-9]*\),.*user_time.*/\1/p' "$tmp/stat")
    cs=$(sed -n 's/^\([0-9]*\),.*system_time.*/\1/p' "$tmp/stat")
    awk -v s="$spec" -v o="$out" -v cu="${cu:-0}" -v cs="${cs:-0}" -v sv=$((s1 - s0)) \
      -v t="$tick" -v n="$N" 'BEGIN { printf "%s %s ping_user_us=%.2f ping_sys_us=%.2f server_user_us=%.2f\n",
        s, o, cu / 1000 / n, cs / 1000 / n, sv * 1e6 / t / n }'
  done
done
