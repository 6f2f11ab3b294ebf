#!/usr/bin/env python3
"""What the TLS stage must report for every HTTPS sample recorded by record_tls.py. expected.py
imports build() and folds these facts into samples/expected.json (key `tls` of each HTTPS
sample, checked through the whole pipeline by tests/samples.rs).

The expectations are DECLARED here from the design of each scenario (what the devices and
servers were configured to do: versions allowed, certificates made, who trusts which CA, what the
server answers); nothing is read back from a capture. tshark was used to check that each file
shows what was intended (see samples/README.md).

    python3 samples/tools/expected_tls.py    # prints them (expected.py writes the file)

Per sample: note, and connections (in order of appearance), each with any of:
  tls            the client's first bytes are a TLS ClientHello (false: plain HTTP)
  sni            server_name the client sent
  offered        highest version the client offered ("TLS 1.2", "TLS 1.3")
  version        version the server chose (null: no ServerHello)
  certificate    {state: encrypted|readable|not_seen, subject, issuer, self_signed,
                  valid_at_capture}: only the keys the design fixes
  handshake      completed | failed | in_progress | not_seen
  exchanges      list of answered flags, one per inferred exchange (true: server data answered)
  problems       findings that are problems, in order: {kind, ...fields the design fixes}
  plain_http_evidence   for plain HTTP connections: how the server showed it speaks TLS
                        (kind of TlsEvidence), or null
"""

import argparse
import json
import os

SNI = "alarm.example"
CA = "CN=alarmscope sample CA"
LEAF = f"CN={SNI}"


def tls_conn(offered, version, certificate, handshake, exchanges, problems=(), sni=SNI):
    return {
        "tls": True,
        "sni": sni,
        "offered": offered,
        "version": version,
        "certificate": certificate,
        "handshake": handshake,
        "exchanges": list(exchanges),
        "problems": list(problems),
    }


ENCRYPTED = {"state": "encrypted"}
CA_SIGNED = {"state": "readable", "subject": LEAF, "issuer": CA, "self_signed": False, "valid_at_capture": True}
SELF_SIGNED = {"state": "readable", "subject": LEAF, "issuer": LEAF, "self_signed": True, "valid_at_capture": True}


def build():
    E = {}
    E["https-ok.pcap"] = {
        "note": "curl (OpenSSL 3, defaults: TLS 1.0-1.3 offered, SNI alarm.example) posts 2 XML "
                "events over HTTPS to a Python ssl server with a CA-signed certificate; both "
                "answered 200. TLS 1.3: the certificate travels encrypted. Key log: https-ok.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True])] * 2,
    }
    E["https-tls12.pcap"] = {
        "note": "Python device limited to TLS 1.2, server with a self-signed certificate the "
                "device trusts; one event answered 200. Key log: https-tls12.keys.",
        "connections": [tls_conn("TLS 1.2", "TLS 1.2", SELF_SIGNED, "completed", [True])],
    }
    E["https-tls13.pcap"] = {
        "note": "Python device allowing TLS 1.3 only, CA-signed server certificate; one "
                "linedetection event answered 200; the server's two session tickets come "
                "between the request's head and body records. Key log: https-tls13.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True])],
    }
    E["https-no-answer.pcap"] = {
        "note": "Server limited to TLS 1.2 completes the handshake, reads the event and never "
                "answers; the device gives up after 2 s and retries once (also unanswered). "
                "Key log: https-no-answer.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.2", CA_SIGNED, "completed", [False])] * 2,
    }
    E["https-to-http.pcap"] = {
        "note": "The device speaks HTTPS to Python's plain http.server, which answers its "
                "ClientHello with an HTML 400 page without a status line (HTTP/0.9 style) and "
                "closes; the device retries once.",
        "connections": [tls_conn("TLS 1.3", None, {"state": "not_seen"}, "failed", [],
                                 [{"kind": "tls_to_plain_server", "answer": {"kind": "other_bytes"}}])] * 2,
    }
    E["http-to-https.pcap"] = {
        "note": "An ANPR camera posts over HTTPS (TLS 1.3) and is answered 200; then a camera "
                "posts plain HTTP to the same TLS port: Python's ssl server (OpenSSL: no alert for "
                "an HTTP request) resets the connection without a byte; the camera retries once.",
        "connections": [
            tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True]),
            {"tls": False, "plain_http_evidence": "closed_on_tls_port"},
            {"tls": False, "plain_http_evidence": "closed_on_tls_port"},
        ],
    }
    E["https-unknown-ca.pcap"] = {
        "note": "The device trusts only another CA: it rejects the server's certificate with a "
                "fatal unknown_ca alert (TLS 1.2 so the alert is in clear) and retries once.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.2", CA_SIGNED, "failed", [],
                                 [{"kind": "handshake_alert", "by": "client", "level": "fatal",
                                   "description": "unknown_ca"}])] * 2,
    }
    return E


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(json.dumps(build(), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
