#!/usr/bin/env python3
"""The tools' command lines as processes: what the unit tests cannot see.

Standard output on a full device (/dev/full) must make every command exit 1 with a message (a
report cut short must not look complete); usage errors exit 2 and create nothing; `-o /dev/stdout`
streams into whatever standard output is; `ccmon-pricing cost` prices huge counts exactly; a
SIGTERM while `openmetrics -o FILE` writes leaves FILE as it was and no FILE.tmp, and a SIGINT
during a remote-write backfill says how many samples were stored (both then end by the signal).
Exit 1 with the failed checks listed.

usage: cli_test.py --replay BIN --pricing BIN --prices DEFAULT_PRICES_JSON
"""
import argparse
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time


def line(i, ts, session, cwd, inp, out):
    return json.dumps({
        "type": "assistant", "sessionId": session, "cwd": cwd, "timestamp": ts,
        "requestId": "req_%d" % i,
        "message": {"id": "msg_%d" % i, "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": "hi"}],
                    "usage": {"input_tokens": inp, "output_tokens": out,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", required=True)
    ap.add_argument("--pricing", required=True)
    ap.add_argument("--prices", required=True)
    a = ap.parse_args()
    failures = []

    def check(ok, what, detail=""):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what + ("\n  " + detail.strip().replace("\n", "\n  ") if detail else ""))

    def run(cmd, stdout=subprocess.PIPE):
        p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, timeout=120)
        return p.returncode, (p.stdout or b"").decode(), p.stderr.decode()

    with tempfile.TemporaryDirectory(prefix="ccmon-cli-") as tmp:
        proj = os.path.join(tmp, "claude", "projects", "-w-a")
        os.makedirs(proj)
        with open(os.path.join(proj, "s1.jsonl"), "w") as f:
            # Enough requests that every output is longer than one stdio buffer.
            for i in range(300):
                f.write(line(i, "2026-09-01T%02d:%02d:00.000Z" % (i // 60, i % 60), "s%d" % (i % 7),
                             "/w/p%d" % (i % 40), 100 + i, 10) + "\n")
        common = ["--config-dir", os.path.join(tmp, "claude"), "--device", "dev", "-z", "UTC",
                  "--progress", "never", "--pricing", a.prices]

        # 8.5: standard output on a full device.
        with open("/dev/full", "w") as full:
            for args in (["summary"], ["summary", "--json"], ["metrics"],
                         ["metrics", "--format", "openmetrics"], ["openmetrics", "-o", "-"]):
                code, _, err = run([a.replay] + args + common, stdout=full)
                check(code == 1 and "write failed for standard output" in err,
                      "ccmon-replay %s > /dev/full: exit 1 with a message (got %d)"
                      % (" ".join(args), code), err)
            code, _, err = run([a.replay, "--help"], stdout=full)
            check(code == 1, "ccmon-replay --help > /dev/full: exit 1 (got %d)" % code, err)
            for args in (["show"], ["cost", "claude-opus-4-6", "--input", "5"]):
                code, _, err = run([a.pricing] + args + ["--pricing", a.prices], stdout=full)
                check(code == 1 and "write failed for standard output" in err,
                      "ccmon-pricing %s > /dev/full: exit 1 with a message (got %d)"
                      % (" ".join(args), code), err)
        code, _, err = run([a.replay, "openmetrics", "-o", "/dev/full"] + common)
        check(code == 1 and "No space left on device" in err,
              "ccmon-replay openmetrics -o /dev/full: exit 1 (got %d)" % code, err)

        # The same commands on a working stdout: exit 0, complete output.
        code, out, err = run([a.replay, "metrics"] + common)
        check(code == 0 and 'claude_requests_total{device="dev"' in out,
              "ccmon-replay metrics: exit 0 with the metrics", err)

        # -o /dev/stdout goes wherever standard output goes (here a regular file), directly.
        dest = os.path.join(tmp, "stdout.om")
        with open(dest, "w") as f:
            code, _, err = run([a.replay, "openmetrics", "-o", "/dev/stdout"] + common, stdout=f)
        with open(dest) as f:
            content = f.read()
        check(code == 0 and content.endswith("# EOF\n") and not os.path.exists("/dev/stdout.tmp"),
              "ccmon-replay openmetrics -o /dev/stdout > FILE: the history lands in FILE", err)

        # 8.4 / 8.12: usage errors exit 2 and create nothing.
        target = os.path.join(tmp, "metrics.txt")
        for args, want in (
                (["--max-line-bytes", "-1"], "--max-line-bytes wants an integer from 1024 to"),
                (["--max-line-bytes", "18446744073709551615"], "--max-line-bytes wants"),
                (["--threads", "-1"], "--threads wants an integer from 0 to 1024"),
                (["--max-projects", "-1"], "--max-projects wants an integer from 1 to"),
                (["remote-write", "--url", "http://127.0.0.1:9/w", "--max-samples-per-send", "-1"],
                 "--max-samples-per-send wants an integer from 1 to 1000000"),
                (["metrics", "-o", target], "--output does not apply to metrics"),
                (["summary", "--step", "1h"], "--step does not apply to summary"),
                (["--since", "2026-09-02", "--until", "2026-09-01"],
                 "--since 2026-09-02 is after --until 2026-09-01")):
            code, out, err = run([a.replay] + args + common)
            check(code == 2 and want in err and out == "",
                  "ccmon-replay %s: exit 2 naming the problem (got %d)" % (" ".join(args), code),
                  err)
        check(not os.path.exists(target), "metrics -o FILE created nothing")

        # 8.6: cost takes no negative counts and prices huge ones exactly.
        code, out, err = run([a.pricing, "cost", "claude-sonnet-4-5-20250929", "--input", "-5",
                              "--pricing", a.prices])
        check(code == 2 and "--input wants an integer from 0 to" in err,
              "ccmon-pricing cost --input -5: exit 2 (got %d)" % code, err)
        code, out, err = run([a.pricing, "cost", "claude-sonnet-4-5-20250929", "--output",
                              "1000000000000", "--pricing", a.prices])
        check(code == 0 and "cost $15000000\n" in out,
              "ccmon-pricing cost --output 1000000000000: $15000000", out + err)
        code, out, err = run([a.pricing, "show", "--input", "5", "--pricing", a.prices])
        check(code == 2 and "--input does not apply to show" in err,
              "ccmon-pricing show --input 5: exit 2 (got %d)" % code, err)

        signal_checks(a, check, tmp)

    if failures:
        print("\n%d check(s) failed:\n%s" % (len(failures), "\n".join(failures)))
        return 1
    return 0


def wait_for(condition, seconds):
    """Polls `condition` until it holds or `seconds` pass; returns whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def signal_checks(a, check, tmp):
    # A history with many series (one project each), so that writing it takes a while.
    big = os.path.join(tmp, "big")
    proj = os.path.join(big, "projects", "-w")
    os.makedirs(proj)
    with open(os.path.join(proj, "s.jsonl"), "w") as f:
        for i in range(40000):
            f.write(line(100000 + i, "2026-09-01T%02d:%02d:00.000Z" % (i // 60 % 24, i % 60),
                         "s%d" % i, "/w/p%d" % i, 100, 10) + "\n")
    common = ["--config-dir", big, "--device", "dev", "-z", "UTC", "--progress", "never",
              "--pricing", a.prices, "--max-projects", "1000000"]

    # SIGTERM while the history is being written: the old file stays, no FILE.tmp is left, the
    # run says so and ends by the signal.
    out = os.path.join(tmp, "history.om")
    with open(out, "w") as f:
        f.write("old history\n")
    p = subprocess.Popen([a.replay, "openmetrics", "-o", out] + common,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    writing = wait_for(lambda: os.path.exists(out + ".tmp"), 120)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    err = err.decode()
    with open(out) as f:
        content = f.read()
    check(writing and p.returncode == -signal.SIGTERM and content == "old history\n"
          and not os.path.exists(out + ".tmp") and "stopped by a signal" in err,
          "SIGTERM during openmetrics -o FILE: FILE kept, no FILE.tmp, ended by SIGTERM "
          "(got %s, tmp left: %s)" % (p.returncode, os.path.exists(out + ".tmp")), err)

    # SIGINT while remote-write waits to retry: it stops at once and says what was stored.
    got_request = threading.Event()

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(503)
            self.send_header("Retry-After", "200")
            self.send_header("Content-Length", "0")
            self.end_headers()
            got_request.set()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/api/v1/write" % server.server_address[1]
        p = subprocess.Popen([a.replay, "remote-write", "--url", url, "--max-retry-time", "0"]
                             + common, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        asked = got_request.wait(120)
        start = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        took = time.monotonic() - start
        err = err.decode()
        check(asked and p.returncode == -signal.SIGINT and took < 10
              and "was not delivered: stopped after 1 attempts: HTTP 503" in err
              and "the 0 samples before it were stored" in err,
              "SIGINT during remote-write: stops at once, says what was stored, ends by SIGINT "
              "(got %s after %.1fs)" % (p.returncode, took), err)
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
