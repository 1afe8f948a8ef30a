"""Shared helpers of the ccmon-replay integration tests (Python 3 standard library only).

Each test script builds a synthetic Claude Code config dir with tests/fixtures/gen_fixture.py,
runs ccmon-replay on it and compares the output with the generator's expected.json.
Output: one line per check ("ok" / "FAIL"), a summary, exit status 0 (all passed), 1 (a check
failed or a step broke) or 77 (a required external tool is missing; CTest reports it skipped).
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

TOKEN_TYPES = ("input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read")
SKIP_EXIT = 77

# Families every complete fixture must produce (the fixture always has an unknown model,
# API errors, web searches, tool calls and prompts).
CLAUDE_FAMILIES = {
    # family name in OpenMetrics -> (type, unit or None, label names without le)
    "claude_tokens": ("counter", "tokens", ("device", "model", "project", "type")),
    "claude_cost_usd": ("counter", "usd", ("device", "model", "project")),
    "claude_requests": ("counter", None, ("device", "model", "project")),
    "claude_cost_per_request_usd": ("histogram", "usd", ("device", "model")),
    "claude_cache_savings_usd": ("counter", "usd", ("device", "model")),
    "claude_sessions": ("counter", None, ("device", "project")),
    "claude_tool_calls": ("counter", None, ("device", "tool")),
    "claude_web_search_requests": ("counter", None, ("device", "model")),
    "claude_api_errors": ("counter", None, ("device",)),
    "claude_unpriced_tokens": ("counter", "tokens", ("device", "model")),
    "claude_user_prompts": ("counter", None, ("device", "project")),
}
METRICS_ONLY_FAMILIES = {"ccmon_skipped_lines": ("counter", None, ("reason",))}


class TestError(Exception):
    """A step that must work did not (command failed, server did not start, ...)."""


class Skip(Exception):
    pass


class Checker:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = []

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok    %s" % what, flush=True)
        else:
            self.failed.append(what)
            print("FAIL  %s%s" % (what, (": " + detail) if detail else ""), flush=True)
        return cond

    def eq(self, what, got, want):
        if got == want:
            r = repr(want)
            if len(r) > 100:
                r = "expected (%d entries)" % len(want) if hasattr(want, "__len__") else r[:100]
            return self.check(True, "%s == %s" % (what, r))
        detail = "got %r, want %r" % (got, want)
        if isinstance(got, dict) and isinstance(want, dict):
            keys = sorted(set(got) | set(want), key=repr)
            diff = ["%r: got %r, want %r" % (k, got.get(k), want.get(k)) for k in keys
                    if got.get(k) != want.get(k)]
            detail = "%d differing keys: %s" % (len(diff), "; ".join(diff[:10]))
        return self.check(False, what, detail)

    def close(self, what, got, want, rel=1e-9):
        ok = got is not None and abs(got - want) <= rel * max(abs(want), 1e-300)
        return self.check(ok, "%s ~= %r (rel %g)" % (what, want, rel),
                          "got %r, want %r (diff %r)" % (got, want,
                                                         None if got is None else got - want))

    def info(self, msg):
        print("info  %s" % msg, flush=True)

    def finish(self):
        print("%s: %d checks passed, %d failed" % (self.name, self.passed, len(self.failed)))
        for f in self.failed:
            print("  failed: %s" % f)
        return 1 if self.failed else 0


def main_wrapper(name, body, extra_args=None):
    """Parse the common arguments, run body(args, checker), map exceptions to exit codes."""
    ap = argparse.ArgumentParser(description=name)
    ap.add_argument("--replay", required=True, help="path of the ccmon-replay binary")
    ap.add_argument("--fixture-gen", required=True, help="path of tests/fixtures/gen_fixture.py")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--promtool", default="", help="promtool binary (default: from PATH)")
    ap.add_argument("--prometheus", default="", help="prometheus binary (default: from PATH)")
    if extra_args:
        extra_args(ap)
    args = ap.parse_args()
    ck = Checker(name)
    t0 = time.monotonic()
    try:
        body(args, ck)
    except Skip as e:
        print("SKIP  %s" % e)
        return SKIP_EXIT
    except TestError as e:
        print("ERROR %s" % e)
        ck.failed.append("aborted: %s" % str(e).splitlines()[0])
    print("(%.1f s)" % (time.monotonic() - t0))
    return ck.finish()


def find_tool(explicit, name):
    """An external binary: the CMake-provided path, else PATH; Skip when absent."""
    if explicit and not explicit.endswith("-NOTFOUND"):
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise Skip("%s not found at %s" % (name, explicit))
    p = shutil.which(name)
    if not p:
        raise Skip("%s not found on PATH (install Debian package 'prometheus')" % name)
    return p


def run(cmd, what, timeout=120, stdin_data=None, ok_codes=(0,)):
    """Run a command; return (stdout, stderr) as text; TestError on a bad exit status."""
    try:
        p = subprocess.run(cmd, input=stdin_data, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestError("%s timed out after %d s: %s" % (what, timeout, " ".join(cmd)))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode not in ok_codes:
        raise TestError("%s exited %d: %s\nstderr:\n%s" % (what, p.returncode, " ".join(cmd),
                                                            err[-4000:]))
    return out, err


def make_fixture(args, out_dir, device_count=1):
    """Run gen_fixture.py into out_dir; return the parsed expected.json."""
    cmd = [sys.executable, args.fixture_gen, out_dir, "--seed", str(args.seed),
           "--sessions", str(args.sessions)]
    if device_count != 1:
        cmd += ["--device-count", str(device_count)]
    run(cmd, "gen_fixture.py")
    with open(os.path.join(out_dir, "expected.json"), encoding="utf-8") as fh:
        return json.load(fh)


def replay_history(args, config_dir, device, out_file, step=None):
    """`ccmon-replay openmetrics`; returns the end time (seconds) printed on stderr."""
    cmd = [args.replay, "openmetrics", "-o", out_file, "--config-dir", config_dir,
           "--device", device, "-z", "UTC", "--progress", "never"]
    if step:
        cmd += ["--step", step]
    _, err = run(cmd, "ccmon-replay openmetrics")
    m = re.search(r"history ends at (\d+)", err)
    if not m:
        raise TestError("ccmon-replay openmetrics did not print 'history ends at N' on stderr:\n"
                        + err)
    return int(m.group(1))


def replay_metrics(args, config_dir, device, fmt=None):
    cmd = [args.replay, "metrics", "--config-dir", config_dir, "--device", device,
           "--progress", "never"]
    if fmt:
        cmd += ["--format", fmt]
    out, _ = run(cmd, "ccmon-replay metrics" + (" --format " + fmt if fmt else ""))
    return out


def replay_summary(args, config_dir, device):
    out, _ = run([args.replay, "summary", "--json", "--config-dir", config_dir, "--device", device,
                  "-z", "UTC", "--progress", "never"], "ccmon-replay summary --json")
    try:
        return json.loads(out)
    except ValueError as e:
        raise TestError("summary --json is not JSON: %s\n%s" % (e, out[:2000]))


# ---------------------------------------------------------------------------------------------
# Exposition parsing

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_NAME_RE = re.compile(_NAME)
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class ParseError(Exception):
    pass


def _parse_labels(s, pos, lineno, openmetrics):
    """Parse '{a="x",b="y"}' starting at s[pos] == '{'; return (tuple of pairs, new pos)."""
    assert s[pos] == "{"
    pos += 1
    labels = []
    if pos < len(s) and s[pos] == "}":
        return (), pos + 1
    while True:
        m = _LABEL_NAME_RE.match(s, pos)
        if not m:
            raise ParseError("line %d: bad label name at column %d" % (lineno, pos + 1))
        lname = m.group(0)
        pos = m.end()
        if s[pos:pos + 2] != '="':
            raise ParseError("line %d: expected =\" after label %s" % (lineno, lname))
        pos += 2
        val = []
        while True:
            if pos >= len(s):
                raise ParseError("line %d: unterminated label value" % lineno)
            c = s[pos]
            if c == "\\":
                nxt = s[pos + 1:pos + 2]
                if nxt == "n":
                    val.append("\n")
                elif nxt in ("\\", '"'):
                    val.append(nxt)
                else:
                    raise ParseError("line %d: bad escape \\%s in label value" % (lineno, nxt))
                pos += 2
            elif c == '"':
                pos += 1
                break
            else:
                val.append(c)
                pos += 1
        if any(n == lname for n, _ in labels):
            raise ParseError("line %d: duplicate label %s" % (lineno, lname))
        labels.append((lname, "".join(val)))
        if pos < len(s) and s[pos] == ",":
            pos += 1
            if not openmetrics and pos < len(s) and s[pos] == "}":
                return tuple(labels), pos + 1
            continue
        if pos < len(s) and s[pos] == "}":
            return tuple(labels), pos + 1
        raise ParseError("line %d: expected , or } in label set" % lineno)


_OM_FLOAT_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_SPECIAL = {"+Inf", "-Inf", "NaN"}


class Sample:
    __slots__ = ("name", "labels", "value", "raw_value", "ts", "raw_ts", "family", "lineno")

    def __init__(self, name, labels, raw_value, raw_ts, family, lineno):
        self.name = name
        self.labels = labels
        self.raw_value = raw_value
        self.value = float(raw_value)
        self.raw_ts = raw_ts
        self.ts = None if raw_ts is None else float(raw_ts)
        self.family = family
        self.lineno = lineno

    @property
    def key(self):
        return (self.name, tuple(sorted(self.labels)))

    def label(self, k):
        for n, v in self.labels:
            if n == k:
                return v
        return None


def _parse_sample(line, lineno, family, openmetrics):
    m = _NAME_RE.match(line)
    if not m:
        raise ParseError("line %d: bad metric name: %r" % (lineno, line[:80]))
    name = m.group(0)
    pos = m.end()
    labels = ()
    if pos < len(line) and line[pos] == "{":
        labels, pos = _parse_labels(line, pos, lineno, openmetrics)
    rest = line[pos:]
    if not rest.startswith(" "):
        raise ParseError("line %d: expected one space before the value: %r" % (lineno, line[:120]))
    parts = rest[1:].split(" ")
    if openmetrics and "" in parts:
        raise ParseError("line %d: doubled or trailing space: %r" % (lineno, line[:120]))
    parts = [p for p in parts if p != ""]
    if len(parts) not in (1, 2):
        raise ParseError("line %d: expected 'value [timestamp]' (exemplars not expected): %r"
                         % (lineno, line[:120]))
    raw_value = parts[0]
    if not (_OM_FLOAT_RE.match(raw_value) or raw_value in _SPECIAL):
        raise ParseError("line %d: bad value %r" % (lineno, raw_value))
    raw_ts = parts[1] if len(parts) == 2 else None
    if raw_ts is not None:
        ts_re = _OM_FLOAT_RE if openmetrics else re.compile(r"^-?[0-9]+$")
        if not ts_re.match(raw_ts):
            raise ParseError("line %d: bad timestamp %r" % (lineno, raw_ts))
    return Sample(name, labels, raw_value, raw_ts, family, lineno)


_OM_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "gauge": ("",), "unknown": ("",), "stateset": ("",),
}


def parse_openmetrics(text):
    """Strict-enough OpenMetrics 1.0 text parser.

    Returns (families, samples): families maps family name -> dict(type, unit, help, first_line);
    samples is a list of Sample in file order. Raises ParseError on violations of the parts of
    the format ccmon uses: '# EOF' last, TYPE/UNIT/HELP before samples and at most once per
    family, families not interleaved, sample names matching their family and type, unit as
    the family name's suffix, no comments other than TYPE/UNIT/HELP.
    """
    if not text.endswith("\n"):
        # The OM ABNF allows '# EOF' without a final LF; ccmon writes one.
        raise ParseError("output does not end with a newline")
    lines = text[:-1].split("\n")
    if lines[-1] != "# EOF":
        raise ParseError("last line is %r, not '# EOF'" % lines[-1][:80])
    families = {}
    samples = []
    cur = None           # current family name
    cur_has_samples = False
    closed = set()       # families that may not reappear
    for i, line in enumerate(lines[:-1], start=1):
        if line == "":
            raise ParseError("line %d: empty line" % i)
        if line.startswith("#"):
            m = re.match(r"^# (TYPE|UNIT|HELP) (%s)(?: (.*))?$" % _NAME, line)
            if not m:
                raise ParseError("line %d: unexpected comment %r" % (i, line[:80]))
            kind, fam, arg = m.group(1), m.group(2), m.group(3)
            if fam != cur:
                if fam in families:
                    raise ParseError("line %d: family %s reappears (interleaved)" % (i, fam))
                if cur is not None:
                    closed.add(cur)
                cur, cur_has_samples = fam, False
                families[fam] = {"type": "unknown", "unit": None, "help": None, "first_line": i,
                                 "seen": set()}
            f = families[fam]
            if cur_has_samples:
                raise ParseError("line %d: %s after samples of %s" % (i, kind, fam))
            if kind in f["seen"]:
                raise ParseError("line %d: second %s for %s" % (i, kind, fam))
            f["seen"].add(kind)
            if kind == "TYPE":
                if arg not in _OM_SUFFIXES:
                    raise ParseError("line %d: unknown type %r" % (i, arg))
                f["type"] = arg
            elif kind == "UNIT":
                if not arg or not fam.endswith("_" + arg):
                    raise ParseError("line %d: family %s does not end with its unit _%s"
                                     % (i, fam, arg))
                f["unit"] = arg
            else:
                f["help"] = arg if arg is not None else ""
            continue
        s = _parse_sample(line, i, cur, True)
        if cur is None or not any(s.name == cur + sfx for sfx in _OM_SUFFIXES[families[cur]["type"]]):
            raise ParseError("line %d: sample %s does not belong to the current family %s (%s)"
                             % (i, s.name, cur, cur and families[cur]["type"]))
        cur_has_samples = True
        samples.append(s)
    for f in families.values():
        del f["seen"]
    return families, samples


def parse_prom_text(text):
    """Prometheus text format 0.0.4. Returns (types, samples): types maps metric name -> type."""
    types = {}
    samples = []
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            m = re.match(r"^#\s+TYPE\s+(%s)\s+(\S+)\s*$" % _NAME, line)
            if m:
                if m.group(1) in types:
                    raise ParseError("line %d: second TYPE for %s" % (i, m.group(1)))
                types[m.group(1)] = m.group(2)
            continue
        samples.append(_parse_sample(line, i, None, False))
    return types, samples


def family_of_text_name(name, types):
    """The TYPE'd metric name a 0.0.4 sample belongs to."""
    if name in types:
        return name
    for sfx in ("_bucket", "_count", "_sum"):
        if name.endswith(sfx) and types.get(name[:-len(sfx)]) == "histogram":
            return name[:-len(sfx)]
    return None


def om_family_name(sample_name):
    """The OpenMetrics family a ccmon sample name belongs to (ccmon's names only)."""
    for sfx in ("_total", "_bucket", "_count", "_sum"):
        if sample_name.endswith(sfx):
            return sample_name[:-len(sfx)]
    return sample_name


def sum_where(samples, name, **labels):
    return sum(s.value for s in samples if s.name == name
               and all(s.label(k) == v for k, v in labels.items()))


def group_sum(samples, name, by):
    out = {}
    for s in samples:
        if s.name == name:
            k = s.label(by)
            out[k] = out.get(k, 0) + s.value
    return out


def exact_usd_sum(samples, name):
    """Sum of USD values as an exact Decimal (values are decimal strings)."""
    return sum((Decimal(s.raw_value) for s in samples if s.name == name), Decimal(0))


def project_basename(cwd):
    """docs/accounting.md A30 basename label of a cwd."""
    c = cwd.rstrip("/\\")
    b = re.split(r"[/\\]", c)[-1] if c else ""
    return b or "unknown"


def series_by_key(samples):
    """key -> list of samples in file order."""
    out = {}
    for s in samples:
        out.setdefault(s.key, []).append(s)
    return out


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class ServerProcess:
    """A server binary on a free 127.0.0.1 port, started until GET ready_path answers 200.

    argv_for_port(port) -> the command line. Always stop() it (try/finally)."""

    READY_DEADLINE_S = 60
    POLL_S = 0.05

    def __init__(self, name, argv_for_port, ready_path, work_dir):
        self.name, self.argv_for_port, self.ready_path = name, argv_for_port, ready_path
        self.work_dir = work_dir
        self.log_path = os.path.join(work_dir, name + ".log")
        self.proc = None
        self.port = None

    def start(self):
        last = ""
        for _ in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(self.argv_for_port(self.port), stdout=self.log,
                                         stderr=subprocess.STDOUT, cwd=self.work_dir)
            try:
                self._wait_ready()
                return
            except TestError as e:
                last = str(e)
                self.stop()
                if "address already in use" not in last:
                    break
        raise TestError(last)

    def _wait_ready(self):
        deadline = time.monotonic() + self.READY_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                raise TestError("%s exited with %d before it was ready:\n%s"
                                % (self.name, self.proc.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen(self.url(self.ready_path), timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            if time.monotonic() > deadline:
                raise TestError("%s not ready within %d s:\n%s"
                                % (self.name, self.READY_DEADLINE_S, self.log_tail()))
            time.sleep(self.POLL_S)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log_tail(self, n=4000):
        try:
            self.log.flush()
            with open(self.log_path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.proc is not None:
            self.log.close()
        self.proc = None


class FixedPortProcess(ServerProcess):
    """A ServerProcess that keeps its first port across restarts (a gateway that agents push to
    and that forwards to fixed URLs), and can be SIGKILLed or SIGTERMed."""

    def start(self):
        if self.port is None:
            return super().start()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv_for_port(self.port), stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.work_dir)
        self._wait_ready()

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=15)
        self.log.close()
        self.proc = None

    def sigterm(self):
        """SIGTERM and wait (30 s); returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        code = self.proc.returncode
        self.log.close()
        self.proc = None
        return code, time.monotonic() - t0


def victoria_write_refusals(base_url):
    """What a VictoriaMetrics refused or silently dropped of remote-write, from its own /metrics:
    {name: count} of write requests answered with an error
    (vm_http_request_errors_total{path="/api/v1/write"}) and rows it ignored for their
    timestamps (vm_rows_ignored_total: outside its retention, or too far in the future), for
    the non-zero ones (empty: nothing refused or dropped)."""
    with urllib.request.urlopen(base_url.rstrip("/") + "/metrics", timeout=10) as r:
        text = r.read().decode("utf-8", "replace")
    # VictoriaMetrics writes a space after each label's comma, which the strict 0.0.4 parser
    # above refuses; these two families are matched by a pattern instead.
    out = {}
    for line in text.split("\n"):
        m = re.match(r'^(vm_http_request_errors_total|vm_rows_ignored_total)\{(.*)\}\s+(\S+)$', line)
        if not m or float(m.group(3)) == 0:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if m.group(1) == "vm_http_request_errors_total":
            if labels.get("path") == "/api/v1/write":
                out["write errors"] = out.get("write errors", 0) + float(m.group(3))
        else:
            key = "rows ignored (%s)" % labels.get("reason", "")
            out[key] = out.get(key, 0) + float(m.group(3))
    return out


def prometheus_write_refusals(base_url):
    """Write requests a Prometheus answered with a 4xx or 5xx, from its own /metrics.

    Read from the /metrics endpoint directly: a Prometheus started with --config.file=/dev/null
    does not scrape itself, so a PromQL query for prometheus_http_requests_total finds nothing
    and would report 0 whatever happened. Out-of-order and duplicate-with-another-value samples
    are 400s of the write handler, a sample too old 500; all show here. A 503 is not counted:
    Prometheus answers every request with it until its TSDB is open ("Service Unavailable"
    while it starts), which a sender retrying across an upstream restart will meet; it refuses
    nothing. Returns {code: count} for the other non-2xx codes (empty: nothing refused)."""
    with urllib.request.urlopen(base_url.rstrip("/") + "/metrics", timeout=10) as r:
        text = r.read().decode("utf-8", "replace")
    _, samples = parse_prom_text(text)
    out = {}
    for s in samples:
        if (s.name == "prometheus_http_requests_total" and s.label("handler") == "/api/v1/write"
                and not s.label("code").startswith("2") and s.label("code") != "503"
                and s.value):
            out[s.label("code")] = out.get(s.label("code"), 0) + s.value
    return out
