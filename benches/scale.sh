#!/usr/bin/env bash
# Scale benchmark (issue #14): many small pushes instead of few large ones. Generates a capture
# of EVENTS small XML/JSON events from many devices (examples/gen_capture.rs --small: one
# connection per event, or several with --keepalive; ~1% unanswered, 0.5% answered 503), then
# times in one run, on the same file:
#   tcpdump -r FILE -w /dev/null                                    (raw read speed)
#   alarmscope replay FILE --json, --text                           (release build)
#   the TUI load (examples/tui_load.rs: the TUI's App fed as in a terminal, drawn off-screen)
#   tshark -r FILE -Y http.request -T fields -e http.response_in   (the peer analyser, once)
# with peak RSS from /usr/bin/time -v. Prints a Markdown table with ratios to tcpdump and tshark.
# tcpdump and alarmscope run RUNS times (default 3, interleaved; median wall time, largest RSS).
#
# Usage: benches/scale.sh [EVENTS=300000] [close|keepalive] [DEVICES=2000]
#        ALARMSCOPE=/path/to/binary benches/scale.sh ...   (time another build, e.g. a baseline)
#        NO_TSHARK=1 / NO_TUI=1 skip those runs.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-300000}
mode=${2:-close}
devices=${3:-2000}
export DEBIAN_FRONTEND=noninteractive
for tool in tshark tcpdump; do
  command -v $tool >/dev/null || { apt-get update -qq; apt-get install -y -qq $tool >/dev/null; }
done
[ -x /usr/bin/time ] || { apt-get update -qq; apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin alarmscope --example gen_capture --example tui_load
bin=${ALARMSCOPE:-target/release/alarmscope}
dir=${BENCH_DIR:-/tmp/alarmscope-bench}
mkdir -p "$dir"
ka=""; [ "$mode" = keepalive ] && ka="--keepalive"
cap="$dir/small-${events}-${mode}.pcap"
[ -s "$cap" ] || target/release/examples/gen_capture --small "$events" $ka "$cap" "$devices"
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
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

cat "$cap" > /dev/null # warm the page cache
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
runs=${RUNS:-3}
d_list=(); j_list=(); x_list=(); d_kb=0; j_kb=0; x_kb=0
for _ in $(seq "$runs"); do
  read -r s kb < <(measure tcpdump tcpdump -r "$cap" -w /dev/null)
  d_list+=("$s"); [ "$kb" -gt "$d_kb" ] && d_kb=$kb
  read -r s kb < <(measure json "$bin" replay "$cap" --json)
  j_list+=("$s"); [ "$kb" -gt "$j_kb" ] && j_kb=$kb
  read -r s kb < <(measure text "$bin" replay "$cap" --text)
  x_list+=("$s"); [ "$kb" -gt "$x_kb" ] && x_kb=$kb
done
d_s=$(median "${d_list[@]}"); j_s=$(median "${j_list[@]}"); x_s=$(median "${x_list[@]}")
echo "runs: tcpdump ${d_list[*]}; json ${j_list[*]}; text ${x_list[*]}" >&2
tui=""
if [ -z "${NO_TUI:-}" ]; then
  read -r u_s u_kb < <(measure tui target/release/examples/tui_load "$cap")
  tui=$(cat "$dir/tui.out")
fi
t_s=""
if [ -z "${NO_TSHARK:-}" ]; then
  read -r t_s t_kb < <(measure tshark tshark -r "$cap" -Y http.request -T fields -e http.response_in)
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

requests=$(python3 -c "import json; print(json.load(open('$dir/json.out'))['summary']['requests'])")
mb() { python3 -c "print(f'{$1/1024:.0f}')"; }
r() { python3 -c "print(f'{$1/$2:.1f}')"; }
echo
echo "capture: $cap ($((bytes >> 20)) MB, ${packets:-?} packets, $events events ($mode), $requests requests by alarmscope); binary: $bin"
echo
echo "| run | wall s | x tcpdump | tshark / this | peak RSS MB |"
echo "|---|---|---|---|---|"
tsr() { [ -n "$t_s" ] && r "$t_s" "$1" || echo "-"; }
echo "| \`tcpdump -r F -w /dev/null\` | $d_s | 1.0 | $(tsr "$d_s") | $(mb "$d_kb") |"
echo "| \`alarmscope replay F --json\` | $j_s | $(r "$j_s" "$d_s") | $(tsr "$j_s") | $(mb "$j_kb") |"
echo "| \`alarmscope replay F --text\` | $x_s | $(r "$x_s" "$d_s") | $(tsr "$x_s") | $(mb "$x_kb") |"
if [ -n "$tui" ]; then
  echo "| TUI load (examples/tui_load: $tui) | $u_s | $(r "$u_s" "$d_s") | $(tsr "$u_s") | $(mb "$u_kb") |"
fi
if [ -n "$t_s" ]; then
  echo "| \`tshark -r F -Y http.request -T fields -e http.response_in\` | $t_s | $(r "$t_s" "$d_s") | 1.0 | $(mb "$t_kb") |"
fi
