#!/usr/bin/env python3
"""Checks that two sets of ccmon-replay outputs differ only by the prompts of docs/accounting.md A38.

    bench/check_prompt_diffs.py BEFORE_DIR AFTER_DIR

BEFORE_DIR and AFTER_DIR hold the same files (as written by /work/baseline/mkout.sh or
bench/compare_outputs.sh): `*.json` reports, `*.metrics.txt` / `*.metrics.om` snapshots,
`*.history.om` OpenMetrics histories and anything else. The only differences allowed:

  * JSON reports: lines `"prompts": N,` added (rows and totals; by-model rows have none), and
    whole new rows for a day, month, session or project that has prompts but no request (all
    other figures 0, no models): counted and listed. With those removed, the report must equal
    the old one value for value (and byte for byte when there is no new row).
  * Snapshots and histories: the lines of the new family claude_user_prompts (`# HELP`, `# TYPE`,
    `# UNIT` and its samples) added. Every other line, its order and the `# EOF` are unchanged,
    which also means the history's common end time did not move.
  * Anything else: byte-identical.

Exit status 0 when every file passes, 1 otherwise (with the first offending lines).
"""
import json
import os
import re
import sys

PROMPTS_JSON_LINE = re.compile(r'^ *"prompts": \d+,?$')
FAMILY_LINE = re.compile(r"^(# (HELP|TYPE|UNIT) )?claude_user_prompts(_total)?[ {]")


def allowed_added_line(name, line):
    if name.endswith(".json"):
        return PROMPTS_JSON_LINE.match(line) is not None
    if name.endswith(".txt") or name.endswith(".om"):
        return FAMILY_LINE.match(line) is not None
    return False


def prompt_only_row(row):
    """A row that exists only because of prompts: no request, no tokens, no cost, no model."""
    zero = all(v == 0 for k, v in row.items()
               if k not in ("key", "models", "project", "prompts", "cost_usd", "cost_pusd"))
    return (row.get("prompts", 0) > 0 and row.get("requests") == 0 and zero and not row["models"]
            and row.get("cost_pusd") == "0")


def check_json(before_path, after_path):
    with open(before_path, encoding="utf-8") as f:
        before = json.load(f)
    with open(after_path, encoding="utf-8") as f:
        after = json.load(f)
    new_rows = [r["key"] for r in after.get("rows", []) if prompt_only_row(r)]
    after["rows"] = [r for r in after.get("rows", []) if not prompt_only_row(r)]
    for r in after["rows"] + [after.get("totals", {})]:
        r.pop("prompts", None)
    problems = []
    if after != before:
        for k in sorted(set(before) | set(after)):
            if before.get(k) != after.get(k):
                if k == "rows":
                    for i, (a, b) in enumerate(zip(before["rows"], after["rows"])):
                        if a != b:
                            problems.append("row %d: before %r, after %r" % (i, a, b))
                            break
                    else:
                        problems.append("%d rows before, %d after" % (len(before["rows"]), len(after["rows"])))
                else:
                    problems.append("%s: before %r, after %r" % (k, before.get(k), after.get(k)))
                break
    return problems, new_rows


def check(before_path, after_path, name):
    with open(before_path, "rb") as f:
        before = f.read().decode("utf-8", "surrogateescape").split("\n")
    with open(after_path, "rb") as f:
        after = f.read().decode("utf-8", "surrogateescape").split("\n")
    added = [l for l in after if allowed_added_line(name, l)]
    rest = [l for l in after if not allowed_added_line(name, l)]
    problems = []
    if rest != before:
        # Show where the remaining lines first diverge.
        for i, (a, b) in enumerate(zip(before, rest)):
            if a != b:
                problems.append("line %d: before %r, after %r" % (i + 1, a[:160], b[:160]))
                break
        else:
            problems.append("%d lines before, %d after (besides prompt lines)" % (len(before), len(rest)))
    return problems, len(added)


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    before_dir, after_dir = argv[1], argv[2]
    bad = 0
    for name in sorted(os.listdir(before_dir)):
        after = os.path.join(after_dir, name)
        if not os.path.exists(after):
            print("MISSING %s" % name)
            bad += 1
            continue
        problems, added = check(os.path.join(before_dir, name), after, name)
        new_rows = []
        if problems and name.endswith(".json"):
            # Not only "prompts" lines: allowed if the rest is new prompt-only rows.
            problems, new_rows = check_json(os.path.join(before_dir, name), after)
        if problems:
            bad += 1
            print("DIFFERENT %s: %s" % (name, "; ".join(problems)))
        elif new_rows:
            print("ok %-32s prompts fields added; %d new prompt-only rows: %s" %
                  (name, len(new_rows), " ".join(new_rows[:4]) + (" ..." if len(new_rows) > 4 else "")))
        else:
            print("ok %-32s %6d prompt lines added" % (name, added))
    extra = sorted(set(os.listdir(after_dir)) - set(os.listdir(before_dir)))
    for name in extra:
        print("EXTRA %s" % name)
    print("%d files, %d with other differences" % (len(os.listdir(before_dir)), bad))
    return 1 if bad or extra else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
