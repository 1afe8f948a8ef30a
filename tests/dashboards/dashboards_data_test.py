#!/usr/bin/env python3
"""Every dashboard panel and every recording rule returns data from a real Prometheus 2.42 fed by
ccmon (CTest: integration.dashboards_data).

A generated history (tests/fixtures/gen_fixture.py, two days, shifted to end two minutes ago) is
counted three ways, each into its own Prometheus with dashboards/rules/*.yml loaded (their group
intervals shortened to 2 s so that a test does not wait minutes for evaluations):
  direct   `ccmon-agent start --backfill` pushes straight into Prometheus (remote-write
           receiver); Prometheus scrapes the agent's --listen /metrics for ccmon_agent_*;
  gateway  the agent pushes into `ccmon-gateway serve --forward <Prometheus>`; Prometheus
           scrapes the gateway's /metrics for its own families (ccmon_gateway_*, the computed
           claude_device_*, spend and ratios) and the agent's for ccmon_agent_*: the setup
           README "Dashboards" recommends for a forwarding gateway;
  replay   `ccmon-replay openmetrics` + `promtool tsdb create-blocks-from openmetrics` into a
           fresh Prometheus's data directory (README "Backfill Prometheus with your history"),
           queried at the history's end.
Once Prometheus holds exactly what `ccmon-replay metrics` reports (direct, gateway), every panel
target of dashboards/*.json — $device/$model/$project as .*, $__range 1d, $__interval 1h,
$__rate_interval 1m — must return at least one series in every setup its "Needs:" note says it
works in (README "Dashboards"), and so must every label_values() variable; every recording rule
likewise (direct, gateway), and every rule is healthy (no evaluation error). The Overview's Cost, Tokens and Requests over the whole history
equal replay's totals (exactly for the backfill; within 0.1 % at now, where increase()
extrapolates from the newest live sample). Waits are polls with deadlines.
"""

import glob
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import gateway_computed_test as gct  # noqa: E402
import lint_dashboards as lint  # noqa: E402

DEADLINE_S = 150
# What each setup provides, in the vocabulary of the panels' "Needs:" notes.
PROVIDES = {
    "direct": {"any setup", "live agents", "agent /metrics scraped", "ccmon rules"},
    "gateway": {"any setup", "live agents", "agent /metrics scraped",
                "ccmon-gateway /metrics scraped", "ccmon rules"},
    "replay": {"any setup"},
}
# The scrape jobs' metric_relabel_configs (README "Dashboards"): keep only what is not pushed.
AGENT_KEEP = "ccmon_agent_.*"
GATEWAY_KEEP = ("ccmon_gateway_.*|claude_device_.*|claude_(hourly|daily)_spend_usd|"
                "claude_cache_hit_ratio|claude_input_output_ratio|claude_cache_efficiency_percent")


def extra(ap):
    ap.add_argument("--agent", required=True)
    ap.add_argument("--gateway", required=True)


# Prometheus 2.42 can fail a query over its out-of-order head while it is memory-mapping those
# chunks: HTTP 422 "cannot populate chunk N from block 00000000000000000000000000: not found".
# It is a race inside Prometheus (block 000… is its in-memory head), not a property of the data:
# the same query a moment later succeeds. Such a query is asked again until this deadline; any
# other error fails the test at once.
TRANSIENT_QUERY_ERROR = "cannot populate chunk"
TRANSIENT_RETRY_S = 30


def query(server, promql, at_s=None):
    params = {"query": promql}
    if at_s is not None:
        params["time"] = "%.3f" % at_s
    url = server.url("/api/v1/query?" + urllib.parse.urlencode(params))
    deadline = time.monotonic() + TRANSIENT_RETRY_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                body = json.load(r)
            break
        except urllib.error.HTTPError as e:
            text = e.read()[:400]
            if (e.code == 422 and TRANSIENT_QUERY_ERROR.encode() in text
                    and time.monotonic() < deadline):
                print("note  query %s: Prometheus's transient out-of-order head error, asking "
                      "again: %s" % (promql, text), flush=True)
                time.sleep(0.2)
                continue
            raise ic.TestError("query %s: HTTP %d %s" % (promql, e.code, text))
    if body.get("status") != "success":
        raise ic.TestError("query %s failed: %s" % (promql, body))
    return body["data"]["result"]


def panel_queries():
    """[(dashboard, panel title, refId, needs, expr)] of every panel target."""
    out = []
    for f in sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json"))):
        d = json.load(open(f, encoding="utf-8"))
        for p in lint.panels_of(d):
            for t in p["targets"]:
                out.append((os.path.basename(f), p["title"], t["refId"], lint.needs_of(p),
                            t["expr"]))
    return out


def variable_queries():
    """[(name, series selector, label)] of the dashboards' label_values() variables."""
    out = []
    for f in sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json"))):
        for v in json.load(open(f, encoding="utf-8"))["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", str(v.get("query", "")))
            if v.get("type") == "query" and m and (v["name"], m.group(1), m.group(2)) not in out:
                out.append((v["name"], m.group(1), m.group(2)))
    return out


def data_query(expr):
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1h")
    return lint.substitute(expr.replace("$__range", "1d"))


def rule_records():
    names = []
    for f in lint.RULE_FILES:
        for m in re.finditer(r"^\s*- record: (\S+)", open(os.path.join(
                REPO, "dashboards", "rules", f)).read(), re.M):
            if m.group(1) not in names:
                names.append(m.group(1))
    return names


def write_rules(work):
    """The rule files with 2 s group intervals; returns their paths."""
    paths = []
    for f in lint.RULE_FILES:
        text = open(os.path.join(REPO, "dashboards", "rules", f)).read()
        text = re.sub(r"^(\s*)interval: 1m$", r"\1interval: 2s", text, flags=re.M)
        path = os.path.join(work, f)
        with open(path, "w") as fh:
            fh.write(text)
        paths.append(path)
    return paths


def prometheus(args, work, name, scrapes, rules, tsdb=None):
    """A Prometheus 2.42 (remote-write receiver, out-of-order window for the backfilled history)
    scraping `scrapes` [(job, port, keep regex)] every second, with `rules` loaded."""
    prom_bin = ic.find_tool(args.prometheus, "prometheus")
    cfg = os.path.join(work, name + ".yml")
    lines = ["global: {scrape_interval: 1s, evaluation_interval: 2s}",
             "storage: {tsdb: {out_of_order_time_window: 3d}}",
             "rule_files: %s" % json.dumps(rules), "scrape_configs:"]
    for job, port, keep in scrapes:
        lines += ["  - job_name: %s" % job, "    honor_labels: true",
                  "    static_configs: [{targets: ['127.0.0.1:%d']}]" % port,
                  "    metric_relabel_configs:",
                  "      - {source_labels: [__name__], regex: '%s', action: keep}" % keep]
    if not scrapes:
        lines[-1] = "scrape_configs: []"
    with open(cfg, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    tsdb = tsdb or os.path.join(work, name + "-tsdb")
    server = ic.ServerProcess(
        name, lambda p: [prom_bin, "--config.file=" + cfg, "--storage.tsdb.path=" + tsdb,
                         "--storage.tsdb.retention.time=30d",
                         "--web.listen-address=127.0.0.1:%d" % p,
                         "--web.enable-remote-write-receiver"], "/-/ready", work)
    server.start()
    return server


def wait_replay_series(server, want, what):
    """Waits until the pushed claude_* series (replay's families, device itest) equal `want`."""
    names = {k[0] for k in want}
    deadline = time.monotonic() + DEADLINE_S
    got = {}
    while time.monotonic() < deadline:
        got = {k: v for k, v in at.stored_series(server).items() if k[0] in names}
        if at.same(got, want):
            return
        time.sleep(0.25)
    raise ic.TestError("%s: Prometheus never held replay's series: %s"
                       % (what, at.describe_diff(got, want)))


def check_all_return_data(server, setup, ck, at_s=None, with_rules=True):
    """Polls (deadline) until every panel target this setup provides for, and every recording
    rule, returns data; then records one check per query."""
    todo = {}
    for dash, title, ref, needs, expr in panel_queries():
        if all(n in PROVIDES[setup] for n in needs):
            todo["%s: %s: %s" % (dash, title, ref)] = data_query(expr)
    skipped = len(panel_queries()) - len(todo)
    for name, selector, label in variable_queries():
        # label_values(SELECTOR, LABEL) over the time range, as Grafana asks the series API.
        todo["variable %s" % name] = "group by (%s) (last_over_time(%s[1d]))" % (
            label, lint.substitute(selector))
    if with_rules:
        for name in rule_records():
            todo["rule %s" % name] = '{__name__="%s"}' % name
    t0 = time.monotonic()
    deadline = t0 + DEADLINE_S
    empty = dict(todo)
    while empty and time.monotonic() < deadline:
        for what, q in list(empty.items()):
            if query(server, q, at_s):
                del empty[what]
        if empty:
            time.sleep(0.5)
    for what, q in todo.items():
        ck.check(what not in empty, "%s: %s returns data" % (setup, what), q)
    ck.info("%s: %d queries return data (after %.1f s), %d panel targets not for this setup"
            % (setup, len(todo) - len(empty), time.monotonic() - t0, skipped))


def check_totals(server, setup, ck, want, at_s=None, rel=1e-9):
    """The Overview's Cost, Tokens and Requests panels over a range holding the whole history
    equal replay's totals: the increase() shapes count a backfilled history exactly (each series
    starts with a 0 sample, README "Backfill Prometheus with your history"). Evaluated at now
    over live series, increase() extrapolates from the newest sample (at most a resend interval
    old) to now: `rel` allows for that."""
    exprs = {title: expr for dash, title, _, _, expr in panel_queries()
             if dash == "overview.json"}
    for title, metric in (("Cost", "claude_cost_usd_total"), ("Tokens", "claude_tokens_total"),
                          ("Requests", "claude_requests_total")):
        total = sum(v for k, v in want.items() if k[0] == metric)
        got = query(server, lint.substitute(exprs[title].replace("$__range", "3d")), at_s)
        value = float(got[0]["value"][1]) if got else None
        ck.check(value is not None and abs(value - total) <= rel * max(total, 1.0),
                 "%s: Overview %s over the whole history == replay's total (within %g)"
                 % (setup, title, rel),
                 "got %r want %r" % (value, total))


def check_rules_healthy(server, setup, ck):
    with urllib.request.urlopen(server.url("/api/v1/rules"), timeout=10) as r:
        groups = json.load(r)["data"]["groups"]
    rules = [rule for g in groups for rule in g["rules"]]
    ck.eq("%s: rules loaded" % setup, len(rules) >= 24, True)
    bad = ["%s: %s" % (r.get("name"), r.get("lastError")) for r in rules
           if r.get("health") != "ok"]
    ck.eq("%s: rules evaluated without errors" % setup, bad, [])


def check_pricing_metric(server, setup, ck):
    """The agent's price-table date (the embedded table: updated 2026-11-01) as Prometheus
    scraped it."""
    got = query(server, "ccmon_agent_pricing_updated_timestamp_seconds")
    ck.eq("%s: ccmon_agent_pricing_updated_timestamp_seconds" % setup,
          [float(r["value"][1]) for r in got], [1793491200.0])


def run_direct(args, ck, work, config, want, rules):
    agent_port = ic.free_port()
    prom = prometheus(args, work, "prom-direct", [("agent", agent_port, AGENT_KEEP)], rules)
    agent = at.Agent(args, prom.url("/api/v1/write"), config, os.path.join(work, "direct-state"),
                     os.path.join(work, "direct"))
    agent.argv = [a if a != "127.0.0.1:0" else "127.0.0.1:%d" % agent_port for a in agent.argv]
    try:
        agent.start()
        t0 = time.monotonic()
        wait_replay_series(prom, want, "direct")
        ck.info("direct: Prometheus holds replay's series after %.1f s" % (time.monotonic() - t0))
        check_all_return_data(prom, "direct", ck)
        check_totals(prom, "direct", ck, want, rel=1e-3)
        check_rules_healthy(prom, "direct", ck)
        check_pricing_metric(prom, "direct", ck)
        ck.eq("direct: write requests Prometheus refused", ic.prometheus_write_refusals(
            prom.url("/")), {})
    except ic.TestError:
        print(agent.log_tail())
        raise
    finally:
        agent.stop()
        prom.stop()


def run_gateway(args, ck, work, config, want, rules):
    agent_port, gw_port = ic.free_port(), ic.free_port()
    prom = prometheus(args, work, "prom-gateway", [("agent", agent_port, AGENT_KEEP),
                                                   ("ccmon-gateway", gw_port, GATEWAY_KEEP)],
                      rules)
    gw = ic.FixedPortProcess(
        "gateway", lambda p: [args.gateway, "serve", "--listen", "127.0.0.1:%d" % p,
                              "--data-dir", os.path.join(work, "gw-data"), "--allow-anonymous",
                              "--forward", prom.url("/api/v1/write"),
                              "--forward-batch-send-deadline", "1s"], "/readyz", work)
    gw.port = gw_port
    agent = at.Agent(args, "http://127.0.0.1:%d/api/v1/write" % gw_port, config,
                     os.path.join(work, "gateway-state"), os.path.join(work, "gateway"))
    agent.argv = [a if a != "127.0.0.1:0" else "127.0.0.1:%d" % agent_port for a in agent.argv]
    try:
        gw.start()
        agent.start()
        t0 = time.monotonic()
        wait_replay_series(prom, want, "gateway")
        ck.info("gateway: Prometheus holds replay's series after %.1f s"
                % (time.monotonic() - t0))
        check_all_return_data(prom, "gateway", ck)
        check_totals(prom, "gateway", ck, want, rel=1e-3)
        check_rules_healthy(prom, "gateway", ck)
        check_pricing_metric(prom, "gateway", ck)
        ck.eq("gateway: write requests Prometheus refused", ic.prometheus_write_refusals(
            prom.url("/")), {})
    except ic.TestError:
        print(agent.log_tail())
        print(gw.log_tail())
        raise
    finally:
        agent.stop()
        if gw.proc is not None:
            gw.stop()
        prom.stop()


def run_replay(args, ck, work, config, want):
    promtool = ic.find_tool(args.promtool, "promtool")
    history = os.path.join(work, "history.om")
    end_s = ic.replay_history(args, config, "replayed", history)
    tsdb = os.path.join(work, "prom-replay-tsdb")
    blocks = os.path.join(work, "blocks")
    ic.run([promtool, "tsdb", "create-blocks-from", "openmetrics", history, blocks],
           "promtool tsdb create-blocks-from openmetrics")
    os.makedirs(tsdb)
    for b in os.listdir(blocks):
        shutil.move(os.path.join(blocks, b), os.path.join(tsdb, b))
    prom = prometheus(args, work, "prom-replay", [], [], tsdb=tsdb)
    try:
        got = query(prom, 'sum(claude_requests_total{device="replayed"})', end_s)
        ck.check(bool(got), "replay: the backfilled totals are there at the history's end (%d)"
                 % end_s)
        check_all_return_data(prom, "replay", ck, at_s=end_s, with_rules=False)
        check_totals(prom, "replay", ck, want, at_s=end_s)
    finally:
        prom.stop()


def body(args, ck):
    work = tempfile.mkdtemp(prefix="ccmon-dashboards-it-")
    ok = False
    try:
        config = os.path.join(work, "claude")
        ic.run([sys.executable, args.fixture_gen, config, "--seed", str(args.seed),
                "--sessions", str(args.sessions), "--days", "2"], "gen_fixture.py")
        gct.shift_history(config, int(time.time() * 1000) - 120_000)
        want = at.expected_series(args, config)
        ck.check(any(k[0] == "claude_unpriced_tokens_total" for k in want),
                 "the history has unpriced tokens (so that panel has data to show)")
        rules = write_rules(work)
        args.backfill = True  # agent_test.Agent reads it
        for d in ("direct", "gateway"):
            os.makedirs(os.path.join(work, d))
        run_direct(args, ck, work, config, want, rules)
        run_gateway(args, ck, work, config, want, rules)
        run_replay(args, ck, work, config, want)
        ok = not ck.failed
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory kept: %s" % work)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("dashboards_data", body, extra))
