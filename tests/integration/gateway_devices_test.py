#!/usr/bin/env python3
"""ccmon-gateway device keys with real clients, through the fixed command lines:

  `ccmon-gateway serve --listen ADDR --data-dir DIR --admin-token-file F` (no
  --allow-anonymous), then `ccmon-gateway device add laptop-b --server URL --admin-token-file F`
  prints the agent's setup command and the key alone on its last line. `ccmon-agent start
  --foreground --url .../api/v1/write --key KEY` (the agent says --device itest) pushes a
  generated history: the gateway's /metrics holds exactly `ccmon-replay metrics`'s claude_*
  series and values under device="laptop-b" (the key's device overrides the request's label),
  and none under device="itest". `device list --server` shows the device used (last_seen set),
  never a key. An offline `device list --data-dir` while it runs says "the gateway is running;
  use --server". After `device revoke laptop-b --server`, appended transcript lines are refused
  with 401 and the agent keeps them in its outbox (it retries 401 by design); nothing new is
  stored. A write with no key and one with a made-up key get 401; the admin API with a wrong
  token 401. Stopped (SIGTERM), `device list --data-dir` offline shows the device revoked, and
  `device rotate` offline prints a new key.
"""

import os
import subprocess
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import gateway_test as gt  # noqa: E402

NAME = "laptop-b"


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)


class KeyedGateway(gt.Gateway):
    def __init__(self, args, work, data_dir, token_file):
        ic.ServerProcess.__init__(
            self, "gateway", lambda p: [args.gateway, "serve", "--listen", "127.0.0.1:%d" % p,
                                        "--data-dir", data_dir, "--admin-token-file",
                                        token_file], "/readyz", work)


def post(url, data, headers):
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def relabel(want, device):
    """replay's series as the gateway stores them for a key of `device`: device set on each."""
    out = {}
    for key, v in want.items():
        labels = dict(key[1:])
        labels["device"] = device
        out[at.key_of(key[0], labels)] = v
    return out


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    args.backfill = False
    work = tempfile.mkdtemp(prefix="ccmon-gateway-devices-it-")
    try:
        run_test(args, ck, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_test(args, ck, work):
    config, appends = at.history_and_appends(args, work)
    data_dir = os.path.join(work, "gw-data")
    token_file = os.path.join(work, "admin-token")
    with open(token_file, "w") as fh:
        fh.write("it-admin-token-0123456789\n")

    gw = KeyedGateway(args, work, data_dir, token_file)
    gw.start()
    agent = None
    try:
        server = gw.url("")
        out, _ = ic.run([args.gateway, "device", "add", NAME, "--server", server,
                         "--admin-token-file", token_file], "device add --server")
        lines = out.strip().splitlines()
        key = lines[-1]
        ck.check(len(lines) == 2 and key.startswith("dk_") and len(key) == 46,
                 "device add --server prints the key alone on its last line", out)
        ck.check(lines[0] == "ccmon-agent setup --url %s/api/v1/write --key %s --device %s"
                 % (server.rstrip("/"), key, NAME), "and the agent's setup command before it",
                 lines[0])
        out, err = ic.run([args.gateway, "device", "add", NAME, "--server", server,
                           "--admin-token-file", token_file], "device add again", ok_codes=(1,))
        ck.check(out == "" and "409" in err, "a duplicate name: exit 1, 409 said", err)

        # Writes without a key, with a made-up key; the admin API with a wrong token.
        write = gw.url("/api/v1/write")
        hdr = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
        ck.eq("a write without a key", post(write, b"\x00", hdr)[0], 401)
        ck.eq("a write with a made-up key",
              post(write, b"\x00", dict(hdr, Authorization="Bearer dk_" + "A" * 43))[0], 401)
        ck.eq("the admin API with a wrong token",
              post(gw.url("/api/v1/devices"), b'{"name":"x"}',
                   {"Authorization": "Bearer wrong"})[0], 401)

        agent = at.Agent(args, write, config, os.path.join(work, "agent-state"), work)
        agent.argv += ["--key", key]
        agent.start()
        want = relabel(at.expected_series(args, config), NAME)
        t0 = time.monotonic()
        gt.wait_gateway_equal(gw, want, "history with a device key")
        ck.check(True, "the agent's history is on /metrics under device=\"%s\" exactly "
                 "(%d series, %.1f s)" % (NAME, len(want), time.monotonic() - t0))
        foreign = [k for k in gw.claude_series(agent_only=True)
                   if ("device", at.DEVICE) in k[1:]]
        foreign += [k for k in gw.claude_series() if ("device", at.DEVICE) in k[1:]]
        ck.eq("series stored under the agent's own device label", foreign, [])

        out, _ = ic.run([args.gateway, "device", "list", "--server", server,
                         "--admin-token-file", token_file], "device list --server")
        rows = [l.split("\t") for l in out.strip().splitlines()]
        ck.check(rows[0] == ["NAME", "CREATED", "LAST_SEEN", "REVOKED"] and len(rows) == 2
                 and rows[1][0] == NAME and rows[1][2] != "never" and rows[1][3] == "no",
                 "device list --server: the device, used, not revoked", out)
        ck.check(key[3:] not in out, "device list never shows the key")
        _, err = ic.run([args.gateway, "device", "list", "--data-dir", data_dir],
                        "offline list while running", ok_codes=(1,))
        ck.check("the gateway is running; use --server" in err,
                 "device list --data-dir on a running gateway says to use --server", err)

        out, _ = ic.run([args.gateway, "device", "revoke", NAME, "--server", server,
                         "--admin-token-file", token_file], "device revoke --server")
        ck.eq("device revoke prints", out, "revoked %s\n" % NAME)
        refused0 = gw.self_metric("ccmon_gateway_write_requests_total", code="401")
        stored = {**gw.claude_series(), **gw.claude_series(agent_only=True)}
        for dst, data in appends:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "ab") as fh:
                fh.write(data)
        deadline = time.monotonic() + 60
        outbox = 0.0
        while time.monotonic() < deadline:
            outbox = agent.self_metrics().get("ccmon_agent_outbox_requests", 0.0)
            if (outbox > 0 and gw.self_metric("ccmon_gateway_write_requests_total", code="401")
                    >= refused0 + 2):
                break
            time.sleep(0.2)
        refused = gw.self_metric("ccmon_gateway_write_requests_total", code="401") - refused0
        ck.check(refused >= 2, "the revoked key's writes are answered 401 (%d, retried)"
                 % refused)
        ck.check(outbox > 0, "the agent keeps the refused requests in its outbox (%d)" % outbox)
        now = {**gw.claude_series(), **gw.claude_series(agent_only=True)}
        ck.check(now == stored, "nothing of the revoked key's writes is stored",
                 at.describe_diff(now, stored))
        agent.stop()
        code, _ = gw.sigterm()
        ck.check(code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), "the gateway stops cleanly")

        out, _ = ic.run([args.gateway, "device", "list", "--data-dir", data_dir],
                        "device list --data-dir")
        rows = [l.split("\t") for l in out.strip().splitlines()]
        ck.check(len(rows) == 2 and rows[1][0] == NAME and rows[1][3] == "yes"
                 and rows[1][2] != "never",
                 "device list --data-dir on the stopped gateway: revoked, last use kept", out)
        out, _ = ic.run([args.gateway, "device", "rotate", NAME, "--data-dir", data_dir],
                        "device rotate --data-dir")
        key2 = out.strip().splitlines()[-1]
        ck.check(key2.startswith("dk_") and key2 != key,
                 "device rotate --data-dir prints a new key on its last line", out)
        # Offline commands at once (a provisioning script adding devices in parallel): each
        # waits for the others' hold on the data dir. Before, all but one failed with "the
        # gateway is running; use --server", with no gateway running.
        procs = [subprocess.Popen([args.gateway, "device", "add", "par%d" % i, "--data-dir",
                                   data_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for i in range(6)]
        results = [(p.wait(timeout=60), p.communicate(timeout=60)) for p in procs]
        failed = [err.decode().strip()[:120] for rc, (_, err) in results if rc != 0]
        ck.check(not failed, "six device add --data-dir at once on a stopped gateway all succeed",
                 "; ".join(failed[:2]))
        out, _ = ic.run([args.gateway, "device", "list", "--data-dir", data_dir],
                        "device list --data-dir")
        ck.eq("device list --data-dir after them", sorted(
            l.split("\t")[0] for l in out.strip().splitlines()[1:]),
            sorted([NAME] + ["par%d" % i for i in range(6)]))
    except ic.TestError:
        if agent is not None:
            print(agent.log_tail())
        print(gw.log_tail())
        raise
    finally:
        if agent is not None and agent.proc and agent.proc.poll() is None:
            agent.stop()
        gw.stop()


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_devices_test", body, extra))
