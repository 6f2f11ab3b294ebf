#!/bin/sh
# Regenerate every REAL sample capture (recorded over loopback with tcpdump).
# Needs root, python3, tcpdump, and iptables or nft (for syn-unanswered.pcap).
# Usage: samples/tools/record.sh [scenario.pcap ...]     (all when none given)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "record.sh: run as root (tcpdump on lo, iptables)" >&2
    exit 1
fi
for tool in python3 tcpdump; do
    command -v "$tool" >/dev/null || { echo "record.sh: $tool not found (apt-get install -y $tool)" >&2; exit 1; }
done
if ! command -v iptables >/dev/null && ! command -v nft >/dev/null; then
    echo "record.sh: neither iptables nor nft: syn-unanswered.pcap will fail (apt-get install -y iptables)" >&2
fi
exec python3 "$here/record.py" --out "$here/.." "$@"
