#!/bin/sh
# make run: the whole mail system on loopback high ports, rooted in ./run,
# with the demo domain example.test and the user demo@example.test. No root,
# nothing installed. Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")/.."
BIN=$PWD/bin
ROOT=$PWD/run
export MAILSRV_ROOT="$ROOT" MAILSRV_LIBEXEC="$BIN"

if [ ! -f "$ROOT/etc/me" ]; then
	"$BIN/mailctl" init --hostname localhost
	"$BIN/mailctl" domain add example.test
	pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s\n' "$pw" | "$BIN/mailctl" user add --password-stdin demo@example.test
	"$BIN/mailctl" alias add postmaster@example.test demo@example.test
	"$BIN/mailctl" tls selfsigned localhost 127.0.0.1 >/dev/null
	printf '%s\n' "$pw" > "$ROOT/demo-password"
	chmod 600 "$ROOT/demo-password"
fi
pw=$(cat "$ROOT/demo-password")

pids=""
start() {
	"$@" 2>>"$ROOT/log" &
	pids="$pids $!"
}
stop() {
	trap - INT TERM EXIT
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null || true
	wait 2>/dev/null || true
	echo "mailsrv stopped"
}
trap stop INT TERM EXIT

start "$BIN/queue" run
# The auth service first: imapd and pop3d check passwords through its
# socket (ROOT/run/auth.sock), and by themselves while it is not there.
start "$BIN/mailctl" auth-helper --listen "$ROOT/run/auth.sock"
for _ in $(seq 50); do
	[ -S "$ROOT/run/auth.sock" ] && break
	sleep 0.1
done
start "$BIN/smtpd" --listen 127.0.0.1:2525
start "$BIN/smtpd" --listen 127.0.0.1:2587 --submission
[ -x "$BIN/imapd" ] && start "$BIN/imapd" --listen 127.0.0.1:1143
[ -x "$BIN/pop3d" ] && start "$BIN/pop3d" --listen 127.0.0.1:1110

cat <<MSG
mailsrv is running in $ROOT (logs: $ROOT/log)
  SMTP 127.0.0.1:2525   submission 127.0.0.1:2587 (STARTTLS, AUTH)
  IMAP 127.0.0.1:1143   POP3 127.0.0.1:1110   auth service $ROOT/run/auth.sock
  user demo@example.test   password $pw
Send a message:
  swaks --server 127.0.0.1:2525 --from you@example.org --to demo@example.test
or as the demo user, through submission:
  swaks -s 127.0.0.1:2587 --tls -a PLAIN -au demo@example.test -ap $pw -f demo@example.test -t demo@example.test
It lands in $ROOT/mail/example.test/demo/new/ . Ctrl-C stops.
MSG
tail -n 0 -f "$ROOT/log" &
pids="$pids $!"
wait
