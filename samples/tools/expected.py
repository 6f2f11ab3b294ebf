#!/usr/bin/env python3
"""Write samples/expected.json: what a correct analyser must report for every sample.

The expectations are DECLARED here from the design of each sample (what record.py made the
device and the listener do, what craft.py put in each file); nothing is measured from a capture.
Only byte sizes are computed, from the same body builders the generators use (bodies.py), so
they cannot drift from the bodies actually sent.

    python3 samples/tools/expected.py [--out FILE]

Keys per sample (a key is left out when the design does not fix its value for sure):
  note, connections, requests, verdicts{ok,error_status,no_response,incomplete[,not_captured]},
  handshake{complete,unanswered,refused,not_seen[,syn_ack_not_acked,client_reset,one_sided]},
  min_stalls, capture_gap_bytes, truncated_frames, exchanges[{method,path,status,verdict,
  event_type,event_state,parts,part_bytes,retry[,answer_bytes_acked][,pictures]}] in request time order
  (pictures: per part null for no picture, else {problem: null|cut|corrupt|not_jpeg, size [w, h],
  fraction [a, b] of the declared length a cut picture has, reason of a corrupt one}); min_requests and warning where exact counts cannot
  be promised; error for a file that is not a capture; encapsulations{kind: frames} (kinds left
  out are 0) and clients [ip:port] for tunnelled samples; connection_errors (HTTP errors listed on
  the connections, all together), upgrade (the protocol a 101 switched to) and upgraded (bytes
  after the switch seen in both directions) where the design fixes them. status is null when no response came.
  min_stalls counts requests without a 200 OK (each starts a stall until the device's next
  request or the end of the capture).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bodies  # noqa: E402
import craft  # noqa: E402
import expected_tls  # noqa: E402
import record  # noqa: E402


def ex(event_type, status=200, verdict="ok", state="active", parts=0, part_bytes=(), retry=False,
       answer_bytes_acked=None):
    e = {"method": "POST", "path": "/alarm", "status": status, "verdict": verdict}
    if event_type is not None:
        e["event_type"] = event_type
        e["event_state"] = state
    e.update({"parts": parts, "part_bytes": list(part_bytes), "retry": retry})
    if answer_bytes_acked is not None:
        e["answer_bytes_acked"] = answer_bytes_acked
    return e


def sample(note, connections=None, requests=None, ok=0, error_status=0, no_response=0, incomplete=0,
           complete=0, unanswered=0, refused=0, not_seen=0, min_stalls=0, capture_gap_bytes=0,
           truncated_frames=0, exchanges=None, verdicts=True, handshake=True, not_captured=None, malformed_response=None,
           syn_ack_not_acked=None, client_reset=None, one_sided=None):
    d = {"note": note}
    if connections is not None:
        d["connections"] = connections
    if requests is not None:
        d["requests"] = requests
    if verdicts:
        d["verdicts"] = {"ok": ok, "error_status": error_status, "no_response": no_response, "incomplete": incomplete}
        if not_captured is not None:
            d["verdicts"]["not_captured"] = not_captured
        if malformed_response is not None:
            d["verdicts"]["malformed_response"] = malformed_response
    if handshake:
        d["handshake"] = {"complete": complete, "unanswered": unanswered, "refused": refused, "not_seen": not_seen}
        for k, v in (("syn_ack_not_acked", syn_ack_not_acked), ("client_reset", client_reset), ("one_sided", one_sided)):
            if v is not None:
                d["handshake"][k] = v
    if min_stalls is not None:
        d["min_stalls"] = min_stalls
    if capture_gap_bytes is not None:
        d["capture_gap_bytes"] = capture_gap_bytes
    if truncated_frames is not None:
        d["truncated_frames"] = truncated_frames
    if exchanges is not None:
        d["exchanges"] = exchanges
    return d


def build():
    anpr = [bodies.anpr_multipart(record.ANPR_IP, i)[1] for i in range(2)]
    cut_frames, cut_bytes = craft.truncated_counts()
    gap = craft.GAP_HI - craft.GAP_LO
    E = {}

    # ---- recorded over loopback (record.py) ----
    E["xml-ok.pcap"] = sample(
        "Camera 127.0.0.10 posts 3 XML events (VMD, linedetection, VMD), one connection each; "
        "the server answers each with 200 OK and closes.",
        3, 3, ok=3, complete=3,
        exchanges=[ex("VMD"), ex("linedetection"), ex("VMD")])
    E["json-ok.pcap"] = sample(
        "Access terminal 127.0.0.30 posts 3 JSON events (AccessControllerEvent, heartBeat, "
        "AccessControllerEvent), one connection each, all answered 200.",
        3, 3, ok=3, complete=3,
        exchanges=[ex("AccessControllerEvent"), ex("heartBeat"), ex("AccessControllerEvent")])
    E["multipart-anpr.pcap"] = sample(
        "ANPR camera 127.0.0.20 posts 2 multipart/form-data events (boundary MIME_boundary): "
        "anpr.xml, licensePlatePicture.jpg, detectionPicture.jpg; both answered 200.",
        2, 2, ok=2, complete=2,
        exchanges=[ex("ANPR", parts=3, part_bytes=anpr[0]), ex("ANPR", parts=3, part_bytes=anpr[1])])
    # Pictures broken by alarmscope's simulator (`simulate --kind anpr --picture-fault ...`,
    # record.py checks the bytes the listener got): the plate picture (part 1) is cut to 5/8
    # (its Content-Length still the whole size) or has 32 bytes of 0x5A over its frame header;
    # the detection picture (part 2) is whole, 2688x1520 as the simulator draws it.
    E["picture-cut.pcap"] = sample(
        "alarmscope simulate posts 1 ANPR multipart event whose plate picture is cut to 5/8 of "
        "its bytes (no EOI; the part's Content-Length still the whole size); answered 200.",
        1, 1, ok=1, complete=1,
        exchanges=[dict(ex("ANPR", parts=3), pictures=[
            None, {"problem": "cut", "fraction": [5, 8]}, {"problem": None, "size": [2688, 1520]}])])
    for e in E["picture-cut.pcap"]["exchanges"]:
        del e["part_bytes"]
    E["picture-corrupt.pcap"] = sample(
        "alarmscope simulate posts 1 ANPR multipart event whose plate picture has its frame "
        "header (SOF0) overwritten by 32 bytes of 0x5A (whole length, EOI kept); answered 200.",
        1, 1, ok=1, complete=1,
        exchanges=[dict(ex("ANPR", parts=3), pictures=[
            None, {"problem": "corrupt", "reason": "expected_marker"},
            {"problem": None, "size": [2688, 1520]}])])
    for e in E["picture-corrupt.pcap"]["exchanges"]:
        del e["part_bytes"]
    E["keepalive.pcap"] = sample(
        "4 VMD events on ONE keep-alive connection; the server answers each 200 with "
        "Connection: keep-alive; the device closes after the 4th.",
        1, 4, ok=4, complete=1,
        exchanges=[ex("VMD")] * 4)
    E["stall-no-answer.pcap"] = sample(
        "Event 1 (VMD) answered 200. Event 2 (linedetection) read but never answered: the device "
        "waits 2 s, closes, re-sends the same body on a new connection (retry), also unanswered "
        "for 2 s; only then event 3 (VMD) goes out, answered 200. Event 3 is held ~4.7 s.",
        4, 4, ok=2, no_response=2, complete=4, min_stalls=2,
        exchanges=[ex("VMD"), ex("linedetection", status=None, verdict="no_response"),
                   ex("linedetection", status=None, verdict="no_response", retry=True), ex("VMD")])
    E["error-503.pcap"] = sample(
        "3 events, one connection each; the server answers the 2nd (linedetection) with 503 "
        "Service Unavailable (23-byte body); the device does not retry after an error status.",
        3, 3, ok=2, error_status=1, complete=3, min_stalls=1,
        exchanges=[ex("VMD"), ex("linedetection", status=503, verdict="error_status"), ex("VMD")])
    E["server-close.pcap"] = sample(
        "Extra sample. Event 1 answered 200; event 2 (linedetection) is read and the server "
        "closes (FIN) without answering; the device re-sends the same body at once on a new "
        "connection and gets 200.",
        3, 3, ok=2, no_response=1, complete=3, min_stalls=1,
        exchanges=[ex("VMD"), ex("linedetection", status=None, verdict="no_response"),
                   ex("linedetection", retry=True)])
    E["refused.pcap"] = sample(
        "Nothing listens on the port: the device's SYN is answered with RST,ACK; it tries once "
        "more 0.3 s later, refused again. No request is sent.",
        2, 0, refused=2, exchanges=[])
    E["syn-unanswered.pcap"] = sample(
        "A firewall rule drops SYNs to the port: two connection attempts (new source port each), "
        "each SYN retransmitted by the kernel (3 SYNs per attempt on this kernel, 2-3 elsewhere), "
        "never answered. No request is sent.",
        2, 0, unanswered=2, exchanges=[])
    E["synack-not-acked.pcap"] = sample(
        "The server answers each SYN with SYN-ACK (and retransmits it), but a firewall rule drops "
        "everything the device sends after its SYN before the wire: the capture shows a client "
        "that never completes the handshake. The device gives up after 2 s and tries once more "
        "on a new port, with the same result. No request reaches the capture; the server answered.",
        2, 0, syn_ack_not_acked=2, exchanges=[])
    E["client-reset.pcap"] = sample(
        "Two bare SYNs from a raw socket (ports 40100, 40101); the server answers each with "
        "SYN-ACK and the device's kernel, owning no socket for that port, resets: the client "
        "refused the server's answer. No request.",
        2, 0, client_reset=2, exchanges=[])
    ack_answer = len(record.response(200, "OK", keep_alive=True))
    E["one-sided.pcap"] = sample(
        "Only the device's packets captured (tcpdump `src host 127.0.0.10`). Connection 1 "
        "(keep-alive): events 1 and 2 (VMD) answered 200 with keep-alive, which the capture does "
        f"not hold; the device's ACKs prove {ack_answer} response bytes after each: verdict "
        "not_captured. Event 3 (linedetection) is never answered (the device's ACKs do not move); "
        "the device closes after 2 s and re-sends it on connection 2, unanswered too: no_response.",
        2, 4, no_response=2, not_captured=2, one_sided=2, min_stalls=1,
        exchanges=[ex("VMD", status=None, verdict="not_captured", answer_bytes_acked=ack_answer),
                   ex("VMD", status=None, verdict="not_captured", answer_bytes_acked=ack_answer),
                   ex("linedetection", status=None, verdict="no_response"),
                   ex("linedetection", status=None, verdict="no_response", retry=True)])
    E["chunked-continue.pcap"] = sample(
        "Connection 1: linedetection XML sent with Transfer-Encoding: chunked (180-byte chunks), "
        "answered 200. Connection 2: VMD with Expect: 100-continue: server sends 100 Continue, "
        "then the body comes, then 200.",
        2, 2, ok=2, complete=2,
        exchanges=[ex("linedetection"), ex("VMD")])
    E["any-sll2.pcap"] = sample(
        "tcpdump -i any -y LINUX_SLL2 (linktype 276, Linux cooked v2): 2 XML events (VMD, "
        "linedetection), one connection each, both answered 200. Each packet appears once.",
        2, 2, ok=2, complete=2,
        exchanges=[ex("VMD"), ex("linedetection")])

    E["any-sll1-loopback.pcap"] = sample(
        "tcpdump -i any -y LINUX_SLL (linktype 113, Linux cooked v1) of loopback traffic: every "
        "frame's hardware type is ARPHRD_LOOPBACK (772), protocol 0x0800. 2 XML events (VMD, "
        "linedetection), one connection each, both answered 200.",
        2, 2, ok=2, complete=2,
        exchanges=[ex("VMD"), ex("linedetection")])

    # ---- crafted (craft.py) ----
    E["out-of-order.pcap"] = sample(
        "One linedetection POST; its body is 3 segments delivered last-first (3, 2, 1) with the "
        "server dup-ACKing until the hole fills; answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("linedetection")])
    E["retransmit-overlap.pcap"] = sample(
        "One VMD POST whose body comes with an exact retransmission, a consistent overlapping "
        "segment, and an overlapping segment whose old bytes differ (eventType VMD re-sent as "
        "BAD) plus new correct bytes; the first arrival wins so the event is VMD; answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["capture-gap.pcap"] = sample(
        f"One linedetection POST; body bytes {craft.GAP_LO}..{craft.GAP_HI} ({gap} bytes, one "
        "segment) are missing from the capture but ACKed by the server; answered 200. The event "
        "fields are not asserted (the body has a hole).",
        1, 1, ok=1, complete=1, capture_gap_bytes=gap, exchanges=[ex(None)])
    E["midstream.pcap"] = sample(
        "Capture starts inside a keep-alive connection, in the second half of request 1's body, "
        "followed by its 200 OK (a response with no request seen: not an exchange). Then a "
        "complete request 2 (VMD) answered 200. No SYN seen. capture_gap_bytes is not asserted "
        "(what came before the capture is unknowable).",
        1, 1, ok=1, not_seen=1, capture_gap_bytes=None, exchanges=[ex("VMD")])
    E["truncated-snaplen.pcap"] = sample(
        f"One VMD POST answered 200, captured with snaplen {craft.SNAPLEN}: packet headers "
        f"visible, the {cut_frames} data frames (request head, body, response) cut, {cut_bytes} "
        "payload bytes missing in all. HTTP results are not asserted.",
        1, None, complete=1, capture_gap_bytes=cut_bytes, truncated_frames=cut_frames,
        min_stalls=None, verdicts=False)
    E["sll.pcap"] = sample(
        "Linux cooked v1 (linktype 113) capture on the server: one VMD POST answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["vlan-qinq.pcap"] = sample(
        "Ethernet with an 802.1ad S-tag (VLAN 100) and an 802.1Q C-tag (VLAN 20): one "
        "linedetection POST answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("linedetection")])
    E["ipv6.pcap"] = sample(
        "Ethernet IPv6: device [fd00::10]:50444 -> [fd00::1]:8080, one VMD POST (ipv6Address in "
        "the body) answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["null-loopback.pcap"] = sample(
        "BSD NULL/loopback (linktype 0), family 2 little-endian: 127.0.0.1:50999 -> "
        "127.0.0.1:8080, one VMD POST answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["seq-wrap.pcap"] = sample(
        "ISNs near 2^32: the client's sequence number wraps 100 bytes into the linedetection "
        "body (sent in 2 segments), the server's 16 bytes into the 200 OK.",
        1, 1, ok=1, complete=1, exchanges=[ex("linedetection")])
    E["two-interfaces.pcapng"] = sample(
        "pcapng, interface 0 Ethernet (eth0): VMD POST 192.168.1.64 -> 192.168.1.10:8080, 200; "
        "interface 1 raw IP (linktype 101, tun0, its IDB placed after the first exchange): "
        "linedetection POST 10.20.0.5 -> 10.20.0.1:8080, 200. libpcap stops at the second IDB "
        "(different link type); alarmscope reads on with its own pcapng reader and says so in a "
        "warning, so both exchanges are reported: 2 connections, 2 ok.",
        2, 2, ok=2, complete=2, min_stalls=0,
        exchanges=[ex("VMD"), ex("linedetection")])
    E["two-interfaces.pcapng"]["warning"] = True
    E["reset-midbody.pcap"] = sample(
        "Linedetection POST: head and half the body sent (ACKed), then the server sends RST: "
        "the request is incomplete, no response. Event fields not asserted (half a body).",
        1, 1, incomplete=1, complete=1, min_stalls=1,
        exchanges=[ex(None, status=None, verdict="incomplete")])
    E["cut-mid-record.pcap"] = sample(
        "Valid pcap: connection 1 is a full VMD POST answered 200; connection 2 sends a head and "
        "its whole body in one segment, and that last record is cut in half (the file ends "
        "inside it). Request 2 is therefore at best incomplete; the analyser must warn.",
        2, None, complete=2, min_stalls=1, capture_gap_bytes=None, truncated_frames=None,
        verdicts=False)
    E["cut-mid-record.pcap"].update({"min_requests": 2, "warning": True})

    # ---- crafted tunnels: what mirror ports and overlays carry (craft.py) ----
    client = f"{craft.CAM[0]}:{craft.CAM[1]}"
    tunnels = [
        ("gre.pcap", "gre", "VMD", "GRE (checksum, key and sequence number present) with "
         "transparent Ethernet bridging (0x6558)"),
        ("erspan-ii.pcap", "erspan", "VMD", "ERSPAN type II (GRE with sequence number, "
         "protocol 0x88BE, 8-byte ERSPAN header, session 100)"),
        ("erspan-iii.pcap", "erspan", "linedetection", "ERSPAN type III (GRE protocol 0x22EB, "
         "12-byte header with the optional 8-byte platform subheader, session 200)"),
        ("vxlan.pcap", "vxlan", "VMD", "VXLAN (UDP 4789, VNI 5001) with an inner Ethernet frame"),
        ("geneve.pcap", "geneve", "linedetection", "GENEVE (UDP 6081, VNI 7001, one 4-byte "
         "option) with an inner Ethernet frame"),
        ("mpls.pcap", "mpls", "VMD", "Ethernet with two MPLS labels (16001, 24005 bottom of "
         "stack) over IPv4"),
        ("llc-snap.pcap", "llc_snap", "VMD", "IEEE 802.3 frames (length field) with an 802.2 "
         "LLC/SNAP header (AA AA 03, OUI 00-00-00, type 0x0800)"),
    ]
    for name, kind, event, how in tunnels:
        E[name] = sample(
            f"Mirror/overlay capture: {how}, between tunnel endpoints {craft.MIRROR} and "
            f"{craft.COLLECTOR}. Inside: camera {client} posts one {event} event to "
            f"{craft.SRV[0]}:{craft.SRV[1]}, answered 200. Every frame is encapsulated; the "
            "connection is the inner one.",
            1, 1, ok=1, complete=1, exchanges=[ex(event)])
        E[name]["encapsulations"] = {kind: craft.tunnel_frames(name)}
        E[name]["clients"] = [client]

    # ---- crafted IP fragments and UDP tunnels (issue 19, craft.py) ----
    E["ip-fragments.pcap"] = sample(
        f"Two linedetection POSTs from {client} across a 576-byte MTU link: each 1093-byte body "
        "packet is sent as two IPv4 fragments (DF off). Connection 1's fragments arrive in order; "
        "connection 2's last fragment arrives first and twice (same bytes), then its first. "
        "Joined, both bodies are whole: 2 ok, no capture gap, no undecodable frame; 3 frames "
        "(fragments that do not complete a packet) carry no segment by themselves.",
        2, 2, ok=2, complete=2, exchanges=[ex("linedetection"), ex("linedetection")])
    E["ip-fragments.pcap"].update({"encapsulations": {}, "undecodable_frames": 0, "non_tcp_packets": 3})
    E["ipv6-fragments.pcap"] = sample(
        "[fd00::10]:50444 posts one linedetection event to [fd00::1]:8080 (as ipv6.pcap); the "
        "camera sends the 1093-byte body packet as 3 IPv6 fragments of at most 512 payload bytes "
        "(fragment header), captured last first. Joined: 1 ok, no capture gap, no undecodable "
        "frame; 2 frames carry no segment by themselves.",
        1, 1, ok=1, complete=1, exchanges=[ex("linedetection")])
    E["ipv6-fragments.pcap"].update({
        "encapsulations": {}, "clients": ["[fd00::10]:50444"], "undecodable_frames": 0,
        "non_tcp_packets": 2})
    E["erspan-fragmented.pcap"] = sample(
        f"ERSPAN type II (as erspan-ii.pcap) of a linedetection POST from {client}; outer IPv4 "
        "packets above 1000 bytes (the body's) are sent in two fragments between "
        f"{craft.MIRROR} and {craft.COLLECTOR}. Joined, the inner segment is read: 1 ok; every "
        "inner packet counted once under erspan.",
        1, 1, ok=1, complete=1, exchanges=[ex("linedetection")])
    E["erspan-fragmented.pcap"].update({
        "encapsulations": {"erspan": len(craft.erspan_fragmented_exchange().packets)},
        "clients": [client], "undecodable_frames": 0, "non_tcp_packets": 1})
    E["gtp-u.pcap"] = sample(
        f"A mobile operator's S1-U link ({craft.ENB} <-> {craft.SGW}): GTPv1-U G-PDUs carry the "
        f"camera's packets; uplink from UDP port 5906 to 2152 with the sequence-number flag, "
        f"downlink 2152 to 2152. Inside: {client} posts one VMD event, answered 200. A GTP echo "
        "request/response pair (no user packet) is neither counted nor an error.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["gtp-u.pcap"].update({
        "encapsulations": {"gtp_u": len(craft.gtp_u_exchange().packets)},
        "clients": [client], "undecodable_frames": 0, "non_tcp_packets": 2})
    cam6 = f"[{craft.CAM6[0]}]:{craft.CAM6[1]}"
    E["ayiya.pcap"] = sample(
        f"An IPv6 tunnel-broker link (AYIYA, UDP 5072 both ways, {craft.TIC_CLIENT} <-> "
        f"{craft.POP}): camera {cam6} posts one VMD event to [{craft.SRV6[0]}]:{craft.SRV6[1]}, "
        "answered 200. A heartbeat (opcode 0, no packet) is not counted.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["ayiya.pcap"].update({
        "encapsulations": {"ayiya": len(craft.ayiya_exchange().packets)},
        "clients": [cam6], "undecodable_frames": 0, "non_tcp_packets": 1})
    cam_teredo = f"[{craft.TEREDO_CAM}]:{craft.CAM6[1]}"
    E["teredo.pcap"] = sample(
        f"Teredo: camera {cam_teredo} behind a NAT ({craft.TIC_CLIENT}:{craft.TEREDO_NAT_PORT}) "
        f"reaches [{craft.SRV6[0]}]:{craft.SRV6[1]} through the relay {craft.TEREDO_RELAY}:3544; "
        "the relay's packets carry an origin indication. One VMD event, answered 200.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["teredo.pcap"].update({
        "encapsulations": {"teredo": len(craft.teredo_exchange().packets)},
        "clients": [cam_teredo], "undecodable_frames": 0, "non_tcp_packets": 0})

    # ---- gzip-compressed copies (craft.py) ----
    E["xml-ok.pcap.gz"] = dict(E["xml-ok.pcap"])
    E["xml-ok.pcap.gz"]["note"] = "xml-ok.pcap compressed with gzip: the same analysis. " + E["xml-ok.pcap"]["note"]
    E["two-interfaces.pcapng.gz"] = {k: v for k, v in E["two-interfaces.pcapng"].items() if k != "warning"}
    E["two-interfaces.pcapng.gz"]["note"] = (
        "two-interfaces.pcapng compressed with gzip: both exchanges (Ethernet and raw IP "
        "interfaces), 2 connections, 2 ok. Read by the pure-Rust pcapng reader from the start, "
        "so no warning is promised.")
    E["not-a-capture.txt"] = {"note": "A text file: must be refused with an error, no report.", "error": True}

    # ---- HTTP-stage conformance (issue 19) ----
    def req(method, path, status, verdict):
        return {"method": method, "path": path, "status": status, "verdict": verdict}

    E["websocket-upgrade.pcap"] = sample(
        "A WebSocket upgrade GET answered 101 Switching Protocols; then one masked frame up and one "
        "frame down, which are WebSocket, not HTTP. The 101 is the answer (not an interim head).",
        1, 1, error_status=1, complete=1,
        exchanges=[req("GET", "/ISAPI/Event/notification/alertStream", 101, "error_status")])
    E["websocket-upgrade.pcap"].update({"connection_errors": 0, "upgrade": "websocket", "upgraded": True})
    E["query-method.pcap"] = sample(
        "curl -X QUERY with a JSON body, answered 200: any RFC 9110 token is a method.",
        1, 1, ok=1, complete=1, exchanges=[req("QUERY", "/ISAPI/AccessControl/AcsEvent", 200, "ok")])
    E["query-method.pcap"]["connection_errors"] = 0
    E["proxy-uppercase-scheme.pcap"] = sample(
        "GET with an absolute-form target whose scheme is upper case (HTTP://), answered 200.",
        1, 1, ok=1, complete=1,
        exchanges=[req("GET", "HTTP://127.0.0.1:18094/ISAPI/System/status", 200, "ok")])
    E["proxy-uppercase-scheme.pcap"]["connection_errors"] = 0
    E["obs-fold.pcap"] = sample(
        "A VMD POST with a header continued on a TAB- and a SP-indented line (obs-fold), answered "
        "200: the fold is read as spaces, the request is not malformed.",
        1, 1, ok=1, complete=1, exchanges=[ex("VMD")])
    E["obs-fold.pcap"]["connection_errors"] = 0
    E["conflicting-length.pcap"] = sample(
        "A POST with Content-Length 11 and Content-Length 93; the server answers 400 at once and "
        "closes. The 400 is that request's answer (the framing error is a note on the exchange).",
        1, 1, error_status=1, complete=1, min_stalls=1,
        exchanges=[req("POST", "/alarm", 400, "error_status")])
    E["conflicting-length.pcap"]["connection_errors"] = 0
    E["bad-content-length.pcap"] = sample(
        "A POST with `Content-Length: banana` (and a 4-byte body), answered 400 at once and closed: "
        "the server rejected a request it could not frame. The 400 is that request's answer "
        "(error_status; the framing error is a note on the exchange, not a connection error).",
        1, 1, error_status=1, complete=1, min_stalls=1,
        exchanges=[req("POST", "/alarm", 400, "error_status")])
    E["bad-content-length.pcap"]["connection_errors"] = 0
    E["malformed-status.pcap"] = sample(
        "A VMD POST answered `HTTP/1.0 2XX OK`: an answer came but cannot be read.",
        1, 1, malformed_response=1, complete=1, min_stalls=1,
        exchanges=[req("POST", "/alarm", None, "malformed_response")])
    E["non-http-answer.pcap"] = sample(
        "A VMD POST answered with 7 bytes that are not HTTP (a TLS alert), then the server closes. "
        "The handshake was seen, so the server's stream was seen from its start: nothing was lost "
        "to the capture, no answer came.",
        1, 1, no_response=1, complete=1, min_stalls=1, exchanges=[ex("VMD", None, "no_response")])
    # The alert (protocol_version) is a TLS server's answer to plain HTTP: the mismatch is named.
    E["non-http-answer.pcap"]["tls_summary"] = {"tls_connections": 0, "tls_problems": 1, "tls_mismatches": 1,
                                               "tls_handshake_failures": 0}
    E["non-http-answer.pcap"]["tls"] = [{"tls": False, "plain_http_evidence": "alert"}]
    E["lost-answer-head.pcap"] = sample(
        "Three keep-alive VMD POSTs, each answered 200 with a 23-byte text body; the segment with "
        "the first answer's head is missing from the capture (its body segment is there). The "
        "first request's answer was not captured; the second and third are each paired with their "
        "own 200.",
        1, 3, ok=2, not_captured=1, complete=1, capture_gap_bytes=len(craft.answer_head()),
        exchanges=[ex("VMD", None, "not_captured"), ex("VMD"), ex("VMD")])
    E["lost-whole-answers.pcap"] = sample(
        "Four keep-alive VMD POSTs, the device waiting for each 200 (23-byte text body) before "
        "the next; the second and third answers (head and body segments) are missing from the "
        "capture though the device ACKs them before its next POST. The first and fourth requests "
        "are each paired with their own 200; the answers of the second and third were not "
        "captured (not no_response, and the fourth answer is not taken for the second's).",
        1, 4, ok=2, not_captured=2, complete=1,
        capture_gap_bytes=2 * (len(craft.answer_head()) + len(craft.ANSWER_TEXT)),
        exchanges=[ex("VMD"), ex("VMD", None, "not_captured"), ex("VMD", None, "not_captured"), ex("VMD")])
    E["probe-after-picture.pcap"] = sample(
        "Capture starts mid-connection in the tail of a JPEG the server is sending; the device's "
        "first captured segment is a 1-byte TCP keep-alive probe, then a VMD POST; the 200 OK "
        "follows the last JPEG bytes in the same segment with no line break before it.",
        1, 1, ok=1, not_seen=1, capture_gap_bytes=None, exchanges=[ex("VMD")])

    # ---- HTTPS (record_tls.py; TLS facts declared in expected_tls.py) ----
    for name, t in expected_tls.build().items():
        E[name] = https_sample(t)
    return E


def https_sample(t):
    """An HTTPS sample's expectations for the whole pipeline, from its declared TLS facts:
    every connection completes its TCP handshake (loopback); each inferred TLS exchange is a row
    marked encrypted with no status (encrypted_answered when the server answered, else
    no_response); each plain HTTP connection carries one POST /alarm that got no HTTP answer
    (the server spoke TLS). Key `tls` lists the per-connection TLS facts (expected_tls.py's
    keys); `tls_summary` the summary's TLS counts."""
    conns = t["connections"]
    exchanges, answered, unanswered = [], 0, 0
    problems, mismatches, hs_failures = 0, 0, 0
    for c in conns:
        if c["tls"]:
            for a in c["exchanges"]:
                exchanges.append({"status": None, "verdict": "encrypted_answered" if a else "no_response",
                                  "encrypted": True})
                answered += a
                unanswered += not a
            for p in c["problems"]:
                problems += 1
                mismatches += p["kind"] == "tls_to_plain_server"
                hs_failures += p["kind"] in ("handshake_alert", "closed_during_handshake")
        else:
            exchanges.append({"method": "POST", "path": "/alarm", "status": None, "verdict": "no_response",
                              "encrypted": False})
            unanswered += 1
            if c.get("plain_http_evidence"):
                problems += 1
                mismatches += 1
    out = {
        "note": t["note"],
        "connections": len(conns),
        "requests": len(exchanges),
        "verdicts": {"ok": 0, "error_status": 0, "no_response": unanswered, "incomplete": 0,
                     "encrypted_answered": answered},
        "handshake": {"complete": len(conns), "unanswered": 0, "refused": 0, "not_seen": 0},
        "min_stalls": unanswered,
        "capture_gap_bytes": 0,
        "truncated_frames": 0,
        "exchanges": exchanges,
        "tls": conns,
        "tls_summary": {"tls_connections": sum(1 for c in conns if c["tls"]), "tls_problems": problems,
                        "tls_mismatches": mismatches, "tls_handshake_failures": hs_failures},
    }
    if any("decrypted" in c for c in conns):
        out["with_keylog"] = with_keylog(conns)
    return out


def with_keylog(conns):
    """What replaying with the sample's key log (samples/NAME.keys) must show, derived from the
    declared plaintext (expected_tls.py's `decrypted`): each POST /alarm of a decrypted
    connection is a row marked decrypted, judged from its declared status (200: ok, another:
    error_status, none: no_response) with its declared event type; a session missing from the
    key log (`decrypted: null`) keeps its keyless rows. `decryption` lists each connection's
    decryption status (null: plain HTTP, no decryption)."""
    exchanges, decryption = [], []
    verdicts = {"ok": 0, "error_status": 0, "no_response": 0, "incomplete": 0, "not_captured": 0,
                "encrypted_answered": 0}
    for c in conns:
        plain = c.get("decrypted")
        if not c["tls"]:
            decryption.append(None)
            exchanges.append({"method": "POST", "path": "/alarm", "status": None, "verdict": "no_response",
                              "encrypted": False, "decrypted": False})
            verdicts["no_response"] += 1
        elif plain is None:
            decryption.append("not_decrypted")
            for a in c["exchanges"]:
                v = "encrypted_answered" if a else "no_response"
                exchanges.append({"status": None, "verdict": v, "encrypted": True, "decrypted": False})
                verdicts[v] += 1
        else:
            decryption.append("decrypting")
            for i, ev in enumerate(plain["events"]):
                st = plain["statuses"][i] if i < len(plain["statuses"]) else None
                v = "no_response" if st is None else "ok" if st == 200 else "error_status"
                exchanges.append({"method": "POST", "path": "/alarm", "status": st, "verdict": v,
                                  "event_type": ev, "encrypted": False, "decrypted": True})
                verdicts[v] += 1
    return {"requests": len(exchanges), "verdicts": verdicts, "exchanges": exchanges,
            "decryption": decryption}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "expected.json"))
    a = ap.parse_args()
    with open(a.out, "w") as f:
        json.dump(build(), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
