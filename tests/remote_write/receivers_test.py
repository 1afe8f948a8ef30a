#!/usr/bin/env python3
"""The remote-write wire format (src/remote_write) against real receivers.

rw_encode (a test helper around rw::Encode) encodes requests; this script posts them with the
remote-write 1.0 headers to a real Prometheus 2.42 (--web.enable-remote-write-receiver) and a
real VictoriaMetrics 1.79 on 127.0.0.1, then reads every sample back (Prometheus: instant
queries at each sample's time; VictoriaMetrics: /api/v1/export, the raw samples) and requires
exactly what was sent. Also: metadata-only and empty requests are accepted, and the encoder
refuses a request that Prometheus would answer with 500 (duplicate label name).
Exit 0 pass, 1 fail, 77 when prometheus or victoria-metrics is not installed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import integ_common as ic  # noqa: E402

POLL_S = 0.05
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "ccmon-test/0.1",
}


free_port = ic.free_port


class Server(ic.ServerProcess):
    """A receiver process (see integ_common.ServerProcess) with remote-write helpers."""

    def post(self, path, body):
        req = urllib.request.Request(self.url(path), data=body, headers=HEADERS, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def get_json(self, path, params):
        url = self.url(path) + "?" + urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read().decode()


def encode(encoder, request):
    p = subprocess.run([encoder], input=json.dumps(request).encode(), capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def make_request(now_ms):
    """Two counters and a histogram bucket, labels deliberately unsorted, three samples each."""
    base = now_ms - now_ms % 1000 - 180000
    ts = [base, base + 60000, base + 120000]
    series = []
    for dev, typ, vals in (("m1", "input", [0, 1200, 1234567]),
                           ("m1", "output", [5, 5.5, 1e15]),
                           ("m2", "input", [3, 4, 9007199254740993])):
        series.append({"labels": [["type", typ], ["device", dev],
                                  ["__name__", "ccmon_rw_test_tokens_total"]],
                       "samples": [[t, v] for t, v in zip(ts, vals)]})
    series.append({"labels": [["__name__", "ccmon_rw_test_cost_usd_bucket"], ["le", "+Inf"],
                              ["device", "m1"]],
                   "samples": [[t, v] for t, v in zip(ts, [0.25, 0.5, 0.125])]})
    meta = [{"type": "counter", "family": "ccmon_rw_test_tokens", "help": "Tokens.",
             "unit": "tokens"}]
    return {"series": series, "metadata": meta}


def expected_samples(request):
    out = {}
    for s in request["series"]:
        key = tuple(sorted((k, v) for k, v in s["labels"]))
        out[key] = [(int(t), float(v)) for t, v in s["samples"]]
    return out


def prometheus_samples(prom, expected):
    """Instant queries at each expected timestamp: key -> [(ts, value)]."""
    got = {}
    for key, samples in expected.items():
        sel = "{" + ",".join('%s="%s"' % (k, v) for k, v in key if k != "__name__") + "}"
        name = dict(key)["__name__"]
        vals = []
        for t, _ in samples:
            body = json.loads(prom.get_json("/api/v1/query",
                                            {"query": name + sel, "time": "%.3f" % (t / 1000)}))
            res = body["data"]["result"]
            vals.append((t, float(res[0]["value"][1])) if len(res) == 1 else (t, None))
        got[key] = vals
    return got


def vm_samples(vm):
    return vm_samples_by_name(vm, "ccmon_rw_test.*")


def vm_samples_by_name(vm, name_regex):
    """Raw samples from /api/v1/export: sorted label items -> sorted [(ts_ms, value)]."""
    text = vm.get_json("/api/v1/export", {"match[]": '{__name__=~"%s"}' % name_regex})
    got = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        key = tuple(sorted(row["metric"].items()))
        got[key] = sorted(zip(row["timestamps"], [float(v) for v in row["values"]]))
    return got


def body(args, ck):
    prometheus = shutil.which(args.prometheus) if args.prometheus else shutil.which("prometheus")
    vm_bin = shutil.which("victoria-metrics")
    if not prometheus or not vm_bin:
        raise ic.Skip("needs prometheus and victoria-metrics (Debian packages)")
    tmp = tempfile.mkdtemp(prefix="ccmon_rw_")
    servers = []
    try:
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as fh:
            fh.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        prom = Server("prometheus", lambda port: [
            prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "prom"),
            "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-remote-write-receiver"],
            "/-/ready", tmp)
        vm = Server("victoria-metrics", lambda port: [
            vm_bin, "-httpListenAddr=127.0.0.1:%d" % port,
            "-storageDataPath=" + os.path.join(tmp, "vm"), "-retentionPeriod=100y",
            "-search.latencyOffset=0s", "-search.disableCache"], "/health", tmp)
        for s in (prom, vm):
            servers.append(s)
            s.start()
            print("-- %s ready on 127.0.0.1:%d" % (s.name, s.port))

        request = make_request(int(time.time() * 1000))
        code, payload, err = encode(args.encoder, request)
        ck.eq("rw_encode exit status", code, 0)
        if code != 0:
            raise ic.TestError("rw_encode failed: " + err)
        for s in (prom, vm):
            status, text = s.post("/api/v1/write", payload)
            ck.eq("%s answers the write with 204 (%s)" % (s.name, text.strip()[:200]), status, 204)

        # Metadata-only and empty requests are valid remote-write requests.
        for what, req in (("metadata-only", {"series": [], "metadata": request["metadata"]}),
                          ("empty", {"series": []})):
            code, data, err = encode(args.encoder, req)
            ck.eq("rw_encode %s exit status" % what, code, 0)
            for s in (prom, vm):
                status, text = s.post("/api/v1/write", data)
                ck.eq("%s answers a %s request with 204" % (s.name, what), status, 204)

        want = expected_samples(request)
        ck.eq("Prometheus returns every sample exactly", prometheus_samples(prom, want), want)
        vm_got = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # VictoriaMetrics makes new data searchable async
            urllib.request.urlopen(vm.url("/internal/force_flush"), timeout=10).read()
            vm_got = vm_samples(vm)
            if vm_got == want:
                break
            time.sleep(POLL_S)
        ck.eq("VictoriaMetrics exports every sample exactly", vm_got, want)

        # What Prometheus would answer with 500 (and a sender would retry forever) is refused
        # by the encoder instead.
        bad = {"series": [{"labels": [["__name__", "x"], ["a", "1"], ["a", "2"]],
                           "samples": [[1, 1]]}]}
        code, _, err = encode(args.encoder, bad)
        ck.eq("rw_encode refuses a duplicate label name (exit 2)", code, 2)
        ck.check("duplicate label name" in err, "the message names the problem", err)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--prometheus", default="")
    args = ap.parse_args()
    ck = ic.Checker("remote_write_receivers")
    try:
        body(args, ck)
    except ic.Skip as e:
        print("SKIP  %s" % e)
        return ic.SKIP_EXIT
    except ic.TestError as e:
        print("ERROR %s" % e)
        ck.failed.append("aborted: %s" % str(e).splitlines()[0])
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
