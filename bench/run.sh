#!/usr/bin/env bash
# The accessbot load benchmark, in one command: builds accessbot and the load generator in
# release mode, runs every case and writes bench/REPORT.md. See bench/README.md.
#
#   bench/run.sh                      # 10 s per case
#   BENCH_DURATION=30 bench/run.sh    # or any loadgen flag: bench/run.sh --duration 30
#
# PostgreSQL is reached without TLS (sslmode=disable is added to BENCH_PG_URL / --pg-url unless
# the URL names an sslmode), so that the numbers compare with those measured before TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin accessbot --example loadgen
exec env BENCH_COMMAND="bench/run.sh${*:+ $*}" target/release/examples/loadgen \
    --bin target/release/accessbot \
    --report bench/REPORT.md \
    --appendix bench/analysis.md \
    "$@"
