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
"""

import json
import os
import subprocess
import sys
import tempfile
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


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("remote_write_backfill_test", body))
