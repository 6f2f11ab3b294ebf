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
#        BASELINE=/path/to/binary also times that build's --json and --text, interleaved in the
#        same runs (a before/after comparison under the same machine load).
#        NO_TSHARK=1 / NO_TUI=1 skip those runs.
# Wall time follows the machine's load; the CPU column (user + system seconds) much less so.
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

measure() { # name, command...: prints "seconds peak_kb cpu_seconds"
  local name=$1; shift
  /usr/bin/time -v -o "$dir/$name.time" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || true
  local wall rss cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/$name.time")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$dir/$name.time")
  echo "$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }') $rss $cpu"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

cat "$cap" > /dev/null # warm the page cache
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
runs=${RUNS:-3}
base=${BASELINE:-}
d_list=(); j_list=(); x_list=(); bj_list=(); bx_list=(); d_kb=0; j_kb=0; x_kb=0; bj_kb=0; bx_kb=0
d_c=(); j_c=(); x_c=(); bj_c=(); bx_c=()
for _ in $(seq "$runs"); do
  read -r s kb c < <(measure tcpdump tcpdump -r "$cap" -w /dev/null)
  d_list+=("$s"); d_c+=("$c"); [ "$kb" -gt "$d_kb" ] && d_kb=$kb
  read -r s kb c < <(measure json "$bin" replay "$cap" --json)
  j_list+=("$s"); j_c+=("$c"); [ "$kb" -gt "$j_kb" ] && j_kb=$kb
  read -r s kb c < <(measure text "$bin" replay "$cap" --text)
  x_list+=("$s"); x_c+=("$c"); [ "$kb" -gt "$x_kb" ] && x_kb=$kb
  if [ -n "$base" ]; then
    read -r s kb c < <(measure base-json "$base" replay "$cap" --json)
    bj_list+=("$s"); bj_c+=("$c"); [ "$kb" -gt "$bj_kb" ] && bj_kb=$kb
    read -r s kb c < <(measure base-text "$base" replay "$cap" --text)
    bx_list+=("$s"); bx_c+=("$c"); [ "$kb" -gt "$bx_kb" ] && bx_kb=$kb
  fi
done
d_s=$(median "${d_list[@]}"); j_s=$(median "${j_list[@]}"); x_s=$(median "${x_list[@]}")
d_cpu=$(median "${d_c[@]}"); j_cpu=$(median "${j_c[@]}"); x_cpu=$(median "${x_c[@]}")
echo "runs: tcpdump ${d_list[*]}; json ${j_list[*]}; text ${x_list[*]}" >&2
if [ -n "$base" ]; then
  bj_s=$(median "${bj_list[@]}"); bx_s=$(median "${bx_list[@]}")
  bj_cpu=$(median "${bj_c[@]}"); bx_cpu=$(median "${bx_c[@]}")
  echo "baseline runs: json ${bj_list[*]}; text ${bx_list[*]}" >&2
  if ! cmp -s "$dir/json.out" "$dir/base-json.out"; then
    echo "WARNING: --json output differs from the baseline's" >&2
  fi
fi
tui=""
if [ -z "${NO_TUI:-}" ]; then
  read -r u_s u_kb u_cpu < <(measure tui target/release/examples/tui_load "$cap")
  tui=$(cat "$dir/tui.out")
fi
t_s=""
if [ -z "${NO_TSHARK:-}" ]; then
  read -r t_s t_kb t_cpu < <(measure tshark tshark -r "$cap" -Y http.request -T fields -e http.response_in)
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# From the summary at the document's end (loading a 1 GB document in python takes minutes).
requests=$(tail -c 16384 "$dir/json.out" | grep -o '"summary":{[^}]*' | grep -o '"requests":[0-9]*' | cut -d: -f2)
mb() { python3 -c "print(f'{$1/1024:.0f}')"; }
r() { python3 -c "print(f'{$1/$2:.1f}')"; }
echo
echo "capture: $cap ($((bytes >> 20)) MB, ${packets:-?} packets, $events events ($mode), $requests requests by alarmscope); binary: $bin"
echo
echo "| run | wall s | CPU s | x tcpdump (wall) | tshark / this (wall) | peak RSS MB |"
echo "|---|---|---|---|---|---|"
tsr() { [ -n "$t_s" ] && r "$t_s" "$1" || echo "-"; }
echo "| \`tcpdump -r F -w /dev/null\` | $d_s | $d_cpu | 1.0 | $(tsr "$d_s") | $(mb "$d_kb") |"
echo "| \`alarmscope replay F --json\` | $j_s | $j_cpu | $(r "$j_s" "$d_s") | $(tsr "$j_s") | $(mb "$j_kb") |"
echo "| \`alarmscope replay F --text\` | $x_s | $x_cpu | $(r "$x_s" "$d_s") | $(tsr "$x_s") | $(mb "$x_kb") |"
if [ -n "$base" ]; then
  echo "| baseline \`replay F --json\` | $bj_s | $bj_cpu | $(r "$bj_s" "$d_s") | $(tsr "$bj_s") | $(mb "$bj_kb") |"
  echo "| baseline \`replay F --text\` | $bx_s | $bx_cpu | $(r "$bx_s" "$d_s") | $(tsr "$bx_s") | $(mb "$bx_kb") |"
fi
if [ -n "$tui" ]; then
  echo "| TUI load (examples/tui_load: $tui) | $u_s | $u_cpu | $(r "$u_s" "$d_s") | $(tsr "$u_s") | $(mb "$u_kb") |"
fi
if [ -n "$t_s" ]; then
  echo "| \`tshark -r F -Y http.request -T fields -e http.response_in\` | $t_s | $t_cpu | $(r "$t_s" "$d_s") | 1.0 | $(mb "$t_kb") |"
fi
