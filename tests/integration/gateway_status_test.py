#!/usr/bin/env python3
"""The gateway's status page (issue 9 §3) in a real browser: Debian's chromium, headless.

A gateway (device keys, --metrics-token-file, --allow-anonymous, one --forward to a port where
nothing listens) gets three registered devices; agents push two ccgen corpora (gen_fixture.py
--device-count 3) with their keys; an anonymous write brings a hostile device name and
User-Agent (`<script>…`, quotes, `&`, `<img onerror>`). Then:

  - access: /, /status and /api/v1/status answer 401 with a Basic challenge without a token,
    200 with the metrics token or the admin token (Bearer, or Basic with the token as password);
    POST is 405;
  - chromium loads http://user:TOKEN@…/ (Basic auth, as after a browser's login prompt) and runs
    the page's script (--virtual-time-budget): the dumped DOM shows each device — online, the
    agent, today's / this month's / all reported spend each equal to its corpus' ground truth
    cost (expected.json, exact pico-dollars; without --backfill an agent's first sample carries
    its whole history, stamped now) — the registered device that never wrote, the forward
    destination with its last error, the gateway's version; the script refreshed the page at
    least once under the same credentials (body[data-refreshes]);
  - the hostile name and agent appear as text only: in the DOM exactly one <script> (the
    page's), no <img>, the cells' text equal to the hostile strings;
  - without JavaScript (the page served again under a CSP of script-src 'none': chromium's
    --dump-dom itself needs scripting) the same rows are there;
  - the refresh re-renders without a reload: the page as served BEFORE the third device pushed is
    served again from a local proxy that passes /api/v1/status through to the gateway; after
    the script ran, the DOM shows the third device online with its ground-truth spend, which
    that HTML did not hold;
  - a --screenshot is a PNG.
Every wait is on a condition with a deadline.
"""

import collections
import html.parser
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402
import agent_test as at  # noqa: E402
import gateway_security_test as gs  # noqa: E402

METRICS_TOKEN = "status-it-metrics-token-0123"
ADMIN_TOKEN = "status-it-admin-token-4567"
HOSTILE_DEVICE = "<script>alert(1)</script>\"'&amp;x"
HOSTILE_AGENT = "<img src=x onerror=alert(2)>\"'&"
DEVICES = ["laptop-a", "laptop-b", "laptop-c"]  # laptop-c pushes only for the refresh check

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--hide-scrollbars", "--mute-audio"]


def extra(ap):
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--chromium", default="", help="chromium binary (default: from PATH)")


def money(pusd):
    """The page's money text for exact pico-dollars: at least two decimals, never rounded."""
    whole, frac = divmod(int(pusd), 10 ** 12)
    digits = ("%012d" % frac).rstrip("0").ljust(2, "0")
    return "$%d.%s" % (whole, digits)


def get(url, token=None, basic=None, method="GET", data=None):
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + token
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    return gs.http(url, data=data, headers=headers, method=method)


class StatusGateway(ic.ServerProcess):
    def __init__(self, args, work, data_dir, dead_port):
        super().__init__(
            "gateway", lambda p: [
                args.gateway, "serve", "--listen", "127.0.0.1:%d" % p, "--data-dir", data_dir,
                "--admin-token-file", gs.write_file(os.path.join(work, "admin-token"),
                                                    ADMIN_TOKEN + "\n"),
                "--metrics-token-file", gs.write_file(os.path.join(work, "metrics-token"),
                                                      METRICS_TOKEN + "\n"),
                "--allow-anonymous", "--forward-batch-send-deadline", "1s",
                "--forward", "http://127.0.0.1:%d/api/v1/write" % dead_port], "/readyz", work)

    def status(self):
        code, _, body = get(self.url("/api/v1/status"), token=METRICS_TOKEN)
        if code != 200:
            raise ic.TestError("/api/v1/status answered %d: %s" % (code, body[:300]))
        return json.loads(body)


def wait_for(what, predicate, deadline_s=90, poll_s=0.2):
    """predicate() -> (done, detail); TestError with the last detail at the deadline."""
    deadline = time.monotonic() + deadline_s
    detail = None
    while True:
        done, detail = predicate()
        if done:
            return detail
        if time.monotonic() > deadline:
            raise ic.TestError("%s: not within %d s; last: %s" % (what, deadline_s, detail))
        time.sleep(poll_s)


def device_of(status, name):
    for d in status["devices"]:
        if d["name"] == name:
            return d
    return None


class Dom(html.parser.HTMLParser):
    """What the dumped DOM shows: the tables' rows (cell class -> text), the header facts (id ->
    text), <body>'s attributes and how many of each element there are."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements = collections.Counter()
        self.rows = {"devices": [], "destinations": []}
        self.facts, self.body, self.texts = {}, {}, {}
        self._table = self._row = self._cell = self._id = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements[tag] += 1
        if tag == "body":
            self.body = a
        elif tag == "table":
            self._table = a.get("id")
        elif tag == "tr" and self._table in self.rows:
            self._row = {"_class": a.get("class") or "",
                         "_key": a.get("data-device", a.get("data-destination"))}
        elif tag == "td" and self._row is not None:
            self._cell = a.get("class") or ""
            self._row[self._cell] = ""
        if "id" in a and tag in ("dd", "p"):
            self._id = a["id"]
            self.texts[self._id] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None:
            if self._row["_key"] is not None or self._row["_class"] == "empty":
                self.rows[self._table].append(self._row)
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag in ("dd", "p"):
            self._id = None

    def handle_data(self, data):
        if self._cell is not None and self._row is not None:
            self._row[self._cell] += data
        elif self._id is not None:
            self.texts[self._id] += data

    def device(self, name):
        for r in self.rows["devices"]:
            if r["_key"] == name:
                return r
        return None


class Browser:
    def __init__(self, binary, work):
        self.binary, self.work, self.runs = binary, work, 0

    def run(self, url, *flags, timeout=120):
        self.runs += 1
        profile = os.path.join(self.work, "chromium-profile-%d" % self.runs)
        cmd = [self.binary] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + list(flags) + [url]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ic.TestError("chromium timed out after %d s: %s" % (timeout, " ".join(cmd)))
        if p.returncode != 0:
            raise ic.TestError("chromium exited %d: %s\n%s" % (
                p.returncode, " ".join(cmd), p.stderr.decode("utf-8", "replace")[-3000:]))
        return p.stdout.decode("utf-8", "replace")

    def dom(self, url, budget_ms=12000):
        """The DOM after `budget_ms` of virtual time (the page's refreshes every 5 s ran)."""
        return Dom(self.run(url, "--dump-dom", "--virtual-time-budget=%d" % budget_ms))


class StaticPageProxy:
    """Serves `page` (with its headers) at / and passes /api/v1/status through to the gateway
    with the metrics token: the page as it was, refreshed from the gateway as it is."""

    def __init__(self, page, page_headers, gw):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/":
                    body, headers = page.encode(), page_headers
                elif self.path == "/api/v1/status":
                    code, hdrs, text = get(gw.url("/api/v1/status"), token=METRICS_TOKEN)
                    proxy.status_requests += 1
                    body, headers = text.encode(), [("Content-Type", "application/json")]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.status_requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_agent(args, gw, config_dir, key, work, name):
    agent_work = os.path.join(work, "agent-" + name)
    os.makedirs(agent_work)
    agent = at.Agent(args, gw.url("/api/v1/write"), config_dir,
                     os.path.join(agent_work, "state"), agent_work)
    agent.argv += ["--key", key]
    agent.start()
    return agent


def body(args, ck):
    args.gateway = ic.find_tool(args.gateway, "ccmon-gateway")
    args.agent = ic.find_tool(args.agent, "ccmon-agent")
    args.chromium = ic.find_tool(args.chromium, "chromium")
    args.backfill = False
    work = tempfile.mkdtemp(prefix="ccmon-gateway-status-it-")
    try:
        run_test(args, ck, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_access(ck, gw):
    for path in ("/", "/status", "/api/v1/status"):
        code, headers, _ = get(gw.url(path))
        challenges = headers.get_all("WWW-Authenticate") or []
        ck.check(code == 401 and any(c.startswith("Basic ") for c in challenges),
                 "%s without a token: 401 with a Basic challenge" % path, (code, challenges))
        ck.eq("%s with the metrics token (Bearer)" % path,
              get(gw.url(path), token=METRICS_TOKEN)[0], 200)
        ck.eq("%s with the admin token (Bearer)" % path,
              get(gw.url(path), token=ADMIN_TOKEN)[0], 200)
        ck.eq("%s with the token as a Basic password" % path,
              get(gw.url(path), basic="anyone:" + METRICS_TOKEN)[0], 200)
        ck.eq("%s with a wrong token" % path, get(gw.url(path), token="wrong")[0], 401)
    code, headers, page = get(gw.url("/"), token=METRICS_TOKEN)
    ck.check(headers.get("Content-Type", "").startswith("text/html")
             and "script-src 'sha256-" in headers.get("Content-Security-Policy", ""),
             "the page is HTML with a hash-based Content-Security-Policy",
             dict(headers.items()))
    ck.eq("POST / is not allowed", get(gw.url("/"), token=METRICS_TOKEN, method="POST",
                                       data=b"x")[0], 405)


def run_test(args, ck, work):
    corpus = os.path.join(work, "corpus")
    ic.run([sys.executable, args.fixture_gen, corpus, "--seed", str(args.seed), "--sessions",
            str(args.sessions), "--device-count", str(len(DEVICES))], "gen_fixture.py")
    expected = {}
    for i, name in enumerate(DEVICES):
        with open(os.path.join(corpus, "device-%d" % (i + 1), "expected.json")) as fh:
            expected[name] = int(json.load(fh)["totals"]["cost_pusd"])
    ck.check(all(v > 0 for v in expected.values()), "every corpus costs something", expected)
    version = ic.run([args.gateway, "--version"], "ccmon-gateway --version")[0].split()[-1]

    gw = StatusGateway(args, work, os.path.join(work, "gw-data"), ic.free_port())
    gw.start()
    agents = []
    proxy = None
    browser = Browser(args.chromium, work)
    day_at_start = time.gmtime().tm_yday
    try:
        check_access(ck, gw)
        keys = {name: gs.device_add(args, gw, name, os.path.join(work, "admin-token"))
                for name in DEVICES}
        for i, name in enumerate(DEVICES[:2]):
            agents.append(start_agent(args, gw, os.path.join(corpus, "device-%d" % (i + 1)),
                                      keys[name], work, name))

        # The hostile device: an anonymous write with its own label and User-Agent.
        now = gs.now_ms()
        body_ = gs.snappy_literal(gs.write_request([
            ([("__name__", "claude_cost_usd_total"), ("device", HOSTILE_DEVICE),
              ("model", "<b>m</b>")], [(now, 0.125)])]))
        code, _, text = gs.http(gw.url("/api/v1/write"), data=body_,
                                headers=dict(gs.RW_HEADERS, **{"User-Agent": HOSTILE_AGENT}))
        ck.eq("the hostile anonymous write is stored", (code, text), (204, ""))

        def pushed(names):
            def check():
                s = gw.status()
                got = {n: (device_of(s, n) or {}).get("cost_total_pusd") for n in names}
                return all(got[n] == str(expected[n]) for n in names), got
            return check
        t0 = time.monotonic()
        wait_for("both agents' corpora on the status page", pushed(DEVICES[:2]))
        ck.check(True, "both agents' history arrived (%.1f s)" % (time.monotonic() - t0))
        wait_for("the dead forward destination's error",
                 lambda: (gw.status()["destinations"][0]["last_error"] != "",
                          gw.status()["destinations"][0]), deadline_s=60)

        # The page as served now: laptop-c registered, never seen.
        _, page_headers, stale_page = get(gw.url("/"), token=METRICS_TOKEN)
        stale = Dom(stale_page)
        ck.check(stale.device("laptop-c") is not None
                 and stale.device("laptop-c")["state"] == "never seen"
                 and stale.device("laptop-c")["cost-total"] == "$0.00",
                 "served before it pushes, laptop-c is registered and never seen",
                 stale.device("laptop-c"))

        # chromium, with Basic credentials in the URL, the script running.
        url = "http://status:%s@127.0.0.1:%d/" % (METRICS_TOKEN, gw.port)
        dom = browser.dom(url)
        same_day = time.gmtime().tm_yday == day_at_start
        refreshes = int(dom.body.get("data-refreshes", "0"))
        ck.check(refreshes >= 1, "the page's script refreshed it from /api/v1/status under the "
                 "browser's Basic credentials (%d refreshes)" % refreshes, dom.body)
        ck.eq("the gateway's version", dom.texts.get("gw-version"), version)
        ck.check(dom.texts.get("refresh-state", "").startswith("Live: refreshed every"),
                 "the page says it is live", dom.texts.get("refresh-state"))
        for name in DEVICES[:2]:
            row = dom.device(name)
            if row is None:
                ck.check(False, "%s is on the page" % name, dom.rows["devices"])
                continue
            want = money(expected[name])
            ck.eq("%s: online" % name, (row["state"], row["_class"]), ("online", "state-online"))
            ck.check(row["agent"].startswith("ccmon-agent/"), "%s: the agent's version" % name,
                     row["agent"])
            ck.check(row["last-seen"].endswith(" ago)") and row["last-seen"][4] == "-",
                     "%s: last seen in UTC ISO-8601 with its age" % name, row["last-seen"])
            ck.eq("%s: all reported spend == the corpus' ground truth" % name, row["cost-total"],
                  want)
            if same_day:
                ck.eq("%s: today's spend == the corpus' ground truth (first samples stamped now)"
                      % name, row["spend-today"], want)
                ck.eq("%s: this month's spend == the corpus' ground truth" % name,
                      row["spend-month"], want)
            ck.check(int(row["series"].replace(",", "")) > 10, "%s: its series" % name,
                     row["series"])
        c = dom.device("laptop-c")
        ck.check(c is not None and c["state"] == "never seen" and c["last-seen"] == "never",
                 "the registered device that never wrote: never seen", c)

        hostile = dom.device(HOSTILE_DEVICE)
        ck.check(hostile is not None and hostile["device"] == HOSTILE_DEVICE
                 and hostile["agent"] == HOSTILE_AGENT and hostile["cost-total"] == "$0.125",
                 "the hostile device name and agent are shown as text, exactly", hostile)
        ck.eq("one <script> element in the DOM (the page's own), no <img>",
              (dom.elements["script"], dom.elements["img"]), (1, 0))

        dest = dom.rows["destinations"]
        ck.check(len(dest) == 1 and dest[0]["_key"].startswith("http://127.0.0.1:")
                 and dest[0]["last-error"] not in ("", "none")
                 and dest[0]["last-error-at"].endswith(" ago)")
                 and dest[0]["_class"] == "forward-failing",
                 "the forward destination with its last error and when", dest)
        ck.check(int(dest[0]["queued-samples"].replace(",", "")) > 0,
                 "its queue holds what it could not send", dest[0].get("queued-samples"))

        # Without JavaScript: the same rows, from the server. (chromium's --dump-dom needs
        # scripting itself, so the page is served again with a policy that forbids its script.)
        _, _, page_now = get(gw.url("/"), token=METRICS_TOKEN)
        proxy = StaticPageProxy(page_now, [("Content-Type", "text/html; charset=utf-8"),
                                           ("Content-Security-Policy", "script-src 'none'")], gw)
        plain = browser.dom(proxy.url("/"))
        proxy.close()
        proxy = None
        ck.check("data-refreshes" not in plain.body and plain.elements["script"] == 1,
                 "no script ran", plain.body)
        rows_js = {r["_key"]: (r["state"], r["cost-total"]) for r in dom.rows["devices"]}
        rows_plain = {r["_key"]: (r["state"], r["cost-total"]) for r in plain.rows["devices"]}
        ck.eq("without JavaScript the page shows the same devices, states and spend",
              rows_plain, rows_js)

        # The refresh re-renders without a reload: the stale page, live JSON.
        agents.append(start_agent(args, gw, os.path.join(corpus, "device-3"), keys["laptop-c"],
                                  work, "laptop-c"))
        wait_for("laptop-c's corpus on the status page", pushed(["laptop-c"]))
        proxy = StaticPageProxy(stale_page, [(k, v) for k, v in page_headers.items()
                                            if k in ("Content-Type", "Content-Security-Policy")],
                               gw)
        fresh = browser.dom(proxy.url("/"))
        c = fresh.device("laptop-c")
        ck.check(proxy.status_requests >= 1 and int(fresh.body.get("data-refreshes", "0")) >= 1,
                 "the stale page's script fetched the JSON twin (%d times)"
                 % proxy.status_requests, fresh.body)
        ck.check(c is not None and c["state"] == "online"
                 and c["cost-total"] == money(expected["laptop-c"]),
                 "after the refresh, without a reload, laptop-c is online with its ground-truth "
                 "spend (%s)" % money(expected["laptop-c"]), c)
        ck.check(fresh.device(HOSTILE_DEVICE) is not None
                 and fresh.device(HOSTILE_DEVICE)["device"] == HOSTILE_DEVICE
                 and fresh.elements["script"] == 1 and fresh.elements["img"] == 0,
                 "rows rebuilt by the script show the hostile name as text too",
                 fresh.device(HOSTILE_DEVICE))

        shot = os.path.join(work, "status.png")
        browser.run(url, "--window-size=1400,900", "--virtual-time-budget=6000",
                    "--screenshot=" + shot)
        with open(shot, "rb") as fh:
            head = fh.read(8)
        ck.check(head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(shot) > 10000,
                 "chromium takes a screenshot of the page (%d bytes)" % os.path.getsize(shot))
    except ic.TestError:
        for a in agents:
            print(a.log_tail())
        print(gw.log_tail())
        raise
    finally:
        if proxy is not None:
            proxy.close()
        for a in agents:
            a.stop()
        gw.stop()


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("gateway_status_test", body, extra))
