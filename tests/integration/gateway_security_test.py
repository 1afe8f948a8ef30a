#!/usr/bin/env python3
"""ccmon-gateway's security acceptance tests (issue 8 §1, §2, Acceptance "Security"), through the
real binary and real sockets.

One gateway with device keys, a metrics token, a short --read-timeout and a small
--max-connections:
  - writes with no key, a made-up key, a revoked key -> 401; device A's key writing
    device="B" is stored as A (checked on /metrics), never as B;
  - hostile bodies -> 4xx, and the gateway keeps serving: bad snappy, protobuf garbage, a
    decompression bomb (snappy's declared length 4 GiB), 10 000 labels, a 1 MB label value,
    a far-future timestamp;
  - /metrics and /api/metrics need the metrics token (401 + WWW-Authenticate otherwise);
    /healthz and /readyz stay open;
  - a slow-loris client (a request header one byte per second) is dropped by the read timeout
    while a normal write during the attack answers quickly (measured); so is a stalled TLS
    handshake on the TLS gateway;
  - idle connections up to --max-connections: one more is refused cleanly (503, Retry-After,
    closed) and service resumes once they go.
A second gateway from a config file (--config) with a per-device rate limit: 429 with
Retry-After; a config file with an unknown key exits 2 naming the line and the key.
A third gateway over TLS (a self-signed certificate made with openssl): the agent pushes over
https with --ca-file and the gateway's /metrics holds exactly replay's series under the key's
device; a certificate without its key, and a key that does not match, exit 2 at start-up.
"""

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import gateway_test as gt  # noqa: E402

ADMIN_TOKEN = "it-admin-token-0123456789"
METRICS_TOKEN = "it-metrics-token-abcdefgh"
READ_TIMEOUT_S = 3
MAX_CONNECTIONS = 24


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)


# --- remote-write 1.0 by hand (no protobuf or snappy module needed) -------------------------

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def write_request(series):
    """series: [([(name, value), ...], [(ts_ms, value), ...])] -> prometheus.WriteRequest."""
    req = b""
    for labels, samples in series:
        ts = b""
        for n, v in labels:
            ts += field_bytes(1, field_bytes(1, n.encode()) + field_bytes(2, v.encode()))
        for t, v in samples:
            smp = varint(1 << 3 | 1) + struct.pack("<d", v) + varint(2 << 3) + varint(t)
            ts += field_bytes(2, smp)
        req += field_bytes(1, ts)
    return req


def snappy_literal(data, declared=None):
    """Snappy's raw format with literals only (valid, uncompressed); `declared` overrides the
    length in the preamble (a decompression bomb declares far more than it holds)."""
    out = bytearray(varint(len(data) if declared is None else declared))
    pos = 0
    while pos < len(data):
        chunk = data[pos:pos + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
        pos += len(chunk)
    return bytes(out)


def now_ms():
    return int(time.time() * 1000)


def http(url, data=None, headers=None, method=None, context=None, timeout=10):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def post_write(gw, body, key=None, context=None):
    h = dict(RW_HEADERS)
    if key:
        h["Authorization"] = "Bearer " + key
    return http(gw.url("/api/v1/write"), data=body, headers=h, context=context)


class Gateway(ic.ServerProcess):
    def __init__(self, args, work, name, extra_argv, scheme="http", context=None):
        self.scheme, self.context = scheme, context
        super().__init__(name, lambda p: [args.gateway, "serve", "--listen", "127.0.0.1:%d" % p]
                         + extra_argv, "/readyz", work)

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def _wait_ready(self):
        deadline = time.monotonic() + self.READY_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                raise ic.TestError("%s exited with %d before it was ready:\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            try:
                if http(self.url("/readyz"), context=self.context, timeout=2)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, socket.timeout, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise ic.TestError("%s not ready within %d s:\n%s"
                                   % (self.name, self.READY_DEADLINE_S, self.log_tail()))
            time.sleep(self.POLL_S)

    def metrics(self, token=METRICS_TOKEN):
        code, _, text = http(self.url("/metrics"), headers={"Authorization": "Bearer " + token},
                             context=self.context)
        if code != 200:
            raise ic.TestError("/metrics answered %d: %s" % (code, text[:300]))
        return ic.parse_prom_text(text)[1]

    def self_metric(self, name, **labels):
        return sum(s.value for s in self.metrics() if s.name == name
                   and all(dict(s.labels).get(k) == v for k, v in labels.items()))


def device_add(args, gw, name, token_file):
    out, _ = ic.run([args.gateway, "device", "add", name, "--server", gw.url(""),
                     "--admin-token-file", token_file], "device add " + name)
    return out.strip().splitlines()[-1]


def write_file(path, text, mode=0o600):
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)
    return path


# --- the parts ----------------------------------------------------------------------------

def part_keys_and_bodies(args, ck, gw, token_file):
    key_a = device_add(args, gw, "dev-a", token_file)
    device_add(args, gw, "dev-b", token_file)
    key_c = device_add(args, gw, "dev-c", token_file)
    ic.run([args.gateway, "device", "revoke", "dev-c", "--server", gw.url(""),
            "--admin-token-file", token_file], "device revoke")
    t = now_ms()
    good = snappy_literal(write_request([([("__name__", "sec_probe"), ("device", "dev-b")],
                                          [(t, 42.0)])]))
    ck.eq("a write with no key", post_write(gw, good)[0], 401)
    ck.eq("a write with a made-up key", post_write(gw, good, "dk_" + "A" * 43)[0], 401)
    code, hdrs, _ = post_write(gw, good, key_c)
    ck.eq("a write with a revoked key", code, 401)
    ck.check((hdrs.get("WWW-Authenticate") or "").startswith("Bearer"),
             "401 says WWW-Authenticate: Bearer", str(hdrs))
    ck.eq("device A's key writing device=\"dev-b\"", post_write(gw, good, key_a)[0], 204)
    probes = [dict(s.labels) for s in gw.metrics() if s.name == "sec_probe"]
    ck.eq("... is stored as dev-a, never as dev-b", probes, [{"device": "dev-a"}])

    # Hostile bodies: every one a 4xx, and the gateway keeps serving.
    many_labels = [("__name__", "sec_wide")] + [("l%05d" % i, "v") for i in range(10000)]
    hostile = [
        ("bad snappy", b"\xff\xff\xff\xff\xff\xff this is not snappy"),
        ("protobuf garbage", snappy_literal(b"\x0a\xff\xff\xff\xff\x0f garbage \x00\x13")),
        ("a decompression bomb (declared 4 GiB)", snappy_literal(b"\x00" * 64,
                                                                 declared=(4 << 30) - 1)),
        ("10 000 labels", snappy_literal(write_request([(many_labels, [(t, 1.0)])]))),
        ("a 1 MB label value", snappy_literal(write_request(
            [([("__name__", "sec_big"), ("v", "x" * (1 << 20))], [(t, 1.0)])]))),
        ("a far-future timestamp", snappy_literal(write_request(
            [([("__name__", "sec_future")], [(t + 3600 * 1000, 1.0)])]))),
    ]
    for what, body in hostile:
        code, _, text = post_write(gw, body, key_a)
        ck.check(400 <= code < 500, "%s -> 4xx (%d: %s)" % (what, code, text.strip()[:120]))
        ck.eq("the gateway serves after " + what, http(gw.url("/healthz"))[0], 200)
    names = {s.name for s in gw.metrics()}
    ck.check(not names & {"sec_wide", "sec_big", "sec_future"},
             "nothing of a refused request is stored", str(names & {"sec_wide", "sec_big"}))
    return key_a


def part_metrics_token(ck, gw):
    for what, hdrs in [("no token", {}), ("a wrong token", {"Authorization": "Bearer nope"}),
                       ("the admin token", {"Authorization": "Bearer " + ADMIN_TOKEN})]:
        for path in ("/metrics", "/api/metrics"):
            code, h, body = http(gw.url(path), headers=hdrs)
            ck.check(code == 401 and (h.get("WWW-Authenticate") or "").startswith("Bearer")
                     and "ccmon_gateway" not in body,
                     "%s with %s -> 401 + WWW-Authenticate, no metrics" % (path, what),
                     "%d %s" % (code, body[:100]))
    code, _, body = http(gw.url("/api/metrics"),
                         headers={"Authorization": "Bearer " + METRICS_TOKEN})
    ck.check(code == 200 and "ccmon_gateway_series" in body, "/api/metrics with the token: 200")
    ck.eq("/healthz without a token", http(gw.url("/healthz"))[0], 200)
    ck.eq("/readyz without a token", http(gw.url("/readyz"))[0], 200)
    ck.check(gw.self_metric("ccmon_gateway_metrics_unauthorized_total") >= 6,
             "refusals counted in ccmon_gateway_metrics_unauthorized_total")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def part_slow_loris(ck, gw, key):
    timeouts0 = gw.self_metric("ccmon_gateway_http_timeouts_total")
    header = (b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
              b"X-Padding: " + b"p" * 200 + b"\r\n\r\n")
    result = {}

    def loris():
        s = connect(gw.port)
        t0 = time.monotonic()
        try:
            for i in range(len(header)):
                s.sendall(header[i:i + 1])  # the attack: one byte per second
                s.settimeout(1.0)
                try:
                    if s.recv(1024) == b"":
                        result["closed_after"] = time.monotonic() - t0
                        result["bytes_sent"] = i + 1
                        return
                except socket.timeout:
                    pass
                if time.monotonic() - t0 > 30:
                    return
        except (ConnectionResetError, BrokenPipeError):
            result["closed_after"] = time.monotonic() - t0
        finally:
            s.close()

    th = threading.Thread(target=loris)
    th.start()
    # A normal write while the attack is under way answers quickly.
    latencies, codes = [], set()
    t_end = time.monotonic() + READ_TIMEOUT_S
    i = 0
    while time.monotonic() < t_end:
        i += 1
        body = snappy_literal(write_request([([("__name__", "sec_during_loris")],
                                              [(now_ms() + i, float(i))])]))
        t0 = time.monotonic()
        codes.add(post_write(gw, body, key)[0])
        latencies.append(time.monotonic() - t0)
        time.sleep(0.02)  # pacing: ~50 writes a second, not a write benchmark
    th.join(timeout=40)
    ck.eq("normal writes during the slow-loris attack answer", codes, {204})
    closed = result.get("closed_after")
    ck.check(closed is not None and closed <= READ_TIMEOUT_S + 3,
             "the slow-loris connection is closed by the read timeout (%s s after its first "
             "byte, %s bytes sent; --read-timeout %ds)" % (
                 "%.1f" % closed if closed else "never", result.get("bytes_sent"),
                 READ_TIMEOUT_S))
    # A write that waited for the loris to be dropped would take about the read timeout.
    worst = max(latencies) if latencies else 99
    median = sorted(latencies)[len(latencies) // 2] if latencies else 99
    ck.check(worst < READ_TIMEOUT_S / 2 and median < 0.25,
             "normal writes during the attack answer quickly: %d writes, median %.0f ms, "
             "slowest %.0f ms" % (len(latencies), median * 1000, worst * 1000))
    ck.check(gw.self_metric("ccmon_gateway_http_timeouts_total") > timeouts0,
             "the dropped connection is counted in ccmon_gateway_http_timeouts_total")


def part_idle_connections(ck, gw):
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS):
            idle.append(connect(gw.port))
        # The server accepts asynchronously: wait (bounded) for it to be full.
        deadline = time.monotonic() + 20
        answer = b""
        t_answer = 0.0
        while time.monotonic() < deadline:
            s = connect(gw.port)
            t0 = time.monotonic()
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                s.settimeout(5)
                answer = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                    if b" 200 " in answer.split(b"\r\n")[0] and answer.endswith(b"ok\n"):
                        break
            except (ConnectionResetError, socket.timeout):
                pass
            finally:
                t_answer = time.monotonic() - t0
                s.close()
            if answer.startswith(b"HTTP/1.1 503"):
                break
        status = answer.split(b"\r\n")[0].decode("latin-1")
        ck.check(answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
                 and b"Connection: close" in answer,
                 "with %d idle connections one more is refused cleanly: %s, Retry-After, "
                 "closed, in %.0f ms" % (MAX_CONNECTIONS, status, t_answer * 1000),
                 answer[:300].decode("latin-1"))
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 20
    code = 0
    while time.monotonic() < deadline:
        try:
            code = http(gw.url("/healthz"), timeout=5)[0]
        except (urllib.error.URLError, ConnectionError):
            code = 0
        if code == 200:
            break
        time.sleep(0.05)
    ck.eq("once the idle connections close, requests are served again", code, 200)


def part_config_and_rate_limit(args, ck, work, token_file):
    bad = write_file(os.path.join(work, "bad.conf"),
                     "# a typo\ndata-dir = %s\nmax-requests-per-second = 5\n"
                     % os.path.join(work, "gw-bad"))
    p = subprocess.run([args.gateway, "serve", "--config", bad], capture_output=True, timeout=30)
    err = p.stderr.decode()
    ck.check(p.returncode == 2 and "bad.conf:3: unknown key 'max-requests-per-second'" in err,
             "a config file with an unknown key: exit 2 naming the line and the key",
             "%d %s" % (p.returncode, err))
    conf = write_file(os.path.join(work, "gw.conf"),
                      "data-dir = %s\nadmin-token-file = %s\nmax-requests-per-device-per-second = 1\n"
                      "device-burst = 2\nmax-future = 1h\n" % (os.path.join(work, "gw-conf"),
                                                              token_file))
    gw = Gateway(args, work, "gateway-conf", ["--config", conf])
    gw.start()
    try:
        key = device_add(args, gw, "rate", token_file)
        # One token a second comes back: send until a 429 (at once, unless the machine takes
        # about a second per write).
        codes, retry = [], None
        for i in range(30):
            body = snappy_literal(write_request([([("__name__", "sec_rate")],
                                                  [(now_ms() + i, float(i))])]))
            code, h, _ = post_write(gw, body, key)
            codes.append(code)
            if code == 429:
                retry = h.get("Retry-After")
                break
        ck.check(codes[:2] == [204, 204] and codes[-1] == 429,
                 "--config's rate limit: a burst of 2, then 429 (%s)" % codes)
        ck.check(retry is not None and retry.isdigit() and int(retry) >= 1,
                 "429 carries Retry-After in whole seconds >= 1 (%s)" % retry)
        ck.check(gw.self_metric("ccmon_gateway_write_requests_limited_total",
                                reason="rate_limit") >= 1,
                 "counted in ccmon_gateway_write_requests_limited_total{reason=\"rate_limit\"}")
    finally:
        gw.stop()


def make_cert(work):
    cert, key = os.path.join(work, "tls.crt"), os.path.join(work, "tls.key")
    ic.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=ccmon-gateway-it", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", key, "-out", cert], "openssl req")
    other = os.path.join(work, "other.key")
    ic.run(["openssl", "genrsa", "-out", other, "2048"], "openssl genrsa")
    return cert, key, other


def part_tls(args, ck, work, token_file):
    if shutil.which("openssl") is None:
        ck.info("openssl not on PATH: TLS part skipped")
        return
    cert, key, other_key = make_cert(work)
    data_dir = os.path.join(work, "gw-tls")
    os.makedirs(data_dir)
    for what, argv in [("a certificate without its key", ["--tls-cert-file", cert]),
                       ("a key that does not match the certificate",
                        ["--tls-cert-file", cert, "--tls-key-file", other_key]),
                       ("an unreadable key file",
                        ["--tls-cert-file", cert, "--tls-key-file", key + ".missing"])]:
        p = subprocess.run([args.gateway, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                            os.path.join(work, "gw-tls-bad")] + argv,
                           capture_output=True, timeout=30)
        ck.check(p.returncode == 2 and "tls" in p.stderr.decode().lower(),
                 "%s: exit 2 with a clear message" % what,
                 "%d %s" % (p.returncode, p.stderr.decode()[-400:]))
    ctx = ssl.create_default_context(cafile=cert)
    gw = Gateway(args, work, "gateway-tls",
                 ["--data-dir", data_dir, "--admin-token-file", token_file,
                  "--tls-cert-file", cert, "--tls-key-file", key,
                  "--read-timeout", "%ds" % READ_TIMEOUT_S,
                  "--metrics-token-file", write_file(os.path.join(work, "mt"), METRICS_TOKEN)],
                 scheme="https", context=ctx)
    gw.start()
    agent = None
    try:
        # The admin CLI over https with the gateway's self-signed certificate (--ca-file); the
        # system's CAs do not trust it.
        server = "https://127.0.0.1:%d" % gw.port
        _, err = ic.run([args.gateway, "device", "add", "tls-laptop", "--server", server,
                         "--admin-token-file", token_file], "device add over https, no CA",
                        ok_codes=(1,))
        ck.check("certificate" in err.lower() or "verify" in err.lower(),
                 "device add --server https without --ca-file: refused, the certificate said",
                 err[-300:])
        out, _ = ic.run([args.gateway, "device", "add", "tls-laptop", "--server", server,
                         "--admin-token-file", token_file, "--ca-file", cert],
                        "device add --server https --ca-file")
        dev_key = out.strip().splitlines()[-1]
        ck.check(dev_key.startswith("dk_"), "device add --server https --ca-file prints a key")
        code = 0
        try:
            code = http("http://127.0.0.1:%d/healthz" % gw.port, timeout=5)[0]
        except (urllib.error.URLError, ConnectionError):
            pass
        ck.check(code != 200, "plain HTTP to the TLS port is not served (%s)" % code)
        # A TLS slow-loris: the first byte of a ClientHello, then nothing.
        s = connect(gw.port)
        t0 = time.monotonic()
        closed = None
        try:
            s.sendall(b"\x16")
            s.settimeout(READ_TIMEOUT_S + 5)
            if s.recv(1024) == b"":
                closed = time.monotonic() - t0
        except (ConnectionResetError, socket.timeout):
            if not isinstance(sys.exc_info()[1], socket.timeout):
                closed = time.monotonic() - t0
        finally:
            s.close()
        ck.check(closed is not None and closed <= READ_TIMEOUT_S + 3,
                 "a stalled TLS handshake is dropped by the read timeout (%s s)"
                 % ("%.1f" % closed if closed is not None else "never"))
        config = os.path.join(work, "tls-claude")
        ic.make_fixture(args, config)
        agent = at.Agent(args, gw.url("/api/v1/write"), config, os.path.join(work, "tls-state"),
                         work)
        agent.argv += ["--key", dev_key, "--ca-file", cert]
        agent.start()
        want = {}
        for k, v in at.expected_series(args, config).items():
            labels = dict(k[1:])
            labels["device"] = "tls-laptop"
            want[at.key_of(k[0], labels)] = v
        deadline = time.monotonic() + 90
        got = {}
        while time.monotonic() < deadline:
            got = {}
            for s in gw.metrics():
                if (s.name.startswith("claude_") and not s.name.startswith(at.AGENT_ONLY)
                        and s.name not in gt.COMPUTED):
                    got[at.key_of(s.name, dict(s.labels))] = s.value
            if at.same(got, want):
                break
            time.sleep(0.2)
        ck.check(at.same(got, want), "the agent (--ca-file) pushed its history over https: "
                 "/metrics equals replay's %d series under the key's device" % len(want),
                 at.describe_diff(got, want))
    except ic.TestError:
        if agent is not None:
            print(agent.log_tail())
        print(gw.log_tail())
        raise
    finally:
        if agent is not None:
            agent.stop()
        gw.stop()


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    args.backfill = False
    work = tempfile.mkdtemp(prefix="ccmon-gateway-security-it-")
    try:
        token_file = write_file(os.path.join(work, "admin-token"), ADMIN_TOKEN + "\n")
        metrics_token_file = write_file(os.path.join(work, "metrics-token"), METRICS_TOKEN + "\n")
        gw = Gateway(args, work, "gateway",
                     ["--data-dir", os.path.join(work, "gw-data"), "--admin-token-file",
                      token_file, "--metrics-token-file", metrics_token_file,
                      "--read-timeout", "%ds" % READ_TIMEOUT_S,
                      "--max-connections", str(MAX_CONNECTIONS)])
        gw.start()
        try:
            key = part_keys_and_bodies(args, ck, gw, token_file)
            part_metrics_token(ck, gw)
            part_slow_loris(ck, gw, key)
            part_idle_connections(ck, gw)
            ck.eq("the gateway still serves at the end", http(gw.url("/healthz"))[0], 200)
        except ic.TestError:
            print(gw.log_tail())
            raise
        finally:
            gw.stop()
        part_config_and_rate_limit(args, ck, work, token_file)
        part_tls(args, ck, work, token_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_security_test", body, extra))
