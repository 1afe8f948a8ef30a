#!/usr/bin/env python3
"""Integration test: `ccmon-replay openmetrics --step` (docs/accounting.md A37).

Writes the fixture's history with the default step, --step 1m, --step 1h and --step 1d and
checks for each: timestamps are multiples of the step (stamped at step ends), consecutive
samples of a series are at least one step apart (so no series has two samples in one step
bucket), the end time is the end of a step and every series ends there; the coarser histories
have the same series and final values as 1m, no more samples per series than 1m, and every
coarse sample equals the 1m history's value at that instant (downsampling is consistent).
The default step is 1m (byte-identical output). Bad --step values are refused.
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_common as ic  # noqa: E402

DEVICE = "itest-dev"
STEPS = (("1h", 3600), ("1d", 86400))


def load(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        _, samples = ic.parse_openmetrics(text)
    except ic.ParseError as e:
        raise ic.TestError("%s does not parse as OpenMetrics: %s" % (path, e))
    return text, ic.series_by_key(samples)


def check_step_grid(ck, label, series, step, end):
    misaligned, close, two_in_bucket, not_end = [], [], [], []
    for k, ss in series.items():
        ts = [int(s.ts) for s in ss]
        if any(s.ts != int(s.ts) or int(s.ts) % step for s in ss):
            misaligned.append(k)
        if any(b - a < step for a, b in zip(ts, ts[1:])):
            close.append(k)
        buckets = [t // step for t in ts]
        if len(set(buckets)) != len(buckets):
            two_in_bucket.append(k)
        if ts[-1] != end:
            not_end.append(k)
    ck.check(end % step == 0, "%s: end time %d is a step boundary" % (label, end))
    ck.check(not misaligned, "%s: every timestamp is a multiple of %d s" % (label, step),
             "%d series, e.g. %r" % (len(misaligned), misaligned[:2]))
    ck.check(not close, "%s: consecutive samples of every series >= %d s apart" % (label, step),
             "%d series, e.g. %r" % (len(close), close[:2]))
    ck.check(not two_in_bucket, "%s: no series has two samples in one %d s bucket"
             % (label, step), "%d series, e.g. %r" % (len(two_in_bucket), two_in_bucket[:2]))
    ck.check(not not_end, "%s: every series ends at %d" % (label, end),
             "%d series, e.g. %r" % (len(not_end), not_end[:2]))


def value_at(ss, t):
    v = 0.0  # before its first sample a series is 0 (its first sample is 0 anyway)
    for s in ss:
        if s.ts > t:
            break
        v = s.value
    return v


def body(args, ck):
    with tempfile.TemporaryDirectory(prefix="ccmon-step-") as tmp:
        fx = os.path.join(tmp, "fixture")
        expected = ic.make_fixture(args, fx)
        print("fixture: seed %d, %d requests" % (args.seed, expected["totals"]["requests"]))

        p_def = os.path.join(tmp, "default.om")
        end_def = ic.replay_history(args, fx, DEVICE, p_def)
        p1m = os.path.join(tmp, "1m.om")
        end1m = ic.replay_history(args, fx, DEVICE, p1m, step="1m")
        text_def, _ = load(p_def)
        text1m, fine = load(p1m)
        n1m = sum(len(v) for v in fine.values())
        print("-- step 1m: %d series, %d samples, end %d" % (len(fine), n1m, end1m))
        ck.check(text_def == text1m and end_def == end1m,
                 "default step: output identical to --step 1m")
        check_step_grid(ck, "1m", fine, 60, end1m)

        for name, step in STEPS:
            path = os.path.join(tmp, name + ".om")
            end = ic.replay_history(args, fx, DEVICE, path, step=name)
            _, coarse = load(path)
            n = sum(len(v) for v in coarse.values())
            print("-- step %s: %d series, %d samples, end %d" % (name, len(coarse), n, end))
            check_step_grid(ck, name, coarse, step, end)
            ck.check(end1m <= end < end1m + step,
                     "%s: end %d is the end of the step holding the 1m end %d" % (name, end, end1m))
            ck.eq("%s: same series as 1m" % name, sorted(coarse), sorted(fine))
            more = [(k, len(coarse[k]), len(fine[k])) for k in coarse
                    if k in fine and len(coarse[k]) > len(fine[k])]
            ck.check(not more, "%s: no series has more samples than with 1m" % name,
                     "%d series, e.g. %r" % (len(more), more[:3]))
            ck.check(n <= n1m, "%s: %d samples <= %d with 1m" % (name, n, n1m))
            finals = [k for k in coarse if k in fine and coarse[k][-1].value != fine[k][-1].value]
            ck.check(not finals, "%s: final values equal those of 1m" % name,
                     "%d differ, e.g. %r" % (len(finals), finals[:3]))
            # The value at a coarse step end includes every event at or before it, as does
            # the 1m history at that instant (1m step ends include every coarse step end).
            bad = []
            for k, ss in coarse.items():
                for s in ss:
                    want = value_at(fine.get(k, []), s.ts)
                    if s.value != want:
                        bad.append((k, s.ts, s.value, want))
            ck.check(not bad, "%s: every sample equals the 1m history's value at its time "
                     "(%d samples)" % (name, n),
                     "%d differ, e.g. %r" % (len(bad), bad[:3]))

        # Bad steps are refused before anything is written.
        for bad_step in ("0m", "10x", "1.5h", "-1h"):
            out = os.path.join(tmp, "bad.om")
            p = subprocess.run([args.replay, "openmetrics", "-o", out, "--config-dir", fx,
                                "--device", DEVICE, "-z", "UTC", "--progress", "never",
                                "--step=" + bad_step], capture_output=True, timeout=60)
            ck.check(p.returncode != 0 and not os.path.exists(out),
                     "--step %s is refused (exit %d, no output file)" % (bad_step, p.returncode),
                     "stderr: %s" % p.stderr.decode("utf-8", "replace")[:300])


if __name__ == "__main__":
    sys.exit(ic.main_wrapper("history_step_test", body))
