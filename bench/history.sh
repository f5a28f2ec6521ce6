#!/usr/bin/env bash
# The accessbot history benchmark, in one command: builds accessbot and the benchmark in
# release mode, fills a database of each size with SQL (1,000 and 1,000,000 requests by
# default) on SQLite and PostgreSQL, measures each figure and writes the "History" section
# of bench/REPORT.md. See bench/README.md. Not part of CI: it takes about half an hour.
#
#   bench/history.sh                          # both sizes, both backends
#   bench/history.sh --backends sqlite        # or any flag of bench/history.rs
#
# PostgreSQL is reached without TLS (sslmode=disable is added to BENCH_PG_URL / --pg-url
# unless the URL names an sslmode), like the load benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin accessbot --example history
exec env BENCH_COMMAND="bench/history.sh${*:+ $*}" target/release/examples/history \
    --bin target/release/accessbot \
    --report bench/REPORT.md \
    --appendix bench/history-analysis.md \
    "$@"
