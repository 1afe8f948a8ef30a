#!/usr/bin/env python3
"""An agent that lost its state resumes from the gateway's mirror: totals unchanged
(issue 8, acceptance "an agent whose state was deleted (and some transcripts too) → totals
unchanged"; docs/agent-design.md "Resume").

A keyed gateway (`serve --admin-token-file F --forward PROMETHEUS`) and `ccmon-agent start
--foreground --url GATEWAY/api/v1/write --key KEY --state-mirror-interval 1s`:
  1. a generated history at start, then the first half of a second one appended in time order:
     the gateway and Prometheus hold replay's series over every transcript exactly;
  2. the agent is stopped (--scenario sigterm: SIGTERM, whose last upload mirrors the final
     state; --scenario sigkill: SIGKILL once the mirror moved on after the gateway held
     everything, so the mirror may be a little behind what the gateway holds), its state dir is
     DELETED, and so are the oldest third of the transcripts; a new file holds copies of a
     deleted file's lines (a resumed session's copies, already counted), and the rest of the
     second history is appended;
  3. the agent starts again on an empty state dir while the gateway is down: its status says it
     waits for the gateway and nothing is read; the gateway is restarted on its port, the agent
     fetches the mirror (logged; counted once), and
     (sigkill) is SIGKILLed right after the restore and started again. The gateway's /metrics
     and Prometheus then hold replay's series over EVERY transcript ever written (the deleted
     ones included, the copies once) exactly, and no counter ever went down: resets() is 0 in
     Prometheus and ccmon_gateway_series_resets_total is 0; the mirror follows the resumed
     state (a snapshot after its catch-up, then deltas); uploads replayed by hand with the same
     stream and sequence are acknowledged and not applied, a delta after a gap is 409;
  4. the same agent binary against a plain Prometheus (--key given): the probe says "not a
     ccmon-gateway", no mirror is sent, and its samples are accepted.
No write refused by Prometheus or the gateway, no forwarded sample failed.
"""

import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import gateway_test as gt  # noqa: E402
import gateway_forward_test as gf  # noqa: E402
import gateway_devices_test as gd  # noqa: E402

NAME = "laptop-r"
STATE_PATH = "/api/v1/agent/state"


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--scenario", choices=["sigterm", "sigkill"], default="sigterm")
    # A small gateway body limit: the state's snapshot no longer fits one body, so it goes in
    # parts, made smaller after the first 413s (the agent's writes are kept small to fit).
    ap.add_argument("--max-body-bytes", type=int, default=0)


class ResumeGateway(ic.FixedPortProcess, gt.Gateway):
    def __init__(self, args, work, data_dir, token_file, forward):
        ic.ServerProcess.__init__(
            self, "gateway",
            lambda p: [args.gateway, "serve", "--listen", "127.0.0.1:%d" % p, "--data-dir",
                       data_dir, "--admin-token-file", token_file, "--forward", forward,
                       "--forward-batch-send-deadline", "1s"] +
                      (["--max-body-bytes", str(args.max_body_bytes)]
                       if args.max_body_bytes else []), "/readyz", work)


def mirror_seq(gw, key):
    """The gateway's state sequence of the device's mirror (GET /api/v1/agent/state), or None."""
    req = urllib.request.Request(gw.url(STATE_PATH), headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status == 204:
                return None
            r.read()
            return int(r.headers["X-Ccmon-State-Seq"])
    except urllib.error.HTTPError as e:
        raise ic.TestError("GET %s: HTTP %d" % (STATE_PATH, e.code))


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def snappy_literal(data):
    """A snappy raw block holding `data` as one literal (the stdlib has no snappy)."""
    n = len(data)
    assert 0 < n < 65536
    if n - 1 < 60:
        tag = bytes([(n - 1) << 2])
    elif n - 1 < 256:
        tag = bytes([60 << 2, n - 1])
    else:
        tag = bytes([61 << 2, (n - 1) & 0xFF, (n - 1) >> 8])
    return _varint(n) + tag + data


def state_body(records):
    """A state-records body (docs/store-format.md "State mirror") of puts."""
    raw = b"\x01"
    for k, v in records:
        raw += b"\x01" + _varint(len(k)) + k + _varint(len(v)) + v
    return snappy_literal(raw)


def post_state(gw, key, epoch, seq, full, body):
    headers = {"Authorization": "Bearer " + key, "X-Ccmon-Stream": epoch,
               "X-Ccmon-State-Seq": seq, "Content-Type": "application/x-ccmon-state"}
    if full:
        headers["X-Ccmon-State-Full"] = "1"
    return gd.post(gw.url(STATE_PATH), body, headers)[0]


def mirror_head(gw, key):
    """(epoch, state sequence) of the device's mirror."""
    req = urllib.request.Request(gw.url(STATE_PATH), headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        return r.headers["X-Ccmon-Stream"], int(r.headers["X-Ccmon-State-Seq"])


def mirror_writes(truth, config, appends):
    """Appends go to the live config dir and to the ground truth dir alike."""
    out = []
    for dst, data in appends:
        out.append((dst, data))
        out.append((os.path.join(truth, os.path.relpath(dst, config)), data))
    return out


def first_timestamp(path):
    with open(path, "rb") as fh:
        for line in fh:
            ts = at.timestamp_of(line)
            if ts:
                return ts
    return ""


def wait_log(path_fn, needle, what, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with open(path_fn(), "rb") as fh:
            if needle in fh.read():
                return
        time.sleep(0.1)
    raise ic.TestError("timed out waiting for the agent to log: " + what)


def prometheus_resets(prom, device):
    """The counter resets Prometheus sees in the last hour over every claude_ counter of the
    device (one query per metric name: resets() drops the name), and how many names."""
    names = set()
    for r in at.query(prom, '{__name__=~"claude_.+(_total|_bucket|_count|_sum)",device="%s"}'
                      % device):
        names.add(r["metric"]["__name__"])
    total = 0.0
    for n in sorted(names):
        r = at.query(prom, 'sum(resets(%s{device="%s"}[1h]))' % (n, device))
        total += float(r[0]["value"][1]) if r else 0.0
    return total, len(names)


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    prom_bin = ic.find_tool(args.prometheus, "prometheus")
    args.backfill = False
    work = tempfile.mkdtemp(prefix="ccmon-gw-resume-it-")
    try:
        run_test(args, ck, work, prom_bin)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_test(args, ck, work, prom_bin):
    config, appends = at.history_and_appends(args, work)
    truth = os.path.join(work, "truth")  # every transcript ever written: the ground truth
    shutil.copytree(config, truth)
    half = gf.quiet_split(appends)
    if half is None:
        raise ic.TestError("the fixture has no split point between messages")
    token_file = os.path.join(work, "admin-token")
    with open(token_file, "w") as fh:
        fh.write("it-admin-token-0123456789\n")
    prom = ic.FixedPortProcess(
        "prometheus", lambda p: [prom_bin, "--config.file=/dev/null",
                                 "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % p,
                                 "--web.enable-remote-write-receiver"], "/-/ready", work)
    prom.start()
    gw = ResumeGateway(args, work, os.path.join(work, "gw-data"), token_file,
                       prom.url("/api/v1/write"))
    gw.start()
    agent = plain = None
    try:
        out, _ = ic.run([args.gateway, "device", "add", NAME, "--server", gw.url(""),
                         "--admin-token-file", token_file], "device add --server")
        key = out.strip().splitlines()[-1]
        state_dir = os.path.join(work, "agent-state")
        agent = at.Agent(args, gw.url("/api/v1/write"), config, state_dir, work)
        agent.argv += ["--key", key, "--state-mirror-interval", "1s", "--resend-interval", "1s"]
        if args.max_body_bytes:
            agent.argv += ["--max-samples-per-send", "50"]
        # A request's copies are appended line by line; a stall of the appender longer than
        # --settle-after between two copies (a loaded CI machine) settles the request early, the
        # documented live-rule conflict (docs/accounting.md A40: its cost-per-request _sum then
        # differs from replay's). The agent tests' 2 s leaves too little margin for this test,
        # which runs beside the heaviest ones; 10 s only lengthens the final settle.
        i = agent.argv.index("--settle-after")
        agent.argv[i + 1] = "10s"

        def want_now():
            return gd.relabel(at.expected_series(args, truth), NAME)

        def check_exact(what):
            want = want_now()
            t0 = time.monotonic()
            gt.wait_gateway_equal(gw, want, what + " (gateway /metrics)", deadline_s=120)
            at.wait_equal(prom, want, what + " (Prometheus)", deadline_s=120, devices=NAME)
            ck.check(True, "%s: the gateway and Prometheus hold replay's %d series over every "
                     "transcript exactly (%.1f s)" % (what, len(want), time.monotonic() - t0))

        # 1. History and the first half of the appends.
        agent.start()
        # The appends only once the catch-up is over (Agent.wait_caught_up): these lines carry
        # the fixture's past timestamps, and a request whose first copy a slow (loaded) catch-up
        # read before its later copies were appended would be settled by event time, its
        # cost-per-request _sum then differing from replay's. (Live lines carry the present
        # time, and settle by the quiet rule.)
        agent.wait_caught_up()
        gf.append(mirror_writes(truth, config, appends[:half]), 0, 2 * half)
        check_exact("before the loss")
        gf.wait_until(lambda: agent.self_metrics().get("ccmon_agent_state_mirror_uploads_total",
                                                       0.0) > 0,
                      "the agent's ccmon_agent_state_mirror_uploads_total to count uploads")
        ck.eq("the agent's failed state uploads (ccmon_agent_state_mirror_failures_total)",
              agent.self_metrics().get("ccmon_agent_state_mirror_failures_total", 0.0), 0.0)
        seq0 = mirror_seq(gw, key)
        ck.check(seq0 is not None and seq0 > 0, "the gateway holds a mirror of the agent's "
                 "state (state sequence %s)" % seq0)
        if args.max_body_bytes:
            with open(os.path.join(work, "agent-%d.log" % agent.runs), "rb") as fh:
                log = fh.read()
            ck.check(b"sending smaller parts" in log,
                     "with --max-body-bytes %d the snapshot went in smaller parts (agent log)"
                     % args.max_body_bytes)

        # 2. Stop, lose the state dir and the oldest transcripts.
        if args.scenario == "sigterm":
            took = agent.stop()
            ck.check(took < 6, "SIGTERM: the agent stops (with its last upload) in %.1f s" % took)
        else:
            gf.wait_until(lambda: (mirror_seq(gw, key) or 0) >= seq0 + 2,
                          "the mirror to move on after the gateway held everything")
            agent.kill()
        shutil.rmtree(state_dir)
        files = []
        for dirpath, _, names in os.walk(os.path.join(config, "projects")):
            files += [os.path.join(dirpath, n) for n in names if n.endswith(".jsonl")]
        files.sort(key=lambda p: (first_timestamp(p), p))
        deleted = files[:max(1, len(files) // 3)]
        copied_from = deleted[-1]
        with open(copied_from, "rb") as fh:
            copy = fh.read()
        copy_rel = os.path.join("projects", "c-resumed", "copy-of-" + os.path.basename(copied_from))
        for root in (config, truth):
            os.makedirs(os.path.join(root, "projects", "c-resumed"), exist_ok=True)
            with open(os.path.join(root, copy_rel), "wb") as fh:
                fh.write(copy)
        for p in deleted:
            os.remove(p)
        ck.info("deleted the state dir and %d of %d transcripts; a new file copies %d bytes of "
                "a deleted one" % (len(deleted), len(files), len(copy)))
        rest = mirror_writes(truth, config, appends[half:])
        gf.append(rest, 0, len(rest))

        # 3. Start on an empty state while the gateway is down: the agent waits and counts
        # nothing (status says so); then the gateway is back on its port: resume.
        gw.sigterm()
        agent.start()
        deadline = time.monotonic() + 30
        st = None
        while time.monotonic() < deadline:
            st = agent.status()
            if st and "waiting for the gateway" in st.get("last_error", ""):
                break
            time.sleep(0.2)
        ck.check(st is not None and "waiting for the gateway" in st.get("last_error", ""),
                 "gateway down: the agent's status says it waits for the gateway", repr(st))
        ck.check(st is not None and st.get("lines_read", -1) == 0 and st.get("caught_up") == 0,
                 "gateway down: nothing is read or counted meanwhile", repr(st))
        gw.start()
        wait_log(lambda: os.path.join(work, "agent-%d.log" % agent.runs),
                 b"resume: the state was restored", "the restore from the gateway's mirror")
        if args.scenario == "sigkill":
            agent.kill()  # mid-resume: restored, the catch-up under way or just done
            agent.start()
        check_exact("after the resume")
        # (The gateway's counters started again with its restart.)
        fetches = gw.self_metric("ccmon_gateway_agent_state_fetches_total")
        ck.eq("states handed back to the agent (ccmon_gateway_agent_state_fetches_total; a "
              "restart after the restore does not fetch again)", fetches, 1.0)
        def applied():
            return gw.self_metric("ccmon_gateway_agent_state_uploads_total", outcome="applied")
        gf.wait_until(lambda: applied() >= 2, "the mirror to follow the resumed state")
        ck.check(True, "the mirror follows the resumed state (%d uploads applied: a snapshot "
                 "after the catch-up, then deltas)" % applied())
        ck.eq("uploads refused as too large",
              gw.self_metric("ccmon_gateway_agent_state_uploads_total", outcome="too_large"), 0.0)
        ck.eq("counter resets the gateway saw",
              gw.self_metric("ccmon_gateway_series_resets_total"), 0.0)
        resets, names = prometheus_resets(prom, NAME)
        ck.check(names > 5, "Prometheus holds the device's counters (%d names)" % names)
        ck.eq("counter resets in Prometheus (resets() over every claude_ counter)", resets, 0.0)
        ck.eq("write requests Prometheus refused", at.write_rejections(prom, "prometheus"), 0.0)
        ck.eq("write requests the gateway refused", gt.refused_writes(gw), 0.0)
        d = prom.url("/api/v1/write")
        ck.eq("forwarded samples refused for good",
              gw.self_metric("ccmon_gateway_forward_samples_failed_total", destination=d), 0.0)
        agent.stop()

        # Uploads replayed by hand (the same stream and sequence): acknowledged, not applied.
        epoch, seq = mirror_head(gw, key)
        dup0 = gw.self_metric("ccmon_gateway_agent_state_uploads_total", outcome="duplicate")
        bogus = state_body([(b"cbogus", b"x")])
        ck.eq("a snapshot replayed at the stored sequence",
              post_state(gw, key, epoch, str(seq), True, bogus), 204)
        ck.eq("a delta replayed at the stored sequence",
              post_state(gw, key, epoch, "%d-%d" % (seq, seq), False, bogus), 204)
        ck.eq("duplicates counted",
              gw.self_metric("ccmon_gateway_agent_state_uploads_total", outcome="duplicate")
              - dup0, 2.0)
        ck.eq("a delta after a gap", post_state(gw, key, epoch, "%d-%d" % (seq + 5, seq + 5),
                                                False, bogus), 409)
        ck.eq("the mirror is unchanged by them", mirror_head(gw, key), (epoch, seq))
        ck.eq("an upload without a key", post_state(gw, "", epoch, str(seq + 1), True, bogus), 401)

        # 4. A plain Prometheus target: not a gateway, no mirror, samples accepted.
        plain = at.Agent(args, prom.url("/api/v1/write"), config,
                         os.path.join(work, "plain-state"), work)
        plain.runs = 100
        i = plain.argv.index("--device")
        plain.argv[i + 1] = "plain"
        plain.argv += ["--key", key, "--state-mirror-interval", "1s"]
        plain.start()
        wait_log(lambda: os.path.join(work, "agent-%d.log" % plain.runs),
                 b"the target is not a ccmon-gateway", "the probe of a plain Prometheus")
        want_plain = gd.relabel(at.expected_series(args, config), "plain")
        at.wait_equal(prom, want_plain, "a plain Prometheus target", devices="plain")
        ck.check(True, "a plain Prometheus target: probe answered 'not a gateway', the agent's "
                 "%d series are stored there" % len(want_plain))
        plain.stop()
        with open(os.path.join(work, "agent-%d.log" % plain.runs), "rb") as fh:
            log = fh.read()
        ck.check(b"state mirror" not in log, "no state mirror upload to a plain Prometheus")
    except ic.TestError:
        for a in (agent, plain):
            if a is not None and a.runs:
                print(a.log_tail())
        print(gw.log_tail())
        raise
    finally:
        for a in (agent, plain):
            if a is not None and a.proc and a.proc.poll() is None:
                a.stop()
        gw.stop()
        prom.stop()


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_resume_test", body, extra))
