#!/usr/bin/env python3
"""Write the CRAFTED sample captures: what a real stack will not produce on demand (reordering,
overlaps, capture gaps, odd link types, sequence wrap, damaged files).

    python3 samples/tools/craft.py [--out DIR] [NAME ...]     (all when none given)

Stdlib only: pcap and pcapng are written with struct; Ethernet, 802.1ad/802.1Q, Linux cooked v1,
BSD NULL, IPv4, IPv6 and TCP headers are built here with correct IPv4 and TCP checksums, and so
are the tunnels of mirror ports and overlays (GRE, ERSPAN II/III, VXLAN, GENEVE, MPLS, LLC/SNAP),
of mobile and IPv6 transition networks (GTP-U, AYIYA, Teredo) and IPv4 fragments;
gzip'd samples compress an existing sample (gzip module, no name, time 0).
Deterministic: fixed addresses, ports, ISNs and timestamps, so the files are byte-identical on
every run. Devices send the same headers and bodies as the recorded samples (bodies.py).
"""

import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bodies  # noqa: E402

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
T0 = 1715653293.0  # 2024-05-14 02:21:33 UTC
DEV_MAC = bytes.fromhex("4419b63a5c7e")
SRV_MAC = bytes.fromhex("001b21aabbcc")
HTTP_DATE = "Tue, 14 May 2024 02:21:33 GMT"

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113


# ---------------------------------------------------------------------------------------------
# Headers


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_bytes(addr):
    if ":" in addr:
        import ipaddress

        return ipaddress.IPv6Address(addr).packed
    return bytes(int(x) for x in addr.split("."))


def tcp_segment(src, dst, sport, dport, seq, ack, flags, payload, window=64240, options=b""):
    """TCP header + payload with its checksum over the v4 or v6 pseudo header."""
    off = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, window, 0, 0)
    seg = hdr + options + payload
    s, d = ip_bytes(src), ip_bytes(dst)
    if len(s) == 4:
        pseudo = s + d + struct.pack("!BBH", 0, 6, len(seg))
    else:
        pseudo = s + d + struct.pack("!IxxxB", len(seg), 6)
    c = checksum(pseudo + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def ip_packet(src, dst, payload, ident):
    s, d = ip_bytes(src), ip_bytes(dst)
    if len(s) == 4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, 6, 0, s, d)
        return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), 6, 64, s, d) + payload


# ---------------------------------------------------------------------------------------------
# A TCP connection whose packets we script one by one


class Conn:
    """Packets of one connection as (ts, direction 'c'/'s', IP packet). `nxt` is each side's next
    sequence number; pass seq= to send something else (retransmission, overlap) without moving it."""

    def __init__(self, client, server, isn_c, isn_s, t=0.0, ident=0x1000):
        self.addr = {"c": client, "s": server}
        self.nxt = {"c": isn_c & 0xFFFFFFFF, "s": isn_s & 0xFFFFFFFF}
        self.t = t
        self.ident = {"c": ident, "s": ident + 0x4000}
        self.packets = []

    def pkt(self, d, flags, payload=b"", seq=None, ack=None, dt=0.0004, options=b"", keep=True):
        self.t += dt
        o = "s" if d == "c" else "c"
        (sip, sport), (dip, dport) = self.addr[d], self.addr[o]
        s = self.nxt[d] if seq is None else seq
        a = (self.nxt[o] if ack is None else ack) if flags & ACK else 0
        seg = tcp_segment(sip, dip, sport, dport, s, a, flags, payload, options=options)
        self.ident[d] += 1
        p = ip_packet(sip, dip, seg, self.ident[d])
        if seq is None:
            self.nxt[d] = (self.nxt[d] + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        if keep:
            self.packets.append((T0 + self.t, d, p))
        return p

    def handshake(self):
        mss = struct.pack("!BBH", 2, 4, 1460)
        self.pkt("c", SYN, options=mss, dt=0.001)
        self.pkt("s", SYN | ACK, options=mss)
        self.pkt("c", ACK)

    def send(self, d, data, ack_each=True, dt=0.0004):
        self.pkt(d, PSH | ACK, data, dt=dt)
        if ack_each:
            self.pkt("s" if d == "c" else "c", ACK)

    def close_server_first(self):
        self.pkt("s", FIN | ACK)
        self.pkt("c", FIN | ACK)
        self.pkt("s", ACK)


def request(body, host, ctype='application/xml; charset="UTF-8"', keep_alive=True):
    return (
        "POST /alarm HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Accept-Language: en-US\r\n"
        f"Date: {HTTP_DATE}\r\n"
        f"Content-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode()


def ok_response(keep_alive=False):
    return (
        "HTTP/1.1 200 OK\r\n"
        f"Date: {HTTP_DATE}\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 0\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode()


def simple_exchange(conn, body, host, body_segments=1):
    """Handshake, head, body (in `body_segments` pieces), 200 OK, close."""
    conn.handshake()
    conn.send("c", request(body, host))
    step = -(-len(body) // body_segments)
    for i in range(0, len(body), step):
        conn.send("c", body[i : i + step])
    conn.send("s", ok_response(), dt=0.02)
    conn.close_server_first()
    return conn


# ---------------------------------------------------------------------------------------------
# Link layers and files


def ether(p, d, tags=()):
    """Ethernet II; `tags` is a list of (TPID, VLAN id) outermost first."""
    dst, src = (SRV_MAC, DEV_MAC) if d == "c" else (DEV_MAC, SRV_MAC)
    h = dst + src
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", 0x86DD if p[0] >> 4 == 6 else 0x0800) + p


def sll(p, d):
    """Linux cooked v1, as captured on the server: device packets 'to us' (0), ours 'outgoing' (4)."""
    pkttype = 0 if d == "c" else 4
    src = DEV_MAC if d == "c" else SRV_MAC
    return struct.pack("!HHH", pkttype, 1, 6) + src + b"\0\0" + struct.pack("!H", 0x0800) + p


def null_loop(p, d):
    return struct.pack("<I", 2) + p  # AF_INET, little-endian host order


def write_pcap(path, linktype, frames, snaplen=65535):
    """frames: (ts, bytes); frames longer than snaplen are cut (orig_len keeps the wire length)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        for ts, data in frames:
            sec, usec = int(ts), int(round((ts - int(ts)) * 1e6))
            cap = data[:snaplen]
            f.write(struct.pack("<IIII", sec, usec, len(cap), len(data)) + cap)


def frames_of(conns, link):
    pk = sorted((p for c in conns for p in c.packets), key=lambda x: x[0])
    return [(ts, link(p, d)) for ts, d, p in pk]


def pcapng_block(btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng_idb(linktype, name):
    opt_name = name.encode()
    opts = struct.pack("<HH", 2, len(opt_name)) + opt_name + b"\0" * (-len(opt_name) % 4)
    opts += struct.pack("<HH", 0, 0)
    return pcapng_block(1, struct.pack("<HHI", linktype, 0, 65535) + opts)


def pcapng_epb(iface, ts, data):
    us = int(round(ts * 1e6))
    body = struct.pack("<IIIII", iface, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data
    return pcapng_block(6, body)


# ---------------------------------------------------------------------------------------------
# The samples

CAM = ("192.168.1.64", 50112)
SRV = ("192.168.1.10", 8080)
HOST = "192.168.1.10:8080"


def vmd(date="2024-05-14T10:21:33+08:00", n=1):
    return bodies.vmd_xml(CAM[0], date, n)


def line(date="2024-05-14T10:21:35+08:00", n=1):
    return bodies.linedetection_xml(CAM[0], date, n)


def out_of_order(out):
    body = line()
    c = Conn(CAM, SRV, 0x1A2B3C4D, 0x5E6F7081)
    c.handshake()
    c.send("c", request(body, HOST))
    start = c.nxt["c"]
    a, b = len(body) // 3, 2 * len(body) // 3
    pieces = [(0, a), (a, b), (b, len(body))]
    # Third piece, then second, then first: the server dup-ACKs until the hole fills.
    for lo, hi in [pieces[2], pieces[1], pieces[0]]:
        c.pkt("c", PSH | ACK, body[lo:hi], seq=start + lo)
        filled = lo == 0
        c.pkt("s", ACK, ack=(start + len(body)) if filled else start)
    c.nxt["c"] = (start + len(body)) & 0xFFFFFFFF
    c.send("s", ok_response(), dt=0.02)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def retransmit_overlap(out):
    body = vmd()
    pos = body.index(b"VMD</eventType>")
    c1, c2 = pos - 100, pos + 30
    assert c1 > 0 and c2 + 80 < len(body)
    altered = bytearray(body)
    altered[pos : pos + 3] = b"BAD"
    c = Conn(CAM, SRV, 0x0BADF00D, 0x600DCAFE)
    c.handshake()
    c.send("c", request(body, HOST))
    st = c.nxt["c"]

    def seg(lo, hi, data=body, dt=0.0004):
        c.pkt("c", PSH | ACK, bytes(data[lo:hi]), seq=st + lo, dt=dt)

    def ack_to(hi):
        c.pkt("s", ACK, ack=st + hi)

    seg(0, c1)
    ack_to(c1)
    seg(c1, c2)  # carries "VMD"
    ack_to(c2)
    seg(c1, c2, dt=0.2)  # exact retransmission (same bytes)
    ack_to(c2)
    seg(c2 - 40, c2 + 40)  # overlaps 40 old bytes (same), brings 40 new
    ack_to(c2 + 40)
    seg(pos - 10, c2 + 80, data=altered)  # old bytes DIFFER ("BAD"), then 40 new correct bytes
    ack_to(c2 + 80)
    seg(c2 + 80, len(body))
    ack_to(len(body))
    c.nxt["c"] = (st + len(body)) & 0xFFFFFFFF
    c.send("s", ok_response(), dt=0.02)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


GAP_LO, GAP_HI = 600, 900  # bytes of the linedetection body left out of capture-gap.pcap


def capture_gap(out):
    body = line()
    c = Conn(CAM, SRV, 0x22334455, 0x66778899)
    c.handshake()
    c.send("c", request(body, HOST))
    c.send("c", body[:GAP_LO])
    c.pkt("c", PSH | ACK, body[GAP_LO:GAP_HI], keep=False)  # sent, but the capture lost it
    c.pkt("c", PSH | ACK, body[GAP_HI:])
    c.pkt("s", ACK)  # acknowledges all of it, the lost segment included
    c.send("s", ok_response(), dt=0.02)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def midstream(out):
    first = vmd("2024-05-14T10:21:33+08:00", 1)
    second = vmd("2024-05-14T10:21:34+08:00", 2)
    c = Conn(CAM, SRV, 0x31415926, 0x27182818)
    # Not captured: handshake, request 1 head and first half of its body.
    c.pkt("c", SYN, keep=False)
    c.pkt("s", SYN | ACK, keep=False)
    c.pkt("c", ACK, keep=False)
    c.pkt("c", PSH | ACK, request(first, HOST), keep=False)
    half = len(first) // 2
    c.pkt("c", PSH | ACK, first[:half], keep=False)
    c.pkt("s", ACK, keep=False)
    # Capture starts here.
    c.send("c", first[half:])
    c.send("s", ok_response(keep_alive=True), dt=0.02)
    c.send("c", request(second, HOST), dt=1.0)
    c.send("c", second)
    c.send("s", ok_response(), dt=0.02)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


ANSWER_TEXT = b"event received, thanks\n"


def answer_head(keep_alive=True):
    """A 200 OK head announcing ANSWER_TEXT as its body."""
    return (
        "HTTP/1.1 200 OK\r\n"
        f"Date: {HTTP_DATE}\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(ANSWER_TEXT)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode()


def lost_answer_head(out):
    """Three keep-alive POSTs; the first answer's head segment is missing from the capture (its
    body segment is there, and the device ACKs both). Each answer is head + text body."""
    c = Conn(CAM, SRV, 0x0BADF00D, 0x0DEFACED)
    c.handshake()
    for i in range(3):
        body = vmd(f"2024-05-14T10:21:3{3 + i}+08:00", i + 1)
        c.send("c", request(body, HOST), dt=0.4 if i else 0.001)
        c.send("c", body)
        last = i == 2
        c.pkt("s", PSH | ACK, answer_head(keep_alive=not last), dt=0.02, keep=i != 0)
        c.pkt("s", PSH | ACK, ANSWER_TEXT)
        c.pkt("c", ACK)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def lost_whole_answers(out):
    """Four keep-alive POSTs, the device waiting for each answer before the next; the segments
    of the second and third answers (head and body) are missing from the capture, though the
    device ACKs them before its next POST. Only the first and the fourth answers are there."""
    c = Conn(CAM, SRV, 0x0C0FFEE0, 0x0FACADE0)
    c.handshake()
    for i in range(4):
        body = vmd(f"2024-05-14T10:21:3{3 + i}+08:00", i + 1)
        c.send("c", request(body, HOST), dt=0.4 if i else 0.001)
        c.send("c", body)
        last = i == 3
        seen = i in (0, 3)
        c.pkt("s", PSH | ACK, answer_head(keep_alive=not last), dt=0.02, keep=seen)
        c.pkt("s", PSH | ACK, ANSWER_TEXT, keep=seen)
        c.pkt("c", ACK)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def probe_after_picture(out):
    """Capture starts mid-connection while the server still sends the tail of a JPEG (the answer
    to a request before the capture). The device sends a 1-byte TCP keep-alive probe (seq =
    next - 1, byte 00), then a VMD POST; the server's next segment holds the last JPEG bytes and,
    right after them with no line break, the 200 OK."""
    jpeg_tail = bytes((i * 73 + 11) % 256 for i in range(1200)).replace(b"\n", b"\x0b") + b"\xff\xd9"
    body = vmd("2024-05-14T10:21:40+08:00", 1)
    c = Conn(CAM, SRV, 0x600DCAFE, 0x5EEDBEEF)
    c.pkt("c", SYN, keep=False)
    c.pkt("s", SYN | ACK, keep=False)
    c.pkt("c", ACK, keep=False)
    c.pkt("s", PSH | ACK, b"\xff\xd8" + bytes(3000), keep=False)  # picture head, before the capture
    # Capture starts here.
    c.send("s", jpeg_tail[:1000])
    c.pkt("c", ACK, b"\x00", seq=(c.nxt["c"] - 1) & 0xFFFFFFFF, dt=1.0)  # keep-alive probe
    c.pkt("s", ACK)
    c.send("c", request(body, HOST), ack_each=False)
    c.send("c", body)
    c.send("s", jpeg_tail[1000:] + ok_response(keep_alive=False), dt=0.02)
    c.close_server_first()
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


SNAPLEN = 96


def truncated_snaplen(out):
    c = simple_exchange(Conn(CAM, SRV, 0x10203040, 0x50607080), vmd(), HOST)
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether), snaplen=SNAPLEN)


def truncated_counts():
    """(frames cut, payload bytes cut) of truncated-snaplen.pcap, from the same design."""
    c = simple_exchange(Conn(CAM, SRV, 0x10203040, 0x50607080), vmd(), HOST)
    fr = frames_of([c], ether)
    cut = [len(d) - SNAPLEN for _, d in fr if len(d) > SNAPLEN]
    return len(cut), sum(cut)


def sll_file(out):
    c = simple_exchange(Conn(CAM, SRV, 0x01020304, 0x0A0B0C0D), vmd(), HOST)
    write_pcap(out, LINKTYPE_LINUX_SLL, frames_of([c], sll))


def vlan_qinq(out):
    c = simple_exchange(Conn(CAM, SRV, 0x11111111, 0x22222222), line(), HOST)
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], lambda p, d: ether(p, d, [(0x88A8, 100), (0x8100, 20)])))


def ipv6(out):
    dev, srv = ("fd00::10", 50444), ("fd00::1", 8080)
    body = bodies.vmd_xml("fd00::10", "2024-05-14T10:21:33+08:00", 1).replace(b"ipAddress>", b"ipv6Address>")
    c = simple_exchange(Conn(dev, srv, 0x76543210, 0x01234567), body, "[fd00::1]:8080")
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def null_loopback(out):
    body = bodies.vmd_xml("127.0.0.1", "2024-05-14T10:21:33+08:00", 1)
    c = simple_exchange(Conn(("127.0.0.1", 50999), ("127.0.0.1", 8080), 0x0C0FFEE0, 0x0DEADBE0), body, "127.0.0.1:8080")
    write_pcap(out, LINKTYPE_NULL, frames_of([c], null_loop))


def seq_wrap(out):
    body = line()
    head = request(body, HOST)
    # Client: sequence 0 falls 100 bytes into the body. Server: 16 bytes into the response.
    isn_c = (2**32 - 1 - len(head) - 100) & 0xFFFFFFFF
    isn_s = 2**32 - 1 - 16
    c = simple_exchange(Conn(CAM, SRV, isn_c, isn_s), body, HOST, body_segments=2)
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def two_interfaces(out):
    a = simple_exchange(Conn(CAM, SRV, 0x44444444, 0x55555555), vmd(), HOST)
    dev_b, srv_b = ("10.20.0.5", 50321), ("10.20.0.1", 8080)
    body_b = bodies.linedetection_xml("10.20.0.5", "2024-05-14T10:21:40+08:00", 1)
    b = simple_exchange(Conn(dev_b, srv_b, 0x66666666, 0x77777777, t=5.0), body_b, "10.20.0.1:8080")
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    with open(out, "wb") as f:
        f.write(shb)
        f.write(pcapng_idb(LINKTYPE_ETHERNET, "eth0"))
        for ts, d, p in a.packets:
            f.write(pcapng_epb(0, ts, ether(p, d)))
        # The second interface is described only where it is first used, so readers that stop
        # at an interface of another link type (libpcap) still analyse the first exchange.
        f.write(pcapng_idb(LINKTYPE_RAW, "tun0"))
        for ts, d, p in b.packets:
            f.write(pcapng_epb(1, ts, p))


def reset_midbody(out):
    body = line()
    c = Conn(CAM, SRV, 0x0F0F0F0F, 0x70707070)
    c.handshake()
    c.send("c", request(body, HOST))
    c.send("c", body[: len(body) // 2])
    c.pkt("s", RST | ACK, dt=0.05)
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([c], ether))


def cut_mid_record(out):
    a = simple_exchange(Conn(CAM, SRV, 0x12121212, 0x34343434), vmd(), HOST)
    body = line()
    b = Conn((CAM[0], 50113), SRV, 0x56565656, 0x78787878, t=1.0)
    b.handshake()
    b.send("c", request(body, HOST))
    b.pkt("c", PSH | ACK, body)  # the last record: cut in half below
    write_pcap(out, LINKTYPE_ETHERNET, frames_of([a, b], ether))
    with open(out, "rb") as f:
        data = f.read()
    last_len = 14 + 20 + 20 + len(body)
    keep = len(data) - last_len + (16 + last_len) // 2 - 16  # record header + half the record
    with open(out, "wb") as f:
        f.write(data[:keep])


def not_a_capture(out):
    with open(out, "w") as f:
        f.write(
            "This is not a packet capture.\n"
            "It is a plain text file that alarmscope must refuse with a clear error\n"
            "(not a pcap or pcapng file) instead of crashing or reporting an empty capture.\n"
        )


# ---------------------------------------------------------------------------------------------
# Tunnels: what a SPAN/ERSPAN port or an overlay network hands to the capture. The device's
# exchange is the same simple one each time; only the wrapping differs. The outer addresses are
# the mirror (switch) and the collector, never the device or the server.

MIRROR, COLLECTOR = "10.99.0.1", "10.99.0.2"
MIRROR_MAC = bytes.fromhex("00000c9ff001")
COLLECTOR_MAC = bytes.fromhex("52540012abcd")
TUNNEL_ISNS = {
    "gre.pcap": (0x47524501, 0x47524502),
    "erspan-ii.pcap": (0x45520201, 0x45520202),
    "erspan-iii.pcap": (0x45520301, 0x45520302),
    "vxlan.pcap": (0x56584C01, 0x56584C02),
    "geneve.pcap": (0x47454E01, 0x47454E02),
    "mpls.pcap": (0x4D504C01, 0x4D504C02),
    "llc-snap.pcap": (0x534E4101, 0x534E4102),
}


def tunnel_exchange(name):
    """The device's exchange carried by the tunnel sample `name` (a linedetection for ERSPAN and
    GENEVE, VMD for the others)."""
    isn_c, isn_s = TUNNEL_ISNS[name]
    body = line() if name in ("erspan-iii.pcap", "geneve.pcap") else vmd()
    return simple_exchange(Conn(CAM, SRV, isn_c, isn_s), body, HOST)


def outer_ip(payload, proto, ident):
    s, d = ip_bytes(MIRROR), ip_bytes(COLLECTOR)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, proto, 0, s, d)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload


def outer_ether(p):
    return COLLECTOR_MAC + MIRROR_MAC + struct.pack("!H", 0x0800) + p


def outer_udp(dport, sport, payload):
    """UDP from the mirror to the collector; checksum 0 (allowed over IPv4, as VTEPs send it)."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def write_tunnel(out, name, wrap):
    """`wrap(i, ts, d, inner_ip_packet)` -> the whole Ethernet frame of the i-th packet."""
    c = tunnel_exchange(name)
    pk = sorted(c.packets, key=lambda x: x[0])
    write_pcap(out, LINKTYPE_ETHERNET, [(ts, wrap(i, ts, d, p)) for i, (ts, d, p) in enumerate(pk)])


def gre_file(out):
    # GRE with checksum, key and sequence number (RFC 2890), transparent Ethernet bridging.
    def wrap(i, ts, d, p):
        inner = ether(p, d)
        head = struct.pack("!HHHHII", 0xB000, 0x6558, 0, 0, 0x00000065, i + 1)
        c = checksum(head + inner)
        gre = head[:4] + struct.pack("!H", c) + head[6:] + inner
        return outer_ether(outer_ip(gre, 47, 0x2000 + i))

    write_tunnel(out, "gre.pcap", wrap)


def erspan_ii(out):
    # GRE with the sequence bit, protocol 0x88BE, ERSPAN type II header: version 1, VLAN 0,
    # COS 0, encapsulation 3 (as on the wire, tags kept), T 0, session 100, index 0.
    def wrap(i, ts, d, p):
        gre = struct.pack("!HHI", 0x1000, 0x88BE, i + 1)
        hdr = struct.pack("!HHI", (1 << 12) | 0, (0 << 13) | (3 << 11) | 100, 0)
        return outer_ether(outer_ip(gre + hdr + ether(p, d), 47, 0x2100 + i))

    write_tunnel(out, "erspan-ii.pcap", wrap)


def erspan_iii(out):
    # GRE with the sequence bit, protocol 0x22EB, ERSPAN type III header: version 2, session 200,
    # timestamp in 100 ns units (granularity 1), SGT 0, P 1, frame type 0 (Ethernet), hardware
    # id 5, D 0 (ingress), O 1, then the 8-byte platform-specific subheader (platform id 3).
    def wrap(i, ts, d, p):
        gre = struct.pack("!HHI", 0x1000, 0x22EB, i + 1)
        stamp = int(round((ts - T0) * 1e7)) & 0xFFFFFFFF
        low = (1 << 15) | (0 << 10) | (5 << 4) | (0 << 3) | (1 << 1) | 1
        hdr = struct.pack("!HHIHH", (2 << 12) | 0, 200, stamp, 0, low)
        platform = struct.pack("!II", (3 << 26) | 0x100, 0)
        return outer_ether(outer_ip(gre + hdr + platform + ether(p, d), 47, 0x2200 + i))

    write_tunnel(out, "erspan-iii.pcap", wrap)


def vxlan_file(out):
    # VXLAN (RFC 7348): flags I, VNI 5001, inner Ethernet; the source port is the flow's hash.
    def wrap(i, ts, d, p):
        vx = struct.pack("!BxxxI", 0x08, 5001 << 8)
        return outer_ether(outer_ip(outer_udp(4789, 49152 + 1234, vx + ether(p, d)), 17, 0x2300 + i))

    write_tunnel(out, "vxlan.pcap", wrap)


def geneve_file(out):
    # GENEVE (RFC 8926): version 0, one non-critical option (class 0x0102, type 0x01, 4 bytes),
    # protocol 0x6558 (Ethernet), VNI 7001.
    def wrap(i, ts, d, p):
        opt = struct.pack("!HBBI", 0x0102, 0x01, 1, 0xC0FFEE00)
        gn = struct.pack("!BBHI", len(opt) // 4, 0, 0x6558, 7001 << 8) + opt
        return outer_ether(outer_ip(outer_udp(6081, 49152 + 4321, gn + ether(p, d)), 17, 0x2400 + i))

    write_tunnel(out, "geneve.pcap", wrap)


def mpls_file(out):
    # Two MPLS labels (transport 16001, service 24005 with bottom of stack), TTL 64, then IPv4.
    def wrap(i, ts, d, p):
        dst, src = (SRV_MAC, DEV_MAC) if d == "c" else (DEV_MAC, SRV_MAC)
        stack = struct.pack("!II", (16001 << 12) | 64, (24005 << 12) | (1 << 8) | 64)
        return dst + src + struct.pack("!H", 0x8847) + stack + p

    write_tunnel(out, "mpls.pcap", wrap)


def llc_snap_file(out):
    # IEEE 802.3 frames: a length in place of the EtherType, LLC AA AA 03, SNAP OUI 00-00-00,
    # type 0x0800 (RFC 1042).
    def wrap(i, ts, d, p):
        dst, src = (SRV_MAC, DEV_MAC) if d == "c" else (DEV_MAC, SRV_MAC)
        llc = bytes([0xAA, 0xAA, 0x03, 0, 0, 0]) + struct.pack("!H", 0x0800) + p
        assert len(llc) <= 1500
        return dst + src + struct.pack("!H", len(llc)) + llc

    write_tunnel(out, "llc-snap.pcap", wrap)


def tunnel_frames(name):
    """Frames of a tunnel sample: one per packet of its exchange."""
    return len(tunnel_exchange(name).packets)


# ---------------------------------------------------------------------------------------------
# IP fragments and the UDP tunnels of mobile and IPv6 transition networks (issue 19).


def fragment_ipv4(p, mtu, ident=None):
    """Split the IPv4 packet `p` into fragments of at most `mtu` bytes (DF cleared, MF and the
    offset set, header checksum recomputed); `p` itself when it fits."""
    ihl = (p[0] & 0x0F) * 4
    hdr, payload = p[:ihl], p[ihl:]
    if len(p) <= mtu:
        return [p]
    step = (mtu - ihl) // 8 * 8
    out = []
    for off in range(0, len(payload), step):
        part = payload[off : off + step]
        more = off + step < len(payload)
        h = bytearray(hdr)
        struct.pack_into("!H", h, 2, ihl + len(part))
        if ident is not None:
            struct.pack_into("!H", h, 4, ident & 0xFFFF)
        struct.pack_into("!H", h, 6, (0x2000 if more else 0) | (off // 8))
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, checksum(bytes(h)))
        out.append(bytes(h) + part)
    return out


FRAG_MTU = 576  # RFC 791's datagram size every host must accept: an old link on the path


def ip_fragments(out):
    # Two linedetection POSTs (head and body in separate segments; each body packet is 1093
    # bytes) across a 576-byte MTU link with DF off: every packet above 576 bytes is split in two.
    # Connection 1's fragments arrive in order; connection 2's body fragments arrive last first,
    # and that last fragment is captured twice before the first comes (a mirror port's
    # duplicate, same bytes).
    conns = [
        simple_exchange(Conn(CAM, SRV, 0x46524101, 0x46524102), line(n=1), HOST),
        simple_exchange(
            Conn((CAM[0], CAM[1] + 1), SRV, 0x46524201, 0x46524202, t=1.0, ident=0x3000),
            line(date="2024-05-14T10:21:36+08:00", n=2),
            HOST,
        ),
    ]
    frames = []
    for k, c in enumerate(conns):
        for ts, d, p in c.packets:
            parts = fragment_ipv4(p, FRAG_MTU)
            if k == 1 and len(parts) > 1:
                parts = [parts[-1], parts[-1]] + parts[:-1]
            frames += [(ts + i * 0.00001, ether(q, d)) for i, q in enumerate(parts)]
    frames.sort(key=lambda f: f[0])
    write_pcap(out, LINKTYPE_ETHERNET, frames)


def fragment_ipv6(p, size, ident):
    """Split the IPv6 packet `p` (no extension headers) into fragments carrying at most `size`
    payload bytes each, with a fragment header (RFC 8200 section 4.5); `p` when it fits."""
    hdr, payload = p[:40], p[40:]
    if len(payload) <= size:
        return [p]
    step = size // 8 * 8
    out = []
    for off in range(0, len(payload), step):
        part = payload[off : off + step]
        more = off + step < len(payload)
        frag = struct.pack("!BBHI", hdr[6], 0, off | int(more), ident)
        h = bytearray(hdr)
        struct.pack_into("!H", h, 4, 8 + len(part))
        h[6] = 44
        out.append(bytes(h) + frag + part)
    return out


def ipv6_fragments(out):
    # The ipv6.pcap exchange with a linedetection body, each packet above 512 payload bytes sent
    # by the camera in fragments of 512 (smaller than an IPv6 path ever needs: crafted to
    # exercise the fragment header). The body packet's fragments arrive in reverse order.
    dev, srv = ("fd00::10", 50444), ("fd00::1", 8080)
    body = bodies.linedetection_xml("fd00::10", "2024-05-14T10:21:35+08:00", 1).replace(b"ipAddress>", b"ipv6Address>")
    c = simple_exchange(Conn(dev, srv, 0x76543299, 0x01234599), body, "[fd00::1]:8080")
    frames = []
    for i, (ts, d, p) in enumerate(sorted(c.packets, key=lambda x: x[0])):
        parts = fragment_ipv6(p, 512, 0x6000 + i)
        if len(parts) > 1:
            parts = list(reversed(parts))
        frames += [(ts + j * 0.00001, ether(q, d)) for j, q in enumerate(parts)]
    write_pcap(out, LINKTYPE_ETHERNET, frames)


ERSPAN_FRAG_MTU = 1000  # the mirror's path to the collector (crafted to split large frames)


def erspan_fragmented(out):
    # ERSPAN type II as erspan-ii.pcap, of a linedetection POST, but the outer IPv4 packets
    # larger than 1000 bytes are sent in fragments (as zeek's erspan.pcap shows from a real
    # switch): the inner TCP segment can be read only once the outer packet is joined.
    def wrap_packets(i, ts, d, p):
        gre = struct.pack("!HHI", 0x1000, 0x88BE, i + 1)
        hdr = struct.pack("!HHI", (1 << 12) | 0, (0 << 13) | (3 << 11) | 100, 0)
        outer = outer_ip(gre + hdr + ether(p, d), 47, 0x2500 + i)
        return [outer_ether(q) for q in fragment_ipv4(outer, ERSPAN_FRAG_MTU)]

    c = erspan_fragmented_exchange()
    pk = sorted(c.packets, key=lambda x: x[0])
    frames = []
    for i, (ts, d, p) in enumerate(pk):
        frames += [(ts + j * 0.00001, f) for j, f in enumerate(wrap_packets(i, ts, d, p))]
    write_pcap(out, LINKTYPE_ETHERNET, frames)


def erspan_fragmented_exchange():
    return simple_exchange(Conn(CAM, SRV, 0x45524601, 0x45524602), line(), HOST)


ENB, SGW = "10.20.0.1", "10.20.0.2"


def gtp_u_exchange():
    return simple_exchange(Conn(CAM, SRV, 0x47545001, 0x47545002), vmd(), HOST)


def gtp_u_file(out):
    # The operator's S1-U link between an eNodeB (the camera's cellular router attaches there)
    # and the serving gateway: GTPv1-U G-PDUs carrying the camera's IPv4 packets. Uplink from
    # the eNodeB's source port 5906 to 2152 with the sequence-number flag (12-byte header);
    # downlink from 2152 to 2152 with the 8-byte header. An echo request/response pair (no user
    # packet) comes first.
    def gtp(d, p, i):
        if d == "c":
            return struct.pack("!BBHIHBB", 0x32, 0xFF, len(p) + 4, 0x0100A001, i, 0, 0) + p
        return struct.pack("!BBHI", 0x30, 0xFF, len(p), 0x0200B002) + p

    def frame(src, dst, sport, dport, payload, ident):
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), ident, 0, 64, 17, 0, ip_bytes(src), ip_bytes(dst))
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        return COLLECTOR_MAC + MIRROR_MAC + struct.pack("!H", 0x0800) + ip + outer_udp(dport, sport, payload)

    c = gtp_u_exchange()
    pk = sorted(c.packets, key=lambda x: x[0])
    echo_req = struct.pack("!BBHIHBB", 0x32, 1, 4, 0, 1, 0, 0)
    echo_resp = struct.pack("!BBHIHBBBB", 0x32, 2, 6, 0, 1, 0, 0, 14, 0)
    frames = [
        (T0 - 0.5, frame(ENB, SGW, 2152, 2152, echo_req, 0x0F00)),
        (T0 - 0.4999, frame(SGW, ENB, 2152, 2152, echo_resp, 0x0F01)),
    ]
    for i, (ts, d, p) in enumerate(pk):
        if d == "c":
            frames.append((ts, frame(ENB, SGW, 5906, 2152, gtp(d, p, i), 0x1000 + i)))
        else:
            frames.append((ts, frame(SGW, ENB, 2152, 2152, gtp(d, p, i), 0x2000 + i)))
    write_pcap(out, LINKTYPE_ETHERNET, frames)


CAM6 = ("2001:db8:100::64", 50112)
SRV6 = ("2001:db8:200::10", 8080)
HOST6 = "[2001:db8:200::10]:8080"
TIC_CLIENT, POP = "198.51.100.7", "203.0.113.5"


def ipv6_exchange(isns, ip):
    body = bodies.vmd_xml(ip, "2024-05-14T10:21:33+08:00", 1).replace(b"ipAddress>", b"ipv6Address>")
    return simple_exchange(Conn((ip, CAM6[1]), SRV6, *isns), body, HOST6)


def udp4_frame(src, dst, sport, dport, payload, ident):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), ident & 0xFFFF, 0x4000, 64, 17, 0, ip_bytes(src), ip_bytes(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return COLLECTOR_MAC + MIRROR_MAC + struct.pack("!H", 0x0800) + ip + outer_udp(dport, sport, payload)


def ayiya_exchange():
    return ipv6_exchange((0x41594901, 0x41594902), CAM6[0])


def ayiya_file(out):
    # A camera on an IPv6 tunnel-broker link (SixXS-style AYIYA): its IPv6 packets travel in UDP
    # between the tunnel client (198.51.100.7) and the PoP (203.0.113.5), port 5072 both ways.
    # AYIYA header: identity 16 bytes (the client's IPv6 address, type 1), SHA-1 signature
    # (5 words, zeros here), authentication method 1, opcode 1 (forward), next header 41. One
    # heartbeat (opcode 0, no packet) first.
    def ayiya(opcode, nxt, payload, epoch):
        head = struct.pack("!BBBBI", (4 << 4) | 1, (5 << 4) | 2, (1 << 4) | opcode, nxt, epoch)
        return head + ip_bytes(CAM6[0]) + b"\0" * 20 + payload

    c = ayiya_exchange()
    pk = sorted(c.packets, key=lambda x: x[0])
    frames = [(T0 - 0.5, udp4_frame(TIC_CLIENT, POP, 5072, 5072, ayiya(0, 59, b"", int(T0)), 0x0E00))]
    for i, (ts, d, p) in enumerate(pk):
        src, dst = (TIC_CLIENT, POP) if d == "c" else (POP, TIC_CLIENT)
        frames.append((ts, udp4_frame(src, dst, 5072, 5072, ayiya(1, 41, p, int(ts)), 0x1000 + i)))
    write_pcap(out, LINKTYPE_ETHERNET, frames)


# A Teredo address (RFC 4380): prefix 2001:0::/32, server 192.0.2.45, flags 0, the client's
# mapped port 40000 and address 198.51.100.7, both obfuscated (XOR with all ones).
TEREDO_CAM = "2001:0:c000:22d:0:63c1:39cc:9bf8"
TEREDO_RELAY = "192.0.2.99"
TEREDO_NAT_PORT = 40000


def teredo_exchange():
    return ipv6_exchange((0x54455201, 0x54455202), TEREDO_CAM)


def teredo_file(out):
    # The camera reaches an IPv6 alarm server through Teredo: IPv6 in UDP between its NAT mapping
    # (198.51.100.7:40000) and a Teredo relay (192.0.2.99:3544). Packets from the relay carry an
    # origin indication (8 bytes: 00 00, obfuscated port and address) before the IPv6 packet.
    origin = struct.pack("!HH4s", 0, 3544 ^ 0xFFFF, bytes(b ^ 0xFF for b in ip_bytes(TEREDO_RELAY)))
    c = teredo_exchange()
    pk = sorted(c.packets, key=lambda x: x[0])
    frames = []
    for i, (ts, d, p) in enumerate(pk):
        if d == "c":
            frames.append((ts, udp4_frame(TIC_CLIENT, TEREDO_RELAY, TEREDO_NAT_PORT, 3544, p, 0x1000 + i)))
        else:
            frames.append((ts, udp4_frame(TEREDO_RELAY, TIC_CLIENT, 3544, TEREDO_NAT_PORT, origin + p, 0x2000 + i)))
    write_pcap(out, LINKTYPE_ETHERNET, frames)


def gzipped(source):
    """A sample gzip-compressed as `gzip -n` would (no name, time 0): byte-identical each run."""

    def make(out):
        import gzip

        with open(os.path.join(os.path.dirname(out), source), "rb") as f:
            data = f.read()
        with open(out, "wb") as f:
            f.write(gzip.compress(data, compresslevel=9, mtime=0))

    return make


CRAFTED = {
    "out-of-order.pcap": out_of_order,
    "retransmit-overlap.pcap": retransmit_overlap,
    "capture-gap.pcap": capture_gap,
    "midstream.pcap": midstream,
    "truncated-snaplen.pcap": truncated_snaplen,
    "sll.pcap": sll_file,
    "vlan-qinq.pcap": vlan_qinq,
    "ipv6.pcap": ipv6,
    "null-loopback.pcap": null_loopback,
    "seq-wrap.pcap": seq_wrap,
    "two-interfaces.pcapng": two_interfaces,
    "reset-midbody.pcap": reset_midbody,
    "cut-mid-record.pcap": cut_mid_record,
    "not-a-capture.txt": not_a_capture,
    "gre.pcap": gre_file,
    "erspan-ii.pcap": erspan_ii,
    "erspan-iii.pcap": erspan_iii,
    "vxlan.pcap": vxlan_file,
    "geneve.pcap": geneve_file,
    "mpls.pcap": mpls_file,
    "llc-snap.pcap": llc_snap_file,
    # After the files they compress (two-interfaces.pcapng above; xml-ok.pcap is recorded).
    "xml-ok.pcap.gz": gzipped("xml-ok.pcap"),
    "two-interfaces.pcapng.gz": gzipped("two-interfaces.pcapng"),
    "lost-answer-head.pcap": lost_answer_head,
    "probe-after-picture.pcap": probe_after_picture,
    "lost-whole-answers.pcap": lost_whole_answers,
    "ip-fragments.pcap": ip_fragments,
    "ipv6-fragments.pcap": ipv6_fragments,
    "erspan-fragmented.pcap": erspan_fragmented,
    "gtp-u.pcap": gtp_u_file,
    "ayiya.pcap": ayiya_file,
    "teredo.pcap": teredo_file,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    for n in a.names or CRAFTED:
        if n not in CRAFTED:
            sys.exit(f"unknown sample {n}; known: {', '.join(CRAFTED)}")
        path = os.path.join(os.path.abspath(a.out), n)
        CRAFTED[n](path)
        print(f"{n}: {os.path.getsize(path)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
