#!/usr/bin/env python3
"""QueueManager (src/remote_write/queue_manager.h) against a real Prometheus 2.42.

bench/queue_bench.cc pushes a synthetic backlog through the queue manager into a Prometheus
started with --web.enable-remote-write-receiver on a free port: 3 shards x 100 series x 100
samples (10k samples per shard) in full batches of 2000 over one keep-alive connection per
shard, then 2 shards x 20 series x 50 samples with batches of at most 70 samples (3 whole
entries of 20) over one connection per request. Every stored sample is read back with a range
query and compared with what was generated (timestamps and values exactly); nothing may be
rejected, and the keep-alive run must have used exactly one connection per shard.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import backfill_test as bt  # noqa: E402


def push(args, url, run, shards, series, samples, max_per_send, transport, start_ms):
    cmd = [args.queue_bench, "--url", url, "--run", run, "--shards", str(shards),
           "--series-per-shard", str(series), "--samples-per-series", str(samples),
           "--max-samples-per-send", str(max_per_send), "--transport", transport,
           "--start-ms", str(start_ms)]
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    if p.returncode != 0:
        raise ic.TestError("queue_bench exited %d: %s\n%s" % (
            p.returncode, " ".join(cmd), p.stderr.decode("utf-8", "replace")[-3000:]))
    return json.loads(p.stdout)


def check_run(ck, prom, report, run, shards, series, samples, max_per_send, keepalive):
    total = shards * series * samples
    ck.eq("%s: samples sent" % run, report["samples_sent"], total)
    ck.eq("%s: samples rejected" % run, report["samples_rejected"], 0)
    ck.eq("%s: retries" % run, report["retries"], 0)
    # Entries hold `series` samples each and are never split: a batch takes as many whole
    # entries as fit in max_per_send (at least one).
    per_batch = max(1, max_per_send // series)
    want_batches = shards * -(-samples // per_batch)
    ck.eq("%s: requests" % run, report["batches_sent"], want_batches)
    ck.eq("%s: connections" % run, report["connections"],
          shards if keepalive else want_batches)
    ck.info("%s: %d samples in %.3f s (%.0f samples/s)" % (
        run, report["samples_sent"], report["seconds"], report["samples_per_s"]))

    start, step = report["start_ms"], report["step_ms"]
    expected = {}
    for i in report["series"]:
        key = ("ccmon_queue_bench", (("run", run), ("series", str(i))))
        expected[key] = [((start + k * step) / 1000.0, float(i * 1000000 + k))
                         for k in range(samples)]
    ck.eq("%s: series generated" % run, len(expected), shards * series)
    at = (start + samples * step) // 1000 + 1
    got = prom.raw('ccmon_queue_bench{run="%s"}[1h]' % run, at)
    ck.eq("%s: series stored" % run, len(got), len(expected))
    ck.eq("%s: samples stored" % run, sum(len(v) for v in got.values()), total)
    bad = [k for k in expected if got.get(k) != expected[k]]
    ck.check(not bad, "%s: every stored sample equals the generated one (ts and value)" % run,
             "%d series differ, e.g. %r: got %r..., want %r..." % (
                 len(bad), bad[:1], (got.get(bad[0]) or [])[:3] if bad else None,
                 expected[bad[0]][:3] if bad else None))


def body(args, ck):
    prometheus = ic.find_tool(args.prometheus, "prometheus")
    if not os.access(args.queue_bench, os.X_OK):
        raise ic.TestError("queue_bench not found at %s" % args.queue_bench)
    with tempfile.TemporaryDirectory(prefix="ccmon-queue-") as work:
        prom = bt.Prometheus(prometheus, os.path.join(work, "data"), work,
                             extra_args=["--web.enable-remote-write-receiver"])
        prom.start()
        try:
            url = prom.url("/api/v1/write")
            # Whole seconds, recent enough for the head block of an empty TSDB.
            start_ms = (int(time.time()) - 600) * 1000
            rep = push(args, url, "keepalive", 3, 100, 100, 2000, "keepalive", start_ms)
            check_run(ck, prom, rep, "keepalive", 3, 100, 100, 2000, True)
            rep = push(args, url, "per-request", 2, 20, 50, 70, "per-request", start_ms)
            check_run(ck, prom, rep, "per-request", 2, 20, 50, 70, False)
        finally:
            prom.stop()


def extra(ap):
    ap.add_argument("--queue-bench", required=True, help="path of the queue_bench binary")


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("queue_prometheus", body, extra))
