#!/bin/sh
# bench/run.sh: the benchmarks of `make bench` (which builds bin/ first),
# each against the real peer on this machine in the same run: end-to-end
# SMTP against Postfix, POP3 against Dovecot's pop3, IMAP against Dovecot's
# imap. See bench/README.md and the README of each subdirectory.
# BENCH_ONLY=smtp|pop3|imap runs one of them.
set -eu
cd "$(dirname "$0")/.."
only=${BENCH_ONLY:-}
# smtp-source and the Postfix we compare against come with Debian's postfix.
command -v smtp-source >/dev/null 2>&1 || scripts/deps.sh postfix
command -v dovecot >/dev/null 2>&1 || scripts/deps.sh dovecot-core dovecot-imapd dovecot-pop3d
status=0
run() { # NAME SECONDS SCRIPT
	[ -z "$only" ] || [ "$only" = "$1" ] || return 0
	[ -x "$3" ] || return 0
	echo "== bench $1"
	timeout "$2" "$3" || { echo "bench $1 failed"; status=1; }
}
# Bounded: each benchmark also keeps its own runs under their timeouts.
run smtp 900 bench/smtp/bench.sh
run pop3 600 bench/pop3/run.sh
run imap 900 bench/imap/run.sh
exit $status
