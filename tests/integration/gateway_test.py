#!/usr/bin/env python3
"""ccmon-gateway (first slice) with real clients, through its fixed command line
`ccmon-gateway serve --listen ADDR --data-dir DIR --allow-anonymous`:

  (a) `ccmon-agent start --foreground --url http://127.0.0.1:PORT/api/v1/write ...` pushes a
      generated history, then a second one appended in time order; each time the gateway's
      /metrics holds exactly `ccmon-replay metrics`'s claude_* series and values (the same
      doubles; the agent-only session series are checked as agent_test does), and its write
      requests were all 204. Restarted (SIGTERM, same --data-dir), the
      gateway serves the same series and values as before. Without --allow-anonymous a write
      gets 401 and nothing is stored.
  (b) a real Prometheus 2.42 scraping itself with `remote_write:` pointed at the gateway (and
      metadata every 2 s: metadata-only requests): every request 204, the gateway serves its
      series with their TYPE from the metadata, Prometheus counts no failed samples or
      metadata, and `promtool check metrics` parses the gateway's text.
"""

import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402

DEVICE = at.DEVICE
# The gateway-computed families (gateway/computed/computed.h): not replay's, not stored.
COMPUTED = ("claude_device_online", "claude_device_last_seen_timestamp_seconds",
            "claude_device_agent_info", "claude_hourly_spend_usd", "claude_daily_spend_usd",
            "claude_cache_hit_ratio", "claude_cache_efficiency_percent",
            "claude_input_output_ratio")


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--part", choices=["agent", "prometheus", "both"], default="both")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


class Gateway(ic.ServerProcess):
    def __init__(self, args, work, data_dir, anonymous=True, name="gateway"):
        super().__init__(
            name, lambda p: [args.gateway, "serve", "--listen", "127.0.0.1:%d" % p,
                             "--data-dir", data_dir] + (["--allow-anonymous"] if anonymous else []),
            "/readyz", work)

    def samples(self):
        _, samples = ic.parse_prom_text(get(self.url("/metrics")))
        return samples

    def claude_series(self, agent_only=False):
        """The claude_* series replay also computes ({key: value}); with agent_only, the
        agent's own session series (docs/accounting.md A41) instead."""
        out = {}
        for s in self.samples():
            if s.name in COMPUTED:
                continue
            if s.name.startswith("claude_") and s.name.startswith(at.AGENT_ONLY) == agent_only:
                out[at.key_of(s.name, dict(s.labels))] = s.value
        return out

    def self_metric(self, name, **labels):
        total = 0.0
        for s in self.samples():
            if s.name == name and all(dict(s.labels).get(k) == v for k, v in labels.items()):
                total += s.value
        return total

    def sigterm(self):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        code = self.proc.returncode
        self.log.close()
        self.proc = None
        return code, time.monotonic() - t0


def wait_gateway_equal(gw, want, what, deadline_s=90):
    deadline = time.monotonic() + deadline_s
    got = {}
    while time.monotonic() < deadline:
        got = gw.claude_series()
        if set(got) == set(want) and all(got[k] == v for k, v in want.items()):
            return got
        time.sleep(0.2)
    raise ic.TestError("%s: the gateway never served replay's series exactly: %s"
                       % (what, at.describe_diff(got, want)))


def check_sessions(gw, want, what, ck, deadline_s=30):
    """As agent_test.check_sessions, on the gateway: every fixture session observed once in
    claude_session_duration_seconds_count, none active (claude_active_sessions, a gauge)."""
    sessions = sum(v for k, v in want.items() if k[0] == "claude_sessions_total")
    deadline = time.monotonic() + deadline_s
    got = None
    while time.monotonic() < deadline:
        series = gw.claude_series(agent_only=True)
        count = [v for k, v in series.items() if k[0] == "claude_session_duration_seconds_count"]
        active = [v for k, v in series.items() if k[0] == "claude_active_sessions"]
        got = (sum(count) if count else None, sum(active) if active else None)
        if got == (sessions, 0.0):
            break
        time.sleep(0.2)
    ck.eq("%s: session durations observed, active sessions" % what, got, (sessions, 0.0))


def refused_writes(gw):
    return sum(gw.self_metric("ccmon_gateway_write_requests_total", code=c)
               for c in ("400", "401", "405", "413", "415", "500", "503"))


def part_agent(args, ck, work):
    config, appends = at.history_and_appends(args, work)
    data_dir = os.path.join(work, "gw-data")

    # Without --allow-anonymous: 401, nothing stored.
    locked = Gateway(args, work, data_dir + "-locked", anonymous=False, name="gateway-locked")
    locked.start()
    try:
        req = urllib.request.Request(locked.url("/api/v1/write"), data=b"\x00", method="POST",
                                     headers={"Content-Type": "application/x-protobuf",
                                              "Content-Encoding": "snappy"})
        code, body = None, ""
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read().decode()
        ck.eq("a write without --allow-anonymous", code, 401)
        ck.check("device key" in body, "the 401 says why", body)
    finally:
        locked.stop()

    gw = Gateway(args, work, data_dir)
    gw.start()
    agent = at.Agent(args, gw.url("/api/v1/write"), config, os.path.join(work, "agent-state"),
                     work)
    try:
        agent.start()
        want = at.expected_series(args, config)
        ck.info("fixture A: %d claude_* series" % len(want))
        t0 = time.monotonic()
        wait_gateway_equal(gw, want, "history at start")
        ck.check(True, "history at start: the gateway's /metrics equals replay exactly (%.1f s)"
                 % (time.monotonic() - t0))
        check_sessions(gw, want, "history at start", ck)
        for dst, data in appends:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "ab") as fh:
                fh.write(data)
        want = at.expected_series(args, config)
        t0 = time.monotonic()
        wait_gateway_equal(gw, want, "after the appends")
        ck.check(True, "after %d appended lines: /metrics equals replay exactly (%d series, %.1f s)"
                 % (len(appends), len(want), time.monotonic() - t0))
        check_sessions(gw, want, "after the appends", ck)
        ck.eq("write requests the gateway refused", refused_writes(gw), 0.0)
        ck.check(gw.self_metric("ccmon_gateway_samples_accepted_total") > 0,
                 "ccmon_gateway_samples_accepted_total counts the agent's samples")
        took = agent.stop()
        ck.check(took < 5.0, "the agent stops within 5 s (%.2f s)" % took)
        before_text = get(gw.url("/metrics"))
        before = {**gw.claude_series(), **gw.claude_series(agent_only=True)}
        code, took = gw.sigterm()
        ck.check(code in (0, -signal.SIGTERM, 128 + signal.SIGTERM),
                 "SIGTERM stops the gateway cleanly (exit %s, %.2f s)" % (code, took))
        gw.start()
        after = {**gw.claude_series(), **gw.claude_series(agent_only=True)}
        ck.check(after == before and len(after) > len(want),
                 "restarted on the same --data-dir: the same %d series and values" % len(after),
                 at.describe_diff(after, before))
        claude_lines = lambda t: [l for l in t.splitlines() if "claude_" in l]  # noqa: E731
        ck.eq("restarted: the claude_* text is byte-identical",
              claude_lines(get(gw.url("/metrics"))) == claude_lines(before_text), True)
    except ic.TestError:
        print(agent.log_tail())
        print(gw.log_tail())
        raise
    finally:
        agent.stop() if agent.proc and agent.proc.poll() is None else None
        gw.stop()


def prometheus_value(server, name, **labels):
    total, found = 0.0, False
    _, samples = ic.parse_prom_text(get(server.url("/metrics")))
    for s in samples:
        if s.name == name and all(dict(s.labels).get(k) == v for k, v in labels.items()):
            total += s.value
            found = True
    return total if found else None


def part_prometheus(args, ck, work):
    prom = ic.find_tool(args.prometheus, "prometheus")
    promtool = ic.find_tool(args.promtool, "promtool")
    gw = Gateway(args, work, os.path.join(work, "gw-prom-data"), name="gateway-prom")
    gw.start()
    tsdb = os.path.join(work, "prom-tsdb")
    cfg = os.path.join(work, "prometheus.yml")

    def argv(port):
        with open(cfg, "w") as fh:
            fh.write("""global: {scrape_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
    metadata_config: {send: true, send_interval: 2s}
""" % (port, gw.url("/api/v1/write")))
        return [prom, "--config.file=" + cfg, "--storage.tsdb.path=" + tsdb,
                "--web.listen-address=127.0.0.1:%d" % port]

    server = ic.ServerProcess("prometheus", argv, "/-/ready", work)
    server.start()
    try:
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            text = get(gw.url("/metrics"))
            if (re.search(r'^prometheus_build_info\{', text, re.M)
                    and "# TYPE prometheus_http_requests_total counter" in text
                    and "# TYPE prometheus_http_request_duration_seconds histogram" in text):
                break
            time.sleep(0.2)
        ck.check(re.search(r'^prometheus_build_info\{.*job="prometheus".*\} 1$', text, re.M),
                 "the gateway serves Prometheus's series (prometheus_build_info{job=...} 1)",
                 text[:1500])
        ck.check("# TYPE prometheus_http_requests_total counter" in text
                 and "# TYPE prometheus_http_request_duration_seconds histogram" in text,
                 "TYPE from Prometheus's metadata (metadata-only requests were stored)")
        ok = gw.self_metric("ccmon_gateway_write_requests_total", code="204")
        ck.check(ok >= 2, "Prometheus's writes were answered 204 (%d)" % ok)
        ck.eq("write requests the gateway refused", refused_writes(gw), 0.0)
        for name in ("prometheus_remote_storage_samples_failed_total",
                     "prometheus_remote_storage_metadata_failed_total",
                     "prometheus_remote_storage_samples_dropped_total"):
            v = prometheus_value(server, name)
            if v is not None:
                ck.eq("Prometheus: %s" % name, v, 0.0)
        md = prometheus_value(server, "prometheus_remote_storage_metadata_total")
        ck.check(md is None or md > 0, "Prometheus sent metadata (%s)" % md)
        series = gw.self_metric("ccmon_gateway_series")
        ck.check(series > 100, "the gateway holds Prometheus's series (%d)" % series)
        path = os.path.join(work, "gw-metrics.txt")
        with open(path, "w") as fh:
            fh.write(get(gw.url("/metrics")))
        out, err = ic.run([promtool, "check", "metrics"], "promtool check metrics",
                          stdin_data=open(path, "rb").read(), ok_codes=(0, 3))
        ck.check(True, "promtool check metrics parses the gateway's /metrics%s"
                 % (" (lint: %s)" % err.strip().splitlines()[0] if err.strip() else ""))
        om_req = urllib.request.Request(gw.url("/metrics"), headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
        with urllib.request.urlopen(om_req, timeout=10) as r:
            om = r.read().decode()
            ctype = r.headers.get("Content-Type", "")
        ck.check(ctype.startswith("application/openmetrics-text") and om.endswith("# EOF\n"),
                 "OpenMetrics by Accept, ending with # EOF", ctype)
    except ic.TestError:
        print(server.log_tail())
        print(gw.log_tail())
        raise
    finally:
        server.stop()
        gw.stop()


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    args.backfill = False  # agent_test.Agent reads it
    work = tempfile.mkdtemp(prefix="ccmon-gateway-it-")
    try:
        if args.part in ("agent", "both"):
            part_agent(args, ck, work)
        if args.part in ("prometheus", "both"):
            part_prometheus(args, ck, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_test", body, extra))
