#!/usr/bin/env bash
# Replay benchmark with session keys: benches/gen_tls_capture.py repeats the HTTPS samples
# recorded with a key log (TLS 1.2 and 1.3; AES-GCM and ChaCha20; keep-alive; multipart with
# pictures) with a new device address and client ports per copy, and writes their key log; and
# the same scenarios' plain HTTP recordings to a capture of the same size. Then, in one run:
#   alarmscope replay --json --keylog K   (release build; every HTTPS push decrypted and judged)
#   tshark -r FILE -o tls.keylog_file:K -Y http   (the peer, decrypting with the same key log)
#   alarmscope replay --json              on the plain HTTP capture (what decryption costs)
# Prints a Markdown table: wall time, MB/s, peak RSS, and what each found.
#
# Usage: benches/replay_tls_keys.sh [SIZE_MB=50]
#        benches/replay_tls_keys.sh --flat [SMALL_MB=256] [BIG_MB=1024]
#
# --flat: the memory check of issue 18 ("a 1 GB HTTPS capture replays with flat memory"): two
# captures of the same 200 devices' HTTPS pushes (gen_tls_capture.py --devices 200, so only the
# number of pushes grows, not the per-device state of the diagnosis), replayed with their key
# log and without, peak RSS of each (release build); the big files are deleted afterwards.
# Last run (2026-12-03, release build of commit 5708660, 2 cores shared with two other builds;
# two runs each, peak RSS MB; the same 200 devices' pushes in plain HTTP for comparison):
#   | capture              | requests | --keylog (all decrypted, all ok) | keyless     | plain HTTP, same size |
#   | 259 MB               | 20 572   | 42.5, 42.6 (1.7 s, 1.5 s)       | 42.4, 38.4  | 46.1, 41.9 (16 200 requests) |
#   | 1024 MB              | 81 143   | 52.3, 56.0 (8.8 s, 4.5 s)       | 43.9, 45.3  | 52.6, 52.1 (64 800 requests) |
# Decryption keeps nothing per connection once it is closed (one record per direction while
# open): at 1 GB the decrypting run is within a few MB of plain HTTP carrying the same pushes.
# Both grow by about 10 MB for 4x the requests: the replay's diagnosis (report::stream's
# unbounded Ledger) keeps every judged request on its device's time line; the keyless run's
# rows grow less. With one device address per copy instead (the default), the per-device state
# grows too, keys or not: 52 -> 101 MB (--keylog), 50 -> 89 MB (keyless), 259 MB -> 1 GB.
# Since the report's ledger folds past 262 144 requests (Ledger::folding; commit 7084453), one
# run on 2026-12-03: --keylog 40.6 MB (259 MB) and 42.0 MB (1024 MB), keyless 36.2 and 39.1 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--flat" ]; then
  small=${2:-256}; big=${3:-1024}
  [ -x /usr/bin/time ] || { echo "/usr/bin/time is needed" >&2; exit 1; }
  cargo build --release --quiet --bin alarmscope
  bin=${CARGO_TARGET_DIR:-target}/release/alarmscope
  dir=${BENCH_DIR:-/tmp/alarmscope-tls-flat}
  mkdir -p "$dir"
  echo "| capture | --keylog: wall, peak RSS KB | keyless: wall, peak RSS KB |"
  echo "|---|---|---|"
  for mb in "$small" "$big"; do
    python3 benches/gen_tls_capture.py --devices 200 --keys "$dir/f$mb.keys" "$dir/f$mb.pcap" "$mb"
    row="| $mb MB |"
    for keys in yes no; do
      extra=(); [ $keys = yes ] && extra=(--keylog "$dir/f$mb.keys")
      /usr/bin/time -v -o "$dir/t" "$bin" replay "${extra[@]}" --json "$dir/f$mb.pcap" >/dev/null
      row="$row $(awk -F': ' '/Elapsed/ {w=$2} /Maximum resident/ {r=$2} END {print w ", " r}' "$dir/t") |"
    done
    echo "$row"
    rm -f "$dir/f$mb.pcap" "$dir/f$mb.keys"
  done
  exit 0
fi
size=${1:-50}
command -v tshark >/dev/null || { echo "tshark is needed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed" >&2; exit 1; }
cargo build --release --quiet --bin alarmscope
tgt=${CARGO_TARGET_DIR:-target}/release
dir=${BENCH_DIR:-/tmp/alarmscope-tls-keys-bench}
mkdir -p "$dir"
cap="$dir/tls-keys-${size}mb.pcap"
keys="$dir/tls-keys-${size}mb.keys"
plain="$dir/plain-${size}mb.pcap"
[ -s "$cap" ] && [ -s "$keys" ] || python3 benches/gen_tls_capture.py --keys "$keys" "$cap" "$size"
[ -s "$plain" ] || python3 benches/gen_tls_capture.py --plain "$plain" "$size"
cat "$cap" "$plain" > /dev/null   # page cache warm

measure() { # name, command...: prints "seconds peak_kb"
  local name=$1; shift
  /usr/bin/time -v -o "$dir/$name.time" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/$name.time")
  echo "$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }') $rss"
}

read -r a_s a_kb < <(measure keys "$tgt/alarmscope" replay --json --keylog "$keys" "$cap")
read -r t_s t_kb < <(measure tshark tshark -r "$cap" -o "tls.keylog_file:$keys" -Y http)
read -r p_s p_kb < <(measure plain "$tgt/alarmscope" replay --json "$plain")
found() {
  python3 -c "
import json; s = json.load(open('$dir/$1.out'))['summary']
print(f\"{s['connections']} connections, {s['requests']} requests: {s['ok']} ok, {s['encrypted_answered']} encrypted_answered, {s['no_response']} no_response\")"
}
tshark_req=$(grep -c 'POST /' "$dir/tshark.out" || true)
tshark_resp=$(grep -c 'HTTP/1.1 200' "$dir/tshark.out" || true)
mbs() { python3 -c "print(f'{$2/1048576/$1:.0f}')"; }
cb=$(stat -c %s "$cap"); pb=$(stat -c %s "$plain")
echo
echo "captures: $cap ($((cb >> 20)) MB), $plain ($((pb >> 20)) MB); machine: $(nproc) cores"
echo
echo "| tool | capture | wall s | MB/s | peak RSS MB | found |"
echo "|---|---|---|---|---|---|"
printf '| alarmscope replay --json --keylog | HTTPS | %.2f | %s | %.1f | %s |\n' "$a_s" "$(mbs "$a_s" "$cb")" "$(python3 -c "print($a_kb/1024)")" "$(found keys)"
printf '| tshark -o tls.keylog_file -Y http | HTTPS | %.2f | %s | %.1f | %s requests, %s 200 answers decrypted |\n' "$t_s" "$(mbs "$t_s" "$cb")" "$(python3 -c "print($t_kb/1024)")" "$tshark_req" "$tshark_resp"
printf '| alarmscope replay --json | plain HTTP | %.2f | %s | %.1f | %s |\n' "$p_s" "$(mbs "$p_s" "$pb")" "$(python3 -c "print($p_kb/1024)")" "$(found plain)"
