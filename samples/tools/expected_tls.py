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
  decrypted      (samples with a key log, checked by tests/decrypt_samples.rs) what the
                 plaintext holds: events (eventType of each `POST /alarm` in order), statuses
                 (status of each `HTTP/1.1` answer in order), and where the design fixes them
                 version, cipher_suite, body_bytes (each request body's length), key_updates
                 (TLS 1.3 KeyUpdates followed, both directions); null: the key log lacks this
                 session, nothing may be decrypted
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bodies  # noqa: E402

ANPR_IP = "127.0.0.20"  # record.py's ANPR camera

SNI = "alarm.example"
CA = "CN=alarmscope sample CA"
LEAF = f"CN={SNI}"


def decrypted(events, statuses, **fixed):
    return {"events": list(events), "statuses": list(statuses), **fixed}


def tls_conn(offered, version, certificate, handshake, exchanges, problems=(), sni=SNI, plain=False):
    c = {
        "tls": True,
        "sni": sni,
        "offered": offered,
        "version": version,
        "certificate": certificate,
        "handshake": handshake,
        "exchanges": list(exchanges),
        "problems": list(problems),
    }
    if plain is not False:
        c["decrypted"] = plain
    return c


ENCRYPTED = {"state": "encrypted"}
CA_SIGNED = {"state": "readable", "subject": LEAF, "issuer": CA, "self_signed": False, "valid_at_capture": True}
SELF_SIGNED = {"state": "readable", "subject": LEAF, "issuer": LEAF, "self_signed": True, "valid_at_capture": True}


def build():
    E = {}
    E["https-ok.pcap"] = {
        "note": "curl (OpenSSL 3, defaults: TLS 1.0-1.3 offered, SNI alarm.example) posts 2 XML "
                "events over HTTPS to a Python ssl server with a CA-signed certificate; both "
                "answered 200. TLS 1.3: the certificate travels encrypted. Key log: https-ok.keys.",
        "connections": [
            tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True],
                     plain=decrypted([ev], [200], version="TLS 1.3"))
            for ev in ("VMD", "linedetection")
        ],
    }
    E["https-tls12.pcap"] = {
        "note": "Python device limited to TLS 1.2, server with a self-signed certificate the "
                "device trusts; one event answered 200. Key log: https-tls12.keys.",
        "connections": [tls_conn("TLS 1.2", "TLS 1.2", SELF_SIGNED, "completed", [True],
                                 plain=decrypted(["VMD"], [200], version="TLS 1.2"))],
    }
    E["https-tls13.pcap"] = {
        "note": "Python device allowing TLS 1.3 only, CA-signed server certificate; one "
                "linedetection event answered 200; the server's two session tickets come "
                "between the request's head and body records. Key log: https-tls13.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True],
                                 plain=decrypted(["linedetection"], [200], version="TLS 1.3"))],
    }
    E["https-no-answer.pcap"] = {
        "note": "Server limited to TLS 1.2 completes the handshake, reads the event and never "
                "answers; the device gives up after 2 s and retries once (also unanswered). "
                "Key log: https-no-answer.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.2", CA_SIGNED, "completed", [False],
                                 plain=decrypted(["VMD"], [], version="TLS 1.2"))] * 2,
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
    E["https-tls12-chacha.pcap"] = {
        "note": "Python device limited to TLS 1.2 offering only ECDHE-ECDSA-CHACHA20-POLY1305 "
                "(RFC 7905); one VMD event answered 200. Key log: https-tls12-chacha.keys.",
        "connections": [tls_conn("TLS 1.2", "TLS 1.2", CA_SIGNED, "completed", [True],
                                 plain=decrypted(["VMD"], [200], version="TLS 1.2",
                                                 cipher_suite="TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"))],
    }
    E["https-tls12-rsa.pcap"] = {
        "note": "Python device and server limited to TLS 1.2 and AES256-GCM-SHA384 with RSA key "
                "exchange (no ServerKeyExchange), self-signed RSA certificate the device trusts; "
                "one VMD event answered 200. Key log: https-tls12-rsa.keys.",
        "connections": [tls_conn("TLS 1.2", "TLS 1.2", SELF_SIGNED, "completed", [True],
                                 plain=decrypted(["VMD"], [200], version="TLS 1.2",
                                                 cipher_suite="TLS_RSA_WITH_AES_256_GCM_SHA384"))],
    }
    for suite, name in [("TLS_CHACHA20_POLY1305_SHA256", "chacha"), ("TLS_AES_128_GCM_SHA256", "aes128"),
                        ("TLS_AES_256_GCM_SHA384", "aes256")]:
        E[f"https-tls13-{name}.pcap"] = {
            "note": f"curl limited to TLS 1.3 offering only {suite}; one linedetection event "
                    f"answered 200. Key log: https-tls13-{name}.keys.",
            "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True],
                                     plain=decrypted(["linedetection"], [200], version="TLS 1.3",
                                                     cipher_suite=suite))],
        }
    E["https-keepalive.pcap"] = {
        "note": "Python device (TLS 1.3) posts three events (VMD, linedetection, VMD) on one "
                "connection; the server answers each 200 with Connection: keep-alive. Key log: "
                "https-keepalive.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True, True, True],
                                 plain=decrypted(["VMD", "linedetection", "VMD"], [200, 200, 200],
                                                 version="TLS 1.3"))],
    }
    E["https-key-update.pcap"] = {
        "note": "openssl s_client (TLS 1.3 only) posts a VMD event on a keep-alive connection, "
                "sends a KeyUpdate asking the server to update too, then posts a second VMD "
                "event: both answered 200, the second under updated keys both ways. Key log: "
                "https-key-update.keys (written by s_client).",
        "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True, True],
                                 plain=decrypted(["VMD", "VMD"], [200, 200], version="TLS 1.3",
                                                 key_updates=2))],
    }
    multipart_body, _ = bodies.anpr_multipart(ANPR_IP, 0)
    E["https-multipart.pcap"] = {
        "note": "ANPR camera (Python, TLS 1.3) posts an ANPR event as multipart/form-data with the "
                "XML and two JPEG pictures (10 240 and 81 920 bytes): the body spans many "
                "records; answered 200. Key log: https-multipart.keys.",
        "connections": [tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True],
                                 plain=decrypted(["ANPR"], [200], version="TLS 1.3",
                                                 body_bytes=[len(multipart_body)]))],
    }
    E["https-missing-key.pcap"] = {
        "note": "Two cameras post over HTTPS (TLS 1.3), both answered 200; only the first wrote "
                "a key log, so https-missing-key.keys lacks the second session: it must be "
                "reported as not in the key log, not decrypted.",
        "connections": [
            tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True],
                     plain=decrypted(["VMD"], [200], version="TLS 1.3")),
            tls_conn("TLS 1.3", "TLS 1.3", ENCRYPTED, "completed", [True], plain=None),
        ],
    }
    return E


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(json.dumps(build(), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
