#!/bin/bash
# bench/imap/run.sh [WORKDIR]: IMAP on one 100,000-message Maildir, mailsrv
# imapd against a private Dovecot 2.3 imap on the same machine, in the same
# run, on hard links of the same files. See bench/imap/README.md. mailsrv's
# auth service (mailctl auth-helper --listen ROOT/run/auth.sock) runs for
# imapd in both modes, and is stopped by its PID at the end.
#
# Environment: MESSAGES (100000), BIN (the repository's bin/, from
# `make build`), DOVECOT_FAST=1 (imap-login service_count = 0 and
# process_min_avail = 1 instead of Debian's default, a login process per
# connection), DOVECOT_HASH=ARGON2ID (Dovecot's password as an argon2id hash
# like mailsrv's, instead of {PLAIN}), MAILSRV_MODE=tcpserver (imapd on
# stdin/stdout under ucspi-tcp's tcpserver -D (TCP_NODELAY), a process per session like
# Dovecot's imap, instead of one `imapd --listen` process), ORDER=dovecot
# (measure Dovecot first), KEEP=1 (keep WORKDIR), BENCH_TMPDIR
# (where WORKDIR is made: /work if it exists, else /var/tmp; not /tmp,
# whose file creation is slow here), RESULT (also write the table there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../dovecot.sh"
repo=$(cd "$here/../.." && pwd)
bin=${BIN:-$repo/bin}
messages=${MESSAGES:-100000}
tmpbase=${BENCH_TMPDIR:-$( [ -d /work ] && [ -w /work ] && echo /work || echo /var/tmp )}
work=${1:-$(mktemp -d "$tmpbase/imapbench.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
chmod 755 "$work"
user=demo@example.test
pass='a-long-enough-Passw0rd!x'
ipid=""
apid=""
cleanup() {
	if [ -n "$ipid" ]; then kill "$ipid" 2>/dev/null || true; fi
	if [ -n "$apid" ]; then kill "$apid" 2>/dev/null || true; fi
	if [ -f "$work/dovecot/run/master.pid" ]; then
		kill "$(cat "$work/dovecot/run/master.pid")" 2>/dev/null || true
	fi
	for _ in $(seq 50); do
		[ -f "$work/dovecot/run/master.pid" ] || break
		sleep 0.1
	done
	[ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

for b in imapd mailctl; do
	[ -x "$bin/$b" ] || { echo "no $bin/$b: run make build" >&2; exit 1; }
done
command -v dovecot >/dev/null || { echo "dovecot-imapd is not installed" >&2; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "load average at start: $(load)" >&2
(cd "$repo" && go build -o "$work/imapbench" ./bench/imap/imapbench)

echo "generating $messages messages" >&2
t0=$(date +%s)
"$work/imapbench" fill -dir "$work/gen" -n "$messages"
echo "  $(($(date +%s) - t0)) s, $(du -sh "$work/gen" | cut -f1)" >&2

echo "mailsrv root, and Dovecot's tree, both hard links of the same files" >&2
root=$work/mailsrv
"$bin/mailctl" --root "$root" init --hostname localhost >/dev/null
"$bin/mailctl" --root "$root" domain add example.test >/dev/null
echo "$pass" | "$bin/mailctl" --root "$root" user add --password-stdin "$user" >/dev/null
box=$root/mail/example.test/demo
rm -rf "$box/cur"
cp -al "$work/gen/cur" "$box/cur"

dv=$work/dovecot
home=$dv/mail/$user
mkdir -p "$dv/run" "$dv/state" "$home/Maildir"
cp -al "$work/gen/cur" "$work/gen/new" "$work/gen/tmp" "$home/Maildir/"
chown -R 65534:65534 "$dv/mail"
if [ "${DOVECOT_HASH:-}" ]; then
	hash=$(doveadm pw -s "$DOVECOT_HASH" -p "$pass")
else
	hash="{PLAIN}$pass"
fi
echo "$user:$hash::::::" >"$dv/passwd"
dport=$(free_port)
dovecot_conf imap "$dv" "$dport" "$home"
dovecot -c "$dv/dovecot.conf"
wait_port "$dport"
dmaster=$(cat "$dv/run/master.pid")

# mailsrv's auth service, as make run and the service definitions start
# it: imapd (both modes) checks the password through its socket, where
# argon2's memory stays warm, as Dovecot's auth process does.
"$bin/mailctl" --root "$root" auth-helper --listen "$root/run/auth.sock" --debug 2>"$work/auth.log" &
apid=$!
for _ in $(seq 100); do
	[ -S "$root/run/auth.sock" ] && break
	sleep 0.1
done
[ -S "$root/run/auth.sock" ] || { echo "the auth service did not start:" >&2; cat "$work/auth.log" >&2; exit 1; }

iport=$(free_port)
if [ "${MAILSRV_MODE:-}" = tcpserver ]; then
	tcpserver -DHRl0 127.0.0.1 "$iport" "$bin/imapd" --root "$root" 2>"$work/imapd.log" &
	ipid=$!
	mode="imapd on stdin/stdout under tcpserver, a process per session"
	session=(-parent "$ipid" -comm imapd)
else
	"$bin/imapd" --root "$root" --listen "127.0.0.1:$iport" 2>"$work/imapd.log" &
	ipid=$!
	mode="one imapd --listen process"
	session=(-pid "$ipid")
fi
wait_port "$iport"
sync

measure_mailsrv() {
	echo "measuring mailsrv ($mode, pid $ipid), load $(load)" >&2
	timeout 1200 "$work/imapbench" run -addr "127.0.0.1:$iport" -user "$user" -pass "$pass" \
		-label mailsrv "${session[@]}" -out "$work/mailsrv.json" >&2
}
measure_dovecot() {
	echo "measuring Dovecot (master pid $dmaster), load $(load)" >&2
	timeout 1200 "$work/imapbench" run -addr "127.0.0.1:$dport" -user "$user" -pass "$pass" \
		-label dovecot -parent "$dmaster" -comm imap -out "$work/dovecot.json" >&2
}
if [ "${ORDER:-}" = dovecot ]; then
	measure_dovecot
	measure_mailsrv
else
	measure_mailsrv
	measure_dovecot
fi
echo "load average at end: $(load)" >&2
echo "mailsrv's auth service (pid $apid) answered $(grep -c 'msg=check' "$work/auth.log" || true) password checks;" \
	"$(grep -E '^Vm(HWM|RSS)' "/proc/$apid/status" | tr -s ' \t\n' ' ')" >&2

{
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average at the end $(load);" \
		"$(dovecot --version | cut -d' ' -f1) login mode: $([ "${DOVECOT_FAST:-}" = 1 ] && echo 'service_count=0 process_min_avail=1' || echo 'Debian default (service_count=1)')," \
		"password $([ "${DOVECOT_HASH:-}" ] && echo "$DOVECOT_HASH" || echo '{PLAIN}') (mailsrv: argon2id);" \
		"mailsrv: $mode; measured $([ "${ORDER:-}" = dovecot ] && echo 'Dovecot first' || echo 'mailsrv first')"
	"$work/imapbench" report "$work/mailsrv.json" "$work/dovecot.json"
} | tee ${RESULT:+"$RESULT"}
