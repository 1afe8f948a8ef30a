"""The servers outlive their log stream: `ccmon-gateway serve` and `ccmon-agent start
--foreground` with standard error piped to a reader that has already gone (a `tee`, a log
collector that ended or restarted) keep serving and stop cleanly on SIGTERM. Before, the first
log line's write raised SIGPIPE and ended them at once (exit status -13): the gateway never
served, the agent died at its first log line.

Python 3 standard library only; waits are on conditions with deadlines, never fixed sleeps.
Exit status 0 (all passed) or 1.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402


def wait_until(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    raise ic.TestError("timed out waiting for " + what)


def spawn_with_gone_reader(argv, env=None):
    """argv with standard error (and output) on a pipe whose reading end is already closed."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=w, env=env)
    finally:
        os.close(w)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except OSError:
        return None


def stop(ck, p, what):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = "hung"
    ck.check(rc in (0, -signal.SIGTERM), "%s stops on SIGTERM (exit %s)" % (what, rc))


def gateway(args, ck, root):
    port = ic.free_port()
    p = spawn_with_gone_reader([args.gateway, "serve", "--listen", "127.0.0.1:%d" % port,
                                "--data-dir", os.path.join(root, "gw")])
    base = "http://127.0.0.1:%d" % port
    try:
        wait_until(lambda: p.poll() is not None or get(base + "/healthz") == 200, 30,
                   "the gateway to serve or exit")
        ck.check(p.poll() is None, "gateway serve with its log reader gone keeps running",
                 "exit status %s" % p.returncode)
        ck.check(get(base + "/readyz") == 200, "... and answers /readyz")
        # More log lines (a refused write is logged at most once a minute; /metrics is not):
        # what matters is that nothing ends it.
        for _ in range(3):
            get(base + "/metrics")
        ck.check(p.poll() is None and get(base + "/healthz") == 200, "... and keeps serving")
    finally:
        if p.poll() is None:
            stop(ck, p, "the gateway")


def agent(args, ck, root):
    claude = os.path.join(root, "claude")
    os.makedirs(os.path.join(claude, "projects"))
    state = os.path.join(root, "agent-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCMON_AGENT_")}
    env["HOME"] = os.path.join(root, "home")
    # A closed port: the agent runs (and logs its failed pushes) without a receiver.
    url = "http://127.0.0.1:%d/api/v1/write" % ic.free_port()
    p = spawn_with_gone_reader([args.agent, "start", "--foreground", "--url", url, "--state-dir",
                                state, "--config-dir", claude, "--batch-send-deadline", "100ms"],
                               env=env)
    log = os.path.join(state, "agent.log")

    def logged(text):
        try:
            with open(log) as fh:
                return text in fh.read()
        except OSError:
            return False

    try:
        wait_until(lambda: p.poll() is not None or logged('msg=counting'), 30,
                   "the agent to count or exit")
        ck.check(p.poll() is None, "agent start --foreground with its log reader gone keeps running",
                 "exit status %s" % p.returncode)
        rc = subprocess.run([args.agent, "status", "--state-dir", state], env=env,
                            capture_output=True).returncode
        ck.check(rc == 0, "... and status says it runs (exit %d)" % rc)
    finally:
        if p.poll() is None:
            stop(ck, p, "the agent")
    ck.check(logged('msg="agent stopped" exit_status=0'), "the agent's log records a clean stop")


def body(args, ck):
    root = tempfile.mkdtemp(prefix="ccmon_broken_pipe_")
    gateway(args, ck, root)
    agent(args, ck, root)


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("broken_log_pipe", body, extra))
