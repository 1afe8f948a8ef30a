#!/usr/bin/env python3
"""ccmon-agent under faults (issue 7, Acceptance, second bullet), with real parts only.

The agent runs through its fixed command line (`ccmon-agent start --foreground --url URL
--config-dir DIR --state-dir DIR --device NAME`, plus --settle-after, --batch-send-deadline,
--resend-interval and --listen) against a real Prometheus 2.42 (remote-write receiver) or
VictoriaMetrics. Between the agent and the receiver sits a fault proxy (FaultProxy below: plain
sockets on 127.0.0.1, port 0) that forwards each write request, or answers it with a fault.
Every check of "exact" is: every claude_* series the receiver holds equals
`ccmon-replay metrics` over the files (counts exactly, USD within 1e-9 relative), waited for
with a deadline (agent_test.wait_equal), never by sleeping.

--scenario network
  Fixture A is the history present at start; fixture B is appended in timestamp order (some
  lines in two writes, and a partial line left pending across phase ends and restarts) while
  the proxy goes through these phases: forward; 500; 503; 429 with Retry-After: 1 (the gaps
  between the agent's tries must be >= 1 s); close the connection after reading a request;
  close it after reading only the request's head (mid-request); forward to the receiver and
  then reset the connection instead of answering (the receiver stored it, the agent must
  resend: duplicates of identical samples, which the receiver accepts); accept and never
  answer (past the agent's 30 s HTTP timeout); down (listener closed: connection refused);
  forward again. The agent is restarted with SIGTERM (must stop within 5 s, also while a
  request hangs and while the target is down) and with SIGKILL after some phases. While the
  hang and the outage last, `ccmon-agent status --json` must report the failure
  (last_push_status names it, consecutive_push_failures >= 1) and the log must say it. At the
  end: the series are exact, the receiver refused nothing (every answer the proxy relayed from
  it was 2xx; Prometheus's own /metrics shows no 4xx/5xx on its write handler, which is where
  out-of-order and duplicate-with-another-value samples would appear), the agent rejected and
  dropped nothing (its self-metrics), and its outbox is drained (status: outbox_requests 0).

--scenario files
  Transcript files change under the agent: renamed (within the tree, also one being appended
  to, and one moved out of the tree), deleted, replaced under the same name (deleted and
  recreated with other content; another file renamed over it; an editor-style save: a copy
  with more lines renamed over it), truncated and rewritten in place with other content, and
  truncated to a prefix and then continued with other lines; while the agent runs, while it is
  stopped (SIGTERM) and around a SIGKILL.
  What "exact" means here: a counter never goes down, so a deleted file's requests stay
  counted, and so do the requests of a file's old content once it is replaced or truncated.
  The expectation is `ccmon-replay metrics` over a SHADOW directory that holds every content
  the agent could have seen: the current files plus, for every content that vanished from the
  live tree (deleted, replaced, renamed away, truncated), a copy under another name in the
  same directory (`NAME.gone-N.jsonl`). Replay's dedup merges the repeats (a renamed or
  re-read file, a truncated file's surviving prefix), exactly as the agent's does.
  For a file truncated and rewritten this is exact only for content the agent had read before
  it vanished: lines that disappear unseen cannot be counted by anyone. So every destructive
  change is made after the agent was seen to hold the shadow's totals (a sync point), and a
  truncation to a prefix that keeps the same head (the same file to the tail's identity:
  device, inode, head fingerprint) is continued only after the agent reported the truncation
  (ccmon_agent_files_truncated): were it rewritten past the old offset before the agent looked,
  the agent could not tell (docs: tail/file_identity.h, "What it cannot tell").

--scenario auth
  A Mimir-style target: the agent runs with `--header 'X-Scope-OrgID: tenant-1'` and
  `--bearer-token-file`, then (another run, same state) with basic auth. The proxy checks that
  every write request carries the tenant header and the right Authorization, POST to the URL's
  path, Content-Encoding snappy, Content-Type application/x-protobuf and
  X-Prometheus-Remote-Write-Version 0.1.0, and answers 401 to a wrong token.
  `ccmon-agent test` with a wrong token must fail and say so. The proxy also answers 401 for a
  while (a token rotated at the target), then accepts: the agent keeps the refused entries and
  retries them, so the totals are exact and nothing is rejected or dropped. Secrets never
  appear in the agent's log.

--target victoria runs the network scenario against VictoriaMetrics (without the two 30 s
phases, hang and down, to keep it short).
"""

import base64
import collections
import os
import re
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import http.client
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402

REMOTE_WRITE_HEADERS = {
    "content-encoding": "snappy",
    "content-type": "application/x-protobuf",
    "x-prometheus-remote-write-version": "0.1.0",
}


def extra(ap):
    ap.add_argument("--agent", required=True)
    ap.add_argument("--scenario", choices=["network", "files", "auth"], required=True)
    ap.add_argument("--target", choices=["prometheus", "victoria"], default="prometheus")
    ap.add_argument("--victoria", default="", help="victoria-metrics binary (default: PATH)")
    ap.set_defaults(backfill=False)  # agent_test.Agent reads it


# ---------------------------------------------------------------------------------------------
# The fault proxy


class FaultProxy:
    """An HTTP/1.1 remote-write proxy on 127.0.0.1 (port 0, kept across down/up) with faults.

    Modes (set_mode; a request takes the mode current when its head has been read):
      forward             forward to the receiver and relay its answer
      500, 503            answer that status
      429                 answer 429 with Retry-After: 1
      reset_after_request read the whole request, then reset the connection (RST)
      reset_mid_request   read the request's head only, then reset (the body unread)
      forward_then_reset  forward (the receiver stores it), then reset instead of answering
      hang                read the request and never answer; count when the client gives up
                          (closes), release the connection when the mode changes
      401                 answer 401
    go_down() closes the listener and every open connection (new connections are refused);
    come_up() listens again on the same port.
    Every request's head is checked against `required` (lower-case name -> value) and
    `auth` (the expected Authorization, or None); a wrong Authorization is answered 401
    whatever the mode; other differences are recorded in `violations`.
    Events are counted in `events` (name -> n) under a condition variable; wait_for() waits on
    it with a deadline.
    """

    def __init__(self, upstream_url, path=None, required=None, auth=None):
        m = re.match(r"^http://([^/:]+):(\d+)(/.*)$", upstream_url)
        self.up_host, self.up_port, self.up_path = m.group(1), int(m.group(2)), m.group(3)
        self.path = path or self.up_path  # the path the proxy serves
        self.required = dict(REMOTE_WRITE_HEADERS)
        self.required.update(required or {})
        self.auth = auth
        self.cv = threading.Condition()
        self.mode = "forward"
        self.events = collections.Counter()
        self.upstream_codes = collections.Counter()
        self.violations = []
        self.answer_times = collections.defaultdict(list)  # mode -> [(arrived, answered)]
        self.conns = set()
        self.listener = None
        self.port = None
        self.stopping = False

    # --- control ---

    def start(self):
        self._listen(0)

    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, self.path)

    def _listen(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def set_mode(self, mode):
        with self.cv:
            self.mode = mode
            self.cv.notify_all()

    def go_down(self):
        with self.cv:
            lst, self.listener = self.listener, None
            conns = list(self.conns)
        # shutdown() wakes the accept() blocked in the accept thread; close() alone does not.
        try:
            lst.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        lst.close()
        for c in conns:
            self._reset(c)

    def come_up(self):
        self._listen(self.port)

    def stop(self):
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        if self.listener is not None:
            self.go_down()

    def count(self, event):
        with self.cv:
            return self.events[event]

    def wait_for(self, pred, what, deadline_s):
        """Waits until pred(events) holds (evaluated under the lock at each event)."""
        deadline = time.monotonic() + deadline_s
        with self.cv:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ic.TestError("proxy: %s not seen within %d s (events %s)"
                                       % (what, deadline_s, dict(self.events)))
                self.cv.wait(left)

    def _event(self, name, n=1):
        with self.cv:
            self.events[name] += n
            self.cv.notify_all()

    # --- connections ---

    def _accept_loop(self, lst):
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return  # closed by go_down/stop
            with self.cv:
                self.conns.add(c)
            self._event("connections")
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _reset(c):
        try:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            c.close()
        except OSError:
            pass

    def _drop(self, c, reset=False):
        with self.cv:
            self.conns.discard(c)
        if reset:
            self._reset(c)
        else:
            try:
                c.close()
            except OSError:
                pass

    def _serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        self._drop(c)  # the client closed an idle keep-alive connection
                        return
                    buf += chunk
                    if len(buf) > 1 << 20:
                        raise ValueError("request head over 1 MiB")
                head, buf = buf.split(b"\r\n\r\n", 1)
                arrived = time.monotonic()
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                with self.cv:
                    mode = self.mode
                self._event("requests")
                self._check(method, target, headers)
                if mode == "reset_mid_request":
                    self._event("reset_mid_request")
                    self._drop(c, reset=True)
                    return
                n = int(headers.get("content-length", "0"))
                while len(buf) < n:
                    chunk = c.recv(65536)
                    if not chunk:
                        self._drop(c)
                        return
                    buf += chunk
                body, buf = buf[:n], buf[n:]
                if self.auth is not None and headers.get("authorization") != self.auth:
                    self._answer(c, 401, b"unauthorized\n")
                    self._event("401")
                    continue
                if mode == "forward":
                    code, data = self._forward(headers, body)
                    self._answer(c, code, data)
                    self._event("forwarded")
                elif mode in ("500", "503", "401"):
                    self._answer(c, int(mode), b"injected fault\n")
                    self._event(mode)
                elif mode == "429":
                    self._answer(c, 429, b"slow down\n", [("Retry-After", "1")])
                    with self.cv:
                        self.answer_times["429"].append((arrived, time.monotonic()))
                    self._event("429")
                elif mode == "reset_after_request":
                    self._drop(c, reset=True)
                    self._event("reset_after_request")
                    return
                elif mode == "forward_then_reset":
                    self._forward(headers, body)
                    self._drop(c, reset=True)
                    self._event("forward_then_reset")
                    return
                elif mode == "hang":
                    self._hang(c)
                    return
                else:
                    raise ValueError("unknown mode " + mode)
        except (OSError, ValueError) as e:
            if not isinstance(e, OSError):
                with self.cv:
                    self.violations.append("proxy: %s" % e)
            self._drop(c, reset=True)

    def _hang(self, c):
        """Holds the connection unanswered until the client closes it or the mode changes."""
        self._event("hang_started")
        while True:
            with self.cv:
                if self.mode != "hang" or self.stopping:
                    break
            r, _, _ = select.select([c], [], [], 0.1)
            if r:
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._event("hang_closed_by_client")
                    self._drop(c)
                    return
        self._drop(c, reset=True)

    def _check(self, method, target, headers):
        bad = []
        if method != "POST":
            bad.append("method %s" % method)
        if target != self.path:
            bad.append("path %s" % target)
        for k, v in self.required.items():
            if headers.get(k) != v:
                bad.append("%s: %r (want %r)" % (k, headers.get(k), v))
        if bad:
            with self.cv:
                self.violations.append("; ".join(bad))

    def _forward(self, headers, body):
        hs = {k: headers[k] for k in ("content-encoding", "content-type", "user-agent",
                                      "x-prometheus-remote-write-version") if k in headers}
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=60)
        try:
            conn.request("POST", self.up_path, body=body, headers=hs)
            r = conn.getresponse()
            data = r.read()
            code = r.status
        finally:
            conn.close()
        with self.cv:
            self.upstream_codes[code] += 1
        return code, data

    @staticmethod
    def _answer(c, code, body, extra_headers=()):
        reason = http.client.responses.get(code, "Status")
        head = "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % (
            code, reason, len(body))
        for k, v in extra_headers:
            head += "%s: %s\r\n" % (k, v)
        c.sendall(head.encode("latin-1") + b"\r\n" + body)


# ---------------------------------------------------------------------------------------------
# The agent, the receiver, and the files


class Agent(at.Agent):
    """agent_test.Agent with more flags, pull-mode self-metrics and per-run logs."""

    def __init__(self, args, url, config_dir, state_dir, work, extra_flags=()):
        super().__init__(args, url, config_dir, state_dir, work)
        # Resends every 7 s: often enough to matter here, and not at every step, because the
        # status is published right after a step's commit, and a commit that queued resends
        # shows outbox_requests 1 (with --resend-interval <= 5 s every idle step does).
        self.argv += ["--resend-interval", "7s"] + list(extra_flags)
        if "--listen" not in self.argv:
            self.argv += ["--listen", "127.0.0.1:0"]
        self.metrics_port = None

    def start(self):
        self.metrics_port = None
        super().start()

    def log_text(self):
        with open(os.path.join(self.work, "agent-%d.log" % self.runs), "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def all_logs(self):
        return "".join(open(os.path.join(self.work, "agent-%d.log" % i), "rb").read()
                       .decode("utf-8", "replace") for i in range(1, self.runs + 1))

    def self_metrics(self, deadline_s=30):
        """The running agent's ccmon_agent_* samples: name -> summed value."""
        deadline = time.monotonic() + deadline_s
        while self.metrics_port is None:
            m = re.search(r'msg="serving /metrics".*\bport=(\d+)', self.log_text())
            if m:
                self.metrics_port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ic.TestError("the agent never said which port /metrics is on:\n"
                                   + self.log_tail())
            time.sleep(0.05)
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode("utf-8", "replace")
        _, samples = ic.parse_prom_text(text)
        out = collections.Counter()
        for s in samples:
            if s.name.startswith("ccmon_agent_"):
                out[s.name] += s.value
        return out

    def wait_status(self, pred, what, deadline_s):
        deadline = time.monotonic() + deadline_s
        st = None
        while time.monotonic() < deadline:
            st = self.status()
            if st is not None and pred(st):
                return st
            time.sleep(0.2)
        raise ic.TestError("%s: status never showed it within %d s; last: %r"
                           % (what, deadline_s, st))


def start_receiver(args, work):
    if args.target == "prometheus":
        prom = ic.find_tool(args.prometheus, "prometheus")
        server = ic.ServerProcess(
            "prometheus", lambda p: [prom, "--config.file=/dev/null",
                                     "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                                     "--web.listen-address=127.0.0.1:%d" % p,
                                     "--web.enable-remote-write-receiver"],
            "/-/ready", work)
    else:
        vm = ic.find_tool(args.victoria, "victoria-metrics")
        server = ic.ServerProcess(
            "victoria", lambda p: [vm, "-storageDataPath=" + os.path.join(work, "vm"),
                                   "-httpListenAddr=127.0.0.1:%d" % p, "-search.latencyOffset=0s"],
            "/health", work)
    server.start()
    return server


def fixture(args, work, name, seed_offset):
    d = os.path.join(work, name)
    a = type(args)(**vars(args))
    a.seed = args.seed + seed_offset
    ic.make_fixture(a, d)
    return d


def jsonl_files(root):
    out = []
    for dirpath, _, files in os.walk(os.path.join(root, "projects")):
        for f in files:
            if f.endswith(".jsonl"):
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def request_ids(line):
    """The message ids and request ids a line carries (its own and a nested progress copy's)."""
    try:
        v = json.loads(line)
    except ValueError:
        return set()
    out = set()
    recs = [v] if isinstance(v, dict) else []
    if recs and isinstance(v.get("data"), dict) and isinstance(v["data"].get("message"), dict):
        recs.append(v["data"]["message"])
    for r in recs:
        m = r.get("message")
        if isinstance(m, dict) and isinstance(m.get("id"), str):
            out.add(("id", m["id"]))
        if isinstance(r.get("requestId"), str):
            out.add(("req", r["requestId"]))
    return out


class Appender:
    """Appends (dst, data) items in order; some in two writes; can leave a line half-written.

    Appends stop (for a sync point, a fault phase, a restart) only at safe cuts: positions no
    request's copies straddle. Otherwise a request whose next copy comes after a pause longer
    than --settle-after would be observed in claude_cost_per_request_usd before that copy (the
    agent's live rule, docs/accounting.md A40: counted in ccmon_agent_attribution_conflicts),
    which is not what these tests are about. A line left half-written is the first line after
    the cut: it becomes readable only when its rest is written, after the pause."""

    def __init__(self, items, rng, mirror=None):
        self.items, self.rng, self.mirror = items, rng, mirror
        self.i = 0
        self.pending = None  # (dst, rest) of a line left half-written
        self.remap = {}      # dst -> the path it was renamed to
        first, last = {}, {}
        for k, (_, data) in enumerate(items):
            for rid in request_ids(data):
                first.setdefault(rid, k)
                last[rid] = k
        open_at = [0] * (len(items) + 1)  # how many requests straddle cut k (before item k)
        for rid, f in first.items():
            for k in range(f + 1, last[rid] + 1):
                open_at[k] += 1
        self.safe = [k for k in range(len(items) + 1) if open_at[k] == 0]

    def _write(self, dst, data):
        dst = self.remap.get(dst, dst)
        if self.mirror is not None:
            self.mirror.append_abs(dst, data)
            return
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "ab") as fh:
            fh.write(data)

    def finish_pending(self):
        if self.pending:
            self._write(*self.pending)
            self.pending = None

    def run(self, n, leave_partial=False, each=None):
        """Appends about n items (up to the next safe cut); with leave_partial, also the first
        part of the item after the cut."""
        self.finish_pending()
        end = next((k for k in self.safe if k >= self.i + n), len(self.items))
        while self.i < end:
            dst, data = self.items[self.i]
            self.i += 1
            if len(data) > 2 and self.rng.random() < 0.2:
                cut = self.rng.randrange(1, len(data) - 1)
                self._write(dst, data[:cut])
                self._write(dst, data[cut:])
            else:
                self._write(dst, data)
            if each:
                each(self.i)
        if leave_partial and self.i < len(self.items) and len(self.items[self.i][1]) > 2:
            dst, data = self.items[self.i]
            self.i += 1
            cut = self.rng.randrange(1, len(data) - 1)
            self._write(dst, data[:cut])
            self.pending = (dst, data[cut:])

    def left(self):
        return len(self.items) - self.i


def wait_exact(ck, server, args, config_dir, what, deadline_s=90, agent=None):
    want = at.expected_series(args, config_dir)
    t0 = time.monotonic()
    try:
        at.wait_equal(server, want, what, deadline_s)
    except ic.TestError as e:
        if agent is None or agent.proc.poll() is not None:
            raise
        m = agent.self_metrics()
        raise ic.TestError("%s (the agent's attribution conflicts: %d, requests unsettled: %d)"
                           % (e, m["ccmon_agent_attribution_conflicts_total"],
                              m["ccmon_agent_requests_unsettled"]))
    ck.check(True, "%s: every claude_* series equals replay (%d series, %.1f s)"
             % (what, len(want), time.monotonic() - t0))


def check_refused_nothing(ck, args, server, proxy, what):
    bad = {c: n for c, n in proxy.upstream_codes.items() if c // 100 != 2}
    ck.eq("%s: non-2xx answers the receiver gave the proxy" % what, bad, {})
    if args.target == "prometheus":
        ck.eq("%s: Prometheus's write handler 4xx/5xx (its /metrics)" % what,
              ic.prometheus_write_refusals(server.url("/")), {})
    ck.eq("%s: header violations on write requests" % what, proxy.violations[:5], [])


def check_agent_kept_everything(ck, agent, what):
    m = agent.self_metrics()
    ck.eq("%s: ccmon_agent_samples_rejected_total" % what, m["ccmon_agent_samples_rejected_total"],
          0.0)
    ck.eq("%s: ccmon_agent_outbox_dropped_samples_total" % what,
          m["ccmon_agent_outbox_dropped_samples_total"], 0.0)
    ck.eq("%s: ccmon_agent_attribution_conflicts_total" % what,
          m["ccmon_agent_attribution_conflicts_total"], 0.0)
    return m


def check_drained(ck, agent, what):
    st = agent.wait_status(lambda s: s.get("outbox_requests") == 0, what + ": outbox drained", 60)
    ck.eq("%s: outbox_requests" % what, st.get("outbox_requests"), 0)
    return st


def restart(ck, agent, how, what):
    if how == "term":
        took = agent.stop()
        ck.check(took < 5.0, "%s: SIGTERM stops the agent within 5 s (%.2f s)" % (what, took))
    else:
        agent.kill()
        ck.info("%s: SIGKILL" % what)
    agent.start()


# ---------------------------------------------------------------------------------------------
# Scenario: the network


def scenario_network(args, ck, work):
    config = os.path.join(work, "claude")
    os.makedirs(os.path.join(config, "projects"))
    a_dir, b_dir = fixture(args, work, "a", 0), fixture(args, work, "b", 1000)
    for entry in os.listdir(os.path.join(a_dir, "projects")):
        shutil.copytree(os.path.join(a_dir, "projects", entry),
                        os.path.join(config, "projects", "a-" + entry))
    appends = at.appends_in_time_order(b_dir, config, "b-")
    rng = random.Random(args.seed)
    long_phases = args.target == "prometheus"

    server = start_receiver(args, work)
    proxy = FaultProxy(server.url("/api/v1/write"))
    proxy.start()
    agent = Agent(args, proxy.url(), config, os.path.join(work, "agent-state"), work)
    app = Appender(appends, rng)
    chunk = max(1, len(appends) // 14)
    try:
        agent.start()
        wait_exact(ck, server, args, config, "history at start (through the proxy)")
        app.run(chunk, leave_partial=True)
        wait_exact(ck, server, args, config, "first appends, a partial line pending")

        def fault_phase(mode, need, restart_how=None, deadline_s=60):
            proxy.set_mode(mode)
            before = proxy.count(mode)
            app.run(chunk, leave_partial=rng.random() < 0.5)
            proxy.wait_for(lambda ev: ev[mode] >= before + need,
                           "%d answers in mode %s" % (need, mode), deadline_s)
            ck.check(True, "phase %s: %d faults injected" % (mode, proxy.count(mode) - before))
            if restart_how:
                restart(ck, agent, restart_how, "phase %s" % mode)
                # The restarted agent meets the same fault before it ends.
                before = proxy.count(mode)
                app.run(max(1, chunk // 4))
                proxy.wait_for(lambda ev: ev[mode] >= before + 1,
                               "a fault in mode %s after the restart" % mode, deadline_s)

        fault_phase("500", 3, "term")
        fault_phase("503", 3)
        fault_phase("429", 3)
        # Retry-After: 1 on 429: every retry of the same request waits at least that long.
        times = proxy.answer_times["429"]
        gaps = [b[0] - a[1] for a, b in zip(times, times[1:])]
        ck.check(gaps and min(gaps) >= 0.95,
                 "429 with Retry-After: 1: the agent waited >= 1 s before each retry (min gap "
                 "%.3f s over %d retries)" % (min(gaps) if gaps else -1, len(gaps)))
        fault_phase("reset_after_request", 3, "kill")
        fault_phase("reset_mid_request", 3)
        fault_phase("forward_then_reset", 2, "kill")
        proxy.set_mode("forward")
        app.run(chunk)
        wait_exact(ck, server, args, config, "after 500/503/429/resets and 3 restarts")
        check_refused_nothing(ck, args, server, proxy, "after the short faults")

        if long_phases:
            # Accept and never answer: SIGTERM must still stop the agent within 5 s; the next
            # agent's request times out (its HTTP timeout, 30 s), and the status says so.
            proxy.set_mode("hang")
            before = proxy.count("hang_started")
            app.run(chunk)
            proxy.wait_for(lambda ev: ev["hang_started"] > before, "a hung request", 30)
            closed = proxy.count("hang_closed_by_client")
            restart(ck, agent, "term", "a request hanging")
            # The stopped agent's connection closes with it; only then watch the new agent's.
            proxy.wait_for(lambda ev: ev["hang_closed_by_client"] > closed,
                           "the stopped agent's hung connection closed", 30)
            closed = proxy.count("hang_closed_by_client")
            before = proxy.count("hang_started")
            app.run(max(1, chunk // 4), leave_partial=True)
            proxy.wait_for(lambda ev: ev["hang_started"] > before, "a hung request", 30)
            t0 = time.monotonic()
            proxy.wait_for(lambda ev: ev["hang_closed_by_client"] > closed,
                           "the agent giving up on a hung request", 90)
            took = time.monotonic() - t0
            ck.check(took > 20, "the agent gave up on a hung request after its timeout (%.1f s)"
                     % took)
            st = agent.wait_status(
                lambda s: s.get("consecutive_push_failures", 0) >= 1
                and s.get("last_push_status") not in ("", "ok"), "hang", 30)
            ck.check(True, "status while hanging: last_push_status %r, consecutive failures %d"
                     % (st["last_push_status"], st["consecutive_push_failures"]))
            ck.check(st.get("outbox_requests", 0) > 0,
                     "status while hanging: outbox holds the unsent requests (%r)"
                     % st.get("outbox_requests"))
            ck.check("push failed" in agent.log_text(), "the log says the push failed (hang)")

            # Down: connection refused; the status names it; SIGTERM and a start while down.
            proxy.go_down()
            proxy.set_mode("forward")
            app.run(chunk)
            st = agent.wait_status(
                lambda s: s.get("consecutive_push_failures", 0) >= 1
                and "refused" in s.get("last_push_status", "").lower(), "target down", 90)
            ck.check(True, "status while down: last_push_status %r, consecutive failures %d"
                     % (st["last_push_status"], st["consecutive_push_failures"]))
            ck.check("push failed" in agent.log_text(), "the log says the push failed (down)")
            restart(ck, agent, "term", "target down")
            app.run(chunk, leave_partial=True)
            agent.wait_status(lambda s: s.get("outbox_requests", 0) > 0,
                              "a backlog while down after a restart", 30)
            proxy.come_up()

        proxy.set_mode("forward")
        app.run(app.left())
        app.finish_pending()
        ck.info("%d lines of fixture B appended" % len(appends))
        wait_exact(ck, server, args, config, "all faults over", 120)
        check_refused_nothing(ck, args, server, proxy, "at the end")
        check_drained(ck, agent, "at the end")
        st = agent.wait_status(lambda s: s.get("last_push_status") == "ok"
                               and s.get("consecutive_push_failures") == 0,
                               "recovered status", 30)
        ck.check(True, "status recovered: last_push_status ok, 0 consecutive failures")
        check_agent_kept_everything(ck, agent, "at the end")
        ck.info("proxy events: %s" % dict(sorted(proxy.events.items())))
        ck.info("receiver answers relayed: %s" % dict(proxy.upstream_codes))
        took = agent.stop()
        ck.check(took < 5.0, "SIGTERM stops the agent within 5 s (%.2f s)" % took)
    except ic.TestError:
        print(agent.log_tail())
        raise
    finally:
        if agent.proc and agent.proc.poll() is None:
            agent.stop()
        proxy.stop()
        server.stop()


# ---------------------------------------------------------------------------------------------
# Scenario: files renamed, replaced, truncated and deleted


class MirroredTree:
    """The live config dir and its SHADOW (see the module docstring), changed together."""

    def __init__(self, live, shadow):
        self.live, self.shadow = live, shadow
        self.gone = 0

    def lp(self, rel):
        return os.path.join(self.live, rel)

    def sp(self, rel):
        return os.path.join(self.shadow, rel)

    def _archive(self, rel):
        """Keeps the shadow's current content of rel under another name in the same dir."""
        src = self.sp(rel)
        if os.path.exists(src):
            self.gone += 1
            os.rename(src, src[:-len(".jsonl")] + ".gone-%d.jsonl" % self.gone)

    def append_abs(self, live_path, data):
        rel = os.path.relpath(live_path, self.live)
        for p in (self.lp(rel), self.sp(rel)):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "ab") as fh:
                fh.write(data)

    def rename(self, rel_from, rel_to):
        """Within the tree (to a name nothing holds): the same content, a new name."""
        os.rename(self.lp(rel_from), self.lp(rel_to))
        os.rename(self.sp(rel_from), self.sp(rel_to))

    def move_out(self, rel, outside):
        os.rename(self.lp(rel), os.path.join(outside, os.path.basename(rel)))
        self._archive(rel)

    def delete(self, rel):
        os.unlink(self.lp(rel))
        self._archive(rel)

    def recreate(self, rel, data):
        """Deleted, then a new file with other content under the same name."""
        os.unlink(self.lp(rel))
        with open(self.lp(rel), "wb") as fh:
            fh.write(data)
        self._archive(rel)
        with open(self.sp(rel), "wb") as fh:
            fh.write(data)

    def rename_over(self, rel_src, rel_dst):
        """Another file renamed over rel_dst (its old content vanishes)."""
        os.replace(self.lp(rel_src), self.lp(rel_dst))
        self._archive(rel_dst)
        os.replace(self.sp(rel_src), self.sp(rel_dst))

    def editor_save(self, rel, more):
        """A copy with more lines written beside it and renamed over it (an editor's save)."""
        tmp = self.lp(rel) + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(read(self.lp(rel)) + more)
        os.replace(tmp, self.lp(rel))
        with open(self.sp(rel), "ab") as fh:  # the old content is a prefix of the new one
            fh.write(more)

    def rewrite_in_place(self, rel, data):
        """Truncated to 0 and rewritten with other content, same inode."""
        with open(self.lp(rel), "r+b") as fh:
            fh.truncate(0)
            fh.write(data)
        self._archive(rel)
        with open(self.sp(rel), "wb") as fh:
            fh.write(data)

    def truncate_to(self, rel, size):
        with open(self.lp(rel), "r+b") as fh:
            fh.truncate(size)
        old = read(self.sp(rel))
        self._archive(rel)
        with open(self.sp(rel), "wb") as fh:
            fh.write(old[:size])


def scenario_files(args, ck, work):
    live = os.path.join(work, "claude")
    shadow = os.path.join(work, "shadow")
    outside = os.path.join(work, "outside")
    os.makedirs(outside)
    a_dir = fixture(args, work, "a", 0)
    b_dir = fixture(args, work, "b", 1000)
    c_dir = fixture(args, work, "c", 2000)
    for d in (live, shadow):
        shutil.copytree(os.path.join(a_dir, "projects"), os.path.join(d, "projects"))
    tree = MirroredTree(live, shadow)
    # Distinct files of A (main transcripts, largest first) for each role.
    a_files = sorted((f for f in jsonl_files(live) if "/subagents/" not in f),
                     key=lambda f: -os.path.getsize(tree.lp(f)))
    roles = iter(a_files)
    pick = lambda: next(roles)  # noqa: E731
    c_contents = [read(os.path.join(c_dir, f)) for f in jsonl_files(c_dir)
                  if "/subagents/" not in f]
    c_iter = iter(c_contents)
    rng = random.Random(args.seed)
    appends = at.appends_in_time_order(b_dir, live, "b-")
    app = Appender(appends, rng, mirror=tree)
    third = len(appends) // 3

    server = start_receiver(args, work)
    agent = Agent(args, server.url("/api/v1/write"), live, os.path.join(work, "agent-state"),
                  work)
    try:
        agent.start()
        wait_exact(ck, server, args, shadow, agent=agent, what="history at start")

        # 1. Renames while lines are appended: an A file, and a B file being appended to (its
        #    later lines go to the new name).
        r1 = pick()
        renamed_b = []

        def renames(i):
            if i == third // 3:
                tree.rename(r1, r1[:-len(".jsonl")] + "-renamed.jsonl")
            if i == 2 * third // 3:
                dst = appends[i - 1][0]
                new = dst[:-len(".jsonl")] + "-moved.jsonl"
                tree.rename(os.path.relpath(dst, live), os.path.relpath(new, live))
                app.remap[dst] = new
                renamed_b.append(new)

        app.run(third, leave_partial=True, each=renames)
        ck.check(bool(renamed_b), "a file being appended to was renamed mid-append")
        wait_exact(ck, server, args, shadow, agent=agent, what="renames while appending")

        # 2. While the agent runs. First a truncation to a prefix of whole lines (same head):
        #    continued with other lines only once the agent has seen it shrink.
        t2 = pick()
        base = agent.self_metrics()["ccmon_agent_files_truncated_total"]
        data = read(tree.lp(t2))
        cut = data.rfind(b"\n", 0, len(data) // 2) + 1
        tree.truncate_to(t2, cut)
        deadline = time.monotonic() + 30
        while agent.self_metrics()["ccmon_agent_files_truncated_total"] <= base:
            if time.monotonic() > deadline:
                raise ic.TestError("the agent never reported %s truncated" % t2)
            time.sleep(0.1)
        ck.check(True, "the agent saw a file truncated to a prefix (same head)")
        tree.append_abs(tree.lp(t2), next(c_iter))
        d1, p1, q1, q2, t1, e1, o1 = (pick() for _ in range(7))
        tree.delete(d1)
        tree.recreate(p1, next(c_iter))
        tree.rename_over(q2, q1)
        tree.rewrite_in_place(t1, next(c_iter))
        tree.editor_save(e1, next(c_iter))
        tree.move_out(o1, outside)
        app.run(third // 2)
        wait_exact(ck, server, args, shadow,
                   "deleted, recreated, renamed over, rewritten in place, editor-saved, moved "
                   "out, truncated and continued (agent running)", agent=agent)
        m = agent.self_metrics()
        ck.check(m["ccmon_agent_files_replaced_total"] + m["ccmon_agent_files_truncated_total"]
                 >= 3, "the agent counted replaced/truncated files (%d, %d)"
                 % (m["ccmon_agent_files_replaced_total"], m["ccmon_agent_files_truncated_total"]))
        check_agent_kept_everything(ck, agent, "files, agent running")

        # 3. While the agent is stopped (SIGTERM).
        took = agent.stop()
        ck.check(took < 5.0, "SIGTERM stops the agent within 5 s (%.2f s)" % took)
        d2, p2, q3, q4, t3, r2 = (pick() for _ in range(6))
        tree.delete(d2)
        tree.recreate(p2, next(c_iter))
        tree.rename_over(q4, q3)
        tree.rewrite_in_place(t3, next(c_iter))
        tree.rename(r2, r2[:-len(".jsonl")] + "-while-stopped.jsonl")
        app.run(third - third // 2, leave_partial=True)
        agent.start()
        wait_exact(ck, server, args, shadow, agent=agent, what="the same while the agent was stopped")

        # 4. Around a SIGKILL: appends, a kill mid-way, a replace and a delete while it is dead.
        p3, d3 = pick(), pick()
        rest = app.left()
        app.run(rest // 2)
        agent.kill()
        tree.recreate(p3, next(c_iter))
        tree.delete(d3)
        agent.start()
        app.run(app.left())
        app.finish_pending()
        wait_exact(ck, server, args, shadow, agent=agent, what="a SIGKILL, a replace and a delete while dead")

        # The expectation really is above the live files' own figures (a deleted file's
        # requests stay counted).
        live_cost = sum(v for k, v in at.expected_series(args, live).items()
                        if k[0] == "claude_cost_usd_total")
        shadow_cost = sum(v for k, v in at.expected_series(args, shadow).items()
                          if k[0] == "claude_cost_usd_total")
        ck.check(shadow_cost > live_cost, "the shadow's cost (%.6f) exceeds the live files' "
                 "(%.6f): vanished content stays counted" % (shadow_cost, live_cost))
        logs = agent.all_logs()
        unnamed = [d for d in (d1, d2, d3) if "%s: deleted (" % tree.lp(d) not in logs]
        ck.eq("deleted files the agent's log does not name", unnamed, [])
        if args.target == "prometheus":
            ck.eq("Prometheus's write handler 4xx/5xx (its /metrics)",
                  ic.prometheus_write_refusals(server.url("/")), {})
        check_agent_kept_everything(ck, agent, "files, at the end")
        check_drained(ck, agent, "files, at the end")
        took = agent.stop()
        ck.check(took < 5.0, "SIGTERM stops the agent within 5 s (%.2f s)" % took)
    except ic.TestError:
        print(agent.log_tail())
        raise
    finally:
        if agent.proc and agent.proc.poll() is None:
            agent.stop()
        server.stop()


# ---------------------------------------------------------------------------------------------
# Scenario: a Mimir-style target (tenant header, bearer token, basic auth)


def scenario_auth(args, ck, work):
    config = os.path.join(work, "claude")
    os.makedirs(os.path.join(config, "projects"))
    a_dir, b_dir = fixture(args, work, "a", 0), fixture(args, work, "b", 1000)
    for entry in os.listdir(os.path.join(a_dir, "projects")):
        shutil.copytree(os.path.join(a_dir, "projects", entry),
                        os.path.join(config, "projects", "a-" + entry))
    appends = at.appends_in_time_order(b_dir, config, "b-")
    rng = random.Random(args.seed)
    app = Appender(appends, rng)
    part = len(appends) // 3

    token, wrong, password = "tok-A.9f3c", "tok-Z.0000", "pw-7d1e b"
    secrets = os.path.join(work, "secrets")
    os.makedirs(secrets)
    token_file, wrong_file, pw_file = (os.path.join(secrets, n) for n in ("token", "wrong", "pw"))
    for path, text in ((token_file, token + "\n"), (wrong_file, wrong + "\n"),
                       (pw_file, password + "\r\n")):
        with open(path, "w") as fh:
            fh.write(text)

    server = start_receiver(args, work)
    # The proxy serves Mimir's path and forwards to the receiver's.
    proxy = FaultProxy(server.url("/api/v1/write"), path="/api/v1/push",
                       required={"x-scope-orgid": "tenant-1"}, auth="Bearer " + token)
    proxy.start()
    state = os.path.join(work, "agent-state")
    tenant = ["--header", "X-Scope-OrgID: tenant-1"]
    agent = Agent(args, proxy.url(), config, state, work,
                  tenant + ["--bearer-token-file", token_file])
    try:
        # `test` with a wrong token: refused, and it says the credentials are wrong.
        p = subprocess.run([args.agent, "test", "--url", proxy.url(), "--bearer-token-file",
                            wrong_file] + tenant + ["--state-dir", state],
                           capture_output=True, timeout=30,
                           env=dict(os.environ, HOME=work,
                                    XDG_CONFIG_HOME=os.path.join(work, "cfg")))
        text = (p.stdout + p.stderr).decode("utf-8", "replace")
        ck.check(p.returncode == 1 and "401" in text and "credential" in text.lower(),
                 "`ccmon-agent test` with a wrong token: exit 1 naming 401 and the credentials",
                 "exit %d: %s" % (p.returncode, text[-500:]))
        ck.check(wrong not in text, "`ccmon-agent test` does not print the token")
        p = subprocess.run([args.agent, "test", "--url", proxy.url(), "--bearer-token-file",
                            token_file] + tenant + ["--state-dir", state],
                           capture_output=True, timeout=30,
                           env=dict(os.environ, HOME=work,
                                    XDG_CONFIG_HOME=os.path.join(work, "cfg")))
        ck.eq("`ccmon-agent test` with the right token and tenant: exit status", p.returncode, 0)

        agent.start()
        wait_exact(ck, server, args, config, "bearer token + X-Scope-OrgID: history")
        app.run(part, leave_partial=True)
        wait_exact(ck, server, args, config, "bearer token + X-Scope-OrgID: appends")
        ck.check(proxy.count("401") >= 1, "the wrong token was answered 401 (%d)"
                 % proxy.count("401"))

        # The token is rotated at the target: 401 for a while, then accepted again. The agent
        # keeps the refused entries and retries them like an outage: nothing is dropped.
        proxy.auth = "Bearer tok-rotated"
        before = proxy.count("401")
        app.run(part // 2)
        proxy.wait_for(lambda ev: ev["401"] >= before + 3, "3 answers 401 while rotated", 60)
        st = agent.wait_status(lambda s: s.get("outbox_requests", 0) > 0,
                               "entries kept while refused with 401", 30)
        ck.check(True, "while refused with 401: the outbox keeps the entries (%d), %d refusals"
                 % (st["outbox_requests"], proxy.count("401") - before))
        proxy.auth = "Bearer " + token
        wait_exact(ck, server, args, config, "401 for a while, then accepted", agent=agent)
        check_agent_kept_everything(ck, agent, "after the 401 phase")

        check_drained(ck, agent, "bearer run")
        took = agent.stop()
        ck.check(took < 5.0, "SIGTERM stops the agent within 5 s (%.2f s)" % took)

        # Another run, same state: basic auth (no tenant header required now).
        proxy.required.pop("x-scope-orgid")
        proxy.auth = "Basic " + base64.b64encode(("ccmon:" + password).encode()).decode()
        agent = Agent(args, proxy.url(), config, state, work,
                      ["--basic-auth-user", "ccmon", "--basic-auth-password-file", pw_file])
        agent.runs = 1  # logs continue as agent-2.log
        agent.start()
        app.run(app.left())
        app.finish_pending()
        wait_exact(ck, server, args, config, "basic auth: every line")
        check_refused_nothing(ck, args, server, proxy, "auth")
        check_agent_kept_everything(ck, agent, "basic auth run")
        check_drained(ck, agent, "basic auth run")
        logs = agent.all_logs()
        ck.check(token not in logs and password not in logs and "tok-rotated" not in logs,
                 "no token or password in the agent's logs")
        ck.info("proxy events: %s" % dict(sorted(proxy.events.items())))
        took = agent.stop()
        ck.check(took < 5.0, "SIGTERM stops the agent within 5 s (%.2f s)" % took)
    except ic.TestError:
        print(agent.log_tail())
        raise
    finally:
        if agent.proc and agent.proc.poll() is None:
            agent.stop()
        proxy.stop()
        server.stop()


def body(args, ck):
    if args.target == "victoria" and args.scenario != "network":
        raise ic.TestError("--target victoria is for --scenario network")
    work = tempfile.mkdtemp(prefix="ccmon-agent-faults-")
    ok = False
    try:
        {"network": scenario_network, "files": scenario_files,
         "auth": scenario_auth}[args.scenario](args, ck, work)
        ok = not ck.failed
    finally:
        if ok and os.environ.get("CCMON_KEEP_WORK") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            ck.info("work dir kept: %s" % work)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("agent_faults_test", body, extra))
