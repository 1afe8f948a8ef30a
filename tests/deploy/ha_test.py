"""An HA pair of gateways from the Helm chart (tests/deploy/values-ha.yaml), forwarding into a
real Prometheus 2.42 that stands in for Mimir (which is not available here): docs/scaling.md's
"HA pair" end to end, short of Mimir's deduplication itself.

Both rendered StatefulSet pods (ordinal 0 and 1, $(POD_NAME) expanded as Kubernetes does) run as
real ccmon-gateway processes, their forward URL pointed at the local Prometheus; the same history
is written to both (`ccmon-replay remote-write`, as the two agents of one device would); then:
- every series each gateway forwarded carries cluster="ccmon" and replica="<its pod name>", and
  no forwarded series lacks them;
- per replica, Prometheus holds exactly the gateway's series, each with the gateway's last value
  (so the HA tracker, keeping one replica, would see the full data from either);
- the gateways' own /metrics carry neither label (only forwarding adds them).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import integ_common as ic  # noqa: E402
import backfill_test as bt  # noqa: E402
import chart_test as ct  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
VALUES = os.path.join(HERE, "values-ha.yaml")
LOOKBACK = "[3650d]"  # the fixture's history is in the past; instant queries at now look back


# Series the gateway computes on /metrics and never forwards (README "Scrape it, or forward").
COMPUTED = ("claude_device_online", "claude_device_last_seen_timestamp_seconds",
            "claude_device_agent_info", "claude_hourly_spend_usd", "claude_daily_spend_usd",
            "claude_cache_hit_ratio", "claude_input_output_ratio",
            "claude_cache_efficiency_percent")


def gateway_series(gw):
    """The stored (forwarded) claude_* series on the gateway's /metrics -> value."""
    with urllib.request.urlopen(gw.url("/metrics"), timeout=10) as r:
        _, samples = ic.parse_prom_text(r.read().decode())
    return {s.key: s.value for s in samples
            if s.name.startswith("claude_") and s.name not in COMPUTED}


def forward_state(gw):
    with urllib.request.urlopen(gw.url("/metrics"), timeout=10) as r:
        _, samples = ic.parse_prom_text(r.read().decode())
    queued = ic.sum_where(samples, "ccmon_gateway_forward_queue_samples")
    sent = ic.sum_where(samples, "ccmon_gateway_forward_samples_sent_total")
    return queued, sent


def wait_until(what, pred, deadline_s=90):
    deadline = time.monotonic() + deadline_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise ic.TestError("%s: not within %d s" % (what, deadline_s))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--helm", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--replay", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--seed", type=int, default=31)
    args = ap.parse_args()
    for tool in (args.helm, args.gateway, args.replay, args.prometheus):
        if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
            print("ERROR %s not found" % tool)
            return 1
    args.gateway = os.path.abspath(args.gateway)
    ck = ic.Checker("deploy.ha")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccmon-ha-") as work:
        servers = []
        try:
            helm = ct.Helm(args.helm, work)
            _, objects = helm.template("-f", VALUES)
            sts = ct.one(objects, "StatefulSet")
            pods = ["%s-%d" % (sts["metadata"]["name"], i) for i in range(sts["spec"]["replicas"])]
            ck.eq("the chart renders two replicas", len(pods), 2)
            fx = os.path.join(work, "fixture")
            ic.run([sys.executable, os.path.join(ROOT, "tests", "fixtures", "gen_fixture.py"), fx,
                    "--seed", str(args.seed), "--sessions", "15"], "gen_fixture")
            prom = bt.Prometheus(args.prometheus, os.path.join(work, "prom"), work,
                                 ["--web.enable-remote-write-receiver"])
            # The gateway forwards a history over several shards, so older samples of one series
            # may arrive after newer ones of another: the receiver needs an out-of-order window
            # (Mimir: out_of_order_time_window as well).
            with open(prom.config, "w") as fh:
                fh.write("storage:\n  tsdb:\n    out_of_order_time_window: 3650d\n"
                         "scrape_configs: []\n")
            servers.append(prom)
            prom.start()
            mimir = "http://mimir-distributor.mimir.svc:8080/api/v1/push"
            local = "http://127.0.0.1:%d/api/v1/write" % prom.port
            gws = []
            for i, pod in enumerate(pods):
                gw = ct.ChartGateway(args.gateway, objects, os.path.join(work, pod), {},
                                     ordinal=i, replace={mimir: local})
                servers.append(gw)
                gw.start()
                gws.append(gw)
            for gw in gws:
                ic.run([args.replay, "remote-write", "--url", gw.url("/api/v1/write"),
                        "--config-dir", fx, "--device", "laptop", "--progress", "never"],
                       "ccmon-replay remote-write")
            stored = [gateway_series(gw) for gw in gws]
            ck.check(len(stored[0]) > 20, "gateway 0 stores the history's series (%d)"
                     % len(stored[0]))
            ck.eq("both gateways store the same series and values", stored[1], stored[0])
            ck.check(not any(dict(k[1]).get(n) for s in stored for k in s
                             for n in ("replica", "cluster")),
                     "the gateways' /metrics carry no replica/cluster label")
            for gw, pod in zip(gws, pods):
                wait_until("%s forwarded everything" % pod,
                           lambda: (lambda q, s: q == 0 and s > 0)(*forward_state(gw)))
            now = time.time()
            for i, pod in enumerate(pods):
                try:
                    got = wait_until("prometheus has all of %s's series" % pod,
                                     lambda: (lambda g: g if len(g) >= len(stored[i]) else None)(
                                         forwarded(prom, pod, now)), 60)
                except ic.TestError as e:
                    got = forwarded(prom, pod, now)
                    raise ic.TestError("%s: %d of %d series, e.g. missing %r; its log:\n%s"
                                       % (e, len(got), len(stored[i]),
                                          sorted(set(stored[i]) - set(got))[:2],
                                          gws[i].log_tail()))
                ck.eq("replica %s: Prometheus holds exactly the gateway's series, each with "
                      "cluster=ccmon and replica=%s, last values equal" % (pod, pod),
                      got, stored[i])
            unlabelled = prom.query('count(last_over_time({__name__=~"claude_.+", replica=""}%s))'
                                    % LOOKBACK, now)
            ck.eq("no forwarded series without a replica label", unlabelled, [])
            replicas = prom.query('count by (replica, cluster) (last_over_time('
                                  '{__name__=~"claude_.+"}%s))' % LOOKBACK, now)
            ck.eq("two replicas of one cluster in Prometheus",
                  sorted((m.get("cluster"), m.get("replica")) for m, _ in replicas),
                  [("ccmon", p) for p in pods])
        except ic.TestError as e:
            print("ERROR %s" % e)
            ck.failed.append("aborted: %s" % str(e).splitlines()[0])
        finally:
            for s in reversed(servers):
                s.stop()
    print("(%.1f s)" % (time.monotonic() - t0))
    return ck.finish()


def forwarded(prom, pod, now):
    """pod's forwarded claude_* series in Prometheus, keyed as the gateway's /metrics (name,
    labels without cluster and replica) -> last value; a series without cluster="ccmon" is kept
    under a key that cannot match."""
    got = {}
    raw = prom.raw('{__name__=~"claude_.+", replica="%s"}%s' % (pod, LOOKBACK), now)
    for (name, labels), samples in raw.items():
        labels = dict(labels)
        cluster = labels.pop("cluster", None)
        labels.pop("replica")
        key = (name, tuple(sorted(labels.items())))
        got[key if cluster == "ccmon" else ("cluster=%r" % cluster, key)] = samples[-1][1]
    return got


if __name__ == "__main__":
    sys.exit(main())
