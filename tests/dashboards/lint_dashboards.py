#!/usr/bin/env python3
"""Lint of ccmon's Grafana dashboards and Prometheus rules (CTest: dashboards.lint).

    lint_dashboards.py --promtool PROMTOOL --repo REPO_ROOT

Checks, each a list of problems (none expected):
  - dashboards/*.json are exactly what dashboards/generate.py writes;
  - the four dashboards, with their stable uids; schemaVersion >= 39; the variables `datasource`
    (type datasource, prometheus) and `device`, `model`, `project` (query, multi, All);
  - every panel and every target uses {"type": "prometheus", "uid": "${datasource}"}; every
    panel has a unit from the expected set and a "Needs:" note naming known requirements;
  - every PromQL expression of the dashboards (variables replaced as docs/prometheus-peers.md
    §12 does: $var -> .*, $__range/$__interval/$__rate_interval -> 5m) and of the rule files
    parses: `promtool check rules` over a generated rule file, and over the rule files;
  - the rule files keep the .yml extension and the plain rule-file shape (groups: …);
  - every alert of ccmon.alerts.yml is made to fire and checked quiet in ccmon.alerts.test.yml.
Then the lint is turned on broken copies (a string datasource, a missing unit, a bad PromQL
expression, a missing variable, …): each must be reported, so the lint itself cannot pass
vacuously. Exit 0 when all is as expected, 1 otherwise.
"""

import argparse
import copy
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

DS = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {"overview.json": "ccmon-overview", "trends.json": "ccmon-trends",
        "per-request.json": "ccmon-per-request", "fleet.json": "ccmon-fleet"}
UNITS = {"currencyUSD", "short", "percent", "percentunit", "s", "bytes", "dateTimeAsIso"}
NEEDS = {"any setup", "live agents", "agent /metrics scraped", "ccmon-gateway /metrics scraped",
         "ccmon rules"}
RULE_FILES = ("ccmon.rules.yml", "ccmon-settings.rules.yml", "ccmon.alerts.yml")


def substitute(expr, window="5m"):
    """A dashboard expression as Prometheus would get it, for a parse check or a query."""
    for v in ("$__rate_interval", "$__interval", "$__range"):
        expr = expr.replace(v, window)
    return re.sub(r"\$\{?(datasource|device|model|project)\}?", ".*", expr)


def panels_of(d):
    out = []
    for p in d.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))  # panels of a collapsed row
    return [p for p in out if p.get("type") != "row"]


def needs_of(panel):
    m = re.search(r"Needs: ([^.]*)\.$", panel.get("description", ""))
    return [n.strip() for n in m.group(1).split(",")] if m else []


def lint_dashboard(name, d):
    """Problems of one parsed dashboard (PromQL parsing is checked separately)."""
    bad = []
    if UIDS.get(name) and d.get("uid") != UIDS[name]:
        bad.append("%s: uid %r, want %r" % (name, d.get("uid"), UIDS[name]))
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 39:
        bad.append("%s: schemaVersion %r < 39" % (name, d.get("schemaVersion")))
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        bad.append("%s: no datasource variable of type datasource (prometheus)" % name)
    for var in ("device", "model", "project"):
        v = variables.get(var)
        if not v:
            bad.append("%s: no variable %s" % (name, var))
            continue
        if v.get("type") != "query" or not v.get("multi") or not v.get("includeAll"):
            bad.append("%s: variable %s is not a multi-value query variable with All" % (name, var))
        if v.get("allValue") != ".*":
            bad.append("%s: variable %s: All must be .* (regex matchers)" % (name, var))
        if v.get("datasource") != DS:
            bad.append("%s: variable %s: datasource %r" % (name, var, v.get("datasource")))
    if "$datasource" in json.dumps(d).replace("${datasource}", ""):
        bad.append("%s: a legacy \"$datasource\" string reference" % name)
    ps = panels_of(d)
    if not ps:
        bad.append("%s: no panels" % name)
    ids = [p.get("id") for p in ps]
    if len(set(ids)) != len(ids):
        bad.append("%s: duplicate panel ids" % name)
    for p in ps:
        where = "%s: panel %r" % (name, p.get("title"))
        if p.get("datasource") != DS:
            bad.append("%s: datasource %r" % (where, p.get("datasource")))
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if unit not in UNITS:
            bad.append("%s: unit %r not one of %s" % (where, unit, sorted(UNITS)))
        needs = needs_of(p)
        if not needs or any(n not in NEEDS for n in needs):
            bad.append("%s: description has no valid 'Needs: ….' note (%r)" % (where, needs))
        targets = p.get("targets", [])
        if not targets:
            bad.append("%s: no targets" % where)
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            bad.append("%s: duplicate refIds" % where)
        for t in targets:
            if t.get("datasource") != DS:
                bad.append("%s: target %s datasource %r" % (where, t.get("refId"),
                                                           t.get("datasource")))
            if not t.get("expr", "").strip():
                bad.append("%s: target %s has no expr" % (where, t.get("refId")))
            for var in re.findall(r"\$\{?(\w+)", t.get("expr", "")):
                if var not in variables and not var.startswith("__"):
                    bad.append("%s: expr uses undefined variable $%s" % (where, var))
    return bad


def dashboard_exprs(dashboards):
    """(where, expr) of every target and query variable."""
    out = []
    for name, d in dashboards:
        for p in panels_of(d):
            for t in p.get("targets", []):
                out.append(("%s: %s %s" % (name, p.get("title"), t.get("refId")), t.get("expr", "")))
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            if isinstance(q, dict):
                q = q.get("query", "")
            if v.get("type") == "query":
                m = re.fullmatch(r"label_values\((.*), *(\w+)\)", q or "")
                if not m:
                    out.append(("%s: variable %s" % (name, v.get("name")), "label_values?("))
                elif m.group(1).strip():
                    out.append(("%s: variable %s" % (name, v.get("name")), m.group(1)))
    return out


def rule_file_text(exprs):
    lines = ["groups:", "  - name: dashboard-exprs", "    rules:"]
    for i, (_, e) in enumerate(exprs):
        lines.append("      - record: dash_expr_%d" % i)
        lines.append("        expr: %s" % json.dumps(substitute(e)))
    return "\n".join(lines) + "\n"


def check_exprs(promtool, exprs, work):
    """Problems: expressions promtool cannot parse (each checked on its own, to name it)."""
    path = os.path.join(work, "dash-exprs.rules.yml")
    with open(path, "w") as fh:
        fh.write(rule_file_text(exprs))
    p = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    if p.returncode == 0:
        return []
    bad = []
    for where, e in exprs:
        with open(path, "w") as fh:
            fh.write(rule_file_text([(where, e)]))
        q = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if q.returncode != 0:
            msg = (q.stdout + q.stderr).strip().splitlines()
            bad.append("%s: PromQL does not parse: %s" % (where, msg[-1] if msg else "?"))
    return bad or ["promtool check rules failed: %s" % (p.stdout + p.stderr)]


def lint_all(promtool, dashboards, rule_paths, work):
    bad = []
    for name, d in dashboards:
        bad += lint_dashboard(name, d)
    bad += check_exprs(promtool, dashboard_exprs(dashboards), work)
    for path in rule_paths:
        if not path.endswith(".yml"):
            bad.append("%s: rule files keep the .yml extension (the Helm chart copies *.yml)"
                       % path)
        with open(path) as fh:
            if not re.search(r"^groups:", fh.read(), re.M):
                bad.append("%s: not a plain Prometheus rule file (no top-level groups:)" % path)
    p = subprocess.run([promtool, "check", "rules"] + list(rule_paths), capture_output=True,
                       text=True)
    if p.returncode != 0:
        bad.append("promtool check rules %s: %s" % (" ".join(rule_paths), p.stdout + p.stderr))
    return bad


def alert_test_coverage(alerts_path, test_path):
    """Problems: alerts of `alerts_path` that the promtool test file does not both make fire (an
    alert_rule_test with exp_alerts) and check quiet (one without)."""
    alerts = re.findall(r"^\s*- alert: (\w+)", open(alerts_path).read(), re.M)
    text = open(test_path).read()
    quiet = set(re.findall(r"\{eval_time: [^,]+, alertname: (\w+)\}", text))
    fires = set(re.findall(r"^\s*alertname: (\w+)\n\s*exp_alerts:", text, re.M))
    bad = []
    for a in alerts:
        if a not in fires:
            bad.append("%s: no promtool test makes it fire" % a)
        if a not in quiet:
            bad.append("%s: no promtool test checks that it stays quiet" % a)
    if not alerts:
        bad.append("%s: no alerts found" % alerts_path)
    return bad


def mutations(dashboards):
    """(what, broken copy of the dashboards) that the lint must report."""
    def first_panel(ds):
        return panels_of(ds[0][1])[0]

    def mutate(what, fn):
        ds = copy.deepcopy(dashboards)
        fn(ds)
        return what, ds

    return [
        mutate("legacy string datasource on a panel",
               lambda ds: first_panel(ds).__setitem__("datasource", "$datasource")),
        mutate("a target without datasource",
               lambda ds: first_panel(ds)["targets"][0].pop("datasource")),
        mutate("a panel without unit",
               lambda ds: first_panel(ds)["fieldConfig"]["defaults"].pop("unit")),
        mutate("an unparsable expression",
               lambda ds: first_panel(ds)["targets"][0].__setitem__(
                   "expr", "sum(rate(claude_cost_usd_total[5m])")),
        mutate("no project variable",
               lambda ds: ds[0][1]["templating"].__setitem__(
                   "list", [v for v in ds[0][1]["templating"]["list"]
                            if v["name"] != "project"])),
        mutate("a single-value device variable",
               lambda ds: [v.__setitem__("multi", False) for v in ds[0][1]["templating"]["list"]
                           if v["name"] == "device"]),
        mutate("a changed uid", lambda ds: ds[0][1].__setitem__("uid", "abc")),
        mutate("an old schemaVersion", lambda ds: ds[0][1].__setitem__("schemaVersion", 27)),
        mutate("an undefined variable",
               lambda ds: first_panel(ds)["targets"][0].__setitem__(
                   "expr", 'sum(claude_cost_usd_total{team=~"$team"})')),
        mutate("no Needs note",
               lambda ds: first_panel(ds).__setitem__("description", "x")),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--repo", required=True)
    args = ap.parse_args()
    dash_dir = os.path.join(args.repo, "dashboards")
    failed = []
    gen = subprocess.run([sys.executable, os.path.join(dash_dir, "generate.py"), "--check"],
                         capture_output=True, text=True)
    if gen.returncode != 0:
        failed.append("dashboards/generate.py --check: %s%s" % (gen.stdout, gen.stderr))
    files = sorted(glob.glob(os.path.join(dash_dir, "*.json")))
    names = [os.path.basename(f) for f in files]
    if sorted(names) != sorted(UIDS):
        failed.append("dashboards: %s, want %s" % (names, sorted(UIDS)))
    dashboards = [(os.path.basename(f), json.load(open(f, encoding="utf-8"))) for f in files]
    failed += alert_test_coverage(os.path.join(dash_dir, "rules", "ccmon.alerts.yml"),
                                  os.path.join(args.repo, "tests", "dashboards",
                                               "ccmon.alerts.test.yml"))
    rule_paths = [os.path.join(dash_dir, "rules", r) for r in RULE_FILES]
    with tempfile.TemporaryDirectory(prefix="ccmon-dash-lint-") as work:
        problems = lint_all(args.promtool, dashboards, rule_paths, work)
        for p in problems:
            failed.append(p)
        n_exprs = len(dashboard_exprs(dashboards))
        print("linted %d dashboards, %d panels, %d expressions, %d rule files: %d problems"
              % (len(dashboards), sum(len(panels_of(d)) for _, d in dashboards), n_exprs,
                 len(rule_paths), len(problems)))
        for what, broken in mutations(dashboards):
            found = lint_all(args.promtool, broken, rule_paths, work)
            if len(found) <= len(problems):
                failed.append("the lint did not report a broken dashboard: %s" % what)
            else:
                print("reported as expected: %s: %s" % (what, found[len(problems):][0][:160]))
    for f in failed:
        print("FAILED " + f)
    print("dashboards.lint: %s" % ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
