#!/bin/bash
# run.sh [WORKDIR]: POP3 download benchmark, mailsrv pop3d against a private
# Dovecot 2.3 pop3 on the same machine, in the same run, on copies of the
# same 10,000-message Maildir.
#
# Each server gets one warm-up session, then RUNS sessions of: connect,
# USER/PASS, STAT, UIDL, RETR of every message, QUIT (nothing deleted),
# one command at a time (bench/pop3/popbench). Medians are printed per
# phase, with the server's CPU time per session (its process and children
# from /proc), and the ratio Dovecot/pop3d of each phase (above 1: pop3d is
# faster).
#
# Both use argon2id password hashes with 64 MiB and 3 passes (pop3d: 2
# lanes, Dovecot/libsodium: 1), so login costs about the same on purpose.
# Dovecot uses pop3_uidl_format = %f (the Maildir file name, as pop3d) and
# runs in its Debian default process mode, or with DOVECOT_FAST=1 with
# pop3-login service_count = 0 and process_min_avail = 1.
#
# Environment: MESSAGES (10000), SIZE (3000 bytes), RUNS (5), KEEP=1 to
# keep WORKDIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../dovecot.sh"
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/pop3bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
chmod 755 "$work"
messages=${MESSAGES:-10000}
size=${SIZE:-3000}
runs=${RUNS:-5}
pass=Tq7-vorpal-sweater-42
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -f "$work/dovecot/run/master.pid" ]; then
		kill "$(cat "$work/dovecot/run/master.pid")" 2>/dev/null || true
	fi
	sleep 0.5
	[ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT


echo "building" >&2
(cd "$repo" && go build -o "$work/bin/" ./cmd/pop3d ./bench/pop3/popbench)
bin=$work/bin

echo "mailsrv root and $messages messages of ~$size bytes" >&2
root=$work/mailsrv
"$bin/popbench" setup -root "$root" -user bench@example.test -pass "$pass"
box=$root/mail/example.test/bench
"$bin/popbench" fill -dir "$box" -n "$messages" -size "$size"

echo "Dovecot with a copy of the Maildir" >&2
dv=$work/dovecot
mkdir -p "$dv/run" "$dv/state" "$dv/mail/bench@example.test"
cp -a "$box" "$dv/mail/bench@example.test/Maildir"
rm -f "$dv/mail/bench@example.test/Maildir/pop3."*
chown -R 65534:65534 "$dv/mail"
echo "bench@example.test:$(doveadm pw -s ARGON2ID -p "$pass")::::::" >"$dv/passwd"
dport=$(free_port)
dovecot_conf pop3 "$dv" "$dport" "$dv/mail/%u" "pop3_uidl_format = %f"
dovecot -c "$dv/dovecot.conf"
wait_port "$dport"
dpid=$(cat "$dv/run/master.pid")

pport=$(free_port)
"$bin/pop3d" --root "$root" --listen "127.0.0.1:$pport" 2>"$work/pop3d.log" &
ppid=$!
pids+=("$ppid")
wait_port "$pport"

echo "measuring ($runs runs each after a warm-up)" >&2
ours=$("$bin/popbench" run -addr "127.0.0.1:$pport" -user bench@example.test -pass "$pass" -runs "$runs" -label pop3d -pids "$ppid")
theirs=$("$bin/popbench" run -addr "127.0.0.1:$dport" -user bench@example.test -pass "$pass" -runs "$runs" -label dovecot -pids "$dpid")
echo "$ours"
echo "$theirs"
# Ratio of each phase: Dovecot's time over pop3d's.
printf '%s\n%s\n' "$ours" "$theirs" | awk '
	{ for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) v[NR, kv[1]] = kv[2] }
	END {
		printf "ratio dovecot/pop3d:"
		n = split("login stat uidl retr_all total server_cpu_ms_per_run", k, " ")
		for (i = 1; i <= n; i++) if (v[1, k[i]] > 0) printf " %s=%.2f", k[i], v[2, k[i]] / v[1, k[i]]
		printf "\n"
	}'
