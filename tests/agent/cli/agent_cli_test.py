"""ccmon-agent as a process: setup -> start (background) -> status --json -> logs -> stop ->
status (not running, exit 3); start twice; a SIGKILLed agent's stale pid file; start --foreground
with the interface fixed for scripts and SIGTERM within 5 s; logs --follow; `test` against a
closed port and a real Prometheus 2.42 with and without --web.enable-remote-write-receiver.

Python 3 standard library only. Waits are on conditions with deadlines (polling a process state
or a file), never fixed sleeps. Exit status 0 (all passed) or 1.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FIELDS = ("files_tracked", "bytes_behind", "outbox_requests", "last_push_unix",
          "last_push_status")


class Failed(Exception):
    pass


class T:
    def __init__(self, agent, root):
        self.agent = agent
        self.root = root
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("CCMON_AGENT_"):
                del self.env[k]
        self.env.update(HOME=os.path.join(root, "home"),
                        XDG_CONFIG_HOME=os.path.join(root, "config"),
                        XDG_STATE_HOME=os.path.join(root, "xdgstate"))
        self.passed = 0
        self.failed = []

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok    " + what, flush=True)
        else:
            self.failed.append(what)
            print("FAIL  %s%s" % (what, (": " + detail) if detail else ""), flush=True)
        return cond

    def run(self, *args, timeout=30):
        p = subprocess.run([self.agent] + list(args), capture_output=True, timeout=timeout,
                           env=self.env)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                               "replace")


def wait_until(pred, deadline_s, what):
    end = time.monotonic() + deadline_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise Failed("timed out waiting for " + what)
        time.sleep(0.02)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not reaped by its parent) is gone for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def lifecycle(t, state):
    url = "http://127.0.0.1:%d/api/v1/write" % closed_port()
    claude = os.path.join(t.root, "claude")
    os.makedirs(os.path.join(claude, "projects"))
    rc, out, err = t.run("setup", "--url", url, "--device", "it-dev", "--state-dir", state,
                         "--config-dir", claude)
    t.check(rc == 0, "setup exits 0", err)
    conf = os.path.join(t.root, "config", "ccmon", "agent.conf")
    t.check(os.path.isfile(conf) and stat.S_IMODE(os.stat(conf).st_mode) == 0o600,
            "setup wrote the config file with mode 0600")

    rc, out, err = t.run("status")
    t.check(rc == 3 and "not running" in out, "status before start: not running, exit 3",
            "rc=%d %s %s" % (rc, out, err))

    t0 = time.monotonic()
    rc, out, err = t.run("start")
    t.check(rc == 0 and "started (pid" in out, "start (background) exits 0 once the agent is up",
            "rc=%d out=%s err=%s" % (rc, out, err))
    t.check(time.monotonic() - t0 < 10, "start returns within 10 s")

    rc, out, err = t.run("status", "--json", "--state-dir", state)
    t.check(rc == 0, "status --json --state-dir DIR exits 0 while running", err)
    st = json.loads(out)
    t.check(st.get("running") is True, "status --json: running")
    t.check(all(f in st for f in FIELDS), "status --json has %s" % ", ".join(FIELDS), out)
    pid = st.get("pid", 0)
    t.check(pid > 0 and alive(pid), "status --json names the live agent pid")
    t.check(os.getsid(pid) == pid, "the background agent leads a session of its own")

    rc, out, err = t.run("status")
    t.check(rc == 0 and "is running (pid %d)" % pid in out, "status (text) while running", out)

    with open("/dev/full", "wb") as full:
        p = subprocess.run([t.agent, "status", "--json"], stdout=full, stderr=subprocess.PIPE,
                           env=t.env, timeout=30)
    t.check(p.returncode == 1 and b"write failed" in p.stderr,
            "status --json > /dev/full: exit 1, says the write failed", p.stderr.decode())

    rc, out, err = t.run("logs")
    t.check(rc == 0 and 'msg="agent started"' in out and "device=it-dev" in out,
            "logs shows the agent's structured start line", out + err)

    rc, out, err = t.run("start")
    t.check(rc == 1 and "already running" in err, "a second start refuses", err)
    rc, out, err = t.run("start", "--foreground")
    t.check(rc == 1 and "another ccmon-agent" in err,
            "a second agent on the same state dir refuses (pid lock)", err)
    rc, out, err = t.run("reset")
    t.check(rc == 1 and "stop it first" in err, "reset refuses while the agent runs", err)

    # An agent that cannot come up (its --listen port is taken) is not reported as started.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    other = os.path.join(t.root, "listen-state")
    rc, out, err = t.run("start", "--state-dir", other, "--listen",
                         "127.0.0.1:%d" % taken.getsockname()[1])
    taken.close()
    t.check(rc == 1 and "did not start: cannot listen" in err and "started" not in out,
            "start with a taken --listen port: exit 1, says why", "rc=%d %s %s" % (rc, out, err))
    t.check(t.run("status", "--state-dir", other)[0] == 3, "... and no agent runs there")

    # logs --follow: prints what is there, keeps running, ends on SIGINT.
    f = subprocess.Popen([t.agent, "logs", "--follow"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=t.env)
    line = f.stdout.readline().decode()
    t.check("agent started" in line, "logs --follow prints the existing log", line)
    t.check(f.poll() is None, "logs --follow keeps running")
    f.send_signal(signal.SIGINT)
    try:
        f.wait(timeout=5)
        t.check(True, "logs --follow ends on SIGINT")
    except subprocess.TimeoutExpired:
        f.kill()
        t.check(False, "logs --follow ends on SIGINT")

    t0 = time.monotonic()
    rc, out, err = t.run("stop")
    took = time.monotonic() - t0
    t.check(rc == 0 and "stopped" in out, "stop exits 0", out + err)
    t.check(took < 5.5, "stop took %.2f s (< 5 s)" % took)
    wait_until(lambda: not alive(pid), 2, "the agent process to disappear")
    t.check(True, "the agent process is gone after stop")
    t.check(not os.path.exists(os.path.join(state, "agent.pid")), "the pid file is removed")
    rc, out, err = t.run("status", "--json")
    t.check(rc == 3 and json.loads(out).get("running") is False,
            "status --json after stop: running false, exit 3", out)
    rc, out, err = t.run("stop")
    t.check(rc == 3, "stop when not running: exit 3")
    rc, out, err = t.run("logs")
    t.check('msg="agent stopped"' in out, "the log records the clean stop", out[-500:])

    # SIGKILL leaves a stale pid file; status and start handle it.
    rc, out, err = t.run("start")
    st = json.loads(t.run("status", "--json")[1])
    pid = st["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5, "the killed agent to disappear")
    # The group leader turns zombie before its other threads (one may be in an fsync) are gone;
    # the pid lock is released with the last of them.
    wait_until(lambda: not os.path.isdir("/proc/%d/task" % pid)
               or len(os.listdir("/proc/%d/task" % pid)) <= 1, 5, "the killed agent's threads to end")
    t.check(os.path.exists(os.path.join(state, "agent.pid")),
            "a SIGKILLed agent leaves its pid file")
    rc, out, err = t.run("status")
    t.check(rc == 3 and "stale pid file names pid %d" % pid in out,
            "status sees the stale pid file: not running, exit 3", out)
    rc, out, err = t.run("start")
    t.check(rc == 0 and "stale pid file of pid %d was replaced" % pid in out,
            "start over a stale pid file", out + err)
    rc, out, err = t.run("restart")
    t.check(rc == 0 and "stopped" in out and "started" in out, "restart", out + err)
    rc, out, err = t.run("stop")
    t.check(rc == 0, "stop after restart")

    rc, out, err = t.run("reset", "--config")
    t.check(rc == 0 and "removed the state directory" in out and "removed the config file" in out,
            "reset --config removes state and config", out + err)
    t.check(not os.path.exists(state) and not os.path.exists(conf), "both are gone")


def reset_races_start(t):
    """reset and start at once, over a state with many files (its deletion takes a while): an
    agent that runs afterwards has its own intact state dir; none runs without its pid file or
    loses its state under it (before, reset probed, then deleted while the agent started)."""
    state = os.path.join(t.root, "race-state")
    claude = os.path.join(t.root, "claude")
    url = "http://127.0.0.1:%d/api/v1/write" % closed_port()
    args = ["--state-dir", state]
    start_args = ["start"] + args + ["--url", url, "--config-dir", claude]
    bad = []
    for r in range(8):
        t.run(*start_args)
        t.run("stop", *args)
        junk = os.path.join(state, "junk")
        os.makedirs(junk, exist_ok=True)
        for i in range(3000):
            open(os.path.join(junk, str(i)), "w").close()
        reset = subprocess.Popen([t.agent, "reset"] + args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=t.env)
        start = subprocess.Popen([t.agent] + start_args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=t.env)
        out = start.communicate(timeout=30)[0].decode()
        reset.communicate(timeout=30)
        started = [int(w.split(")")[0]) for w in out.split("started (pid ")[1:]]
        rc, st, _ = t.run("status", "--json", *args)
        running = json.loads(st).get("pid") if rc == 0 else None
        for pid in started:
            if alive(pid) and pid != running:
                bad.append("round %d: agent %d runs without its pid file" % (r, pid))
        if running and not os.path.isfile(os.path.join(state, "db", "CURRENT")):
            bad.append("round %d: agent %d runs without its state" % (r, running))
        try:
            with open(os.path.join(state, "agent.log")) as fh:
                if "cannot open the agent's state" in fh.read():
                    bad.append("round %d: the state was deleted under a starting agent" % r)
        except OSError:
            pass
        t.run("stop", *args)
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        t.run("reset", *args)
    t.check(not bad, "reset racing start (8 rounds): no agent without its state", "; ".join(bad))


def starts_race_on_a_new_state_dir(t):
    """Six `start`s at once on a state dir that does not exist yet: one agent runs, and every
    other start says another agent runs. Before, the losers wrote the dir's marker through one
    shared temporary file before taking the pid lock, and most failed with "state directory:
    rename .../CCMON_AGENT_STATE.tmp to ...: No such file or directory"."""
    claude = os.path.join(t.root, "claude")
    url = "http://127.0.0.1:%d/api/v1/write" % closed_port()
    bad = []
    for r in range(5):
        state = os.path.join(t.root, "new-state-%d" % r)
        args = ["--state-dir", state]
        procs = [subprocess.Popen([t.agent, "start", "--url", url, "--config-dir", claude] + args,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=t.env)
                 for _ in range(6)]
        outs = [(p.wait(timeout=30), b"".join(p.communicate(timeout=30)).decode())
                for p in procs]
        started = [o for rc, o in outs if rc == 0 and "started (pid" in o]
        others = [o for rc, o in outs if not (rc == 0 and "started (pid" in o)]
        if len(started) != 1:
            bad.append("round %d: %d starts reported an agent started" % (r, len(started)))
        for o in others:
            if "already running" not in o and "another ccmon-agent" not in o:
                bad.append("round %d: a losing start said: %s" % (r, o.strip()[:160]))
        t.run("stop", *args)
        t.run("reset", *args)
    t.check(not bad, "six starts at once on a new state dir: one runs, the others say why",
            "; ".join(bad[:4]))


def foreground_fixed_interface(t):
    state = os.path.join(t.root, "fg-state")
    claude = os.path.join(t.root, "claude")
    url = "http://127.0.0.1:%d/api/v1/write" % closed_port()
    p = subprocess.Popen([t.agent, "start", "--foreground", "--url", url, "--config-dir", claude,
                          "--state-dir", state, "--device", "fg-dev"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=t.env)
    try:
        def running():
            rc, out, _ = t.run("status", "--json", "--state-dir", state)
            return rc == 0 and json.loads(out)
        st = wait_until(running, 10, "start --foreground to report running")
        t.check(st["pid"] == p.pid, "start --foreground runs in the process itself")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=6)
        took = time.monotonic() - t0
        t.check(took < 5, "start --foreground exits %.2f s after SIGTERM (< 5 s)" % took)
        t.check(p.returncode in (0, -signal.SIGTERM), "exit status %d" % p.returncode)
        err = p.stderr.read().decode()
        t.check('msg="agent started"' in err and 'msg="agent stopped"' in err,
                "start --foreground logs to standard error", err[-500:])
        rc, out, _ = t.run("status", "--json", "--state-dir", state)
        t.check(rc == 3, "status after SIGTERM: not running")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Prometheus:
    def __init__(self, binary, root, name, extra):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as fh:
            fh.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        self.log = open(os.path.join(self.dir, "log"), "wb")
        for _ in range(3):
            self.port = closed_port()
            self.proc = subprocess.Popen(
                [binary, "--config.file=" + cfg, "--storage.tsdb.path=" + self.dir + "/data",
                 "--web.listen-address=127.0.0.1:%d" % self.port] + extra,
                stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
            if self.wait_ready():
                return
            self.stop()
        raise Failed("prometheus did not start")

    def wait_ready(self):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                            timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def connectivity(t, prometheus):
    port = closed_port()
    rc, out, err = t.run("test", "--url", "http://127.0.0.1:%d/api/v1/write" % port)
    t.check(rc == 1 and "network error" in out, "test against a closed port: network error",
            out + err)
    if not prometheus:
        print("SKIP  test against Prometheus: prometheus not found")
        return
    with_rw = Prometheus(prometheus, t.root, "prom-rw", ["--web.enable-remote-write-receiver"])
    try:
        rc, out, err = t.run("test", "--url",
                             "http://127.0.0.1:%d/api/v1/write" % with_rw.port)
        t.check(rc == 0 and "HTTP 204: ok" in out,
                "test against Prometheus with the receiver: HTTP 204 ok", out + err)
        rc, out, err = t.run("test", "--url", "http://127.0.0.1:%d/api/v1/wrong" % with_rw.port)
        t.check(rc == 1 and "HTTP 404" in out, "test with a wrong path: 404", out + err)
    finally:
        with_rw.stop()
    without = Prometheus(prometheus, t.root, "prom-plain", [])
    try:
        rc, out, err = t.run("test", "--url",
                             "http://127.0.0.1:%d/api/v1/write" % without.port)
        t.check(rc == 1 and "HTTP 404" in out and "--web.enable-remote-write-receiver" in out,
                "test against Prometheus without the receiver: 404 and the flag to add",
                out + err)
    finally:
        without.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--prometheus", default="")
    args = ap.parse_args()
    prometheus = args.prometheus
    if not prometheus or prometheus.endswith("-NOTFOUND") or not os.path.exists(prometheus):
        prometheus = shutil.which("prometheus") or ""
    root = tempfile.mkdtemp(prefix="ccmon_agent_cli_")
    t = T(args.agent, root)
    t0 = time.monotonic()
    try:
        lifecycle(t, os.path.join(root, "state"))
        foreground_fixed_interface(t)
        reset_races_start(t)
        starts_race_on_a_new_state_dir(t)
        connectivity(t, prometheus)
    except (Failed, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        t.failed.append("aborted: %s" % e)
        print("ERROR %s" % e)
    finally:
        # Never leave an agent behind.
        for d in (os.path.join(root, "state"), os.path.join(root, "fg-state"),
                  os.path.join(root, "race-state"), os.path.join(root, "listen-state")) + tuple(
                      os.path.join(root, "new-state-%d" % r) for r in range(5)):
            try:
                with open(os.path.join(d, "agent.pid")) as fh:
                    pid = int(fh.read().strip() or 0)
                if pid > 1 and alive(pid):
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(root, ignore_errors=True)
    print("(%.1f s) agent_cli_process: %d checks passed, %d failed"
          % (time.monotonic() - t0, t.passed, len(t.failed)))
    for f in t.failed:
        print("  failed: " + f)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
