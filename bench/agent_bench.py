#!/usr/bin/env python3
"""ccmon-agent benchmark (issue 7 acceptance, BENCHMARKS.md "Agent"):

  first start  time from launch until the agent has read the whole history present at start
               (ccmon_agent_caught_up 1 on its /metrics) and peak RSS, on a Claude config dir;
               compared with `ccmon-replay summary` on the same dir, measured in the same run;
  idle         CPU (user+system, % of one core) and RSS over --idle-seconds once caught up and
               the outbox is empty, with every file of the corpus tracked;
  latency      append one request line to a transcript -> its claude_requests_total visible in
               Prometheus (instant query), p50/p99 over --appends appends.

usage: bench/agent_bench.py --agent BIN --replay BIN --corpus CONFIG_DIR [--idle-seconds 60]
                            [--appends 200] [--runs 3] [--prometheus BIN]
Prints a markdown table. Needs Debian's prometheus. The agent's state starts empty each run.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import integ_common as ic  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK  # utime, stime


def rss_kib(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            values[name] = float(v)
    return values


def query_total(prom, promql):
    url = prom.url("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(url, timeout=5) as r:
        res = json.load(r)["data"]["result"]
    return float(res[0]["value"][1]) if res else 0.0


def run_once(args, work, prom, live_dir, run_no):
    state = os.path.join(work, "state-%d" % run_no)
    port = ic.free_port()
    argv = [args.agent, "start", "--foreground", "--url", prom.url("/api/v1/write"),
            "--config-dir", args.corpus, "--config-dir", live_dir, "--state-dir", state,
            "--device", "bench", "--listen", "127.0.0.1:%d" % port,
            "--batch-send-deadline", "100ms"]
    log = open(os.path.join(work, "agent-%d.log" % run_no), "wb")
    env = dict(os.environ, HOME=work, XDG_CONFIG_HOME=os.path.join(work, "cfg"))
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    caught = None
    deadline = t0 + 600
    while time.monotonic() < deadline:
        try:
            if scrape(port).get("ccmon_agent_caught_up") == 1:
                caught = time.monotonic() - t0
                break
        except OSError:
            pass
        time.sleep(0.01)
    if caught is None:
        p.kill()
        raise SystemExit("the agent did not catch up; see %s" % log.name)
    peak_first = rss_kib(p.pid, "VmHWM")
    # Drain the outbox, then measure idle.
    while scrape(port).get("ccmon_agent_outbox_requests", 1) != 0:
        time.sleep(0.05)
    c0, w0 = cpu_seconds(p.pid), time.monotonic()
    time.sleep(args.idle_seconds)  # the measurement window itself
    idle_cpu = (cpu_seconds(p.pid) - c0) / (time.monotonic() - w0) * 100
    idle_rss = rss_kib(p.pid)
    files = scrape(port).get("ccmon_agent_files_tracked", 0)
    # Latency: one new request per append, visible when the total request count rises.
    lat = []
    live_file = os.path.join(live_dir, "projects", "live", "bench-%d.jsonl" % run_no)
    os.makedirs(os.path.dirname(live_file), exist_ok=True)
    base = query_total(prom, 'sum(claude_requests_total{device="bench"})')
    for i in range(args.appends):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
        line = {"type": "assistant", "sessionId": "bench-%d" % run_no, "cwd": "/w/live",
                "timestamp": ts, "requestId": "req_b%d_%d" % (run_no, i),
                "message": {"id": "msg_b%d_%d" % (run_no, i), "model": "claude-sonnet-4-5-20250929",
                            "role": "assistant", "content": [{"type": "text", "text": "x"}],
                            "usage": {"input_tokens": 1, "output_tokens": 1,
                                      "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 0}}}
        t = time.monotonic()
        with open(live_file, "a") as fh:
            fh.write(json.dumps(line) + "\n")
        want = base + i + 1
        while query_total(prom, 'sum(claude_requests_total{device="bench"})') < want:
            if time.monotonic() - t > 30:
                raise SystemExit("append %d not visible within 30 s" % i)
            time.sleep(0.005)
        lat.append(time.monotonic() - t)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    lat.sort()
    return {"first": caught, "first_rss": peak_first / 1024, "idle_cpu": idle_cpu,
            "idle_rss": idle_rss / 1024, "files": files,
            "p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--replay", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--prometheus", default="")
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ccmon-agent-bench-")
    prom_bin = ic.find_tool(args.prometheus, "prometheus")
    prom = ic.ServerProcess("prometheus", lambda port: [
        prom_bin, "--config.file=/dev/null", "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
        "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-remote-write-receiver"],
        "/-/ready", work)
    prom.start()
    live_dir = os.path.join(work, "live")
    os.makedirs(os.path.join(live_dir, "projects"))
    results, replay_t = [], []
    try:
        for r in range(args.runs):
            t = time.monotonic()
            subprocess.run([args.replay, "summary", "--config-dir", args.corpus, "--progress",
                            "never"], check=True, capture_output=True)
            replay_t.append(time.monotonic() - t)
            results.append(run_once(args, work, prom, live_dir, r))
    finally:
        prom.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = lambda k: statistics.median(x[k] for x in results)  # noqa: E731
    rt = statistics.median(replay_t)
    print("| measure | median of %d runs |" % args.runs)
    print("|---|---|")
    print("| first start: launch -> caught up | %.2f s (replay summary %.2f s; ratio %.1fx) |"
          % (med("first"), rt, med("first") / rt))
    print("| first start: peak RSS | %.1f MiB |" % med("first_rss"))
    print("| idle CPU over %g s, %d files tracked | %.3f %% of a core |"
          % (args.idle_seconds, med("files"), med("idle_cpu")))
    print("| idle RSS | %.1f MiB |" % med("idle_rss"))
    print("| append -> visible in Prometheus (%d appends) | p50 %.0f ms, p99 %.0f ms |"
          % (args.appends, med("p50") * 1000, med("p99") * 1000))


if __name__ == "__main__":
    main()
