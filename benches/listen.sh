#!/usr/bin/env bash
# Listener benchmark: alarmscope listen (durable store, and --no-store) against two baselines
# that read the body, answer 200 and store nothing, same machine, same run: a Java HttpServer
# written like the vendor's demo listener (benches/VendorDemoServer.java, the reference the issue
# names), and a bare hand-written tokio server (a much stricter floor).
# Load: examples/listen_load.rs, one event per connection (like most devices), CONNS concurrent
# clients; XML alone and multipart with a ~100 KB picture. Saturation = closed loop (each client
# sends as soon as answered); latency is then measured open loop at half of each server's
# saturation rate, from when each request was due if the server held the client back, else from
# when it went out (see examples/listen_load.rs). For alarmscope, also the latency it measured
# itself. Prints a Markdown table.
#
# Usage: benches/listen.sh [SECS=5] [CONNS=32]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-32}
cargo build --release --quiet --bin alarmscope --example listen_load
command -v java >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >/dev/null; }
tgt=${CARGO_TARGET_DIR:-target}/release
dir=$(mktemp -d /var/tmp/alarmscope-listen-bench.XXXX)   # on disk (not tmpfs): fsync is real
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
port_base=18180


# The answer latency alarmscope measured itself (`response.latency_ms` in its JSON lines: request
# fully read to answer written) for the events of the latency run: what the server adds, without
# the client's side of loopback and scheduling on shared cores.
server_side() { # json-lines file, start time (unix seconds) of the latency run
  python3 - "$1" "$2" <<'PY' 2>/dev/null || echo "-"
import json, sys
t0 = float(sys.argv[2])
v = []
for line in open(sys.argv[1]):
    try:
        j = json.loads(line)
        if j.get("response") and j["request"]["time"] >= t0:
            v.append(j["response"]["latency_ms"])
    except Exception:
        pass
v.sort()
pct = lambda q: v[int((len(v) - 1) * q)]
print("%.2f / %.2f" % (pct(0.5), pct(0.99)) if v else "-")
PY
}

run_server() { # label, port, kind, command...
  local label=$1 port=$2 kind=$3; shift 3
  "$@" >"$dir/server.out" 2>"$dir/server.err" &
  local pid=$!
  sleep 0.7
  [ "$1" = java ] && sleep 2.5  # source-file mode compiles first
  local sat rate half
  sat=$("$tgt/examples/listen_load" load "127.0.0.1:$port" "$kind" "$conns" "$secs")
  rate=$(echo "$sat" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  half=$((rate / 2))
  local t_lat
  t_lat=$(date +%s.%N)
  lat=$("$tgt/examples/listen_load" load "127.0.0.1:$port" "$kind" "$conns" "$secs" "$half")
  kill -TERM $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  p50=$(echo "$lat" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
  p99=$(echo "$lat" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
  errs=$(echo "$sat $lat" | grep -o 'errors=[0-9]*' | tr '\n' ' ')
  local own="-"
  [ "$1" = "$tgt/alarmscope" ] && own=$(server_side "$dir/server.out" "$t_lat")
  echo "| $kind | $label | $rate | $half | $p50 | $p99 | $own | $errs |"
}

# The disk's flush latency right now (durable figures depend on it, and other work on the machine
# changes it a lot): 300 writes of 2 KiB, each with O_DSYNC (= write + fdatasync).
disk_probe() {
  dd if=/dev/zero of="$dir/probe" bs=2k count=300 oflag=dsync 2>&1 | awk '/copied/ {for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.2f ms per 2 KiB write+fdatasync", $(i-1) * 1000 / 300}'
  # And the most 100 KB events/s it can make durable: writes of 8 such events, each flushed. A
  # burst of 0.26 s (before the runs), and ~3 s sustained (after them: deleting 800 MB of probe
  # slows the disk for a while), which measured up to 30% less: the host caches bursts.
  local count=${1:-100}
  dd if=/dev/zero of="$dir/probe" bs=824k count="$count" oflag=dsync 2>&1 | awk '/copied/ {for (i = 1; i <= NF; i++) if ($i == "s,") printf "; %.0f events of 103 KB/s in flushed batches of 8", '"$count"' * 8 / $(i-1)}'
  rm -f "$dir/probe"
}

echo
echo "machine: $(nproc) cores, $(uname -r), store on $(df -T "$dir" | awk 'NR==2 {print $2}'); $conns concurrent clients, $secs s per run, one event per connection"
echo "disk before: $(disk_probe) (burst, 0.26 s)"
echo
echo "| body | server | saturation events/s | latency run events/s | p50 ms | p99 ms | server-side p50 / p99 ms | errors |"
echo "|---|---|---|---|---|---|---|---|"
i=0
for kind in xml multipart; do
  i=$((i + 1))
  run_server "baseline: vendor-demo Java HttpServer, no store" $((port_base + 10 * i + 3)) $kind java -Xshare:auto -XX:+UseSerialGC benches/VendorDemoServer.java $((port_base + 10 * i + 3))
  run_server "baseline: bare tokio, no store" $((port_base + 10 * i)) $kind "$tgt/examples/listen_load" baseline "127.0.0.1:$((port_base + 10 * i))"
  rm -rf "$dir/store"
  run_server "alarmscope listen (durable store)" $((port_base + 10 * i + 1)) $kind "$tgt/alarmscope" listen --bind "127.0.0.1:$((port_base + 10 * i + 1))" --store "$dir/store" --json
  stored=$(wc -l <"$dir/store/index.jsonl")
  run_server "alarmscope listen --no-store" $((port_base + 10 * i + 2)) $kind "$tgt/alarmscope" listen --bind "127.0.0.1:$((port_base + 10 * i + 2))" --no-store --json
  echo "|  | (events in the store index after the durable runs: $stored) | | | | | | |"
done
echo
echo "disk after: $(disk_probe 1000) (sustained, ~3 s)"
