#!/usr/bin/env python3
"""Record the REAL HTTPS sample captures over loopback: devices POST ISAPI events over TLS (or
plain HTTP to a TLS server, or TLS to a plain HTTP server) while tcpdump records the port.

    python3 samples/tools/record_tls.py [--out DIR] [SCENARIO ...]   (root; all if none given)

Stdlib only, plus the openssl command line (throwaway certificates are made at record time in a
temporary directory and never kept) and curl for https-ok.pcap and https-tls13-*.pcap (its
--tls13-ciphers fixes the TLS 1.3 suite, which Python's ssl cannot). The device and listener are
record.py's, wrapped in Python's ssl module (OpenSSL); their behaviour is the same as there
(one connection per event, 2 s answer timeout, one retry of an unanswered event). Key logs
(NSS format, SSLKEYLOGFILE / SSLContext.keylog_filename) are written beside the samples whose
TLS session completes, as NAME.keys, for decrypting them later.

Certificates (made fresh on each run):
  * "alarmscope sample CA" signs a server certificate for alarm.example (SAN DNS:alarm.example);
  * a self-signed server certificate for alarm.example;
  * "other CA", which the device of https-unknown-ca.pcap trusts instead of the sample CA;
  * a self-signed RSA 2048 server certificate for alarm.example (https-tls12-rsa.pcap).
Devices connect to 127.0.0.1 with SNI alarm.example and check the host name.
"""

import argparse
import http.server
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bodies  # noqa: E402
import record  # noqa: E402
from record import CAMERA_IP, ANPR_IP, SERVER_IP, XML_CT, log  # noqa: E402

SNI = "alarm.example"


# ---------------------------------------------------------------------------------------------
# Certificates


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Certs:
    """Throwaway certificates in a temporary directory (EC P-256, 30 days)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="alarmscope-tls-")
        p = lambda n: os.path.join(self.dir, n)  # noqa: E731
        self.ca, self.ca_key = p("ca.pem"), p("ca.key")
        self.other_ca, other_key = p("other-ca.pem"), p("other-ca.key")
        self.leaf, self.leaf_key = p("leaf.pem"), p("leaf.key")
        self.selfsigned, self.selfsigned_key = p("self.pem"), p("self.key")
        self.rsa, self.rsa_key = p("rsa.pem"), p("rsa.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", self.ca_key, "-out", self.ca, "-days", "30",
                "-subj", "/CN=alarmscope sample CA")
        openssl("req", "-x509", *ec, "-keyout", other_key, "-out", self.other_ca, "-days", "30",
                "-subj", "/CN=other CA")
        openssl("req", "-x509", *ec, "-keyout", self.selfsigned_key, "-out", self.selfsigned,
                "-days", "30", "-subj", f"/CN={SNI}", "-addext", f"subjectAltName=DNS:{SNI}")
        # RSA key (2048 bits) for the TLS 1.2 RSA key exchange sample.
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.rsa_key, "-out",
                self.rsa, "-days", "30", "-subj", f"/CN={SNI}", "-addext", f"subjectAltName=DNS:{SNI}")
        csr = p("leaf.csr")
        openssl("req", *ec, "-keyout", self.leaf_key, "-out", csr, "-subj", f"/CN={SNI}")
        ext = p("leaf.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{SNI}\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                "-out", self.leaf, "-days", "30", "-extfile", ext)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def server_ctx(cert, key, max_version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if ciphers is not None:
        ctx.set_ciphers(ciphers)  # Python's default list has no RSA key exchange
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def client_ctx(cafile, keylog=None, min_version=None, max_version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ciphers is not None:
        ctx.set_ciphers(ciphers)  # TLS 1.2 suites (OpenSSL names); TLS 1.3 ones are not affected
    ctx.load_verify_locations(cafile)
    if keylog is not None:
        ctx.keylog_filename = keylog
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


# ---------------------------------------------------------------------------------------------
# TLS device and listener: record.py's, over TLS


class TlsDevice(record.Device):
    """record.Device whose connections are TLS (SNI alarm.example, host name checked)."""

    def __init__(self, src_ip, port, ctx):
        super().__init__(src_ip, port)
        self.ctx = ctx
        self.tls_errors = []

    def _connect(self):
        s = super()._connect()
        try:
            return self.ctx.wrap_socket(s, server_hostname=SNI)
        except (ssl.SSLError, OSError) as e:
            self.tls_errors.append(getattr(e, "reason", None) or repr(e))
            s.close()
            raise


class TlsListener(record.Listener):
    """record.Listener that runs a TLS handshake on each connection first; connections whose
    handshake fails are closed (and the failure noted)."""

    def __init__(self, port, behaviours, ctx):
        self.ctx = ctx
        self.tls_errors = []
        super().__init__(port, behaviours)

    def _serve(self, c):
        c.settimeout(10)
        try:
            c = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.tls_errors.append(getattr(e, "reason", None) or repr(e))
            c.close()
            return
        super()._serve(c)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler (no methods), without its log lines on stderr."""

    def log_message(self, *args):
        pass


class PlainHttpServer:
    """Python's http.server (BaseHTTPRequestHandler, no methods): what it does with whatever
    arrives is Python's own."""

    def __init__(self, port):
        socketserver.TCPServer.allow_reuse_address = True
        self.srv = http.server.HTTPServer((SERVER_IP, port), QuietHandler)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---------------------------------------------------------------------------------------------
# Scenarios: each returns (device results, design results, extra check)


def keys_path(out_dir, name):
    return os.path.join(out_dir, name.rsplit(".", 1)[0] + ".keys")


def sc_https_ok(port, certs, out_dir, name):
    """curl (the issue's device stand-in) posts 2 XML events over HTTPS; both answered 200."""
    lis = TlsListener(port, ["ok", "ok"], server_ctx(certs.leaf, certs.leaf_key))
    keys = keys_path(out_dir, name)
    if os.path.exists(keys):
        os.remove(keys)
    results = []
    for body, ct in record.xml_events(CAMERA_IP)[:2]:
        with tempfile.NamedTemporaryFile() as f:
            f.write(body)
            f.flush()
            r = subprocess.run(
                ["curl", "-sS", "--interface", CAMERA_IP, "--cacert", certs.ca,
                 "--resolve", f"{SNI}:{port}:{SERVER_IP}", "-o", "/dev/null", "-w", "%{http_code}",
                 "-H", f"Content-Type: {ct}", "--data-binary", f"@{f.name}",
                 f"https://{SNI}:{port}{record.PATH}"],
                env={**os.environ, "SSLKEYLOGFILE": keys}, capture_output=True, text=True, timeout=10)
        results.append(int(r.stdout) if r.stdout.isdigit() else None)
        record.time.sleep(record.EVENT_GAP)
    lis.stop()
    return results, [200, 200], lis


def sc_https_tls12(port, certs, out_dir, name):
    """Python device, TLS 1.2 at most, self-signed server certificate trusted by the device."""
    lis = TlsListener(port, ["ok"], server_ctx(certs.selfsigned, certs.selfsigned_key))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.selfsigned, keys_path(out_dir, name),
                                                max_version=ssl.TLSVersion.TLSv1_2))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:30:00+08:00"), XML_CT)
    lis.stop()
    return dev.results, [200], lis


def sc_https_tls13(port, certs, out_dir, name):
    """Python device, TLS 1.3 only, CA-signed server certificate; one linedetection event."""
    lis = TlsListener(port, ["ok"], server_ctx(certs.leaf, certs.leaf_key))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.ca, keys_path(out_dir, name),
                                                min_version=ssl.TLSVersion.TLSv1_3))
    dev.send_event(bodies.linedetection_xml(CAMERA_IP, "2024-05-14T10:31:00+08:00"), "application/xml")
    lis.stop()
    return dev.results, [200], lis


def sc_https_no_answer(port, certs, out_dir, name):
    """The server completes the handshake, reads the event, never answers; the device gives up
    after 2 s and retries once (also unanswered). TLS 1.2: a TLS 1.3 server's session tickets
    race the request and would make the "no answer" uncertain without keys (see README)."""
    lis = TlsListener(port, ["silent", "silent"],
                      server_ctx(certs.leaf, certs.leaf_key, max_version=ssl.TLSVersion.TLSv1_2))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.ca, keys_path(out_dir, name)))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:32:00+08:00"), XML_CT)
    lis.stop()
    return dev.results, [None, None], lis


def sc_https_to_http(port, certs, out_dir, name):
    """The device speaks HTTPS, the server on the port is Python's plain http.server."""
    srv = PlainHttpServer(port)
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.ca))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:33:00+08:00"), XML_CT)
    srv.stop()
    return dev.results, [None, None], dev


def sc_http_to_https(port, certs, out_dir, name):
    """An ANPR camera posts over HTTPS and is answered 200; then a camera posts plain HTTP to the
    same TLS port: the server closes without a byte (OpenSSL sends no alert for an HTTP request),
    the camera retries once."""
    lis = TlsListener(port, ["ok"], server_ctx(certs.leaf, certs.leaf_key))
    tls_dev = TlsDevice(ANPR_IP, port, client_ctx(certs.ca))
    tls_dev.send_event(bodies.vmd_xml(ANPR_IP, "2024-05-14T10:34:00+08:00"), XML_CT)
    dev = record.Device(CAMERA_IP, port)
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:34:02+08:00"), XML_CT)
    lis.stop()
    return tls_dev.results + dev.results, [200, None, None], lis


def sc_https_unknown_ca(port, certs, out_dir, name):
    """The device trusts only "other CA": it rejects the server's certificate. TLS 1.2 so its
    alert travels in clear (TLS 1.3 encrypts it)."""
    lis = TlsListener(port, [], server_ctx(certs.leaf, certs.leaf_key, max_version=ssl.TLSVersion.TLSv1_2))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.other_ca))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:35:00+08:00"), XML_CT)
    lis.stop()
    return dev.results, [None, None], dev


def curl_post(port, certs, keys, body, ct, *extra):
    """curl posts one event over HTTPS (SNI alarm.example, key log to `keys`); its status."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(body)
        f.flush()
        r = subprocess.run(
            ["curl", "-sS", "--interface", CAMERA_IP, "--cacert", certs.ca, *extra,
             "--resolve", f"{SNI}:{port}:{SERVER_IP}", "-o", "/dev/null", "-w", "%{http_code}",
             "-H", f"Content-Type: {ct}", "--data-binary", f"@{f.name}",
             f"https://{SNI}:{port}{record.PATH}"],
            env={**os.environ, "SSLKEYLOGFILE": keys}, capture_output=True, text=True, timeout=10)
    return int(r.stdout) if r.stdout.isdigit() else None


def fresh_keys(out_dir, name):
    keys = keys_path(out_dir, name)
    if os.path.exists(keys):
        os.remove(keys)
    return keys


def sc_https_tls12_chacha(port, certs, out_dir, name):
    """Python device limited to TLS 1.2 offering only ECDHE-ECDSA-CHACHA20-POLY1305 (the
    server's key is EC P-256); one VMD event answered 200. Key log by the device."""
    lis = TlsListener(port, ["ok"], server_ctx(certs.leaf, certs.leaf_key))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.ca, fresh_keys(out_dir, name),
                                                max_version=ssl.TLSVersion.TLSv1_2,
                                                ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:36:00+08:00"), XML_CT)
    lis.stop()
    return dev.results, [200], lis


def sc_https_tls12_rsa(port, certs, out_dir, name):
    """Python device limited to TLS 1.2 offering only AES256-GCM-SHA384 with RSA key exchange
    (no ECDHE), server with a self-signed RSA certificate the device trusts; one VMD event
    answered 200. Key log by the device."""
    lis = TlsListener(port, ["ok"], server_ctx(certs.rsa, certs.rsa_key, ciphers="AES256-GCM-SHA384"))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.rsa, fresh_keys(out_dir, name),
                                                max_version=ssl.TLSVersion.TLSv1_2,
                                                ciphers="AES256-GCM-SHA384"))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:36:05+08:00"), XML_CT)
    lis.stop()
    return dev.results, [200], lis


def tls13_suite_scenario(suite, event_time):
    """curl, TLS 1.3 only, offering only `suite`; one linedetection event answered 200."""
    def sc(port, certs, out_dir, name):
        lis = TlsListener(port, ["ok"], server_ctx(certs.leaf, certs.leaf_key))
        status = curl_post(port, certs, fresh_keys(out_dir, name),
                           bodies.linedetection_xml(CAMERA_IP, event_time), "application/xml",
                           "--tlsv1.3", "--tls13-ciphers", suite)
        lis.stop()
        return [status], [200], lis
    sc.__doc__ = tls13_suite_scenario.__doc__.replace("`suite`", suite)
    return sc


def sc_https_keepalive(port, certs, out_dir, name):
    """Python device (TLS 1.3), server answering 200 with Connection: keep-alive: three events
    (VMD, linedetection, VMD) on one TLS connection. Key log by the device."""
    lis = TlsListener(port, ["ok-keepalive"] * 3, server_ctx(certs.leaf, certs.leaf_key))
    dev = TlsDevice(CAMERA_IP, port, client_ctx(certs.ca, fresh_keys(out_dir, name)))
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:37:00+08:00", 1), XML_CT)
    dev.send_event(bodies.linedetection_xml(CAMERA_IP, "2024-05-14T10:37:01+08:00", 1), "application/xml")
    dev.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:37:02+08:00", 2), XML_CT)
    dev.close()
    lis.stop()
    return dev.results, [200, 200, 200], lis


def sc_https_multipart(port, certs, out_dir, name):
    """ANPR camera (Python, TLS 1.3) posts the first ANPR event of multipart-anpr.pcap: XML and
    two JPEG pictures (10 240 and 81 920 bytes) in one multipart body; answered 200."""
    lis = TlsListener(port, ["ok"], server_ctx(certs.leaf, certs.leaf_key))
    dev = TlsDevice(ANPR_IP, port, client_ctx(certs.ca, fresh_keys(out_dir, name)))
    body, _ = bodies.anpr_multipart(ANPR_IP, 0)
    dev.send_event(body, f"multipart/form-data; boundary={bodies.BOUNDARY}")
    lis.stop()
    return dev.results, [200], lis


def sc_https_missing_key(port, certs, out_dir, name):
    """Two cameras post over HTTPS (TLS 1.3) to one server; only the first writes a key log, so
    the log lacks the second session. Both answered 200."""
    lis = TlsListener(port, ["ok", "ok"], server_ctx(certs.leaf, certs.leaf_key))
    logged = TlsDevice(CAMERA_IP, port, client_ctx(certs.ca, fresh_keys(out_dir, name)))
    logged.send_event(bodies.vmd_xml(CAMERA_IP, "2024-05-14T10:38:00+08:00"), XML_CT)
    unlogged = TlsDevice(ANPR_IP, port, client_ctx(certs.ca))
    unlogged.send_event(bodies.vmd_xml(ANPR_IP, "2024-05-14T10:38:01+08:00"), XML_CT)
    lis.stop()
    return logged.results + unlogged.results, [200, 200], lis


def sc_https_key_update(port, certs, out_dir, name):
    """openssl s_client (TLS 1.3) posts a VMD event on a keep-alive connection, then sends a
    KeyUpdate asking the server to update too (s_client's "K" command), then posts a second
    event: both answered 200, the second under updated keys both ways. Key log by s_client."""
    lis = TlsListener(port, ["ok-keepalive", "ok-keepalive"], server_ctx(certs.leaf, certs.leaf_key))
    keys = fresh_keys(out_dir, name)
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"{SERVER_IP}:{port}", "-servername", SNI,
         "-CAfile", certs.ca, "-verify_return_error", "-tls1_3", "-keylogfile", keys],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    statuses = []
    for i, when in enumerate(["2024-05-14T10:39:00+08:00", "2024-05-14T10:39:01+08:00"]):
        body = bodies.vmd_xml(CAMERA_IP, when, i + 1)
        head = (f"POST {record.PATH} HTTP/1.1\r\nHost: {SNI}:{port}\r\nContent-Type: {XML_CT}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n").encode()
        p.stdin.write(head + body)  # one write: s_client reads it as one chunk (not a command)
        p.stdin.flush()
        record.time.sleep(0.5)
        if i == 0:
            p.stdin.write(b"K\n")  # s_client command: KeyUpdate, update requested
            p.stdin.flush()
            record.time.sleep(0.3)
    out, _ = p.communicate(timeout=10)  # closes stdin: s_client ends
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("HTTP/1.1 "):
            statuses.append(int(line.split()[1]))
    lis.stop()
    return statuses, [200, 200], lis


# name -> (server port, scenario)
SCENARIOS = {
    "https-ok.pcap": (18500, sc_https_ok),
    "https-tls12.pcap": (18501, sc_https_tls12),
    "https-tls13.pcap": (18502, sc_https_tls13),
    "https-no-answer.pcap": (18503, sc_https_no_answer),
    "https-to-http.pcap": (18504, sc_https_to_http),
    "http-to-https.pcap": (18505, sc_http_to_https),
    "https-unknown-ca.pcap": (18506, sc_https_unknown_ca),
    "https-tls12-chacha.pcap": (18507, sc_https_tls12_chacha),
    "https-tls13-chacha.pcap": (18508, tls13_suite_scenario("TLS_CHACHA20_POLY1305_SHA256", "2024-05-14T10:36:10+08:00")),
    "https-tls13-aes128.pcap": (18509, tls13_suite_scenario("TLS_AES_128_GCM_SHA256", "2024-05-14T10:36:20+08:00")),
    "https-tls13-aes256.pcap": (18510, tls13_suite_scenario("TLS_AES_256_GCM_SHA384", "2024-05-14T10:36:30+08:00")),
    "https-keepalive.pcap": (18511, sc_https_keepalive),
    "https-multipart.pcap": (18512, sc_https_multipart),
    "https-missing-key.pcap": (18513, sc_https_missing_key),
    "https-tls12-rsa.pcap": (18514, sc_https_tls12_rsa),
    "https-key-update.pcap": (18515, sc_https_key_update),
}


def run(name, out_dir, certs):
    port, scenario = SCENARIOS[name]
    path = os.path.join(out_dir, name)
    log(f"== {name}")
    p = record.start_tcpdump("lo", path, port, [])
    try:
        results, expect, party = scenario(port, certs, out_dir, name)
    finally:
        record.stop_tcpdump(p)
    errors = getattr(party, "tls_errors", [])
    log(f"{name}: {os.path.getsize(path)} bytes, results {results}, TLS errors {errors}")
    if results != expect:
        raise RuntimeError(f"{name}: device saw {results}, design says {expect}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("names", nargs="*", help="scenario file names (default: all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("record_tls.py must run as root (tcpdump on lo)")
    for tool in ("openssl", "curl", "tcpdump"):
        if shutil.which(tool) is None:
            sys.exit(f"record_tls.py needs {tool}")
    certs = Certs()
    try:
        for n in a.names or SCENARIOS:
            if n not in SCENARIOS:
                sys.exit(f"unknown scenario {n}; known: {', '.join(SCENARIOS)}")
            run(n, os.path.abspath(a.out), certs)
    finally:
        certs.cleanup()


if __name__ == "__main__":
    main()
