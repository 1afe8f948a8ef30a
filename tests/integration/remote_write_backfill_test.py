#!/usr/bin/env python3
"""`ccmon-replay remote-write` into a real Prometheus 2.42 and a real VictoriaMetrics 1.79.

The fixture's history is sent with its original timestamps to:
  - Prometheus with --web.enable-remote-write-receiver and an empty TSDB (replay sends in time
    order, so no out-of-order window is needed), then checked exactly like the promtool backfill
    (backfill_test.check_device): totals by PromQL at the end, and every raw sample equal to
    `ccmon-replay openmetrics`'s file for the same history;
  - VictoriaMetrics, checked with /api/v1/export (raw samples) against the same file.
Also: a second backfill into the same Prometheus is refused (400) with a hint and changes
nothing; a receiver that rejects the request (404) makes replay exit 1 with the status in its
message; no receiver at all makes it give up after --max-retry-time.
Against a scripted receiver on 127.0.0.1 (what Debian's Prometheus cannot be made to answer):
the headers and credentials arrive exactly as configured (a token file's CRLF is not sent), a
503 with Retry-After is waited out and retried, and a 500 "too old sample" is final (one request,
exit 1, the promtool hint). Bad flags (a port out of range, a header with CR/LF, a token file
that is /dev/zero) are refused with exit 2 before anything is sent.
"""

import base64
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import backfill_test as bt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "remote_write"))
import receivers_test as rt  # noqa: E402


def replay_remote_write(args, root, device, url, extra=(), ok_codes=(0,)):
    cmd = [args.replay, "remote-write", "--url", url, "--config-dir", root, "--device", device,
           "-z", "UTC", "--progress", "never"] + list(extra)
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode not in ok_codes:
        raise ic.TestError("ccmon-replay remote-write exited %d:\n%s" % (p.returncode, err))
    return p.returncode, err


class ScriptedReceiver:
    """A remote-write receiver on 127.0.0.1 that records each request (arrival time, headers)
    and answers from a script of (status, headers, body), then 204 to everything."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                with outer.lock:
                    outer.requests.append((time.monotonic(), self.headers.items()))
                    status, headers, text = outer.script.pop(0) if outer.script else (204, {}, "")
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def url(self):
        return "http://127.0.0.1:%d/api/v1/write" % self.server.server_address[1]


def scripted_receiver_checks(args, ck, fx, device, tmp):
    token = os.path.join(tmp, "token")
    with open(token, "wb") as f:
        f.write(b"s3cret-t0k\r\n")
    with ScriptedReceiver() as rcv:
        replay_remote_write(args, fx, device, rcv.url(),
                            ["--header", "X-Scope-OrgID: team-a", "--bearer-token-file", token])
        heads = [dict((k.lower(), v) for k, v in h) for _, h in rcv.requests]
        ck.check(heads and all(h.get("authorization") == "Bearer s3cret-t0k" and
                               h.get("x-scope-orgid") == "team-a" for h in heads),
                 "the token file's CRLF is trimmed; headers arrive as configured",
                 repr(heads[:1]))
        ck.check(all(h.get("content-encoding") == "snappy" and
                     h.get("x-prometheus-remote-write-version") == "0.1.0" for h in heads),
                 "remote-write headers on every request", repr(heads[:1]))
    password = os.path.join(tmp, "password")
    with open(password, "wb") as f:
        f.write(b"open sesame\n")
    with ScriptedReceiver() as rcv:
        replay_remote_write(args, fx, device, rcv.url(),
                            ["--basic-auth-user", "Aladdin", "--basic-auth-password-file",
                             password])
        want = "Basic " + base64.b64encode(b"Aladdin:open sesame").decode()
        ck.check(rcv.requests and all(dict((k.lower(), v) for k, v in h).get("authorization") ==
                                      want for _, h in rcv.requests),
                 "basic auth from a user and a password file", repr(rcv.requests[:1]))

    # 503 with Retry-After: 1 -> waited out (about 1 s, not the 30 ms backoff), then retried.
    with ScriptedReceiver([(503, {"Retry-After": "1"}, "busy")]) as rcv:
        _, err = replay_remote_write(args, fx, device, rcv.url())
        gap = rcv.requests[1][0] - rcv.requests[0][0] if len(rcv.requests) > 1 else 0
        ck.check("sent " in err and gap >= 0.9,
                 "a 503 with Retry-After: 1 is retried after about a second",
                 "gap %.3f s; %s" % (gap, err.strip()))

    # Prometheus 2.42's 500 "too old sample": final, not retried, with the promtool hint.
    with ScriptedReceiver([(500, {}, "too old sample\n")]) as rcv:
        _, err = replay_remote_write(args, fx, device, rcv.url(), ok_codes=(1,))
        ck.check(len(rcv.requests) == 1 and "rejected: HTTP 500: too old sample" in err and
                 "promtool" in err,
                 "a 500 'too old sample' is final (one request) and gets the promtool hint",
                 "%d requests; %s" % (len(rcv.requests), err.strip()))

    # Bad flags: exit 2 before anything is sent.
    with ScriptedReceiver() as rcv:
        port = rcv.server.server_address[1]
        cases = [
            ("a port out of range", "http://127.0.0.1:99999/api/v1/write", [],
             "out of range (1..65535)"),
            ("a header with CR/LF", rcv.url(), ["--header", "X-Evil: a\r\nInjected: 1"],
             "has CR at byte 2"),
            ("a token file that is /dev/zero", rcv.url(), ["--bearer-token-file", "/dev/zero"],
             "larger than 65536 bytes"),
            ("a header name with a space", rcv.url(), ["--header", "X Evil: 1"], "has 0x20"),
            ("user info in the URL", "http://u:p@127.0.0.1:%d/api/v1/write" % port, [],
             "user info"),
        ]
        for what, url, extra, want in cases:
            code, err = replay_remote_write(args, fx, device, url, extra, ok_codes=(2,))
            ck.check(want in err, "refused with exit 2: " + what, err.strip())
        ck.eq("requests sent with bad flags", len(rcv.requests), 0)


def body(args, ck):
    prometheus = ic.find_tool(args.prometheus, "prometheus")
    vm_bin = ic.find_tool("", "victoria-metrics")
    step = 60
    with tempfile.TemporaryDirectory(prefix="ccmon-rw-backfill-") as tmp:
        fx = os.path.join(tmp, "fixture")
        expected = ic.make_fixture(args, fx)
        device = "rw-dev"
        om = os.path.join(tmp, "history.om")
        end = ic.replay_history(args, fx, device, om)
        fams, samples = bt.read_history(om)
        series = ic.series_by_key(samples)
        first = int(min(s.ts for s in samples))
        print("fixture: seed %d, %d requests; history %d series, %d samples, %d .. %d"
              % (args.seed, expected["totals"]["requests"], len(series), len(samples), first, end))

        prom = bt.Prometheus(prometheus, os.path.join(tmp, "prom"), tmp,
                             ["--web.enable-remote-write-receiver"])
        vm = rt.Server("victoria-metrics", lambda port: [
            vm_bin, "-httpListenAddr=127.0.0.1:%d" % port,
            "-storageDataPath=" + os.path.join(tmp, "vm"), "-retentionPeriod=100y",
            "-search.latencyOffset=0s", "-search.disableCache"], "/health", tmp)
        try:
            prom.start()
            vm.start()
            print("-- prometheus on :%d, victoria-metrics on :%d" % (prom.port, vm.port))
            # Small requests, so that the history spans many of them (order across requests).
            for name, url in (("prometheus", "http://127.0.0.1:%d/api/v1/write" % prom.port),
                              ("victoria-metrics", vm.url("/api/v1/write"))):
                _, err = replay_remote_write(args, fx, device, url,
                                             ["--max-samples-per-send", "500"])
                ck.check("sent %d series, %d samples" % (len(series), len(samples)) in err,
                         "%s: replay reports every series and sample sent" % name, err.strip())

            bt.check_device(prom, ck, "prometheus", '{device="%s"}' % device, end, first,
                            series, len(samples), expected["totals"], expected, step)

            want = {k: [(int(round(s.ts * 1000)), s.value) for s in ss] for k, ss in series.items()}
            got = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # VictoriaMetrics indexes new data asynchronously
                urllib.request.urlopen(vm.url("/internal/force_flush"), timeout=10).read()
                got = {}
                for key, vals in rt.vm_samples_by_name(vm, "claude_.+").items():
                    labels = dict(key)
                    name = labels.pop("__name__")
                    got[(name, tuple(sorted(labels.items())))] = vals
                if sum(len(v) for v in got.values()) >= len(samples):
                    break
                time.sleep(0.1)
            diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
            ck.check(not diff, "victoria-metrics: exported samples equal the file (%d series, "
                     "%d samples)" % (len(want), len(samples)),
                     "%d series differ, e.g. %r: stored %r, file %r"
                     % (len(diff), diff[:1], got.get(diff[0], [])[:4] if diff else None,
                        want.get(diff[0], [])[:4] if diff else None))

            # The same history again into the Prometheus that now holds it: refused (400, the
            # samples are older than its newest data), exit 1 with the promtool hint, and the
            # totals are unchanged (nothing counted twice).
            code, err = replay_remote_write(args, fx, device,
                                            "http://127.0.0.1:%d/api/v1/write" % prom.port,
                                            ok_codes=(1,))
            ck.check("rejected: HTTP 400" in err and "promtool" in err,
                     "a second backfill into the same Prometheus is refused with a hint",
                     err.strip())
            tok_total = sum(expected["totals"][t] for t in ic.TOKEN_TYPES)
            ck.eq("prometheus: sum(claude_tokens_total) at end after the refused second backfill",
                  prom.scalar('sum(claude_tokens_total{device="%s"})' % device, end),
                  float(tok_total))

            # A receiver that answers 404 (wrong path): rejected, exit 1, no retry loop.
            code, err = replay_remote_write(args, fx, device,
                                            "http://127.0.0.1:%d/wrong/path" % prom.port,
                                            ok_codes=(1,))
            ck.check("rejected: HTTP 404" in err, "a 404 is reported as rejected (exit 1)",
                     err.strip())
        finally:
            prom.stop()
            vm.stop()
        # Nothing listening: retried with backoff, then given up after --max-retry-time.
        port = rt.free_port()
        t0 = time.monotonic()
        code, err = replay_remote_write(args, fx, device, "http://127.0.0.1:%d/api/v1/write" % port,
                                        ["--max-retry-time", "2"], ok_codes=(1,))
        ck.check("not delivered: gave up after" in err and time.monotonic() - t0 < 60,
                 "an unreachable receiver: retried, then given up (exit 1)", err.strip())

        scripted_receiver_checks(args, ck, fx, device, tmp)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("remote_write_backfill_test", body))
