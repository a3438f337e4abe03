#!/bin/bash
# bench/smtp/profile.sh [SIZE [SESSIONS [MSGS]]]: where mailsrv's CPU goes on
# the SMTP-to-Maildir path. Starts smtpd + queue run in a temporary root,
# warms up (so the inject and deliver pools exist), then records every
# process of both trees with `perf record -g` during one smtp-source load
# and prints the CPU by role, by program and object, and the hottest
# symbols. With SERVER=postfix it profiles a private Postfix instead (its
# processes at the start and, by inheritance, those its master starts).
# Needs perf (Debian linux-perf) and root. Not part of `make bench`.
#   BIN       mailsrv binaries (default ./bin)
#   INJECTORS, CONCURRENCY   smtpd --injectors, queue run --concurrency
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BIN=${BIN:-$top/bin}
size=${1:-1024} sess=${2:-10} n=${3:-3000}
command -v perf >/dev/null || { echo "perf missing (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/mailsrv-profile.XXXXXX)
chmod 755 "$work"
r=$work/root
pids=
pf=
cleanup() {
	[ -z "$pf" ] && [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
	[ -n "$pf" ] && timeout 30 postfix -c "$pf/etc" stop >/dev/null 2>&1
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

if [ "${SERVER:-mailsrv}" = postfix ]; then
	pf=$work/postfix
	"$here/postfix-setup.sh" "$pf" "$port"
	postfix -c "$pf/etc" start
	pids=$(tr -d ' ' <"$pf/queue/pid/master.pid")
	new=$pf/vmail/demo/Maildir/new
	mkdir -p "$new" && chown -R 65534:65534 "$pf/vmail"
else
	"$BIN/mailctl" --root "$r" init --hostname localhost
	"$BIN/mailctl" --root "$r" domain add example.test
	echo 'a-long-enough-Passw0rd!x' | "$BIN/mailctl" --root "$r" user add --password-stdin demo@example.test
	export MAILSRV_LIBEXEC=$BIN
	"$BIN/queue" --root "$r" run --concurrency "${CONCURRENCY:-8}" 2>"$work/queue.log" &
	pids="$!"
	"$BIN/smtpd" --root "$r" --listen "127.0.0.1:$port" --injectors "${INJECTORS:-4}" 2>"$work/smtpd.log" &
	pids="$pids $!"
	new=$r/mail/example.test/demo/new
fi
wait_for() { # COUNT
	for _ in $(seq 1200); do
		[ "$(ls -U1 "$new" | wc -l)" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "timeout waiting for $1 messages" >&2
	return 1
}
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
smtp-source -s "$sess" -m 500 -l "$size" -f from@example.org -t demo@example.test "127.0.0.1:$port"
wait_for 500
# Every process of both trees: the daemons and their pooled children.
tree=$(ps -e -o pid=,ppid= | awk -v roots="$pids" '
	{ parent[$1] = $2; all[NR] = $1 }
	END { n = split(roots, r, " "); for (i = 1; i <= n; i++) t[r[i]] = 1
		do { g = 0; for (i in all) if (!(all[i] in t) && (parent[all[i]] in t)) { t[all[i]] = 1; g = 1 } } while (g)
		s = ""; for (p in t) s = s (s ? "," : "") p; print s }')
ps -o pid=,args= -p "$tree" >"$work/procs"
perf record -q -e cpu-clock -F 2000 -g -p "$tree" -o "$work/perf.data" 2>/dev/null &
perfpid=$!
perf stat -x, -e context-switches,raw_syscalls:sys_enter -p "$tree" -o "$work/stat" 2>/dev/null &
statpid=$!
sleep 1
smtp-source -s "$sess" -m "$n" -l "$size" -f from@example.org -t demo@example.test "127.0.0.1:$port"
wait_for $((500 + n))
sleep 0.5
kill -INT "$perfpid" "$statpid"
wait "$perfpid" "$statpid" || true
echo "== per message (processes present at the start, and their new children)"
awk -F, -v n="$n" '$3 ~ /context-switches|sys_enter/ { printf "%8.1f %s\n", $1 / n, $3 }' "$work/stat"
set +o pipefail # head closes the pipes early
rep() { perf report -i "$work/perf.data" -g none --percent-limit 0.7 --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$'; }
echo "== CPU by process role, share of the samples (other: a process started after recording began)"
perf script -i "$work/perf.data" -F pid 2>/dev/null |
	awk 'NR == FNR { role = $2; sub(/.*\//, "", role)
			if ($0 ~ / inject /) role = "queue inject --lmtp (smtpd pool)"
			else if ($0 ~ / run /) role = "queue run"
			else if (role == "deliver") role = "deliver --lmtp (queue run pool)"
			r[$1] = role; next }
		{ t[($1 in r) ? r[$1] : "other"]++; all++ }
		END { for (x in t) printf "%6.1f%%  %s\n", 100 * t[x] / all, x }' "$work/procs" - | sort -rn
echo "== Go runtime background work (inclusive, by program)"
rep --children --sort comm,sym | grep -E 'runtime\.(sysmon|gcBgMarkWorker|bgsweep|bgscavenge|mallocgc)$' | head -12
echo "== CPU by program and object"
rep --no-children --sort comm,dso | head -20
echo "== hottest symbols (self)"
rep --no-children --sort comm,sym | head -50
echo "== inclusive (self + callees), top entries"
rep --children --sort comm,sym | head -70
