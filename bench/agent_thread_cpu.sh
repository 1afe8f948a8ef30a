#!/bin/bash
# CPU seconds per thread of ccmon-agent's first start (launch -> "caught up"), by thread name
# (the counting thread keeps the binary's name; ccmon-parse, ccmon-writer, rocksdb:*), for
# RUNS runs of each binary, alternating. The counting thread is the first start's critical
# path: moving work off it shows here even when the total CPU does not change.
#   bench/agent_thread_cpu.sh CONFIG_DIR RUNS AGENT...
set -euo pipefail
corpus=$1 runs=$2
shift 2
. "$(dirname "$0")/agent_start_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hz=$(getconf CLK_TCK)
for ((r = 0; r < runs; r++)); do
  i=0
  for a in "$@"; do
    start_agent_until_caught_up "$a" "$corpus" "$work"
    # Threads that ended before "caught up" (the catch-up's writer) are in the process total.
    read -r pu ps < <(awk '{print $14, $15}' "/proc/$pid/stat")
    main=0 parse=0
    for t in /proc/$pid/task/*; do
      name=$(cat "$t/comm")
      read -r u s < <(sed 's/.*) //' "$t/stat" | awk '{print $12, $13}')
      # The ingest (counting) thread is unnamed (the binary's name): the busiest such thread.
      if [[ $name != ccmon-parse && $name != ccmon-writer && $name != rocksdb* ]] && ((u + s > main)); then main=$((u + s)); fi
      if [[ $name == ccmon-parse ]]; then parse=$((parse + u + s)); fi
    done
    kill -TERM "$pid"
    wait "$pid" || true
    awk -v r="$r" -v i="$i" -v m="$main" -v p="$parse" -v t="$((pu + ps))" -v hz="$hz" \
      'BEGIN { printf "%d agent%d count %.2f parse %.2f total %.2f\n", r, i, m / hz, p / hz, t / hz }'
    i=$((i + 1))
  done
done | tee "$work/out"
awk '
  function med(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { k = ++n[$2]; c[$2, k] = $4; p[$2, k] = $6; t[$2, k] = $8 }
  END { for (b in n) { split("", x); split("", y); split("", z)
          for (i = 1; i <= n[b]; i++) { x[i] = c[b, i]; y[i] = p[b, i]; z[i] = t[b, i] }
          printf "%s median: counting thread %.2f s, parse thread %.2f s, all %.2f s\n", b, med(x, n[b]), med(y, n[b]), med(z, n[b]) } }' "$work/out" | sort
