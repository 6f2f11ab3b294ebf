#!/usr/bin/env bash
# Sniff at sustained load (issue #14): `simulate` pushes small XML events to `listen` over
# loopback at RATE events/s for SECS seconds while `sniff -i lo` watches the port headless.
# Prints what each side saw: events sent (simulate), stored (listen), and sniff's summary
# (exchanges by verdict, kernel drops, uncertain verdicts). Every verdict is right when sniff
# counts exactly the events simulate sent, all `ok`, and nothing uncertain.
# With BUFFER_MB set (e.g. 1), sniff runs with that small kernel buffer to force drops: then
# drops must show as `not_captured` / `handshake_uncertain`, never as `no_response`.
#
# NO_STORE=1 runs the listener with --no-store (no fsync per event: less CPU beside sniff).
# Usage: benches/sniff_load.sh [RATE=5000] [SECS=30] [DEVICES=200]   (root: sniff needs it)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-5000}
secs=${2:-30}
devices=${3:-200}
count=$((rate * secs))
port=${PORT:-18081}
dir=$(mktemp -d /tmp/alarmscope-sniff-XXXX)
cargo build --release --quiet --bin alarmscope
bin=target/release/alarmscope
buf=()
[ -n "${BUFFER_MB:-}" ] && buf=(--buffer-size "$BUFFER_MB")

store=(--store "$dir/store")
[ -n "${NO_STORE:-}" ] && store=(--no-store)
"$bin" listen --bind 127.0.0.1:$port "${store[@]}" --json >"$dir/listen.jsonl" 2>"$dir/listen.err" &
lpid=$!
/usr/bin/time -f "sniff: %e s wall, %U s user + %S s system CPU, peak RSS %M KB" -o "$dir/sniff.time" \
  "$bin" sniff -i lo --port $port "${buf[@]}" --duration $((secs + 8)) --json >"$dir/sniff.jsonl" 2>"$dir/sniff.err" &
spid=$!
sleep 2
start=$(date +%s.%N)
"$bin" simulate --to http://127.0.0.1:$port/alarm --devices "$devices" --count "$count" \
  --rate "$rate" --kind xml >"$dir/simulate.out" 2>"$dir/simulate.err" || true
end=$(date +%s.%N)
wait $spid || true
kill $lpid 2>/dev/null; wait $lpid 2>/dev/null || true

python3 - "$dir" "$count" "$start" "$end" <<'PY'
import json, sys, collections
d, want, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
final = {}; summary = capture = None; uncertain_hs = 0; notes = collections.Counter()
for line in open(f"{d}/sniff.jsonl"):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("type") == "summary":
        summary, capture = m.get("summary"), m.get("capture")
    elif m.get("type") == "exchange":
        c, e = m["connection"], m.get("exchange")
        if e is None:
            if c.get("handshake_uncertain"):
                uncertain_hs += 1
            continue
        final[(c["id"], e["index"])] = e  # a correction replaces the provisional line
        for n in e.get("notes", []) or []:
            notes[n.get("kind", "?") if isinstance(n, dict) else str(n)] += 1
verdicts = collections.Counter(e["verdict"] for e in final.values())
listen = collections.Counter()
for line in open(f"{d}/listen.jsonl"):
    try:
        listen[json.loads(line).get("verdict")] += 1
    except ValueError:
        pass
took = end - start
print(f"simulate: {want} events sent in {took:.1f} s ({want / max(took, 1e-9):.0f}/s)")
print(f"listen: {dict(listen)}")
print(f"sniff: {sum(verdicts.values())} exchanges {dict(verdicts)}; notes {dict(notes)}; "
      f"connections without a request marked handshake_uncertain: {uncertain_hs}")
print(f"sniff capture: {capture}")
if summary:
    keys = ["packets", "requests", "ok", "no_response", "not_captured", "handshake_failures",
            "handshake_uncertain", "capture_gap_bytes"]
    print("sniff summary:", {k: summary.get(k) for k in keys if k in summary})
PY
cat "$dir/sniff.time"
echo "files: $dir"
