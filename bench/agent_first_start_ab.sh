#!/bin/bash
# First start of one or more ccmon-agent binaries against `ccmon-replay summary` on the same
# corpus, alternating within each round so that the machine's load hits every binary alike
# (BENCHMARKS.md "Agent"). Per round: replay summary (wall, user+sys CPU, peak RSS from
# /usr/bin/time), then each agent through bench/agent_first_start.sh (launch -> "caught up").
# Ends with each binary's medians and min-max, and each agent's wall and CPU ratio to replay's
# (per-round ratios, their median).
#   bench/agent_first_start_ab.sh CONFIG_DIR ROUNDS REPLAY AGENT...
set -euo pipefail
corpus=$1 rounds=$2 replay=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 0; r < rounds; r++)); do
  /usr/bin/time -f "replay %e %U %S %M" -o "$out.t" "$replay" summary --config-dir "$corpus" >/dev/null
  read -r _ w u s m <"$out.t"
  echo "$r replay $w $(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}') $(awk -v m="$m" 'BEGIN{printf "%.1f", m/1024}')" | tee -a "$out"
  i=0
  for a in "$@"; do
    line=$("$here/agent_first_start.sh" "$a" "$corpus" 1)
    # "wall W s  cpu C s  peak RSS R MiB"
    echo "$r agent$i $(awk '{print $2, $5, $9}' <<<"$line")" | tee -a "$out"
    i=$((i + 1))
  done
done
rm -f "$out.t"
echo "binary: wall s / cpu s / peak RSS MiB as median (min-max); ratios to replay in the same round"
awk '
  function med(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { w[$2, ++n[$2]] = $3; c[$2, n[$2]] = $4; m[$2, n[$2]] = $5; names[$2] = 1
    if ($2 == "replay") { rw[$1] = $3; rc[$1] = $4 } else { ww[$2, n[$2]] = $3 / rw[$1]; cc[$2, n[$2]] = $4 / rc[$1] } }
  END {
    for (b in names) {
      k = n[b]; split("", x); split("", y); split("", z)
      for (i = 1; i <= k; i++) { x[i] = w[b, i]; y[i] = c[b, i]; z[i] = m[b, i] }
      lo_w = hi_w = x[1]; lo_m = hi_m = z[1]
      for (i = 1; i <= k; i++) { if (x[i] < lo_w) lo_w = x[i]; if (x[i] > hi_w) hi_w = x[i]; if (z[i] < lo_m) lo_m = z[i]; if (z[i] > hi_m) hi_m = z[i] }
      line = sprintf("%-8s wall %.2f (%.2f-%.2f)  cpu %.2f  rss %.1f (%.1f-%.1f)", b, med(x, k), lo_w, hi_w, med(y, k), med(z, k), lo_m, hi_m)
      if (b != "replay") {
        for (i = 1; i <= k; i++) { x[i] = ww[b, i]; y[i] = cc[b, i] }
        line = line sprintf("  ratio wall %.2fx cpu %.2fx", med(x, k), med(y, k))
      }
      print line
    }
  }' "$out" | sort
