#!/bin/sh
# bench/run.sh: the benchmarks of `make bench` (which builds bin/ first).
# See bench/README.md. Today: end-to-end SMTP, mailsrv against Postfix.
set -eu
cd "$(dirname "$0")/.."
# smtp-source and the Postfix we compare against come with Debian's postfix.
command -v smtp-source >/dev/null 2>&1 || scripts/deps.sh postfix
# Bounded: the benchmark itself keeps every run under BENCH_RUN_TIMEOUT.
exec timeout 900 bench/smtp/bench.sh "$@"
