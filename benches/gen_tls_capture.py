#!/usr/bin/env python3
"""Make an HTTPS-heavy capture for benches/replay_tls.sh from the recorded HTTPS samples.

Each copy of a sample gets its own device address (10.a.b.c) and client ports, and starts
COPY_SPACING later than the previous one, so that connections interleave as many devices'
pushes do; packets are merged in time order. Only the addresses, ports, IP checksum and
timestamps are rewritten: the TLS records are the recorded ones, byte for byte.

    python3 benches/gen_tls_capture.py OUT.pcap [SIZE_MB=50]
    python3 benches/gen_tls_capture.py --keys OUT.keys OUT.pcap [SIZE_MB]   # decryptable only
    python3 benches/gen_tls_capture.py --plain OUT.pcap [SIZE_MB]           # the same pushes in HTTP
    python3 benches/gen_tls_capture.py --devices 200 --keys OUT.keys OUT.pcap 1024

`--devices N` (before the other options): the copies cycle through N device addresses instead of
one address each, so a bigger capture is more pushes from the same devices (for a memory check:
the per-device state of the diagnosis then stays the same whatever the size).

`--keys`: only the samples recorded with a key log, whose lines go to OUT.keys (every copy keeps
its records, so its client random: the samples' key lines cover every copy). `--plain`: the plain
HTTP recordings of the same scenarios (record.py), for replay --keylog against plain HTTP.

Stdlib only (the samples are Ethernet pcap, microsecond timestamps, IPv4 over loopback).
"""

import heapq
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "samples")
TEMPLATES = ["https-ok.pcap", "https-tls12.pcap", "https-tls13.pcap", "https-no-answer.pcap",
             "https-unknown-ca.pcap", "https-to-http.pcap", "http-to-https.pcap"]
COPY_SPACING_US = 2000  # a new device's push every 2 ms
BATCH = 200  # copies merged in time order at once (their time ranges overlap)


def read_pcap(path):
    b = open(path, "rb").read()
    magic, = struct.unpack("<I", b[:4])
    assert magic == 0xA1B2C3D4, f"{path}: expected a little-endian microsecond pcap"
    out, o = [], 24
    while o + 16 <= len(b):
        sec, usec, incl, orig = struct.unpack("<IIII", b[o:o + 16])
        out.append((sec * 1_000_000 + usec, b[o + 16:o + 16 + incl], orig))
        o += 16 + incl
    return b[:24], out


def ip_checksum(h):
    s = sum(struct.unpack(f"!{len(h) // 2}H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def rewrite(frame, server_port, device_ip, port_base):
    """The frame with the device's address replaced and client ports moved by `port_base`."""
    f = bytearray(frame)
    ip = 14
    ihl = (f[ip] & 0x0F) * 4
    tcp = ip + ihl
    sport, dport = struct.unpack("!HH", f[tcp:tcp + 4])
    if dport == server_port:  # device -> server
        f[ip + 12:ip + 16] = device_ip
        f[tcp:tcp + 2] = struct.pack("!H", (sport + port_base) % 64512 + 1024)
    else:
        f[ip + 16:ip + 20] = device_ip
        f[tcp + 2:tcp + 4] = struct.pack("!H", (dport + port_base) % 64512 + 1024)
    f[ip + 10:ip + 12] = b"\0\0"
    f[ip + 10:ip + 12] = struct.pack("!H", ip_checksum(bytes(f[ip:ip + ihl])))
    return bytes(f)


def server_port(packets):
    # The first packet is the device's SYN: its destination port is the server's.
    _, frame, _ = packets[0]
    tcp = 14 + (frame[14] & 0x0F) * 4
    return struct.unpack("!H", frame[tcp + 2:tcp + 4])[0]


KEYED = ["https-ok.pcap", "https-tls12.pcap", "https-tls13.pcap", "https-keepalive.pcap",
         "https-multipart.pcap", "https-tls12-chacha.pcap", "https-tls13-chacha.pcap"]
PLAIN = ["xml-ok.pcap", "json-ok.pcap", "keepalive.pcap", "multipart-anpr.pcap"]


def main():
    args = sys.argv[1:]
    devices = None
    if args[:1] == ["--devices"]:
        devices, args = int(args[1]), args[2:]
    names, keys_out = TEMPLATES, None
    if args[:1] == ["--keys"]:
        names, keys_out, args = KEYED, args[1], args[2:]
    elif args[:1] == ["--plain"]:
        names, args = PLAIN, args[1:]
    out = args[0]
    size = int(args[1]) if len(args) > 1 else 50
    if keys_out:
        with open(keys_out, "wb") as k:
            for name in names:
                k.write(open(os.path.join(SAMPLES, name[:-len(".pcap")] + ".keys"), "rb").read())
    header, templates = None, []
    for name in names:
        header, pk = read_pcap(os.path.join(SAMPLES, name))
        t0 = pk[0][0]
        templates.append(([(t - t0, fr, orig) for t, fr, orig in pk], server_port(pk)))
    written, copy, start = 0, 0, 1_800_000_000 * 1_000_000
    with open(out, "wb") as w:
        w.write(header)
        while written < size << 20:
            streams = []
            for _ in range(BATCH):
                pk, port = templates[copy % len(templates)]
                n = (copy % devices if devices else copy) + 1
                dev = bytes([10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF])
                base = start + copy * COPY_SPACING_US
                streams.append([(base + dt, rewrite(fr, port, dev, copy * 7), orig) for dt, fr, orig in pk])
                copy += 1
            for t, fr, orig in heapq.merge(*streams, key=lambda p: p[0]):
                w.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), orig) + fr)
                written += 16 + len(fr)
            # The next batch starts after this one's last packet: batches do not overlap.
            start = max(s[-1][0] for s in streams) - copy * COPY_SPACING_US + 1
    print(f"{out}: {copy} copies of {len(names)} samples, {written >> 20} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
