#!/usr/bin/env bash
# Run every fuzz target for a set time each, seeded from samples/ and the committed corpora.
# Crashes are saved under fuzz/artifacts/<target>/; copy each into tests/regressions/<target>/
# so the normal test suite replays it.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET=60] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frames capture_file http_split multipart event tls decrypt)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/capture_file
cp -n ../samples/*.pcap ../samples/*.pcapng corpus/capture_file/ 2>/dev/null || true
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${secs}s"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 2>&1 \
    | grep -E "^(#[0-9]+.*DONE|Done|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)" || true
done
