#!/usr/bin/env python3
"""ccmon-gateway SIGKILLed at random points while three agents push and it forwards into a real
Prometheus 2.42 (issue 8, acceptance "Faults").

Three devices, each a generated history present at start plus a second history appended line by
line while the test runs (agent_test.history_and_appends, other seeds per device), each with its
own ccmon-agent (`start --foreground --url … --key KEY`, keys registered offline with
`ccmon-gateway device add NAME --data-dir DIR`). The gateway (`serve --listen ADDR --data-dir DIR`,
device keys required, `--forward` to Prometheus) is killed with SIGKILL --kills times (default 20)
and restarted on the same address. Each kill point is random: after a random part of the appends and once the restarted
gateway has answered a random number (1..4) of writes with 204 since its start — with three
agents sending concurrently, a kill lands before, during or after a request's RocksDB batch and
its answer. At the end every device's claude_* series on /metrics AND in the
upstream Prometheus equal `ccmon-replay metrics` over that device's transcripts exactly (the
agents resend what was not answered; the gateway drops what it already holds as duplicates; its
forward queues resend what Prometheus did not acknowledge), Prometheus refused no write, the
final gateway refused none, failed or dropped no forwarded sample, and no agent rejected or
dropped a sample.
"""

import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import agent_faults_test as aft  # noqa: E402
import gateway_test as gt  # noqa: E402
import gateway_devices_test as gdt  # noqa: E402

DEVICES = ("dev-a", "dev-b", "dev-c")


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--kills", type=int, default=20)


class KillableGateway(ic.FixedPortProcess, gt.Gateway):
    """A keyed gateway forwarding to `forward`; start() after kill() keeps its port."""

    def __init__(self, args, work, data_dir, forward):
        ic.ServerProcess.__init__(
            self, "gateway",
            lambda p: [args.gateway, "serve", "--listen", "127.0.0.1:%d" % p, "--data-dir",
                       data_dir, "--forward", forward, "--forward-batch-send-deadline", "1s"],
            "/readyz", work)

    def forward_metric(self, name):
        return self.self_metric(name)

    def answered(self):
        """Writes answered 204 by this process (its counter starts at 0); 0 while it starts."""
        try:
            return self.self_metric("ccmon_gateway_write_requests_total", code="204")
        except OSError:
            return 0.0


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    args.backfill = False
    work = tempfile.mkdtemp(prefix="ccmon-gateway-faults-it-")
    try:
        run_test(args, ck, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_test(args, ck, work):
    rng = random.Random(args.seed)
    data_dir = os.path.join(work, "gw-data")
    os.makedirs(data_dir)
    devices = []
    for i, name in enumerate(DEVICES):
        dev_work = os.path.join(work, name)
        os.makedirs(dev_work)
        dev_args = type(args)(**vars(args))
        dev_args.seed = args.seed + 17 * i
        config, appends = at.history_and_appends(dev_args, dev_work)
        out, _ = ic.run([args.gateway, "device", "add", name, "--data-dir", data_dir],
                        "device add %s --data-dir" % name)
        key = out.strip().splitlines()[-1]
        devices.append({"name": name, "work": dev_work, "config": config, "key": key,
                        "app": aft.Appender(appends, random.Random(args.seed + i))})

    args.target = "prometheus"
    prom = aft.start_receiver(args, work)
    gw = KillableGateway(args, work, data_dir, prom.url("/api/v1/write"))
    gw.start()
    agents = []
    try:
        for d in devices:
            agent = at.Agent(args, gw.url("/api/v1/write"), d["config"],
                             os.path.join(d["work"], "agent-state"), d["work"])
            # No periodic resend within the test: what the gateway serves at the end must come
            # from its own durable state (and the agents' retries of unanswered requests), not
            # from a fresh copy of every series.
            agent.argv += ["--key", d["key"], "--resend-interval", "1h"]
            agent.start()
            agents.append(agent)
        # Appends only after each first catch-up (Agent.wait_caught_up: fixture lines carry past
        # timestamps, which the end of a first catch-up settles by).
        for agent in agents:
            agent.wait_caught_up()
        chunk = {d["name"]: max(1, len(d["app"].items) // (args.kills + 2)) for d in devices}

        for k in range(args.kills):
            for d in devices:
                if rng.random() < 0.8:
                    d["app"].run(chunk[d["name"]], leave_partial=rng.random() < 0.3)
            need = rng.randint(1, 4)
            deadline = time.monotonic() + 60
            while gw.answered() < need:
                if time.monotonic() > deadline:
                    raise ic.TestError("kill %d: the gateway answered %d writes in 60 s, not %d"
                                       % (k + 1, gw.answered(), need))
                time.sleep(0.02)
            gw.kill()
            gw.start()
        ck.check(True, "the gateway was SIGKILLed %d times while 3 agents pushed" % args.kills)

        for d in devices:
            d["app"].run(len(d["app"].items))
            d["app"].finish_pending()
        want = {}
        for d in devices:
            want.update(gdt.relabel(at.expected_series(args, d["config"]), d["name"]))
        t0 = time.monotonic()
        gt.wait_gateway_equal(gw, want, "after %d SIGKILLs" % args.kills, deadline_s=120)
        ck.check(True, "every device's series on /metrics equal replay's exactly "
                 "(%d series, %.1f s after the last restart)" % (len(want),
                                                               time.monotonic() - t0))
        t0 = time.monotonic()
        at.wait_equal(prom, want, "forwarded, after %d SIGKILLs" % args.kills, deadline_s=120,
                      devices="dev-.+")
        ck.check(True, "every device's series in the upstream Prometheus equal replay's exactly "
                 "(%.1f s later)" % (time.monotonic() - t0))
        ck.eq("Prometheus's write handler 4xx/5xx (its /metrics)",
              ic.prometheus_write_refusals(prom.url("/")), {})
        for name in ("ccmon_gateway_forward_samples_failed_total",
                     "ccmon_gateway_forward_samples_dropped_total"):
            ck.eq("the last gateway: %s" % name, gw.forward_metric(name), 0.0)
        ck.eq("writes the last gateway refused (4xx/5xx)", gt.refused_writes(gw), 0.0)
        dups = gw.self_metric("ccmon_gateway_samples_duplicate_total")
        ck.info("duplicates dropped by the last gateway process: %d" % dups)
        for d, agent in zip(devices, agents):
            m = agent.self_metrics()
            ck.eq("%s: ccmon_agent_samples_rejected_total" % d["name"],
                  m["ccmon_agent_samples_rejected_total"], 0.0)
            ck.eq("%s: ccmon_agent_outbox_dropped_samples_total" % d["name"],
                  m["ccmon_agent_outbox_dropped_samples_total"], 0.0)
    except ic.TestError:
        for agent in agents:
            print(agent.log_tail())
        print(gw.log_tail())
        raise
    finally:
        for agent in agents:
            if agent.proc and agent.proc.poll() is None:
                agent.stop()
        if gw.proc is not None:
            gw.stop()
        prom.stop()


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_faults_test", body, extra))
