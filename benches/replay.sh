#!/usr/bin/env bash
# Replay benchmark: generate a large realistic capture (many devices, ANPR multipart events with
# ~100 KB pictures, interleaved connections), then time in one run, on the same file:
#   alarmscope replay --json   (release build)
#   tshark -r FILE -Y http.request -T fields -e http.response_in   (the peer analyser)
#   tcpdump -r FILE -w /dev/null                                    (raw read speed)
# and report alarmscope's peak RSS (/usr/bin/time -v). Prints a Markdown table. alarmscope and
# tcpdump run RUNS times (default 3, interleaved; median wall time), tshark once.
# BASELINE=/path/to/alarmscope adds an older build, interleaved with the others in every run, to
# compare builds on the same file under the same machine load; SKIP_TSHARK=1 leaves tshark out
# (it needs ~1.7 GB of memory and a minute per GB); CAPTURE=FILE replays FILE instead of the
# generated capture (a tunnelled or fragmented one, say).
#
# Usage: [BASELINE=BIN] [SKIP_TSHARK=1] [CAPTURE=FILE] benches/replay.sh [SIZE_MB=1024] [DEVICES=300]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}
devices=${2:-300}
export DEBIAN_FRONTEND=noninteractive
for tool in tshark tcpdump; do
  command -v $tool >/dev/null || { apt-get update -qq; apt-get install -y -qq $tool >/dev/null; }
done
[ -x /usr/bin/time ] || { apt-get update -qq; apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin alarmscope --example gen_capture
dir=${BENCH_DIR:-/tmp/alarmscope-bench}
mkdir -p "$dir"
cap=${CAPTURE:-"$dir/bench-${size}mb.pcap"}
[ -s "$cap" ] || target/release/examples/gen_capture "$cap" "$size" "$devices"
baseline=${BASELINE:-}
bytes=$(stat -c %s "$cap")
packets=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}' || true)

measure() { # name, command...: prints "seconds peak_kb"
  local name=$1; shift
  /usr/bin/time -v -o "$dir/$name.time" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/$name.time")
  echo "$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }') $rss"
}

# Warm the page cache first, so that whichever tool runs first does not pay for the disk.
cat "$cap" > /dev/null
# alarmscope and tcpdump: three interleaved runs each, the median wall time is reported (this
# VM's timings vary by +-30% run to run); peak RSS is the largest of the runs. tshark: one run.
runs=${RUNS:-3}
a_list=(); d_list=(); b_list=(); a_kb=0; d_kb=0; b_kb=0
for _ in $(seq "$runs"); do
  read -r s kb < <(measure alarmscope target/release/alarmscope replay --json "$cap")
  a_list+=("$s"); [ "$kb" -gt "$a_kb" ] && a_kb=$kb
  if [ -n "$baseline" ]; then
    read -r s kb < <(measure baseline "$baseline" replay --json "$cap")
    b_list+=("$s"); [ "$kb" -gt "$b_kb" ] && b_kb=$kb
  fi
  read -r s kb < <(measure tcpdump tcpdump -r "$cap" -w /dev/null)
  d_list+=("$s"); [ "$kb" -gt "$d_kb" ] && d_kb=$kb
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
a_s=$(median "${a_list[@]}")
d_s=$(median "${d_list[@]}")
echo "alarmscope runs: ${a_list[*]} s; tcpdump runs: ${d_list[*]} s" >&2
[ -n "$baseline" ] && echo "baseline runs: ${b_list[*]} s" >&2
if [ -z "${SKIP_TSHARK:-}" ]; then
  read -r t_s t_kb < <(measure tshark tshark -r "$cap" -Y http.request -T fields -e http.response_in)
fi

requests=$(python3 -c "import json,sys; print(json.load(open('$dir/alarmscope.out'))['summary']['requests'])")
tshark_requests=$([ -z "${SKIP_TSHARK:-}" ] && wc -l < "$dir/tshark.out" || echo "-")
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo
echo "capture: $cap ($((bytes >> 20)) MB, ${packets:-?} packets, $requests requests by alarmscope, $tshark_requests by tshark)"
echo
echo "| tool | wall s | MB/s | peak RSS MB | alarmscope speed-up |"
echo "|---|---|---|---|---|"
printf '| alarmscope replay --json | %.2f | %.0f | %.1f | 1.00 |\n' "$a_s" "$(python3 -c "print($bytes/1048576/$a_s)")" "$(python3 -c "print($a_kb/1024)")"
printf '| tcpdump -r -w /dev/null | %.2f | %.0f | %.1f | %s |\n' "$d_s" "$(python3 -c "print($bytes/1048576/$d_s)")" "$(python3 -c "print($d_kb/1024)")" "$(ratio "$d_s" "$a_s")"
if [ -n "$baseline" ]; then
  b_s=$(median "${b_list[@]}")
  printf '| baseline (%s) | %.2f | %.0f | %.1f | %s |\n' "$baseline" "$b_s" "$(python3 -c "print($bytes/1048576/$b_s)")" "$(python3 -c "print($b_kb/1024)")" "$(ratio "$b_s" "$a_s")"
fi
if [ -z "${SKIP_TSHARK:-}" ]; then
  printf '| tshark -Y http.request | %.2f | %.0f | %.1f | %s |\n' "$t_s" "$(python3 -c "print($bytes/1048576/$t_s)")" "$(python3 -c "print($t_kb/1024)")" "$(ratio "$t_s" "$a_s")"
fi
