#!/usr/bin/env bash
# Replay benchmark on an HTTPS-heavy capture: benches/gen_tls_capture.py repeats the recorded
# HTTPS samples (answered, unanswered, TLS 1.2 and 1.3, unknown_ca, HTTPS to HTTP, HTTP to HTTPS)
# with a new device address and client ports per copy, interleaved; then, in one run on the same
# file:
#   alarmscope replay --json     (release build; TLS stage on every HTTPS connection)
#   tshark -r FILE -Y tls        (the peer dissector, TLS records)
# Prints a Markdown table: wall time, MB/s, peak RSS, and what each found.
#
# Usage: benches/replay_tls.sh [SIZE_MB=50]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-50}
command -v tshark >/dev/null || { echo "tshark is needed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed" >&2; exit 1; }
cargo build --release --quiet --bin alarmscope
tgt=${CARGO_TARGET_DIR:-target}/release
dir=${BENCH_DIR:-/tmp/alarmscope-tls-bench}
mkdir -p "$dir"
cap="$dir/tls-${size}mb.pcap"
[ -s "$cap" ] || python3 benches/gen_tls_capture.py "$cap" "$size"
bytes=$(stat -c %s "$cap")
cat "$cap" > /dev/null   # page cache warm for both tools

measure() { # name, command...: prints "seconds peak_kb"
  local name=$1; shift
  /usr/bin/time -v -o "$dir/$name.time" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/$name.time")
  echo "$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }') $rss"
}

read -r a_s a_kb < <(measure alarmscope "$tgt/alarmscope" replay --json "$cap")
read -r t_s t_kb < <(measure tshark tshark -r "$cap" -Y tls)
found=$(python3 -c "
import json; s = json.load(open('$dir/alarmscope.out'))['summary']
print(f\"{s['connections']} connections, {s['tls_connections']} TLS, {s['requests']} requests ({s['encrypted_answered']} encrypted_answered, {s['no_response']} no_response), {s['tls_problems']} TLS problems\")")
tshark_lines=$(wc -l < "$dir/tshark.out")
mbs() { python3 -c "print(f'{$bytes/1048576/$1:.0f}')"; }
echo
echo "capture: $cap ($((bytes >> 20)) MB); machine: $(nproc) cores"
echo
echo "| tool | wall s | MB/s | peak RSS MB | found |"
echo "|---|---|---|---|---|"
printf '| alarmscope replay --json | %.2f | %s | %.1f | %s |\n' "$a_s" "$(mbs "$a_s")" "$(python3 -c "print($a_kb/1024)")" "$found"
printf '| tshark -r -Y tls | %.2f | %s | %.1f | %s packets with TLS records |\n' "$t_s" "$(mbs "$t_s")" "$(python3 -c "print($t_kb/1024)")" "$tshark_lines"
