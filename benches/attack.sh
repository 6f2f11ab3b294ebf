#!/usr/bin/env bash
# "Listener under attack" benchmark: for each attack, start a fresh `alarmscope listen` (release,
# durable store on disk), run the attack with examples/listen_attack.rs while a well-behaved
# device posts EVENTS XML events at RATE/s (one connection each, open loop), and report the
# device's answer latency, its errors, and the server's peak RSS (VmHWM of the server process,
# read from /proc before it is stopped; one server per scenario so the peak is the scenario's).
# Prints a Markdown table.
#
# Usage: benches/attack.sh [EVENTS=200] [RATE=20] [SCENARIO...]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-200}
rate=${2:-20}
shift $(( $# > 2 ? 2 : $# )) || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(baseline idle slowloris chunked huge-cl headers traversal nonutf8)
cargo build --release --quiet --bin alarmscope --example listen_attack
tgt=${CARGO_TARGET_DIR:-target}/release
dir=$(mktemp -d /var/tmp/alarmscope-attack-bench.XXXX)   # on disk (not tmpfs): fsync is real
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
port=18380
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Server flags per scenario: defaults, except short timeouts where the attack is cut by them.
flags_for() {
  case $1 in
    slowloris) echo "--read-timeout 2s --idle-timeout 10s" ;;
    *) echo "" ;;
  esac
}

echo
echo "machine: $(nproc) cores, $(uname -r), store on $(df -T "$dir" | awk 'NR==2 {print $2}'); device: $events XML events at $rate/s, one connection each; open files limit $(ulimit -n)"
echo
echo "| attack | server flags | device events | device p50 ms | p99 ms | max ms | errors | server peak RSS MB | attacker saw |"
echo "|---|---|---|---|---|---|---|---|---|"
for sc in "${scenarios[@]}"; do
  port=$((port + 1))
  rm -rf "$dir/store" "$dir/err"
  flags=$(flags_for "$sc")
  # shellcheck disable=SC2086
  "$tgt/alarmscope" listen --bind "127.0.0.1:$port" --store "$dir/store" --json $flags >/dev/null 2>"$dir/err" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$dir/err" 2>/dev/null && break; sleep 0.05; done
  grep -q "listening on" "$dir/err" || { cat "$dir/err"; exit 1; }
  out=$("$tgt/examples/listen_attack" "127.0.0.1:$port" "$sc" "$events" "$rate")
  hwm=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  kill -TERM $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  field() { echo "$out" | sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; }
  attack=$(echo "$out" | sed -n 's/.*attack="\(.*\)"/\1/p')
  stored=0; [ -f "$dir/store/index.jsonl" ] && stored=$(wc -l <"$dir/store/index.jsonl")
  echo "| $sc | ${flags:-defaults} | $(field ok)/$(field events) | $(field p50_ms) | $(field p99_ms) | $(field max_ms) | $(field errors) | $hwm | $attack; events stored: $stored |"
done
