#!/usr/bin/env bash
# Before/after comparison of two accessbot builds in one sitting: runs the load generator
# RUNS times on each binary, alternating (before, after, before, …) so that a machine that
# drifts during the sitting shows in both, and prints the median of each case.
#
#   bench/compare.sh BEFORE_BIN AFTER_BIN [loadgen flags…]
#   BENCH_RUNS=3 bench/compare.sh /tmp/before/accessbot target/release/accessbot --duration 4
#
# Each run's full report is kept in bench/compare/<before|after>-<n>.md (not committed);
# copy the summary into bench/REPORT.md by hand. PostgreSQL cases need the local server
# (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,9p "$0"; exit 2; }
before=$1 after=$2
shift 2
runs=${BENCH_RUNS:-3}
out=bench/compare
mkdir -p "$out"
cargo build --release --example loadgen

for n in $(seq 1 "$runs"); do
  for label in before after; do
    bin=$before
    [ "$label" = after ] && bin=$after
    echo "== $label run $n ($bin) $(date -u +%H:%M:%S)" >&2
    BENCH_COMMAND="bench/compare.sh" target/release/examples/loadgen \
      --bin "$bin" --cases sqlite,postgres,postgres-2-replicas \
      --report "$out/$label-$n.md" "$@"
  done
done

# One line per run and case, then the medians: decisions/s, p99 (ms), peak RSS (MB).
summarize() {
  awk -F'|' -v label="$1" '
    /^\| \| sqlite/ { for (i = 3; i < NF; i++) { gsub(/ /, "", $i); name[i] = $i } }
    /decisions\/s \(acknowledged/ { for (i in name) rate[i] = $i + 0 }
    /ack latency p99/ { for (i in name) p99[i] = $i + 0 }
    /peak RSS \(VmHWM\)/ { for (i in name) { split($i, parts, ","); rss[i] = parts[1] + 0 } }
    END { for (i in name) printf "%s %s %d %.2f %.1f\n", label, name[i], rate[i], p99[i], rss[i] }
  ' "$2"
}
{
  for n in $(seq 1 "$runs"); do
    for label in before after; do summarize "$label" "$out/$label-$n.md"; done
  done
} > "$out/runs.txt"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '| case | before decisions/s | after decisions/s | after/before | before p99 | after p99 | before RSS | after RSS |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for case in sqlite postgres postgres-2-replicas; do
  b=$(awk -v c="$case" '$1 == "before" && $2 == c { print $3 }' "$out/runs.txt" | median)
  a=$(awk -v c="$case" '$1 == "after" && $2 == c { print $3 }' "$out/runs.txt" | median)
  bp=$(awk -v c="$case" '$1 == "before" && $2 == c { print $4 }' "$out/runs.txt" | median)
  ap=$(awk -v c="$case" '$1 == "after" && $2 == c { print $4 }' "$out/runs.txt" | median)
  br=$(awk -v c="$case" '$1 == "before" && $2 == c { print $5 }' "$out/runs.txt" | median)
  ar=$(awk -v c="$case" '$1 == "after" && $2 == c { print $5 }' "$out/runs.txt" | median)
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf '| %s | %s | %s | %s | %s ms | %s ms | %s MB | %s MB |\n' \
    "$case" "$b" "$a" "$ratio" "$bp" "$ap" "$br" "$ar"
done
echo
echo "Each run (label case decisions/s p99-ms RSS-MB):"
sed 's/^/    /' "$out/runs.txt"
