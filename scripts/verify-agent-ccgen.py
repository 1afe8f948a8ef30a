#!/usr/bin/env python3
"""ccmon-agent into a real Prometheus over a ccgen corpus, against its ground_truth.json.

usage: verify-agent-ccgen.py AGENT CORPUS_DIR [--prometheus BIN]
Starts Prometheus 2.42 (remote-write receiver, empty TSDB), runs the agent through its fixed
command line (`start --foreground --url … --config-dir CORPUS --state-dir … --device …`) until it
has caught up and its outbox is empty, then queries Prometheus: tokens by model and type,
requests and cost by model, sessions, web searches, API errors and tool calls by tool must equal
the ground truth (tokens and counts exactly, cost to the nano-dollar). Exit 1 on any difference.
Not part of the test suite (it needs ../shared); the suite's agent tests use tests/fixtures.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import integ_common as ic  # noqa: E402

TOKENS = ["input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read"]
DEVICE = "verify"


def query(base, promql):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    return {tuple(sorted(x["metric"].items())): float(x["value"][1])
            for x in body["data"]["result"]}


def by(base, promql, label):
    return {dict(k).get(label, ""): v for k, v in query(base, promql).items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("agent")
    ap.add_argument("corpus")
    ap.add_argument("--prometheus", default="prometheus")
    args = ap.parse_args()
    gt = json.load(open(os.path.join(args.corpus, "ground_truth.json")))
    work = tempfile.mkdtemp(prefix="ccmon-verify-agent-")
    prom = ic.ServerProcess(
        "prometheus", lambda p: [shutil.which(args.prometheus) or args.prometheus,
                                 "--config.file=/dev/null",
                                 "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % p,
                                 "--web.enable-remote-write-receiver"], "/-/ready", work)
    prom.start()
    state = os.path.join(work, "state")
    log = open(os.path.join(work, "agent.log"), "wb")
    t0 = time.monotonic()
    agent = subprocess.Popen([args.agent, "start", "--foreground", "--url",
                              prom.url("/api/v1/write"), "--config-dir", args.corpus,
                              "--state-dir", state, "--device", DEVICE,
                              "--batch-send-deadline", "100ms"], stdout=log,
                             stderr=subprocess.STDOUT)
    base = prom.url("").rstrip("/")
    diffs = []
    try:
        want_requests = gt["totals"]["requests"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            got = sum(query(base, 'claude_requests_total{device="%s"}' % DEVICE).values())
            st = subprocess.run([args.agent, "status", "--json", "--state-dir", state],
                                capture_output=True, text=True).stdout
            st = json.loads(st) if st.strip() else {}
            if got == want_requests and st.get("outbox_requests") == 0:
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        dev = 'device="%s"' % DEVICE
        for model, want in gt["per_model"].items():
            for t in TOKENS:
                g = sum(query(base, 'claude_tokens_total{%s,model="%s",type="%s"}'
                              % (dev, model, t)).values())
                if g != want[t]:
                    diffs.append("%s %s: %s != %s" % (model, t, g, want[t]))
        requests = by(base, 'sum by (model) (claude_requests_total{%s})' % dev, "model")
        cost = by(base, 'sum by (model) (claude_cost_usd_total{%s})' % dev, "model")
        for model, want in gt["per_model"].items():
            if requests.get(model) != want["requests"]:
                diffs.append("%s requests: %s != %s" % (model, requests.get(model),
                                                        want["requests"]))
            if abs(cost.get(model, 0) - want["cost_nusd"] / 1e9) > 0.5e-9:
                diffs.append("%s cost: %.9f != %.9f" % (model, cost.get(model, 0),
                                                       want["cost_nusd"] / 1e9))
        totals = gt["totals"]
        for name, metric in [("sessions", "claude_sessions_total"),
                             ("web_search_requests", "claude_web_search_requests_total"),
                             ("api_errors", "claude_api_errors_total")]:
            g = sum(query(base, '%s{%s}' % (metric, dev)).values())
            if g != totals[name]:
                diffs.append("%s: %s != %s" % (name, g, totals[name]))
        tools = by(base, 'sum by (tool) (claude_tool_calls_total{%s})' % dev, "tool")
        for tool, want in gt["tool_calls"].items():
            if tools.get(tool) != want:
                diffs.append("tool %s: %s != %s" % (tool, tools.get(tool), want))
        refused = ic.prometheus_write_refusals(base)
        if refused:
            diffs.append("Prometheus refused write requests: %r" % refused)
        print("agent over %s: caught up and pushed in %.1f s; %d models, %d tools checked"
              % (args.corpus, took, len(gt["per_model"]), len(gt["tool_calls"])))
    finally:
        agent.terminate()
        agent.wait(timeout=10)
        prom.stop()
    for d in diffs:
        print("DIFF " + d)
    print("OK" if not diffs else "%d differences" % len(diffs))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
