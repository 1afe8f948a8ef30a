#!/usr/bin/env python3
"""Integration test: ccmon-replay's exposition formats against the fixture's expected figures.

1. `ccmon-replay metrics` (Prometheus text 0.0.4) passes `promtool check metrics` with no lint
   output, has every family, no timestamps, and its sums equal expected.json (tokens by type,
   requests, cost, sessions, API errors, web searches, tool calls, unpriced tokens, skipped
   lines, per-model and per-project figures, histogram consistency).
2. `ccmon-replay metrics --format openmetrics` is valid OpenMetrics (TYPE/UNIT/HELP, '# EOF'
   last) and carries exactly the same samples as the text output.
3. `ccmon-replay summary --json` totals equal expected.json.
4. The `ccmon-replay openmetrics` history: valid OpenMetrics, every sample timestamped in
   seconds inside the fixture's window, per series strictly ascending, starting at 0, never
   decreasing, every series ending at the common end time printed on stderr, with the final
   values equal to the `metrics` output.
"""

import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402

DEVICE = "itest-dev"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATE_RE = re.compile(r"(19|20)\d\d-[01]\d-[0-3]\d|\b1[0-9]{9}(\d{3})?\b")  # ISO day, unix s/ms


def check_promtool(args, ck, text):
    promtool = ic.find_tool(args.promtool, "promtool")
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    ck.check(p.returncode == 0 and out == "", "promtool check metrics: exit 0, no findings",
             "exit %d, output:\n%s" % (p.returncode, out[:3000]))


def check_totals(ck, where, samples, expected, device):
    """The figures every exposition of the current totals must match."""
    tot = expected["totals"]
    by_type = ic.group_sum(samples, "claude_tokens_total", "type")
    ck.eq("%s: claude_tokens_total type label values" % where, sorted(by_type),
          sorted(ic.TOKEN_TYPES))
    for t in ic.TOKEN_TYPES:
        ck.eq("%s: sum(claude_tokens_total{type=%s})" % (where, t), by_type.get(t), tot[t])
    ck.eq("%s: sum(claude_tokens_total)" % where, ic.sum_where(samples, "claude_tokens_total"),
          sum(tot[t] for t in ic.TOKEN_TYPES))
    ck.eq("%s: sum(claude_requests_total)" % where,
          ic.sum_where(samples, "claude_requests_total"), tot["requests"])
    ck.close("%s: sum(claude_cost_usd_total)" % where,
             ic.sum_where(samples, "claude_cost_usd_total"), tot["cost_pusd"] / 1e12)
    exact = ic.exact_usd_sum(samples, "claude_cost_usd_total")
    ck.eq("%s: sum(claude_cost_usd_total) as exact decimals, in pUSD" % where,
          exact * 10 ** 12, Decimal(tot["cost_pusd"]))
    ck.eq("%s: sum(claude_sessions_total)" % where,
          ic.sum_where(samples, "claude_sessions_total"), tot["sessions"])
    ck.eq("%s: sum(claude_api_errors_total)" % where,
          ic.sum_where(samples, "claude_api_errors_total"), tot["api_errors"])
    ck.eq("%s: sum(claude_web_search_requests_total)" % where,
          ic.sum_where(samples, "claude_web_search_requests_total"), tot["web_search_requests"])
    ck.eq("%s: sum(claude_user_prompts_total)" % where,
          ic.sum_where(samples, "claude_user_prompts_total"), tot["prompts"])
    ck.eq("%s: claude_tool_calls_total by tool" % where,
          ic.group_sum(samples, "claude_tool_calls_total", "tool"), expected["tool_calls"])
    ck.eq("%s: claude_unpriced_tokens_total by model" % where,
          ic.group_sum(samples, "claude_unpriced_tokens_total", "model"),
          expected["unpriced_tokens"])

    # Per model: tokens, requests, cost; web searches.
    pm = expected["per_model"]
    got_req = ic.group_sum(samples, "claude_requests_total", "model")
    ck.eq("%s: claude_requests_total by model" % where, got_req,
          {m: v["requests"] for m, v in pm.items()})
    got_tok = {}
    for s in samples:
        if s.name == "claude_tokens_total":
            k = (s.label("model"), s.label("type"))
            got_tok[k] = got_tok.get(k, 0) + s.value
    want_tok = {(m, t): v[t] for m, v in pm.items() for t in ic.TOKEN_TYPES}
    ck.eq("%s: claude_tokens_total by model and type" % where, got_tok, want_tok)
    cost_by_model = {}
    for s in samples:
        if s.name == "claude_cost_usd_total":
            m = s.label("model")
            cost_by_model[m] = cost_by_model.get(m, Decimal(0)) + Decimal(s.raw_value)
    ck.eq("%s: claude_cost_usd_total by model (exact pUSD)" % where,
          {m: int(v * 10 ** 12) for m, v in cost_by_model.items()},
          {m: v["cost_pusd"] for m, v in pm.items()})
    ws = ic.group_sum(samples, "claude_web_search_requests_total", "model")
    ck.eq("%s: claude_web_search_requests_total by model (non-zero)" % where,
          {m: v for m, v in ws.items() if v}, {m: v["web_search_requests"] for m, v in pm.items()
                                              if v["web_search_requests"]})

    # Per project (A30 basename labels; two cwds may share a basename).
    want_proj = {}
    for cwd, v in expected["per_project"].items():
        b = ic.project_basename(cwd)
        w = want_proj.setdefault(b, {"requests": 0, "sessions": 0, "cost_pusd": 0, "prompts": 0})
        for k in w:
            w[k] += v[k]
    ck.eq("%s: claude_requests_total by project" % where,
          ic.group_sum(samples, "claude_requests_total", "project"),
          {b: v["requests"] for b, v in want_proj.items()})
    ck.eq("%s: claude_sessions_total by project" % where,
          ic.group_sum(samples, "claude_sessions_total", "project"),
          {b: v["sessions"] for b, v in want_proj.items() if v["sessions"]})
    ck.eq("%s: claude_user_prompts_total by project" % where,
          ic.group_sum(samples, "claude_user_prompts_total", "project"),
          {b: v["prompts"] for b, v in want_proj.items() if v["prompts"]})

    # Histogram: per (device, model) buckets cumulative, +Inf == _count == priced requests,
    # _sum == the model's cost.
    hist = {}
    for s in samples:
        if s.name.startswith("claude_cost_per_request_usd_"):
            h = hist.setdefault(s.label("model"), {"buckets": {}, "count": None, "sum": None})
            if s.name.endswith("_bucket"):
                h["buckets"][s.label("le")] = s.value
            elif s.name.endswith("_count"):
                h["count"] = s.value
            elif s.name.endswith("_sum"):
                h["sum"] = Decimal(s.raw_value)
    priced = {m: v for m, v in pm.items() if m not in expected["unpriced_tokens"]}
    ck.eq("%s: claude_cost_per_request_usd models (priced ones)" % where, sorted(hist),
          sorted(priced))
    bad = []
    for m, h in sorted(hist.items()):
        les = sorted(h["buckets"], key=lambda x: float(x))
        vals = [h["buckets"][x] for x in les]
        if not les or les[-1] != "+Inf":
            bad.append("%s: no +Inf bucket" % m)
            continue
        if any(b < a for a, b in zip(vals, vals[1:])):
            bad.append("%s: buckets not cumulative %r" % (m, list(zip(les, vals))))
        if vals[-1] != h["count"]:
            bad.append("%s: +Inf bucket %r != _count %r" % (m, vals[-1], h["count"]))
        if m in priced and h["count"] != priced[m]["requests"]:
            bad.append("%s: _count %r != requests %r" % (m, h["count"], priced[m]["requests"]))
        if m in priced and h["sum"] * 10 ** 12 != priced[m]["cost_pusd"]:
            bad.append("%s: _sum %r USD != cost %r pUSD" % (m, h["sum"], priced[m]["cost_pusd"]))
    ck.check(not bad, "%s: histogram buckets cumulative, +Inf == _count == priced requests, "
             "_sum == cost, for %d models" % (where, len(hist)), "; ".join(bad))

    # Labels: the device label everywhere, no session ids or dates (A35).
    devs = {s.label("device") for s in samples if s.name.startswith("claude_")}
    ck.eq("%s: device label values" % where, devs, {device})
    # Model ids carry release dates (claude-sonnet-4-5-20250929) by design.
    leaks = sorted({v for s in samples for n, v in s.labels
                    if UUID_RE.search(v) or (n != "model" and DATE_RE.search(v))})
    ck.check(not leaks, "%s: no label value carries a session id or a date" % where,
             "found %r" % leaks[:5])


def check_label_names(ck, where, samples, families_spec):
    bad = set()
    for s in samples:
        fam = ic.om_family_name(s.name)
        spec = families_spec.get(fam)
        if spec is None:
            continue
        names = tuple(n for n, _ in s.labels if n != "le")
        if tuple(sorted(names)) != tuple(sorted(spec[2])):
            bad.add("%s{%s}" % (s.name, ",".join(names)))
    ck.check(not bad, "%s: label names of every family as documented" % where,
             "unexpected: %r" % sorted(bad)[:5])


def check_skipped(ck, where, samples, expected):
    got = ic.group_sum(samples, "ccmon_skipped_lines_total", "reason")
    want = expected["skipped"]
    ck.eq("%s: ccmon_skipped_lines_total for the generator's skip kinds" % where,
          {k: got.get(k) for k in want}, want)


def test_text(args, ck, fx, expected):
    text = ic.replay_metrics(args, fx, DEVICE)
    print("-- metrics (text 0.0.4): %d bytes" % len(text))
    check_promtool(args, ck, text)
    try:
        types, samples = ic.parse_prom_text(text)
    except ic.ParseError as e:
        ck.check(False, "text output parses", str(e))
        return None
    ck.check(all(s.ts is None for s in samples), "text: no sample has a timestamp")
    want_types = {}
    for fam, (typ, _, _) in list(ic.CLAUDE_FAMILIES.items()) + list(ic.METRICS_ONLY_FAMILIES.items()):
        want_types[fam + "_total" if typ == "counter" else fam] = typ
    ck.eq("text: TYPE lines", {k: types.get(k) for k in want_types}, want_types)
    unknown = sorted({s.name for s in samples if ic.family_of_text_name(s.name, types) is None})
    ck.check(not unknown, "text: every sample has a TYPE line", "untyped: %r" % unknown)
    present = {ic.family_of_text_name(s.name, types) for s in samples}
    missing = sorted(k for k in want_types if k not in present)
    ck.check(not missing, "text: samples of all %d families present" % len(want_types),
             "missing: %r" % missing)
    dup = len(samples) - len({s.key for s in samples})
    ck.eq("text: duplicate series", dup, 0)
    check_totals(ck, "text", samples, expected, DEVICE)
    check_label_names(ck, "text", samples, ic.CLAUDE_FAMILIES)
    check_skipped(ck, "text", samples, expected)
    return samples


def test_om_metrics(args, ck, fx, expected, text_samples):
    om = ic.replay_metrics(args, fx, DEVICE, "openmetrics")
    print("-- metrics --format openmetrics: %d bytes" % len(om))
    ck.check(om.rstrip("\n").endswith("\n# EOF") and om.rstrip("\n").count("# EOF") == 1,
             "openmetrics: '# EOF' is the last line (once)")
    try:
        fams, samples = ic.parse_openmetrics(om)
    except ic.ParseError as e:
        ck.check(False, "openmetrics: output parses as OpenMetrics", str(e))
        return
    ck.check(True, "openmetrics: output parses as OpenMetrics (%d families, %d samples)"
             % (len(fams), len(samples)))
    spec = dict(ic.CLAUDE_FAMILIES)
    spec.update(ic.METRICS_ONLY_FAMILIES)
    ck.eq("openmetrics: family TYPEs", {f: fams.get(f, {}).get("type") for f in spec},
          {f: v[0] for f, v in spec.items()})
    ck.eq("openmetrics: family UNITs", {f: fams.get(f, {}).get("unit") for f in spec},
          {f: v[1] for f, v in spec.items()})
    unit_missing = sorted(f for f in fams if re.search(r"_(usd|tokens)$", f)
                          and fams[f]["unit"] is None)
    ck.check(not unit_missing, "openmetrics: every family ending in _usd/_tokens has # UNIT",
             "missing: %r" % unit_missing)
    ck.check(all(f["help"] for f in fams.values()), "openmetrics: every family has # HELP")
    present = {s.family for s in samples}
    missing = sorted(f for f in spec if f not in present)
    ck.check(not missing, "openmetrics: samples of all %d families present (incl. "
             "claude_api_errors, claude_unpriced_tokens)" % len(spec), "missing: %r" % missing)
    ck.check(all(s.ts is None for s in samples), "openmetrics: no sample has a timestamp")
    got = {s.key: s.value for s in samples}
    want = {s.key: s.value for s in text_samples} if text_samples else None
    if want is not None:
        diff = sorted(set(got.items()) ^ set(want.items()))
        ck.check(not diff and len(got) == len(samples),
                 "openmetrics: the same %d series and values as the text output" % len(want),
                 "differences (first 5): %r" % diff[:5])
    check_totals(ck, "openmetrics", samples, expected, DEVICE)


def test_summary(args, ck, fx, expected):
    print("-- summary --json")
    js = ic.replay_summary(args, fx, DEVICE)
    t = js.get("totals", {})
    want = expected["totals"]
    keys = list(ic.TOKEN_TYPES) + ["requests", "sessions", "api_errors", "web_search_requests",
                                   "prompts"]
    ck.eq("summary: totals", {k: t.get(k) for k in keys}, {k: want[k] for k in keys})
    ck.eq("summary: totals.cost_pusd (exact decimal string)", t.get("cost_pusd"),
          str(want["cost_pusd"]))
    ck.close("summary: totals.cost_usd", t.get("cost_usd"), want["cost_pusd"] / 1e12)


def test_history(args, ck, fx, expected, text_samples, tmp):
    path = os.path.join(tmp, "history.om")
    end = ic.replay_history(args, fx, DEVICE, path)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    print("-- openmetrics history: %d bytes, ends at %d" % (len(text), end))
    lines = text.rstrip("\n").split("\n")
    ck.eq("history: last line", lines[-1], "# EOF")
    try:
        fams, samples = ic.parse_openmetrics(text)
    except ic.ParseError as e:
        ck.check(False, "history: parses as OpenMetrics", str(e))
        return
    ck.check(True, "history: parses as OpenMetrics (%d families, %d samples)"
             % (len(fams), len(samples)))
    spec = ic.CLAUDE_FAMILIES
    ck.eq("history: families", sorted(fams), sorted(spec))
    ck.eq("history: family UNITs", {f: fams.get(f, {}).get("unit") for f in spec},
          {f: v[1] for f, v in spec.items()})
    no_ts = [s.lineno for s in samples if s.ts is None]
    ck.check(not no_ts, "history: every sample has a timestamp", "lines %r" % no_ts[:5])
    if no_ts:
        return
    # Seconds, not milliseconds: inside the fixture's window (give or take a step).
    g = expected.get("generator", {})
    start = int((dt.datetime.strptime(g.get("start", "2026-08-20"), "%Y-%m-%d")
                 - dt.datetime(1970, 1, 1)).total_seconds())
    stop = start + 86400 * int(g.get("days", 30)) + 86400  # sessions may run past the last day
    lo, hi = min(s.ts for s in samples), max(s.ts for s in samples)
    ck.check(start - 60 <= lo and hi <= stop, "history: timestamps are seconds inside the "
             "fixture window [%d, %d]" % (start, stop), "got [%r, %r]" % (lo, hi))
    ck.eq("history: newest timestamp == 'history ends at'", hi, end)

    series = ic.series_by_key(samples)
    not_asc, not_end, not_zero, decreasing = [], [], [], []
    for k, ss in series.items():
        ts = [s.ts for s in ss]
        if any(b <= a for a, b in zip(ts, ts[1:])):
            not_asc.append(k)
        if ts[-1] != end:
            not_end.append((k, ts[-1]))
        if ss[0].value != 0:
            not_zero.append((k, ss[0].raw_value))
        vals = [s.value for s in ss]
        if any(b < a for a, b in zip(vals, vals[1:])):
            decreasing.append(k)
    ck.check(not not_asc, "history: timestamps strictly ascending within each of %d series"
             % len(series), "%d series not, e.g. %r" % (len(not_asc), not_asc[:3]))
    ck.check(not not_end, "history: every series' last sample is at the end time %d" % end,
             "%d series end elsewhere, e.g. %r" % (len(not_end), not_end[:3]))
    ck.check(not not_zero, "history: every series starts with a 0 sample (A37)",
             "%d do not, e.g. %r" % (len(not_zero), not_zero[:3]))
    ck.check(not decreasing, "history: no counter or histogram series ever decreases",
             "%d decrease, e.g. %r" % (len(decreasing), decreasing[:3]))
    lens = [len(ss) for ss in series.values()]
    ck.check(min(lens) >= 2, "history: every series has >= 2 samples (its 0 and its end)",
             "min %d" % min(lens))

    # Histogram MetricPoints: all children of one histogram share their timestamps.
    hts = {}
    for s in samples:
        if s.family == "claude_cost_per_request_usd":
            lk = tuple(sorted((n, v) for n, v in s.labels if n != "le"))
            hts.setdefault(lk, {}).setdefault(s.name + "|" + str(s.label("le")), []).append(s.ts)
    uneven = [lk for lk, ch in hts.items() if len({tuple(v) for v in ch.values()}) != 1]
    ck.check(not uneven, "history: every histogram's buckets, _count and _sum share timestamps",
             "%r" % uneven[:3])

    # The final values equal the current totals of `ccmon-replay metrics`.
    if text_samples is not None:
        final = {k: ss[-1].value for k, ss in series.items()}
        want = {s.key: s.value for s in text_samples if not s.name.startswith("ccmon_")}
        diff = sorted(set(final.items()) ^ set(want.items()))
        ck.check(not diff, "history: final values of all %d series equal `metrics` output"
                 % len(want), "%d differences, e.g. %r" % (len(diff), diff[:5]))
    check_totals(ck, "history final values", [ss[-1] for ss in series.values()], expected,
                 DEVICE)


def body(args, ck):
    with tempfile.TemporaryDirectory(prefix="ccmon-expo-") as tmp:
        fx = os.path.join(tmp, "fixture")
        expected = ic.make_fixture(args, fx)
        if not expected.get("generator", {}).get("full_coverage", True):
            raise ic.TestError("fixture without full coverage; use --sessions >= 13")
        print("fixture: seed %d, %d requests, %d sessions" % (
            args.seed, expected["totals"]["requests"], expected["totals"]["sessions"]))
        text_samples = test_text(args, ck, fx, expected)
        test_om_metrics(args, ck, fx, expected, text_samples)
        test_summary(args, ck, fx, expected)
        test_history(args, ck, fx, expected, text_samples, tmp)


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("exposition_test", body))
