#!/usr/bin/env python3
"""ccmon-gateway's computed series (issue 8 §3-§4; docs/accounting.md G1-G4) with the real agent, through
`ccmon-gateway serve --listen ADDR --data-dir DIR --allow-anonymous`:

A generated history, shifted so that its newest event is two minutes ago (so the last hour and
the last day hold part of it), is pushed by `ccmon-agent start --backfill` (the history with its
own timestamps). Once the gateway's stored claude_* series equal `ccmon-replay metrics`, its
/metrics must hold, exactly (the same doubles):
  - claude_hourly_spend_usd / claude_daily_spend_usd: the increases of claude_cost_usd_total in
    `ccmon-replay openmetrics`'s history (the samples the backfill sends) in the minute buckets
    of the last hour / day at the scrape (docs/accounting.md, "Gateway-computed series"),
  - claude_cache_hit_ratio, claude_input_output_ratio, claude_cache_efficiency_percent from
    replay's totals, computed by the documented rule,
  - claude_device_online 1, claude_device_last_seen_timestamp_seconds within the run,
    claude_device_agent_info naming ccmon-agent;
the text passes `promtool check metrics`; SIGTERM and a restart on the same --data-dir serve the
same computed series (the spend buckets and last seen are durable) and the device stays online
only while it writes: with the agent stopped and --online-window 3s, online falls to 0.
"""

import datetime
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import gateway_test as gt  # noqa: E402

DEVICE = at.DEVICE
MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
ISO_RE = re.compile(rb"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})Z")


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)


def shift_history(config_dir, newest_ms):
    """Moves every ISO timestamp (YYYY-MM-DDTHH:MM:SS.mmmZ) of the transcripts by one delta so
    that the newest is `newest_ms`; bytes otherwise unchanged."""
    epoch = datetime.datetime(1970, 1, 1)

    def ms_of(b):
        t = datetime.datetime.strptime(b.decode()[:19], "%Y-%m-%dT%H:%M:%S")
        return (t - epoch) // datetime.timedelta(milliseconds=1) + int(b[20:23])

    files = []
    for dirpath, _, names in os.walk(os.path.join(config_dir, "projects")):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".jsonl")]
    newest = max(ms_of(m.group(1)) for f in files for m in ISO_RE.finditer(open(f, "rb").read()))
    delta = newest_ms - newest

    def repl(m):
        t = epoch + datetime.timedelta(milliseconds=ms_of(m.group(1)) + delta)
        return (t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)).encode()

    for f in files:
        data = open(f, "rb").read()
        open(f, "wb").write(ISO_RE.sub(repl, data))


def usd_to_pico(v):
    """UsdToPicoExact (spend_windows.h): the double's exact value times 1e12, rounded half away
    from zero; None when not counted."""
    if v != v or v in (float("inf"), float("-inf")) or v < 0 or v > 1e15:
        return None
    x = Fraction(v) * 10**12
    return int(x + Fraction(1, 2))  # floor(x + 1/2), x >= 0


def minute_buckets(history_text):
    """{minute: pico} of the claude_cost_usd_total increases in an OpenMetrics history, by the
    gateway's rule: a series' first sample counts from 0, a decrease is a reset."""
    _, samples = ic.parse_openmetrics(history_text)
    by_series = {}
    for s in samples:
        if s.name == "claude_cost_usd_total" and s.label("device") == DEVICE:
            ts_ms = int(Fraction(s.raw_ts) * 1000)
            by_series.setdefault(s.key, []).append((ts_ms, s.value))
    buckets = {}
    for points in by_series.values():
        points.sort()
        prev = None
        for ts, v in points:
            if prev is not None and ts <= prev[0]:
                continue
            p = usd_to_pico(v)
            inc = 0
            if p is not None:
                if prev is None:
                    inc = p
                else:
                    pp = usd_to_pico(prev[1])
                    if pp is not None:
                        inc = p - pp if p >= pp else p
            prev = (ts, v)
            if inc > 0:
                buckets[ts // MINUTE_MS] = buckets.get(ts // MINUTE_MS, 0) + inc
    return buckets


def spend_at(buckets, now_ms):
    hour = sum(p for m, p in buckets.items() if m * MINUTE_MS + HOUR_MS > now_ms)
    day = sum(p for m, p in buckets.items() if m * MINUTE_MS + DAY_MS > now_ms)
    return float(Fraction(hour, 10**12)), float(Fraction(day, 10**12))


def expected_ratios(replay_text):
    _, samples = ic.parse_prom_text(replay_text)
    tokens, money = {}, {}
    for s in samples:
        if s.label("device") != DEVICE:
            continue
        if s.name == "claude_tokens_total":
            t = tokens.setdefault(s.label("model"), {})
            t[s.label("type")] = t.get(s.label("type"), 0) + int(s.value)
        elif s.name in ("claude_cost_usd_total", "claude_cache_savings_usd_total"):
            money[s.name] = money.get(s.name, 0) + usd_to_pico(s.value)
    out = {}
    for model, t in tokens.items():
        inp = sum(t.get(k, 0) for k in ("input", "cache_read", "cache_creation_5m",
                                        "cache_creation_1h"))
        if inp:
            out[("claude_cache_hit_ratio", model)] = float(t.get("cache_read", 0)) / float(inp)
        if t.get("output", 0):
            out[("claude_input_output_ratio", model)] = float(inp) / float(t["output"])
    c, s = money.get("claude_cost_usd_total", 0), money.get("claude_cache_savings_usd_total", 0)
    if c + s > 0:
        out[("claude_cache_efficiency_percent", None)] = float(s * 100) / float(c + s)
    return out


def computed(gw):
    """(samples of the computed families {(name, model or agent): value}, text, t0_ms, t1_ms)."""
    t0 = int(time.time() * 1000)
    text = gt.get(gw.url("/metrics"))
    t1 = int(time.time() * 1000)
    _, samples = ic.parse_prom_text(text)
    out = {}
    for s in samples:
        if s.name in gt.COMPUTED and s.label("device") == DEVICE:
            out[(s.name, s.label("model") or s.label("agent"))] = s.value
    return out, text, t0, t1


def check_spend(gw, buckets, ck, what, deadline_s=30):
    """Served spend equals the expectation at the scrape (retried when the scrape straddled a
    minute whose bucket leaves a window)."""
    deadline = time.monotonic() + deadline_s
    while True:
        got, text, t0, t1 = computed(gw)
        want = spend_at(buckets, t0)
        if want == spend_at(buckets, t1) or time.monotonic() > deadline:
            break
    served = (got.get(("claude_hourly_spend_usd", None)), got.get(("claude_daily_spend_usd", None)))
    ck.eq("%s: hourly and daily spend equal the history's increases in the window" % what,
          served, want)
    return got, text


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    work = tempfile.mkdtemp(prefix="ccmon-gateway-computed-it-")
    try:
        run(args, ck, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, ck, work):
    config = os.path.join(work, "claude")
    ic.run([sys.executable, args.fixture_gen, config, "--seed", str(args.seed), "--sessions",
            str(args.sessions), "--days", "2"], "gen_fixture.py")
    start_ms = int(time.time() * 1000)
    shift_history(config, start_ms - 120_000)
    history = os.path.join(work, "history.om")
    ic.replay_history(args, config, DEVICE, history)
    buckets = minute_buckets(open(history).read())
    hour, day = spend_at(buckets, start_ms)
    ck.check(0 < hour < day, "the shifted history has spend in the last hour (%r) and more in the "
             "last day (%r)" % (hour, day))
    want_series = at.expected_series(args, config)
    want_ratios = expected_ratios(ic.replay_metrics(args, config, DEVICE))
    ck.check(len(want_ratios) >= 3, "replay's totals give %d ratio series" % len(want_ratios))

    data_dir = os.path.join(work, "gw-data")
    gw = gt.Gateway(args, work, data_dir)
    gw.start()
    args.backfill = True  # agent_test.Agent reads it
    agent = at.Agent(args, gw.url("/api/v1/write"), config, os.path.join(work, "agent-state"),
                     work)
    try:
        agent.start()
        gt.wait_gateway_equal(gw, want_series, "backfilled history", deadline_s=120)
        ck.check(True, "the gateway holds replay's series exactly")
        got, text = check_spend(gw, buckets, ck, "pushed")
        for (name, model), v in sorted(want_ratios.items(), key=str):
            ck.eq("%s{model=%s}" % (name, model), got.get((name, model)), v)
        ratio_names = ("claude_cache_hit_ratio", "claude_input_output_ratio",
                       "claude_cache_efficiency_percent")
        extra_ratios = [k for k in got if k[0] in ratio_names and k not in want_ratios]
        ck.eq("no ratio series beyond the expected ones (absent when a denominator is 0)",
              extra_ratios, [])
        ck.eq("claude_device_online", got.get(("claude_device_online", None)), 1.0)
        seen = got.get(("claude_device_last_seen_timestamp_seconds", None))
        ck.check(seen is not None and start_ms / 1000 <= seen <= time.time(),
                 "last seen within the run (%r)" % seen)
        agents = [k[1] for k in got if k[0] == "claude_device_agent_info"]
        ck.check(len(agents) == 1 and agents[0].startswith("ccmon-agent/"),
                 "claude_device_agent_info names the agent (%r)" % agents)
        nan = [l for l in text.splitlines() if l.startswith("claude_") and "NaN" in l]
        ck.eq("claude_* lines with NaN", nan, [])
        promtool = ic.find_tool(args.promtool, "promtool")
        path = os.path.join(work, "metrics.txt")
        open(path, "w").write(text)
        _, err = ic.run([promtool, "check", "metrics"], "promtool check metrics",
                        stdin_data=open(path, "rb").read())
        ck.check(True, "promtool check metrics: clean")
        types, _ = ic.parse_prom_text(text)
        for name in gt.COMPUTED:
            if any(k[0] == name for k in got):
                ck.eq("TYPE of %s" % name, types.get(name), "gauge")

        agent.stop()
        # The spend buckets and last seen survive a restart (SIGTERM flushes the last seen).
        before, _, _, _ = computed(gw)
        code, _ = gw.sigterm()
        ck.check(code in (0, -signal.SIGTERM, 128 + signal.SIGTERM),
                 "SIGTERM stops the gateway cleanly (exit %s)" % code)
        gw = gt.Gateway(args, work, data_dir)
        gw.start()
        after, _ = check_spend(gw, buckets, ck, "restarted")
        keep = lambda d: {k: v for k, v in d.items() if k[0] not in (  # noqa: E731
            "claude_device_online", "claude_hourly_spend_usd", "claude_daily_spend_usd")}
        ck.eq("restarted: last seen, agent and ratios as before", keep(after), keep(before))
        gw.stop()

        # Online falls to 0 once the device stops writing for --online-window.
        gw = gt.Gateway(args, work, data_dir)
        gw.argv_for_port = (lambda base: lambda p: base(p) + ["--online-window", "3s"])(
            gw.argv_for_port)
        gw.start()
        seen = after.get(("claude_device_last_seen_timestamp_seconds", None))
        deadline = time.monotonic() + 30
        while True:
            got, _, t0, _ = computed(gw)
            online = got.get(("claude_device_online", None))
            if online == 0.0 or time.monotonic() > deadline:
                break
            ck.check(online == 1.0 and t0 / 1000 < seen + 3.001,
                     "online only within --online-window 3s of the last write")
            time.sleep(0.2)
        ck.eq("--online-window 3s, no writes for longer: offline", online, 0.0)
        ck.check(t0 / 1000 >= seen + 3 - 0.001, "offline only once the window passed")
    except ic.TestError:
        print(agent.log_tail())
        print(gw.log_tail())
        raise
    finally:
        agent.stop() if agent.proc and agent.proc.poll() is None else None
        gw.stop()


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_computed_test", body, extra))
