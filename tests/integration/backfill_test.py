#!/usr/bin/env python3
"""Integration test: backfill ccmon-replay's OpenMetrics history into a real Prometheus.

Generates a fixture, writes its history with `ccmon-replay openmetrics`, turns it into TSDB
blocks with `promtool tsdb create-blocks-from openmetrics` (must exit 0 and keep every
sample), starts `prometheus` on 127.0.0.1 over those blocks and checks with PromQL at the
history's end time that the totals equal expected.json: tokens (all and by type), requests,
cost (1e-9 relative), sessions, API errors, web searches, tool calls, unpriced tokens; that
every sample was ingested (count_over_time); that counters never reset and increase() over
the whole history gives the totals; and that earlier instants never exceed the totals and
agree with the file.

With --devices N (N > 1) the fixture has N devices; each device's history is written and
converted separately into the same block directory (as when backfilling several machines),
and the checks run per device plus once across all devices.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402

LOOKBACK_S = 300  # prometheus --query.lookback-delta default


class Prometheus(ic.ServerProcess):
    """A prometheus process over a TSDB directory (existing blocks or empty); always stop() it."""

    def __init__(self, binary, data_dir, work_dir, extra_args=()):
        self.config = os.path.join(work_dir, "prometheus.yml")
        with open(self.config, "w") as fh:
            fh.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        argv = lambda port: [binary, "--config.file=" + self.config,  # noqa: E731
                             "--storage.tsdb.path=" + data_dir,
                             "--storage.tsdb.retention.time=100y",
                             "--web.listen-address=127.0.0.1:%d" % port] + list(extra_args)
        super().__init__("prometheus", argv, "/-/ready", work_dir)

    def query(self, expr, at):
        """Instant query at `at` (seconds); returns a list of (labels dict, float value)."""
        data = urllib.parse.urlencode({"query": expr, "time": "%d" % at}).encode()
        url = "http://127.0.0.1:%d/api/v1/query" % self.port
        try:
            with urllib.request.urlopen(url, data=data, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise ic.TestError("query %r failed: HTTP %d %s" % (expr, e.code,
                                                                 e.read()[:500].decode()))
        if body.get("status") != "success":
            raise ic.TestError("query %r failed: %r" % (expr, body))
        res = body["data"]
        if res["resultType"] == "scalar":
            return [({}, float(res["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in res["result"]]

    def raw(self, expr, at):
        """Instant query of a range selector: series key -> [(ts, value)] as stored."""
        data = urllib.parse.urlencode({"query": expr, "time": "%d" % at}).encode()
        url = "http://127.0.0.1:%d/api/v1/query" % self.port
        with urllib.request.urlopen(url, data=data, timeout=60) as r:
            body = json.load(r)
        if body.get("status") != "success" or body["data"]["resultType"] != "matrix":
            raise ic.TestError("query %r failed: %r" % (expr, str(body)[:500]))
        out = {}
        for r in body["data"]["result"]:
            m = dict(r["metric"])
            name = m.pop("__name__")
            key = (name, tuple(sorted(m.items())))
            out[key] = [(float(t), float(v)) for t, v in r["values"]]
        return out

    def scalar(self, expr, at):
        """The single value of an aggregated query, or None for an empty result."""
        res = self.query(expr, at)
        if not res:
            return None
        if len(res) != 1:
            raise ic.TestError("query %r returned %d series, expected one" % (expr, len(res)))
        return res[0][1]

    def by(self, expr, label, at):
        return {m.get(label): v for m, v in self.query(expr, at)}


def create_blocks(promtool, om_file, block_dir, ck, where):
    p = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om_file, block_dir],
                       capture_output=True, timeout=120)
    msg = (p.stdout + p.stderr).decode("utf-8", "replace")
    if not ck.check(p.returncode == 0, "%s: promtool tsdb create-blocks-from openmetrics exits 0"
                    % where, "exit %d:\n%s" % (p.returncode, msg[-3000:])):
        raise ic.TestError("promtool rejected %s" % om_file)


def block_samples(promtool, block_dir):
    """Total NUM SAMPLES over `promtool tsdb list` rows."""
    out, _ = ic.run([promtool, "tsdb", "list", block_dir], "promtool tsdb list", timeout=60)
    lines = [l.split() for l in out.splitlines() if l.strip()]
    # Header "BLOCK ULID  MIN TIME  MAX TIME  DURATION  NUM SAMPLES  NUM CHUNKS  NUM SERIES  SIZE";
    # rows "<ulid> <min> <max> <duration> <samples> <chunks> <series> <size>".
    if not lines or lines[0][:2] != ["BLOCK", "ULID"] or "SAMPLES" not in lines[0]:
        raise ic.TestError("unexpected promtool tsdb list output:\n" + out[:2000])
    total = 0
    for row in lines[1:]:
        total += int(row[4])
    return total, len(lines) - 1


def read_history(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        return ic.parse_openmetrics(text)
    except ic.ParseError as e:
        raise ic.TestError("history %s does not parse: %s" % (path, e))


def value_at(series, t, lookback=None):
    """Per series the value of its newest sample at or before t (absent before its first, or
    when that sample is `lookback` seconds or more older than t, as PromQL's lookback)."""
    out = {}
    for k, ss in series.items():
        v = None
        for s in ss:
            if s.ts <= t:
                v = s.value if lookback is None or s.ts > t - lookback else None
            else:
                break
        if v is not None:
            out[k] = v
    return out


def check_device(prom, ck, where, sel, end, first, series, n_samples, totals, expected, step):
    """PromQL checks of one device's (or all devices') series against its expected figures."""
    span = "%ds" % (end - first + 2 * step)  # a range covering the whole history
    tok_total = sum(totals[t] for t in ic.TOKEN_TYPES)

    ck.eq("%s: sum(claude_tokens_total%s) at end" % (where, sel),
          prom.scalar("sum(claude_tokens_total%s)" % sel, end), float(tok_total))
    by_type = prom.by("sum by (type) (claude_tokens_total%s)" % sel, "type", end)
    ck.eq("%s: sum by (type) (claude_tokens_total) at end" % where, by_type,
          {t: float(totals[t]) for t in ic.TOKEN_TYPES})
    ck.eq("%s: sum(claude_requests_total) at end" % where,
          prom.scalar("sum(claude_requests_total%s)" % sel, end), float(totals["requests"]))
    ck.close("%s: sum(claude_cost_usd_total) at end" % where,
             prom.scalar("sum(claude_cost_usd_total%s)" % sel, end), totals["cost_pusd"] / 1e12)
    ck.eq("%s: sum(claude_sessions_total) at end" % where,
          prom.scalar("sum(claude_sessions_total%s)" % sel, end), float(totals["sessions"]))
    ck.eq("%s: sum(claude_api_errors_total) at end" % where,
          prom.scalar("sum(claude_api_errors_total%s)" % sel, end), float(totals["api_errors"]))
    ck.eq("%s: sum(claude_web_search_requests_total) at end" % where,
          prom.scalar("sum(claude_web_search_requests_total%s)" % sel, end),
          float(totals["web_search_requests"]))
    ck.eq("%s: sum(claude_user_prompts_total) at end" % where,
          prom.scalar("sum(claude_user_prompts_total%s)" % sel, end), float(totals["prompts"]))
    if expected is not None:
        ck.eq("%s: sum by (tool) (claude_tool_calls_total) at end" % where,
              prom.by("sum by (tool) (claude_tool_calls_total%s)" % sel, "tool", end),
              {k: float(v) for k, v in expected["tool_calls"].items()})
        ck.eq("%s: sum by (model) (claude_unpriced_tokens_total) at end" % where,
              prom.by("sum by (model) (claude_unpriced_tokens_total%s)" % sel, "model", end),
              {k: float(v) for k, v in expected["unpriced_tokens"].items()})

    # Everything got in, unchanged: the raw samples of a range selector equal the file's.
    all_sel = sel[:-1] + ',__name__=~"claude_.+"}' if sel else '{__name__=~"claude_.+"}'
    ck.eq("%s: count(claude_* series) at end" % where,
          prom.scalar("count(%s)" % all_sel, end), float(len(series)))
    raw = prom.raw("%s[%s]" % (all_sel, span), end)
    want = {k: [(s.ts, s.value) for s in ss] for k, ss in series.items()}
    n_raw = sum(len(v) for v in raw.values())
    diff = sorted(k for k in set(raw) | set(want) if raw.get(k) != want.get(k))
    ck.check(not diff, "%s: raw samples of %s[%s] equal the file (%d series, %d samples)"
             % (where, all_sel, span, len(want), n_samples),
             "%d series differ (%d samples stored), e.g. %r: stored %r, file %r"
             % (len(diff), n_raw, diff[:1], raw.get(diff[0], [])[:4] if diff else None,
                want.get(diff[0], [])[:4] if diff else None))
    resets = 0.0
    for name in sorted({k[0] for k in series}):
        resets += prom.scalar("sum(resets(%s%s[%s]))" % (name, sel, span), end) or 0.0
    ck.eq("%s: resets(<each claude_* metric>[%s]) summed (counters never go down)"
          % (where, span), resets, 0.0)

    # increase() over the whole history: every series starts at 0 and ends at `end`, so no
    # extrapolation happens and the result is the total.
    ck.close("%s: sum(increase(claude_requests_total[%s])) at end" % (where, span),
             prom.scalar("sum(increase(claude_requests_total%s[%s]))" % (sel, span), end),
             float(totals["requests"]), rel=1e-12)
    ck.close("%s: sum(increase(claude_tokens_total[%s])) at end" % (where, span),
             prom.scalar("sum(increase(claude_tokens_total%s[%s]))" % (sel, span), end),
             float(tok_total), rel=1e-12)
    ck.close("%s: sum(increase(claude_cost_usd_total[%s])) at end" % (where, span),
             prom.scalar("sum(increase(claude_cost_usd_total%s[%s]))" % (sel, span), end),
             totals["cost_pusd"] / 1e12)

    # Nothing before the history starts; zero at the first instant of claude_requests_total
    # (another family, such as claude_user_prompts_total, may start earlier: a prompt comes
    # before its request).
    first_req = int(min(s.ts for k, ss in series.items() if k[0] == "claude_requests_total"
                        for s in ss))
    ck.eq("%s: count(claude_* series) one second before the first sample" % where,
          prom.scalar("count(%s)" % (sel[:-1] + ',__name__=~"claude_.+"}' if sel
                                     else '{__name__=~"claude_.+"}'), first - 1), None)
    ck.eq("%s: sum(claude_requests_total) at its first sample" % where,
          prom.scalar("sum(claude_requests_total%s)" % sel, first_req), 0.0)

    # Earlier instants (sample times of claude_requests_total, so the 5m lookback finds
    # something): never above the total; both the instant value and last_over_time agree
    # with the file.
    req_keys = {k: ss for k, ss in series.items() if k[0] == "claude_requests_total"}
    times = sorted({s.ts for ss in req_keys.values() for s in ss})
    for frac in (0.25, 0.5, 0.75, 0.95):
        t = int(times[min(len(times) - 1, int(len(times) * frac))])
        inst = prom.scalar("sum(claude_requests_total%s)" % sel, t)
        ck.check(inst is not None and inst <= totals["requests"],
                 "%s: sum(claude_requests_total) at %d (sample #%d of %d) = %s <= total %d"
                 % (where, t, int(len(times) * frac), len(times), inst, totals["requests"]))
        ck.eq("%s: sum(claude_requests_total) at %d equals the file (5m lookback)" % (where, t),
              inst, float(sum(value_at(req_keys, t, LOOKBACK_S).values())))
        ck.eq("%s: sum(last_over_time(claude_requests_total[%s])) at %d equals the file"
              % (where, span, t),
              prom.scalar("sum(last_over_time(claude_requests_total%s[%s]))" % (sel, span), t),
              float(sum(value_at(req_keys, t).values())))


def body(args, ck):
    promtool = ic.find_tool(args.promtool, "promtool")
    prometheus = ic.find_tool(args.prometheus, "prometheus")
    step = 60
    with tempfile.TemporaryDirectory(prefix="ccmon-backfill-") as tmp:
        fx = os.path.join(tmp, "fixture")
        expected = ic.make_fixture(args, fx, device_count=args.devices)
        if args.devices == 1:
            devices = [("itest-dev", fx, expected)]
        else:
            devices = []
            for k in range(1, args.devices + 1):
                name = "device-%d" % k
                root = os.path.join(fx, name)
                with open(os.path.join(root, "expected.json"), encoding="utf-8") as fh:
                    devices.append((name, root, json.load(fh)))
        print("fixture: seed %d, %d device(s), %d requests" % (
            args.seed, args.devices, expected["totals"]["requests"]))

        blocks = os.path.join(tmp, "tsdb")
        per_device = []
        all_series = {}
        n_all = 0
        for name, root, exp in devices:
            om = os.path.join(tmp, "history-%s.om" % name)
            end = ic.replay_history(args, root, name, om)
            fams, samples = read_history(om)
            series = ic.series_by_key(samples)
            first = int(min(s.ts for s in samples))
            print("-- %s: history %d series, %d samples, %d .. %d"
                  % (name, len(series), len(samples), first, end))
            create_blocks(promtool, om, blocks, ck, name)
            per_device.append((name, exp, end, first, series, len(samples)))
            all_series.update(series)
            n_all += len(samples)
        n_blocks_samples, n_blocks = block_samples(promtool, blocks)
        ck.eq("promtool tsdb list: samples in %d blocks == samples in the file(s)" % n_blocks,
              n_blocks_samples, n_all)

        prom = Prometheus(prometheus, blocks, tmp)
        try:
            t0 = time.monotonic()
            prom.start()
            print("-- prometheus ready on 127.0.0.1:%d after %.1f s"
                  % (prom.port, time.monotonic() - t0))
            for name, exp, end, first, series, n in per_device:
                sel = '{device="%s"}' % name
                check_device(prom, ck, name, sel, end, first, series, n, exp["totals"], exp, step)
            if len(per_device) > 1:
                # All devices together at the newest end; older devices' series are stale
                # there, so use last_over_time.
                end = max(d[2] for d in per_device)
                first = min(d[3] for d in per_device)
                span = "%ds" % (end - first + 2 * step)
                tot = expected["totals"]
                ck.eq("all devices: sum(last_over_time(claude_tokens_total[%s]))" % span,
                      prom.scalar("sum(last_over_time(claude_tokens_total[%s]))" % span, end),
                      float(sum(tot[t] for t in ic.TOKEN_TYPES)))
                ck.eq("all devices: sum(last_over_time(claude_requests_total[%s]))" % span,
                      prom.scalar("sum(last_over_time(claude_requests_total[%s]))" % span, end),
                      float(tot["requests"]))
                ck.close("all devices: sum(last_over_time(claude_cost_usd_total[%s]))" % span,
                         prom.scalar("sum(last_over_time(claude_cost_usd_total[%s]))" % span,
                                     end), tot["cost_pusd"] / 1e12)
                ck.eq("all devices: sum(last_over_time(claude_sessions_total[%s]))" % span,
                      prom.scalar("sum(last_over_time(claude_sessions_total[%s]))" % span, end),
                      float(tot["sessions"]))
                ck.eq("all devices: count(group by (device) (last_over_time(claude_requests_"
                      "total[%s])))" % span,
                      prom.scalar("count(group by (device) (last_over_time("
                                  "claude_requests_total[%s])))" % span, end),
                      float(len(per_device)))
                raw = prom.raw('{__name__=~"claude_.+"}[%s]' % span, end)
                ck.eq("all devices: samples stored in {__name__=~\"claude_.+\"}[%s]" % span,
                      sum(len(v) for v in raw.values()), n_all)
        finally:
            prom.stop()
            print("-- prometheus stopped")


def extra(ap):
    ap.add_argument("--devices", type=int, default=1,
                    help="devices in the fixture (gen_fixture.py --device-count)")


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("backfill_test", body, extra))
