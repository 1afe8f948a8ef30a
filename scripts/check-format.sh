#!/usr/bin/env bash
# Checks that every tracked C++ file (*.h, *.cc) under src/, tests/ and bench/ is formatted as
# .clang-format says, and lists the files that are not; exits 1 if there are any.
#   scripts/check-format.sh          check (what CI runs, through scripts/test.sh)
#   scripts/check-format.sh --fix    format those files in place instead
# The formatter is Debian 12's clang-format 14 (scripts/install-deps.sh --test); other major
# versions format some constructs differently, so the check refuses them unless CLANG_FORMAT names
# a binary explicitly. Generated code (protobuf's *.pb.*) lives in the build tree and is skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  *) echo "usage: scripts/check-format.sh [--fix]" >&2; exit 2 ;;
esac

clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null; then
  echo "check-format.sh: $clang_format not found (scripts/install-deps.sh --test installs it)" >&2
  exit 2
fi
version=$("$clang_format" --version 2>&1) || {
  echo "check-format.sh: $clang_format --version failed: $version" >&2
  exit 2
}
if [ -z "${CLANG_FORMAT:-}" ] && ! [[ "$version" =~ version\ 14\. ]]; then
  echo "check-format.sh: needs clang-format 14 (as in CI), found: $version" >&2
  echo "  (set CLANG_FORMAT=/path/to/clang-format-14, or to this one to check anyway)" >&2
  exit 2
fi

patterns=('src/*.h' 'src/*.cc' 'tests/*.h' 'tests/*.cc' 'bench/*.h' 'bench/*.cc')
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- "${patterns[@]}" | grep -v '\.pb\.' || true)
else  # an unpacked source archive
  mapfile -t files < <(find src tests bench -type f \( -name '*.h' -o -name '*.cc' \) \
                         ! -name '*.pb.*' | sort)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "check-format.sh: no files found under src/, tests/, bench/" >&2
  exit 2
fi

if [ "$fix" = 1 ]; then
  "$clang_format" -i --style=file "${files[@]}"
  echo "check-format.sh: formatted ${#files[@]} files"
  exit 0
fi

# One clang-format process for all files; each unformatted file yields diagnostics that start
# with its name.
report=$("$clang_format" --dry-run --Werror --style=file "${files[@]}" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ]; then
  echo "check-format.sh: ${#files[@]} files formatted as .clang-format says"
  exit 0
fi
unformatted_re='^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*'
mapfile -t bad < <(sed -n "s/${unformatted_re}/\\1/p" <<<"$report" | sort -u)
if [ ${#bad[@]} -eq 0 ]; then  # clang-format itself failed (e.g. a bad .clang-format)
  echo "$report" >&2
  exit 2
fi
echo "check-format.sh: ${#bad[@]} of ${#files[@]} files are not formatted as .clang-format says:"
printf '  %s\n' "${bad[@]}"
echo "Fix: scripts/check-format.sh --fix (or clang-format -i FILE), then review the diff."
exit 1
