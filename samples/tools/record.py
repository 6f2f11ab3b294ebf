#!/usr/bin/env python3
"""Record the REAL sample captures over loopback: a device simulator POSTs ISAPI events to a
listener with scripted behaviours while tcpdump records the port.

    python3 samples/tools/record.py [--out DIR] [SCENARIO ...]     (root; all scenarios if none)

Stdlib only. Needs tcpdump, and iptables (or nft) for syn-unanswered and synack-not-acked. Devices use source
addresses 127.0.0.10 (camera), 127.0.0.20 (ANPR camera), 127.0.0.30 (access terminal); the
server listens on 127.0.0.1, one port per scenario (see SCENARIOS).

Device behaviour (the same in every scenario):
  * one connection per event unless the server answered `Connection: keep-alive` (then the
    next event reuses the connection);
  * waits ANSWER_TIMEOUT (2 s) for the answer; with no answer (timeout, or the server closed
    without one, or the connection failed) it closes, waits, and retries the SAME body once on a
    new connection; only then does it go on to its next event;
  * a non-200 answer (503) is taken as "server refused" and NOT retried.
The listener checks that it received exactly the bodies the device sent, and the script checks
every status the device saw against the scenario design, so a capture that does not show what
was intended fails loudly.
"""

import argparse
import email.utils
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bodies  # noqa: E402

SERVER_IP = "127.0.0.1"
CAMERA_IP = "127.0.0.10"
ANPR_IP = "127.0.0.20"
ACS_IP = "127.0.0.30"
ANSWER_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.5  # Linux sends the SYN at 0 s and again at 1 s within this.
EVENT_GAP = 0.4  # between a device's events
PATH = "/alarm"

XML_CT = 'application/xml; charset="UTF-8"'


def log(*a):
    print("  ", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Listener


def read_head(sock, buf):
    """Read until CRLFCRLF. Returns (head bytes, rest) or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        try:
            data = sock.recv(65536)
        except OSError:
            return None, buf
        if not data:
            return None, buf
        buf += data
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    start = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return start, headers


def read_exact(sock, buf, n):
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise EOFError("peer closed mid-body")
        buf += data
    return buf[:n], buf[n:]


def read_line(sock, buf):
    while b"\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError("peer closed mid-chunk")
        buf += data
    i = buf.index(b"\r\n")
    return buf[:i], buf[i + 2 :]


def read_chunked(sock, buf):
    body = b""
    while True:
        line, buf = read_line(sock, buf)
        size = int(line.split(b";")[0], 16)
        if size == 0:
            # trailers until empty line
            while True:
                line, buf = read_line(sock, buf)
                if line == b"":
                    return body, buf
        data, buf = read_exact(sock, buf, size + 2)
        body += data[:size]


def response(status, reason, keep_alive=False, body=b""):
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
        "Server: alarm-server\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode() + body


class Listener:
    """Alarm server with one scripted behaviour per request, taken in arrival order:
    ok            answer 200 OK, Connection: close, then close
    ok-keepalive  answer 200 OK, Connection: keep-alive, keep reading the connection
    503           answer 503 Service Unavailable (with a short body), then close
    silent        read the request, never answer; close only when the device closes
    close         read the request, close without answering
    `Expect: 100-continue` is always answered with `100 Continue` before the body is read;
    chunked request bodies are decoded."""

    def __init__(self, port, behaviours):
        self.port = port
        self.behaviours = list(behaviours)
        self.received = []  # (start line, headers, body)
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((SERVER_IP, port))
        self.srv.listen(16)
        self.stopping = False
        self.threads = []
        self.errors = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c):
        try:
            self._serve_inner(c)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(repr(e))
        finally:
            c.close()

    def _serve_inner(self, c):
        buf = b""
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            start, headers = parse_head(head)
            if headers.get("expect", "").lower() == "100-continue":
                c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body, buf = read_chunked(c, buf)
            else:
                body, buf = read_exact(c, buf, int(headers.get("content-length", "0")))
            with self.lock:
                self.received.append((start, headers, body))
                b = self.behaviours.pop(0) if self.behaviours else "ok"
            log(f"listener: {start!r} {len(body)} body bytes -> {b}")
            if b == "ok":
                c.sendall(response(200, "OK"))
                c.shutdown(socket.SHUT_WR)
                drain(c)
                return
            if b == "ok-keepalive":
                c.sendall(response(200, "OK", keep_alive=True))
                continue
            if b == "503":
                c.sendall(response(503, "Service Unavailable", body=b"server busy, try later\n"))
                c.shutdown(socket.SHUT_WR)
                drain(c)
                return
            if b == "silent":
                drain(c)  # until the device gives up and closes
                return
            if b == "close":
                time.sleep(0.05)
                return  # finally: close() without an answer
            raise ValueError(f"unknown behaviour {b}")

    def stop(self):
        self.stopping = True
        self.srv.close()
        for t in self.threads:
            t.join(5)
        if self.errors:
            raise RuntimeError(f"listener errors: {self.errors}")


def drain(c):
    """Read until the peer closes (bounded by 10 s)."""
    c.settimeout(10)
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Device


class Device:
    """An ISAPI device in HTTP listening mode."""

    def __init__(self, src_ip, port, server_ip=SERVER_IP):
        self.src_ip = src_ip
        self.server = (server_ip, port)
        self.sock = None  # kept open while the server allows keep-alive
        self.sent = []  # bodies, one per attempt
        self.results = []  # status per attempt (None: no answer / no connection)

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((self.src_ip, 0))
        s.settimeout(CONNECT_TIMEOUT)
        s.connect(self.server)
        return s

    def _head(self, ctype, length, chunked, expect):
        h = (
            f"POST {PATH} HTTP/1.1\r\n"
            f"Host: {self.server[0]}:{self.server[1]}\r\n"
            "Accept-Language: en-US\r\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Content-Type: {ctype}\r\n"
        )
        if chunked:
            h += "Transfer-Encoding: chunked\r\n"
        else:
            h += f"Content-Length: {length}\r\n"
        if expect:
            h += "Expect: 100-continue\r\n"
        h += "Connection: keep-alive\r\n\r\n"
        return h.encode()

    def _read_response(self, s, deadline):
        """Final status and whether the server keeps the connection, or None on timeout/EOF."""
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                try:
                    data = s.recv(65536)
                except (socket.timeout, OSError):
                    return None
                if not data:
                    return None
                buf += data
            i = buf.index(b"\r\n\r\n") + 4
            start, headers = parse_head(buf[:i])
            buf = buf[i:]
            status = int(start.split()[1])
            if 100 <= status < 200:
                continue
            n = int(headers.get("content-length", "0"))
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                _, buf = read_exact(s, buf, n)
            except (EOFError, OSError):
                return None
            keep = headers.get("connection", "").lower() == "keep-alive"
            return status, keep

    def _attempt(self, body, ctype, chunked, expect):
        s = self.sock
        self.sock = None
        try:
            if s is None:
                s = self._connect()
        except OSError as e:
            log(f"device {self.src_ip}: connect failed: {e}")
            self.results.append(None)
            return None
        self.sent.append(body)
        s.sendall(self._head(ctype, len(body), chunked, expect))
        if expect:
            # Wait (up to 1 s) for 100 Continue before the body, as curl does.
            r, _, _ = select.select([s], [], [], 1.0)
            if r:
                got = s.recv(65536)
                if not got.startswith(b"HTTP/1.1 100"):
                    raise RuntimeError(f"expected 100 Continue, got {got[:40]!r}")
        if chunked:
            step = 180
            for i in range(0, len(body), step):
                piece = body[i : i + step]
                s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                time.sleep(0.01)
            s.sendall(b"0\r\n\r\n")
        else:
            s.sendall(body)
        got = self._read_response(s, time.monotonic() + ANSWER_TIMEOUT)
        if got is None:
            log(f"device {self.src_ip}: no answer, closing")
            s.close()
            self.results.append(None)
            return None
        status, keep = got
        log(f"device {self.src_ip}: {status}")
        self.results.append(status)
        if keep:
            self.sock = s
        else:
            # Wait for the server's FIN (it answered Connection: close), then close.
            s.settimeout(1.0)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()
        return status

    def send_event(self, body, ctype, chunked=False, expect=False):
        status = self._attempt(body, ctype, chunked, expect)
        if status is None:
            time.sleep(0.3)
            status = self._attempt(body, ctype, chunked, expect)  # one retry, same body
        time.sleep(EVENT_GAP)
        return status

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# ---------------------------------------------------------------------------------------------
# Scenarios. Each returns (device, listener or None, expected per-attempt results).


def xml_events(ip):
    return [
        (bodies.vmd_xml(ip, "2024-05-14T10:21:33+08:00", 1), XML_CT),
        (bodies.linedetection_xml(ip, "2024-05-14T10:21:35+08:00", 1), "application/xml"),
        (bodies.vmd_xml(ip, "2024-05-14T10:21:38+08:00", 2), "text/xml"),
    ]


def sc_xml_ok(port):
    lis = Listener(port, ["ok", "ok", "ok"])
    dev = Device(CAMERA_IP, port)
    for body, ct in xml_events(CAMERA_IP):
        dev.send_event(body, ct)
    return dev, lis, [200, 200, 200]


def sc_json_ok(port):
    lis = Listener(port, ["ok", "ok", "ok"])
    dev = Device(ACS_IP, port)
    dev.send_event(bodies.access_json(ACS_IP, "2024-05-14T10:22:01+08:00", 1021, "12345678"), "application/json")
    dev.send_event(bodies.heartbeat_json(ACS_IP, "2024-05-14T10:22:02+08:00"), "application/json")
    dev.send_event(bodies.access_json(ACS_IP, "2024-05-14T10:22:04+08:00", 1022, "87654321"), "application/json")
    return dev, lis, [200, 200, 200]


def sc_multipart_anpr(port):
    lis = Listener(port, ["ok", "ok"])
    dev = Device(ANPR_IP, port)
    for i in range(2):
        body, _ = bodies.anpr_multipart(ANPR_IP, i)
        dev.send_event(body, f"multipart/form-data; boundary={bodies.BOUNDARY}")
    return dev, lis, [200, 200]


def sc_keepalive(port):
    lis = Listener(port, ["ok-keepalive"] * 4)
    dev = Device(CAMERA_IP, port)
    for k in range(4):
        dev.send_event(bodies.vmd_xml(CAMERA_IP, f"2024-05-14T10:23:0{k}+08:00", k + 1), XML_CT)
    dev.close()
    return dev, lis, [200, 200, 200, 200]


def sc_stall_no_answer(port):
    lis = Listener(port, ["ok", "silent", "silent", "ok"])
    dev = Device(CAMERA_IP, port)
    for body, ct in xml_events(CAMERA_IP):
        dev.send_event(body, ct)
    return dev, lis, [200, None, None, 200]


def sc_error_503(port):
    lis = Listener(port, ["ok", "503", "ok"])
    dev = Device(CAMERA_IP, port)
    for body, ct in xml_events(CAMERA_IP):
        dev.send_event(body, ct)
    return dev, lis, [200, 503, 200]


def sc_server_close(port):
    lis = Listener(port, ["ok", "close", "ok"])
    dev = Device(CAMERA_IP, port)
    events = xml_events(CAMERA_IP)[:2]
    for body, ct in events:
        dev.send_event(body, ct)
    return dev, lis, [200, None, 200]


def sc_refused(port):
    dev = Device(CAMERA_IP, port)  # nothing listens on this port
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:24:00+08:00"), XML_CT)
    return dev, None, [None, None]


def firewall_drop(port, add, chain, syn_match, nft_flags):
    """Add (or remove) a DROP rule for TCP to `port` on `chain` (iptables, else nft): `syn_match`
    is the iptables SYN test, `nft_flags` the same as an nft comparison of (syn|ack) with syn.
    Returns True when it worked."""
    op = "-I" if add else "-D"
    if shutil.which("iptables"):
        r = subprocess.run(["iptables", op, chain, "-p", "tcp", "--dport", str(port)] + syn_match + ["-j", "DROP"])
        if r.returncode == 0:
            return True
    if shutil.which("nft"):
        hook = chain.lower()
        table = f"alarmscope_samples_{hook}"
        if add:
            cmds = [
                f"add table inet {table}",
                f"add chain inet {table} {hook} {{ type filter hook {hook} priority -10 ; }}",
                f"add rule inet {table} {hook} tcp dport {port} tcp flags & (syn|ack) {nft_flags} syn drop",
            ]
        else:
            cmds = [f"delete table inet {table}"]
        return all(subprocess.run(["nft", c]).returncode == 0 for c in cmds)
    return False


def firewall(port, add):
    """Drop SYNs to `port` on INPUT."""
    return firewall_drop(port, add, "INPUT", ["--syn"], "==")


def sc_syn_unanswered(port):
    # A listener exists, but the firewall drops every SYN before it.
    lis = Listener(port, [])
    if not firewall(port, True):
        lis.stop()
        raise RuntimeError("neither iptables nor nft could drop SYNs: craft syn-unanswered instead")
    try:
        dev = Device(CAMERA_IP, port)
        dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:24:30+08:00"), XML_CT)
    finally:
        firewall(port, False)
    return dev, lis, [None, None]


def drop_client_acks(port, add):
    """Drop every packet the client sends to `port` except its SYNs (OUTPUT: before the capture
    point on lo, so they are not in the file)."""
    return firewall_drop(port, add, "OUTPUT", ["!", "--syn"], "!=")


# Run by record() after tcpdump has stopped (rules that must outlive the capture).
AFTER_CAPTURE = []


def sc_synack_not_acked(port):
    # The server answers each SYN with SYN-ACK (and retransmits it); the client's ACK (and all
    # it sends after) is dropped before the wire, so the capture shows a client that never
    # completes the handshake. The rule stays until tcpdump has stopped: the server's later
    # SYN-ACK retransmissions must not be answered inside the capture.
    lis = Listener(port, [])
    if not drop_client_acks(port, True):
        lis.stop()
        raise RuntimeError("neither iptables nor nft could drop the client's ACKs")
    AFTER_CAPTURE.append(lambda: drop_client_acks(port, False))
    dev = Device(CAMERA_IP, port)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:27:00+08:00"), XML_CT)
    return dev, lis, [None, None]


def tcp_checksum(src, dst, segment):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class RawSynDevice:
    """A device whose connection attempt is a bare SYN from a raw socket: no socket of the
    kernel owns its port, so the kernel answers the server's SYN-ACK with RST (a client that
    resets instead of completing the handshake). Two attempts, new source port each."""

    def __init__(self, src_ip, port):
        self.src_ip = src_ip
        self.port = port
        self.sent = []
        self.results = []

    def send_event(self, body, ctype):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        raw.bind((self.src_ip, 0))  # the source address the checksum is computed for
        try:
            for attempt in range(2):
                sport = 40100 + attempt
                isn = 1000 + 77777 * attempt
                hdr = struct.pack("!HHIIBBHHH", sport, self.port, isn, 0, 5 << 4, 0x02, 64240, 0, 0)
                csum = tcp_checksum(self.src_ip, SERVER_IP, hdr)
                hdr = hdr[:16] + struct.pack("!H", csum) + hdr[18:]
                raw.sendto(hdr, (SERVER_IP, 0))
                self.results.append(None)
                time.sleep(0.3)
        finally:
            raw.close()
        time.sleep(EVENT_GAP)
        return None

    def close(self):
        pass


def sc_client_reset(port):
    lis = Listener(port, [])
    dev = RawSynDevice(CAMERA_IP, port)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:27:30+08:00"), XML_CT)
    return dev, lis, [None, None]


def sc_one_sided(port):
    # Keep-alive: events 1 and 2 answered 200 on one connection, event 3 never answered (the
    # device gives up after 2 s and retries on a new connection, unanswered too). tcpdump keeps
    # only the device's packets (`src host`), as a capture point that sees one direction.
    lis = Listener(port, ["ok-keepalive", "ok-keepalive", "silent", "silent"])
    dev = Device(CAMERA_IP, port)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:28:00+08:00", 1), XML_CT)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:28:01+08:00", 2), XML_CT)
    dev.send_event(bodies.linedetection_xml(CAMERA_IP, "2024-05-14T10:28:02+08:00", 1), XML_CT)
    dev.close()
    return dev, lis, [200, 200, None, None]


def sc_chunked_continue(port):
    lis = Listener(port, ["ok", "ok"])
    dev = Device(CAMERA_IP, port)
    dev.send_event(bodies.linedetection_xml(CAMERA_IP, "2024-05-14T10:25:00+08:00"), XML_CT, chunked=True)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:25:02+08:00"), XML_CT, expect=True)
    return dev, lis, [200, 200]


def sc_any_sll2(port):
    lis = Listener(port, ["ok", "ok"])
    dev = Device(CAMERA_IP, port)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:26:00+08:00", 1), XML_CT)
    dev.send_event(bodies.linedetection_xml(CAMERA_IP, "2024-05-14T10:26:02+08:00", 1), XML_CT)
    return dev, lis, [200, 200]


def sc_any_sll1_loopback(port):
    # Linux cooked v1 of loopback traffic: ARPHRD_LOOPBACK (772) in every frame's header.
    lis = Listener(port, ["ok", "ok"])
    dev = Device(CAMERA_IP, port)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:27:00+08:00", 1), XML_CT)
    dev.send_event(bodies.linedetection_xml(CAMERA_IP, "2024-05-14T10:27:02+08:00", 1), XML_CT)
    return dev, lis, [200, 200]


# ---------------------------------------------------------------------------------------------
# HTTP-stage conformance: one real client socket, one real server socket, scripted bytes on both
# sides (what a stack's HTTP layer writes is the point, so no HTTP library sits in between).


class RawClient:
    """A client that writes `request` as given and records the status of the answer it reads."""

    def __init__(self):
        self.results = []
        self.sent = []


def raw_server(port, answer, after=None):
    """Serve ONE connection: read the request head (and a single Content-Length body), write
    `answer(head)`, then run `after(conn)` if given, then close. Returns the thread."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((SERVER_IP, port))
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        head, rest = read_head(c, b"")
        if head is not None:
            _, h = parse_head(head)
            n = h.get("content-length", "0")
            # Two Content-Length headers: a server cannot know the body; it answers at once.
            if n.isdigit() and head.lower().count(b"\r\ncontent-length:") == 1:
                read_exact(c, rest, int(n))
            c.sendall(answer(head))
            if after is not None:
                after(c)
        time.sleep(0.2)
        c.close()
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def raw_request(port, request, then=None):
    """Connect from the camera address, write `request`, read the answer's status line (and let
    `then(sock)` talk on), close. Returns the status (an int, or the raw status text)."""
    s = socket.create_connection((SERVER_IP, port), timeout=ANSWER_TIMEOUT, source_address=(CAMERA_IP, 0))
    s.sendall(request)
    head, _ = read_head(s, b"")
    status = head.split(b"\r\n")[0].split(b" ")[1].decode() if head else None
    if then is not None:
        then(s)
    time.sleep(0.1)
    s.close()
    return int(status) if status and status.isdigit() else status


def one_exchange(port, request, answer, after=None, then=None):
    t = raw_server(port, answer, after)
    time.sleep(0.1)
    dev = RawClient()
    dev.results.append(raw_request(port, request, then))
    t.join(5)
    return dev


def sc_websocket_upgrade(port):
    """A WebSocket upgrade: 101, then one masked frame up and one frame down (B1)."""
    accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3's example key and accept

    def answer(_head):
        return (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()

    def after(c):
        c.recv(64)
        c.sendall(b"\x81\x05hello")

    def then(s):
        s.sendall(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")  # "Hello", masked (RFC 6455 5.7)
        s.recv(64)

    req = (
        "GET /ISAPI/Event/notification/alertStream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    return one_exchange(port, req, answer, after, then), None, [101]


def ok_answer(_head):
    return response(200, "OK")


def sc_query_method(port):
    """curl -X QUERY with a JSON body: a method outside the usual list (B4)."""
    t = raw_server(port, ok_answer)
    time.sleep(0.1)
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", CAMERA_IP, "-X", "QUERY",
         "-H", "Content-Type: application/json", "--data", '{"searchID":"1","maxResults":10}',
         f"http://{SERVER_IP}:{port}/ISAPI/AccessControl/AcsEvent"],
        capture_output=True, text=True, timeout=10)
    t.join(5)
    dev = RawClient()
    dev.results.append(int(out.stdout or 0))
    return dev, None, [200]


def sc_proxy_uppercase_scheme(port):
    """An absolute-form target with an upper-case scheme, as a proxy would receive it (B5)."""
    req = f"GET HTTP://{SERVER_IP}:{port}/ISAPI/System/status HTTP/1.1\r\nHost: {SERVER_IP}\r\n\r\n".encode()
    return one_exchange(port, req, ok_answer), None, [200]


def sc_obs_fold(port):
    """A request header continued on TAB- and SP-indented lines (obs-fold, RFC 9112 5.2) (B6)."""
    body = bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:27:00+08:00", 1)
    req = (
        f"POST {PATH} HTTP/1.1\r\nHost: {SERVER_IP}\r\nX-Device-Info: model=DS-2CD2143G2-I,\r\n"
        f"\tfirmware=V5.7.3\r\n  build=220112\r\nContent-Type: {XML_CT}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    return one_exchange(port, req, ok_answer), None, [200]


def sc_conflicting_length(port):
    """A POST with two different Content-Length headers, answered 400 and closed (B7)."""
    req = (
        f"POST {PATH} HTTP/1.1\r\nHost: {SERVER_IP}\r\nContent-Length: 11\r\nContent-Length: 93\r\n\r\n"
        "hello world"
    ).encode()
    return one_exchange(port, req, lambda _h: response(400, "Bad Request")), None, [400]


def sc_bad_content_length(port):
    """A POST whose Content-Length is not a number (`banana`), answered 400 and closed: the
    server rejected a request it could not frame (issue 13)."""
    req = (
        f"POST {PATH} HTTP/1.1\r\nHost: {SERVER_IP}\r\nContent-Type: {XML_CT}\r\n"
        "Content-Length: banana\r\n\r\n<x/>"
    ).encode()
    return one_exchange(port, req, lambda _h: response(400, "Bad Request")), None, [400]


def sc_malformed_status(port):
    """An answer whose status code is not three digits: `HTTP/1.0 2XX OK`."""
    body = bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:27:30+08:00", 1)
    req = (
        f"POST {PATH} HTTP/1.1\r\nHost: {SERVER_IP}\r\nContent-Type: {XML_CT}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    answer = lambda _h: b"HTTP/1.0 2XX OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"  # noqa: E731
    return one_exchange(port, req, answer), None, ["2XX"]


def sc_non_http_answer(port):
    """A VMD POST answered with bytes that are not HTTP (a TLS alert), then the server closes."""
    body = bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:27:40+08:00", 1)
    req = (
        f"POST {PATH} HTTP/1.1\r\nHost: {SERVER_IP}\r\nContent-Type: {XML_CT}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    return one_exchange(port, req, lambda _h: b"\x15\x03\x01\x00\x02\x02\x46"), None, [None]


# ---------------------------------------------------------------------------------------------
# Pictures sent broken by alarmscope's own device simulator (`simulate --picture-fault`)


def alarmscope_bin():
    """The alarmscope binary: $ALARMSCOPE, else the build in target/ (release, then debug)."""
    if os.environ.get("ALARMSCOPE"):
        return os.environ["ALARMSCOPE"]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    for kind in ("release", "debug"):
        b = os.path.join(target, kind, "alarmscope")
        if os.path.exists(b):
            return b
    raise RuntimeError("no alarmscope binary: build it (cargo build) or set ALARMSCOPE")


def first_jpeg_part(ctype, body):
    """(declared Content-Length, content) of the first image part of a multipart body."""
    boundary = ctype.split("boundary=", 1)[1].strip().strip('"').encode()
    for part in body.split(b"--" + boundary)[1:]:
        head, _, content = part.partition(b"\r\n\r\n")
        if b"image/" not in head.lower():
            continue
        m = re.search(rb"content-length:\s*(\d+)", head, re.I)
        return (int(m.group(1)) if m else None), content[:-2] if content.endswith(b"\r\n") else content
    raise RuntimeError("no image part in the pushed body")


class SimulatorRun:
    """`alarmscope simulate` as the device: its statuses (from its --json lines) and, as `sent`,
    the bodies the listener received once the script has checked their pictures are broken as
    designed (the simulator does not print its bodies)."""

    def __init__(self, results, sent):
        self.results = results
        self.sent = sent


def simulated_picture_fault(port, fault, check):
    lis = Listener(port, ["ok"])
    out = subprocess.run(
        [alarmscope_bin(), "simulate", "--to", f"http://{SERVER_IP}:{port}{PATH}", "--kind", "anpr",
         "--count", "1", "--json", "--picture-fault", fault],
        capture_output=True, timeout=60, check=True,
    )
    results = [json.loads(l).get("status") for l in out.stdout.decode().splitlines()
               if json.loads(l).get("type") == "attempt"]
    time.sleep(0.2)
    sent = []
    for _start, headers, body in lis.received:
        declared, pic = first_jpeg_part(headers.get("content-type", ""), body)
        check(declared, pic)
        sent.append(body)
    return SimulatorRun(results, sent), lis, [200]


def check_cut(declared, pic):
    # 5/8 of the picture, no end marker, the part's Content-Length still the whole size.
    if not pic.startswith(b"\xff\xd8") or pic.endswith(b"\xff\xd9") or declared is None:
        raise RuntimeError("the plate picture is not cut as designed")
    if len(pic) != declared * 5 // 8:
        raise RuntimeError(f"cut picture has {len(pic)} of {declared} bytes, design says 5/8")


def check_corrupt(declared, pic):
    # Whole length and end marker, 32 bytes of 0x5A from where the frame header (SOF0) was.
    if len(pic) != declared or not pic.endswith(b"\xff\xd9") or b"\xff\xc0" in pic:
        raise RuntimeError("the plate picture is not corrupt as designed")
    if b"\x5a" * 32 not in pic:
        raise RuntimeError("no overwritten frame header in the plate picture")


def sc_picture_cut(port):
    return simulated_picture_fault(port, "cut", check_cut)


def sc_picture_corrupt(port):
    return simulated_picture_fault(port, "corrupt", check_corrupt)


# name -> (server port, scenario, tcpdump interface, extra tcpdump options[, extra filter])
SCENARIOS = {
    "xml-ok.pcap": (18081, sc_xml_ok, "lo", []),
    "json-ok.pcap": (18082, sc_json_ok, "lo", []),
    "multipart-anpr.pcap": (18083, sc_multipart_anpr, "lo", []),
    "keepalive.pcap": (18084, sc_keepalive, "lo", []),
    "stall-no-answer.pcap": (18085, sc_stall_no_answer, "lo", []),
    "error-503.pcap": (18086, sc_error_503, "lo", []),
    "refused.pcap": (18087, sc_refused, "lo", []),
    "syn-unanswered.pcap": (18088, sc_syn_unanswered, "lo", []),
    "chunked-continue.pcap": (18089, sc_chunked_continue, "lo", []),
    "any-sll2.pcap": (18090, sc_any_sll2, "any", ["-y", "LINUX_SLL2"]),
    "server-close.pcap": (18091, sc_server_close, "lo", []),
    "any-sll1-loopback.pcap": (18113, sc_any_sll1_loopback, "any", ["-y", "LINUX_SLL"]),
    "synack-not-acked.pcap": (18092, sc_synack_not_acked, "lo", []),
    "client-reset.pcap": (18093, sc_client_reset, "lo", []),
    "one-sided.pcap": (18094, sc_one_sided, "lo", [], f"src host {CAMERA_IP}"),
    "websocket-upgrade.pcap": (18100, sc_websocket_upgrade, "lo", []),
    "query-method.pcap": (18101, sc_query_method, "lo", []),
    "proxy-uppercase-scheme.pcap": (18102, sc_proxy_uppercase_scheme, "lo", []),
    "obs-fold.pcap": (18103, sc_obs_fold, "lo", []),
    "conflicting-length.pcap": (18104, sc_conflicting_length, "lo", []),
    "malformed-status.pcap": (18105, sc_malformed_status, "lo", []),
    "non-http-answer.pcap": (18106, sc_non_http_answer, "lo", []),
    "bad-content-length.pcap": (18107, sc_bad_content_length, "lo", []),
    "picture-cut.pcap": (18130, sc_picture_cut, "lo", []),
    "picture-corrupt.pcap": (18131, sc_picture_corrupt, "lo", []),
}


# ---------------------------------------------------------------------------------------------
# tcpdump


def start_tcpdump(iface, path, port, extra, only=None):
    expr = f"tcp port {port}" + (f" and {only}" if only else "")
    cmd = ["tcpdump", "-i", iface, "-U", "-B", "8192", "-Z", "root", "-w", path] + extra + [expr]
    log(" ".join(cmd))
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    err = b""
    while b"listening on" not in err:
        if time.monotonic() > deadline or p.poll() is not None:
            p.kill()
            raise RuntimeError(f"tcpdump did not start: {err.decode(errors='replace')}")
        r, _, _ = select.select([p.stderr], [], [], 0.2)
        if r:
            err += os.read(p.stderr.fileno(), 4096)
    time.sleep(0.3)  # let the capture settle before the first packet
    return p


def stop_tcpdump(p):
    # Last FINs/ACKs, and more than libpcap's 1 s buffer timeout: packets still in the kernel's
    # current ring block when SIGINT arrives are lost. (--immediate-mode avoids that but uses
    # fixed-size ring frames of the snapshot length: only a few fit and bursts are dropped.)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    text = err.decode(errors="replace")
    log("tcpdump:", text.strip().replace("\n", "; "))
    m = re.search(r"(\d+) packets? dropped by kernel", text)
    if m is None or int(m.group(1)) != 0:
        raise RuntimeError("tcpdump dropped packets (or did not say): the capture is not what was designed")


def record(name, out_dir):
    port, scenario, iface, extra, *only = SCENARIOS[name]
    path = os.path.join(out_dir, name)
    log(f"== {name}")
    p = start_tcpdump(iface, path, port, extra, *only)
    try:
        dev, lis, expect = scenario(port)
    finally:
        try:
            stop_tcpdump(p)
        finally:
            while AFTER_CAPTURE:
                AFTER_CAPTURE.pop()()
    if lis is not None:
        lis.stop()
        got = [b for _, _, b in lis.received]
        if got != [b for b in dev.sent if b is not None][: len(got)]:
            raise RuntimeError(f"{name}: listener bodies differ from what the device sent")
    if dev.results != expect:
        raise RuntimeError(f"{name}: device saw {dev.results}, design says {expect}")
    log(f"{name}: {os.path.getsize(path)} bytes, attempts {dev.results}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("names", nargs="*", help="scenario file names (default: all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("record.py must run as root (tcpdump on lo, iptables)")
    for n in a.names or SCENARIOS:
        if n not in SCENARIOS:
            sys.exit(f"unknown scenario {n}; known: {', '.join(SCENARIOS)}")
        record(n, os.path.abspath(a.out))


if __name__ == "__main__":
    main()
