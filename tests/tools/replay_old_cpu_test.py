#!/usr/bin/env python3
"""ccmon-replay on a CPU without AVX2 (docs/accounting.md A12).

The line parser's fast path is AVX2 code; on an older CPU it must be neither run nor constructed,
and nothing else may execute AVX2 code (inline functions compiled for it that the linker keeps
for the whole program). This runs ccmon-replay under `qemu-x86_64 -cpu Westmere` (no AVX, AVX2,
BMI) on a generated fixture and requires its `summary --json` (by day and by session) to equal
a native run with the fast path, and a native run with the fast path forced off
(CCMON_FAST_PATH=off). Exit 77 (skipped) when qemu-x86_64 is missing or the host is not x86-64.

usage: replay_old_cpu_test.py --replay BIN --fixture-gen GEN [--qemu qemu-x86_64]
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile


def run(cmd, env_extra=None):
    env = dict(os.environ)
    env.pop("CCMON_FAST_PATH", None)
    env.update(env_extra or {})
    res = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
    if res.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), res.returncode,
                                                 res.stderr.decode("utf-8", "replace")[-2000:]))
    return res.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", required=True)
    ap.add_argument("--fixture-gen", required=True)
    ap.add_argument("--qemu", default="qemu-x86_64")
    a = ap.parse_args()
    qemu = shutil.which(a.qemu)
    if platform.machine() not in ("x86_64", "AMD64") or qemu is None:
        print("skipped: needs an x86-64 host and %s (Debian package qemu-user)" % a.qemu)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        fixture = os.path.join(tmp, "fixture")
        subprocess.run([sys.executable, a.fixture_gen, fixture, "--seed", "5", "--sessions", "16"],
                       check=True, capture_output=True)
        failed = 0
        for by in ("day", "session"):
            args = ["summary", "--json", "--by", by, "--config-dir", fixture, "-z", "UTC",
                    "--device", "old-cpu", "--progress", "never"]
            native = run([a.replay] + args)
            reference = run([a.replay] + args, {"CCMON_FAST_PATH": "off"})
            westmere = run([qemu, "-cpu", "Westmere", a.replay] + args)
            for name, got in (("fast path off", reference), ("qemu -cpu Westmere", westmere)):
                if got != native:
                    failed += 1
                    print("--by %s: %s differs from the native run with the fast path" % (by, name))
            print("--by %s: %d bytes, native == fast path off == Westmere: %s" %
                  (by, len(native), native == reference == westmere))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
