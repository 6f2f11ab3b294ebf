#!/usr/bin/env bash
# `listen --tls` against the plain listener, same machine, same run: events/s with one new
# connection per event, and for TLS one full handshake per event (no session resumption), as
# devices push. Load: `alarmscope simulate` itself (each simulated device sends its next event as
# soon as the previous one is answered, so DEVICES events are in flight: a closed loop), XML
# events, durable store (fsync) and --no-store. Both sides share this machine's cores, so the
# figures are the pair's, not the server's alone; the ratio is the point.
#
# Usage: benches/listen-tls.sh [SECS=4] [DEVICES=16]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
devices=${2:-16}
cargo build --release --quiet --bin alarmscope
bin=${CARGO_TARGET_DIR:-target}/release/alarmscope
dir=$(mktemp -d /var/tmp/alarmscope-tls-bench.XXXX)   # on disk (not tmpfs): fsync is real
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

run() { # label, store args..., -- listen args...
  local label=$1; shift
  rm -f "$dir/out" "$dir/err" "$dir/sim"   # never read the previous server's port
  "$bin" listen --bind 127.0.0.1:0 --json "$@" >"$dir/out" 2>"$dir/err" &
  local pid=$!
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/err" 2>/dev/null | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "| $label | server did not start: $(cat "$dir/err") |"; return; }
  local scheme=http extra=()
  case " $* " in *" --tls "*) scheme=https; extra=(--insecure) ;; esac
  # SIGINT after SECS: simulate prints its summary (with elapsed_ms) and exits.
  timeout -s INT "$secs" "$bin" simulate --to "$scheme://127.0.0.1:$port/alarm" "${extra[@]}" \
    --devices "$devices" --rate 1000000 --count 100000000 --retries 0 --kind xml --json \
    >"$dir/sim" 2>/dev/null || true
  kill -TERM $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  python3 - "$label" "$dir/sim" "$dir/out" <<'PY'
import json, sys
label, sim, out = sys.argv[1:4]
s = [json.loads(l) for l in open(sim) if '"type":"summary"' in l][-1]
ok, ms = s["answered_200"], s["elapsed_ms"]
lat = sorted(j["response"]["latency_ms"] for j in map(json.loads, open(out))
             if j.get("response"))
p = lambda q: lat[int((len(lat) - 1) * q)] if lat else float("nan")
other = s["sent"] - ok
print(f"| {label} | {ok / (ms / 1000):.0f} | {ok} | {other} | {p(0.5):.2f} / {p(0.99):.2f} |")
PY
}

echo "listen --tls vs plain: $devices devices in a closed loop, $secs s each, one connection (and TLS handshake) per event"
echo
echo "| server | events/s | answered 200 | not 200 | server-side answer latency p50 / p99 ms |"
echo "|---|---|---|---|---|"
run "plain, durable store" --store "$dir/s1"
run "TLS, durable store" --store "$dir/s2" --tls
run "plain, --no-store" --no-store
run "TLS, --no-store" --no-store --tls
