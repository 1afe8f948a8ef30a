#!/usr/bin/env python3
"""ccmon-agent recovers by itself from a full disk (no restart), counting exactly.

The agent's state dir is on a small tmpfs (skipped where this process may not mount one):
  1. the disk fills during the first catch-up (the agent's commits fail; RocksDB's flush of that
     moment is what made DB::Resume() wait forever, rocks_store.h), then the filler is deleted;
  2. after the catch-up, the disk fills again and more history arrives, then space returns.
Each time the agent must resume reading within its retry interval, with its claude_* /metrics
equal to `ccmon-replay metrics` over the same history, and stop on SIGTERM without its forced
exit (a hung recovery blocked that).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402

DEVICE = "full-disk-dev"
SKIP = ("claude_active_sessions", "claude_session_duration_seconds")


def extra(ap):
    ap.add_argument("--agent", required=True)
    ap.add_argument("--tmpfs-size", default="48m")


def series(text):
    _, samples = ic.parse_prom_text(text)
    return {(s.name,) + tuple(sorted(dict(s.labels).items())): s.value for s in samples
            if s.name.startswith("claude_") and not s.name.startswith(SKIP)}


def differences(got, want):
    return sorted(str(k) for k in set(got) | set(want)
                  if k not in got or k not in want
                  or abs(got[k] - want[k]) > 1e-9 * max(abs(want[k]), 1.0))


def fill(path):
    """Writes a file until the file system is full; returns its path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (1 << 20, 4096, 64, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


class Agent:
    def __init__(self, args, config_dir, state_dir, work):
        self.port = ic.free_port()
        self.log_path = os.path.join(work, "agent.log")
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, HOME=work, XDG_CONFIG_HOME=os.path.join(work, "cfg"),
                   XDG_STATE_HOME=os.path.join(work, "xdg-state"))
        # Nothing listens on port 1: pushes fail and stay in the outbox (also on the tmpfs).
        self.proc = subprocess.Popen(
            [args.agent, "start", "--foreground", "--url", "http://127.0.0.1:1/api/v1/write",
             "--config-dir", config_dir, "--state-dir", state_dir, "--device", DEVICE,
             "--settle-after", "2s", "--listen", "127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def text(self):
        with open(self.log_path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def wait_log(self, needle, what, deadline_s, count=1):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.text().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                raise ic.TestError("the agent exited (%d) before %s:\n%s"
                                   % (self.proc.returncode, what, self.text()[-3000:]))
            time.sleep(0.05)
        raise ic.TestError("%s: not seen within %d s:\n%s" % (what, deadline_s,
                                                              self.text()[-3000:]))

    def metrics(self):
        url = "http://127.0.0.1:%d/metrics" % self.port
        with urllib.request.urlopen(url, timeout=10) as r:
            return series(r.read().decode("utf-8", "replace"))

    def wait_exact(self, args, config_dir, what, deadline_s):
        want = series(ic.replay_metrics(args, config_dir, DEVICE))
        deadline = time.monotonic() + deadline_s
        got = {}
        while time.monotonic() < deadline:
            try:
                got = self.metrics()
            except OSError:
                got = {}
            if not differences(got, want):
                return time.monotonic()
            time.sleep(0.2)
        diff = differences(got, want)
        raise ic.TestError("%s: /metrics never equalled replay's (%d differences: %s)"
                           % (what, len(diff), "; ".join(diff[:5])))


def body(args, ck):
    if os.geteuid() != 0:
        raise ic.Skip("mounting a tmpfs needs root")
    work = tempfile.mkdtemp(prefix="ccmon-full-disk-")
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + args.tmpfs_size, "tmpfs", mnt],
                       capture_output=True)
    if p.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise ic.Skip("cannot mount a tmpfs: " + p.stderr.decode(errors="replace").strip())
    agent = None
    try:
        config = os.path.join(work, "config")
        ic.make_fixture(args, config)
        later = os.path.join(work, "later")
        subprocess.run([sys.executable, args.fixture_gen, later, "--seed", str(args.seed + 1),
                        "--sessions", "300"], check=True, capture_output=True)

        # 1. Full during the first catch-up.
        agent = Agent(args, config, os.path.join(mnt, "state"), work)
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(mnt, "state", "db", "CURRENT")):
            if time.monotonic() > deadline or agent.proc.poll() is not None:
                raise ic.TestError("the agent never created its state:\n" + agent.text())
            time.sleep(0.01)
        filler = fill(os.path.join(mnt, "filler"))
        agent.wait_log("cannot commit", "a commit failing on the full disk", 60)
        ck.info("the disk filled %s the first catch-up ended"
                % ("after" if "caught up with the existing history" in agent.text()
                   else "before"))
        try:  # its retry while the disk is still full: said in the log
            agent.wait_log("the state cannot take writes yet", "a refused recovery", 15)
            ck.info("the recovery was refused while the disk was full")
        except ic.TestError:
            ck.info("no refused recovery logged while the disk was full")
        os.remove(filler)
        freed = time.monotonic()
        agent.wait_log("caught up with the existing history", "the catch-up after space came "
                       "back", 60)
        done = agent.wait_exact(args, config, "after the first full disk", 60)
        ck.info("resumed and exact %.1f s after the space came back" % (done - freed))
        ck.check(done - freed < 30, "the agent resumed within its retry interval (< 30 s)",
                 "%.1f s" % (done - freed))

        # 2. Full after the catch-up, while more history arrives.
        filler = fill(os.path.join(mnt, "filler"))
        failures = agent.text().count("cannot commit")
        shutil.copytree(os.path.join(later, "projects"), os.path.join(config, "projects"),
                        dirs_exist_ok=True)
        agent.wait_log("cannot commit", "a live commit failing on the full disk", 60,
                       count=failures + 1)
        os.remove(filler)
        freed = time.monotonic()
        done = agent.wait_exact(args, config, "after the second full disk", 60)
        ck.info("resumed and exact %.1f s after the space came back" % (done - freed))
        ck.check(done - freed < 30, "the agent resumed within its retry interval (< 30 s)",
                 "%.1f s" % (done - freed))

        stopped = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        try:
            agent.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.proc.kill()
            agent.proc.wait()
        took = time.monotonic() - stopped
        ck.check(took < 3, "SIGTERM stops the agent at once (no hung recovery)", "%.1f s" % took)
    finally:
        if agent is not None and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("agent_full_disk", body, extra))
