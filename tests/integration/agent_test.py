#!/usr/bin/env python3
"""ccmon-agent into a real Prometheus 2.42 (remote-write receiver) or VictoriaMetrics 1.79.

Through the fixed command line `ccmon-agent start --foreground --url URL --config-dir DIR
--state-dir DIR --device NAME`:
  1. a history present at start (fixture A): once the agent has caught up, every claude_* series
     the receiver holds equals `ccmon-replay metrics` over the same files (counts exactly, USD
     within 1e-9 relative) — the first sample of each series is its historical total;
  2. a second history (fixture B) appended line by line in timestamp order, some lines in two
     writes (a partial line first), into new and existing files: the same equality over A + B;
  3. with --kills N: SIGKILL at N random points while appending, a restart after each: the same
     equality at the end, and the receiver refused nothing (no 4xx on its write handler, no
     out-of-order or duplicate samples): nothing lost, nothing counted twice.
`ccmon-agent status --json --state-dir DIR` is read while the agent runs.
The agent-only session series (docs/accounting.md A41) are left out of the equality; instead,
after 1 and after 2, claude_session_duration_seconds_count equals the number of sessions
(claude_sessions_total: every fixture session's last line is long past, so each is observed
once) and claude_active_sessions is 0.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402

DEVICE = "itest"


def extra(ap):
    ap.add_argument("--agent", required=True)
    ap.add_argument("--target", choices=["prometheus", "victoria"], default="prometheus")
    ap.add_argument("--victoria", default="", help="victoria-metrics binary (default: PATH)")
    ap.add_argument("--kills", type=int, default=0)
    ap.add_argument("--backfill", action="store_true",
                    help="start the agent with --backfill and check the history's samples")


def query(server, promql, at=None):
    params = {"query": promql}
    if at is not None:
        params["time"] = "%.3f" % at
    url = server.url("/api/v1/query?" + urllib.parse.urlencode(params))
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise ic.TestError("query %s failed: %s" % (promql, body))
    return body["data"]["result"]


def key_of(name, labels):
    return (name,) + tuple(sorted((k, v) for k, v in labels.items() if v != ""))


AGENT_ONLY = ("claude_active_sessions", "claude_session_duration_seconds")


def stored_series(server, devices=None):
    """The receiver's claude_* series (replay's families) of DEVICE, or of the devices matching
    the regular expression `devices`: {key: value}."""
    match = 'device="%s"' % DEVICE if devices is None else 'device=~"%s"' % devices
    out = {}
    for r in query(server, '{__name__=~"claude_.+",%s}' % match):
        labels = dict(r["metric"])
        name = labels.pop("__name__")
        if name.startswith(AGENT_ONLY):
            continue
        out[key_of(name, labels)] = float(r["value"][1])
    return out


def check_sessions(server, want, what, ck, deadline_s=30):
    """A41: each session observed once (the fixtures' sessions are all long over), none active."""
    sessions = sum(v for k, v in want.items() if k[0] == "claude_sessions_total")
    deadline = time.monotonic() + deadline_s
    got = None
    while time.monotonic() < deadline:
        count = query(server, 'claude_session_duration_seconds_count{device="%s"}' % DEVICE)
        active = query(server, 'claude_active_sessions{device="%s"}' % DEVICE)
        got = (float(count[0]["value"][1]) if count else None,
               float(active[0]["value"][1]) if active else None)
        if got == (sessions, 0.0):
            break
        time.sleep(0.2)
    ck.eq("%s: session durations observed, active sessions" % what, got, (sessions, 0.0))


def expected_series(args, config_dir):
    text = ic.replay_metrics(args, config_dir, DEVICE)
    _, samples = ic.parse_prom_text(text)
    out = {}
    for s in samples:
        if s.name.startswith("claude_"):
            out[key_of(s.name, dict(s.labels))] = s.value
    return out


def same(got, want):
    if set(got) != set(want):
        return False
    for k, v in want.items():
        g = got[k]
        if abs(g - v) > 1e-9 * max(abs(v), 1.0):
            return False
    return True


def describe_diff(got, want):
    keys = sorted(set(got) | set(want))
    diff = ["%s: got %r want %r" % (k, got.get(k), want.get(k)) for k in keys
            if got.get(k) is None or want.get(k) is None
            or abs(got[k] - want[k]) > 1e-9 * max(abs(want[k]), 1.0)]
    return "%d differences: %s" % (len(diff), "; ".join(diff[:8]))


def wait_equal(server, want, what, deadline_s=90, devices=None):
    """Waits (polling the receiver, with a deadline) until it holds exactly `want` (of DEVICE, or
    of the devices matching `devices`, as stored_series)."""
    deadline = time.monotonic() + deadline_s
    got = {}
    while time.monotonic() < deadline:
        got = stored_series(server, devices)
        if same(got, want):
            return got
        time.sleep(0.2)
    raise ic.TestError("%s: the receiver never held replay's series: %s"
                       % (what, describe_diff(got, want)))


class Agent:
    def __init__(self, args, url, config_dir, state_dir, work):
        self.argv = [args.agent, "start", "--foreground", "--url", url, "--config-dir",
                     config_dir, "--state-dir", state_dir, "--device", DEVICE,
                     "--settle-after", "2s", "--batch-send-deadline", "100ms",
                     "--listen", "127.0.0.1:0"] + (["--backfill"] if args.backfill else [])
        self.args, self.state_dir, self.work = args, state_dir, work
        self.proc, self.runs = None, 0

    def start(self):
        self.runs += 1
        self.log = open(os.path.join(self.work, "agent-%d.log" % self.runs), "wb")
        env = dict(os.environ, HOME=self.work, XDG_CONFIG_HOME=os.path.join(self.work, "cfg"),
                   XDG_STATE_HOME=os.path.join(self.work, "state"))
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)

    def wait_caught_up(self, deadline_s=60):
        """Waits (polling its log, with a deadline) for this run's end of the first catch-up.
        Tests that append fixture lines (past timestamps) wait for it: at that point the agent
        settles requests by event time (docs/accounting.md A40), so a request whose first copy
        the catch-up read before its later copies were appended would be observed early."""
        path = os.path.join(self.work, "agent-%d.log" % self.runs)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with open(path, "rb") as fh:
                if b"caught up with the existing history" in fh.read():
                    return
            if self.proc.poll() is not None:
                raise ic.TestError("the agent exited (status %d) before it caught up"
                                   % self.proc.returncode)
            time.sleep(0.05)
        raise ic.TestError("the agent did not catch up with the history in %d s" % deadline_s)

    def status(self):
        p = subprocess.run([self.args.agent, "status", "--json", "--state-dir", self.state_dir],
                           capture_output=True, timeout=10)
        try:
            return json.loads(p.stdout.decode())
        except ValueError:
            return None

    def self_metrics(self):
        """The running agent's /metrics (pull mode on a port it chose), as {name: value} of
        the unlabelled and summed ccmon_agent_* samples."""
        import re
        with open(os.path.join(self.work, "agent-%d.log" % self.runs), "rb") as fh:
            m = re.search(rb'msg="serving /metrics".* port=(\d+)', fh.read())
        if not m:
            raise ic.TestError("the agent did not log its /metrics port")
        url = "http://127.0.0.1:%d/metrics" % int(m.group(1))
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        _, samples = ic.parse_prom_text(text)
        out = {}
        for smp in samples:
            if smp.name.startswith("ccmon_agent_"):
                out[smp.name] = out.get(smp.name, 0.0) + smp.value
        return out

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise ic.TestError("the agent did not stop within 10 s of SIGTERM")
            return time.monotonic() - t0
        return 0.0

    def log_tail(self):
        with open(os.path.join(self.work, "agent-%d.log" % self.runs), "rb") as fh:
            return fh.read().decode("utf-8", "replace")[-3000:]


def timestamp_of(line):
    try:
        v = json.loads(line)
    except ValueError:
        return ""
    ts = v.get("timestamp") if isinstance(v, dict) else None
    return ts if isinstance(ts, str) else ""


def appends_in_time_order(src_root, dst_root, prefix):
    """(dst path, line) for every line of src_root's *.jsonl, stable-sorted by timestamp."""
    items = []
    n = 0
    for dirpath, _, files in os.walk(os.path.join(src_root, "projects")):
        for f in sorted(files):
            if not f.endswith(".jsonl"):
                continue
            src = os.path.join(dirpath, f)
            rel = os.path.relpath(src, os.path.join(src_root, "projects"))
            parts = rel.split(os.sep)
            parts[0] = prefix + parts[0]
            dst = os.path.join(dst_root, "projects", *parts)
            with open(src, "rb") as fh:
                data = fh.read()
            lines = data.split(b"\n")
            tail = lines.pop()  # an incomplete last line (b"" when the file ends in \n)
            last_ts = ""
            for line in lines:
                ts = timestamp_of(line) or last_ts
                last_ts = ts
                items.append((ts, n, dst, line + b"\n"))
                n += 1
            if tail:
                items.append((last_ts, n, dst, tail))
                n += 1
    items.sort()
    return [(dst, data) for _, _, dst, data in items]


def history_span(config_dir):
    """(first, last) event time, unix seconds, of the transcripts under config_dir."""
    import datetime
    times = []
    for dirpath, _, files in os.walk(os.path.join(config_dir, "projects")):
        for f in files:
            if f.endswith(".jsonl"):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    for line in fh:
                        ts = timestamp_of(line)
                        if ts:
                            times.append(datetime.datetime.fromisoformat(
                                ts.replace("Z", "+00:00")).timestamp())
    return min(times), max(times)


def check_backfilled_history(server, ck, config_dir):
    """--backfill: the receiver holds the history with its own timestamps — requests are
    counted at instants inside it, fewer in the middle than at its end — not only totals."""
    first, last = history_span(config_dir)
    # A history has samples only where series changed: an instant query needs last_over_time
    # (README, "Backfill Prometheus").
    promql = 'sum(last_over_time(claude_requests_total{device="%s"}[3650d]))' % DEVICE

    def at(t):
        r = query(server, promql, at=t)
        return float(r[0]["value"][1]) if r else 0.0

    total = at(time.time())
    middle = at((first + last) / 2)
    before = at(first - 3600)
    ck.check(0 < middle < total, "backfill: the history's middle shows part of the requests "
             "(%g of %g)" % (middle, total))
    ck.eq("backfill: nothing before the history's first event", before, 0.0)


def history_and_appends(args, work):
    """Fixture A copied under WORK/claude/projects (a-… dirs): the history present at start;
    fixture B (seed + 1000) as (path, line) appends in timestamp order into b-… dirs there.
    Returns (config_dir, appends)."""
    config = os.path.join(work, "claude")
    os.makedirs(os.path.join(config, "projects"))
    a_dir, b_dir = os.path.join(work, "a"), os.path.join(work, "b")
    args_b = type(args)(**vars(args))
    ic.make_fixture(args, a_dir)
    args_b.seed = args.seed + 1000
    ic.make_fixture(args_b, b_dir)
    for entry in os.listdir(os.path.join(a_dir, "projects")):
        shutil.copytree(os.path.join(a_dir, "projects", entry),
                        os.path.join(config, "projects", "a-" + entry))
    return config, appends_in_time_order(b_dir, config, "b-")


def write_rejections(server, target):
    """Write requests the receiver refused (4xx/5xx), and for VictoriaMetrics also rows it
    ignored, from its own /metrics: a Prometheus started with --config.file=/dev/null does not
    scrape itself, so a PromQL query would find nothing and always say 0."""
    if target == "victoria":
        return float(sum(ic.victoria_write_refusals(server.url("/")).values()))
    return float(sum(ic.prometheus_write_refusals(server.url("/")).values()))


def body(args, ck):
    work = tempfile.mkdtemp(prefix="ccmon-agent-it-")
    config, appends = history_and_appends(args, work)

    if args.target == "prometheus":
        prom = ic.find_tool(args.prometheus, "prometheus")
        tsdb = os.path.join(work, "tsdb")
        server = ic.ServerProcess(
            "prometheus", lambda p: [prom, "--config.file=/dev/null",
                                     "--storage.tsdb.path=" + tsdb,
                                     "--web.listen-address=127.0.0.1:%d" % p,
                                     "--web.enable-remote-write-receiver"],
            "/-/ready", work)
        write_path = "/api/v1/write"
    else:
        vm = ic.find_tool(args.victoria, "victoria-metrics")
        server = ic.ServerProcess(
            "victoria", lambda p: [vm, "-storageDataPath=" + os.path.join(work, "vm"),
                                   "-httpListenAddr=127.0.0.1:%d" % p, "-search.latencyOffset=0s"],
            "/health", work)
        write_path = "/api/v1/write"
    server.start()
    agent = Agent(args, server.url(write_path), config, os.path.join(work, "agent-state"), work)
    try:
        agent.start()
        want = expected_series(args, config)
        ck.info("fixture A: %d claude_* series" % len(want))
        t0 = time.monotonic()
        wait_equal(server, want, "history at start")
        ck.check(True, "history at start: every series equals replay (%.1f s)"
                 % (time.monotonic() - t0))
        if args.backfill:
            check_backfilled_history(server, ck, config)
        check_sessions(server, want, "history at start", ck)
        st = agent.status()
        ck.check(st is not None and all(k in st for k in (
            "files_tracked", "bytes_behind", "outbox_requests", "last_push_unix",
            "last_push_status")), "status --json while running has the fixed fields", repr(st))

        rng = random.Random(args.seed)
        kill_points = sorted(rng.sample(range(len(appends)), min(args.kills, len(appends))))
        kills = 0
        for i, (dst, data) in enumerate(appends):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "ab") as fh:
                if len(data) > 2 and rng.random() < 0.2:
                    cut = rng.randrange(1, len(data) - 1)
                    fh.write(data[:cut])
                    fh.flush()
                    fh.write(data[cut:])
                else:
                    fh.write(data)
            if kills < len(kill_points) and i == kill_points[kills]:
                agent.kill()
                kills += 1
                agent.start()
            elif rng.random() < 0.01:
                time.sleep(0.05)  # let the agent catch up now and then (pacing, not a wait)
        want = expected_series(args, config)
        ck.info("A + B: %d claude_* series, %d lines appended, %d SIGKILLs"
                % (len(want), len(appends), kills))
        t0 = time.monotonic()
        wait_equal(server, want, "after the appends")
        ck.check(True, "after appends%s: every series equals replay (%.1f s)"
                 % (" and %d SIGKILLs" % kills if kills else "", time.monotonic() - t0))
        check_sessions(server, want, "after the appends", ck)
        ck.eq("write requests the receiver refused", write_rejections(server, args.target), 0.0)
        deadline = time.monotonic() + 30
        st = agent.status()
        while time.monotonic() < deadline and (st is None or st.get("outbox_requests") != 0):
            time.sleep(0.2)
            st = agent.status()
        ck.eq("outbox drained", (st or {}).get("outbox_requests"), 0)
        sm = agent.self_metrics()
        ck.check(sm.get("ccmon_agent_append_to_ack_seconds_count", 0) > 0,
                 "the append->ack lag histogram observed the pushes",
                 repr({k: v for k, v in sm.items() if "ack" in k}))
        ck.check(sm.get("ccmon_agent_lines_read_total", 0) > 0 and
                 sm.get("ccmon_agent_attribution_conflicts_total", -1) == 0,
                 "self-metrics: lines read, no attribution conflicts",
                 repr({k: v for k, v in sm.items() if "lines" in k or "conflict" in k}))
        took = agent.stop()
        ck.check(took < 5.0, "SIGTERM stops the agent within 5 s (%.2f s)" % took)
    except ic.TestError:
        print(agent.log_tail())
        raise
    finally:
        agent.stop() if agent.proc and agent.proc.poll() is None else None
        server.stop()


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("agent_test", body, extra))
