#!/bin/bash
# bench/smtp/bench.sh: end-to-end SMTP throughput, from SMTP accept to a file
# in Maildir new/, of mailsrv (smtpd + queue run + deliver) and of a private
# Postfix instance, on 127.0.0.1, in the same run, loaded by Postfix's
# smtp-source. Prints messages per second and server CPU time per message.
# See bench/README.md for what is measured and how; environment knobs:
#
#   BIN                 mailsrv binaries (default: ./bin of the repository)
#   BENCH_SIZES         message body sizes in bytes (default "1024 102400")
#   BENCH_SESSIONS      parallel SMTP sessions (default "10 50")
#   BENCH_MSGS_1024     messages per run for 1 KB (default 5000)
#   BENCH_MSGS          messages per run for other sizes (default 1000)
#   BENCH_VARIANTS      mailsrv settings "mode:injectors:concurrency ...";
#                       mode is smtpd --inject and queue run --deliver-mode
#                       (auto: in-process when no privilege is separated;
#                       process: queue inject and deliver children, as in a
#                       privilege-separated installation). The first is the
#                       default and is run beside Postfix
#                       (default "auto:4:8 process:4:8 process:16:32")
#   BENCH_REPEAT        runs of each Postfix / default-settings pair; the
#                       report gives medians (default 3)
#   BENCH_REUSE=0       skip the extra 1 KB x 10 sessions run with smtp-source -d
#                       (many messages per connection) of both servers
#   BENCH_RUN_TIMEOUT   seconds allowed to one run (default 120)
#   BENCH_KEEP=1        keep the work directory (logs, maildirs)
#   BENCH_CGROUP_BASE   the cgroup v1 cpuacct mount (default
#                       /sys/fs/cgroup/cpuacct); if not writable, CPU is
#                       summed from /proc instead
#   POSTFIX_EXTRA       "name=value ..." Postfix settings to change (e.g.
#                       in_flow_delay=0s), see postfix-setup.sh
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BIN=${BIN:-$top/bin}
SIZES=${BENCH_SIZES:-"1024 102400"}
SESSIONS=${BENCH_SESSIONS:-"10 50"}
VARIANTS=${BENCH_VARIANTS:-"auto:4:8 process:4:8 process:16:32"}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
REPEAT=${BENCH_REPEAT:-3}
WARMUP_MSGS=500
FROM=from@example.org
RCPT=demo@example.test
CGBASE=${BENCH_CGROUP_BASE:-/sys/fs/cgroup/cpuacct} # cgroup v1 cpuacct hierarchy

msgs_for() { # SIZE -> message count of one run
	if [ "$1" = 1024 ]; then echo "${BENCH_MSGS_1024:-5000}"; else echo "${BENCH_MSGS:-1000}"; fi
}

log() { printf '%s %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

for p in smtpd queue deliver mailctl; do
	[ -x "$BIN/$p" ] || die "$BIN/$p missing: run make build"
done
for p in smtp-source postfix postconf python3; do
	command -v "$p" >/dev/null || die "$p missing (Debian packages postfix, python3)"
done

work=$(mktemp -d /var/tmp/mailsrv-bench.XXXXXX) || die "mktemp"
chmod 755 "$work" # postfix and virtual (uid 65534) must reach their directories
results=$work/results.tsv
: >"$results"
failures=0

# ---- CPU accounting: a cpuacct cgroup (v1) per server part, else /proc ----

cgmode=proc
cgprefix=mailsrv-bench-$$
groups="postfix smtpd queue"
made_groups=
setup_cgroups() {
	local g
	if [ -w "$CGBASE" ] && mkdir "$CGBASE/$cgprefix-probe" 2>/dev/null; then
		rmdir "$CGBASE/$cgprefix-probe"
		cgmode=cgroup
		for g in $groups; do
			mkdir "$CGBASE/$cgprefix-$g" || die "mkdir cgroup $g"
			made_groups="$made_groups $g"
		done
	else
		log "cpuacct cgroups not writable: CPU is summed from /proc/PID/stat of each process tree"
	fi
}

# in_group NAME CMD...: runs CMD with the current subshell moved into group
# NAME first, so that the daemon and every child it starts are counted.
in_group() {
	local g=$1
	shift
	if [ "$cgmode" = cgroup ]; then
		echo "$BASHPID" >"$CGBASE/$cgprefix-$g/cgroup.procs" || exit 75
	fi
	exec "$@"
}

# proc_tree_ns PID...: CPU (user+sys, of the processes and of their reaped
# children) of the trees rooted at PID..., in nanoseconds.
proc_tree_ns() {
	local roots="$*" hz
	hz=$(getconf CLK_TCK)
	ps -e -o pid=,ppid= | awk -v roots="$roots" -v hz="$hz" '
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			n = split(roots, r, " "); for (i = 1; i <= n; i++) in_tree[r[i]] = 1
			do { grew = 0
				for (i in pids) { p = pids[i]
					if (!(p in in_tree) && (parent[p] in in_tree)) { in_tree[p] = 1; grew = 1 } }
			} while (grew)
			total = 0
			for (p in in_tree) {
				f = "/proc/" p "/stat"
				if ((getline line < f) > 0) {
					sub(/^.*\) /, "", line); split(line, s, " ")
					total += s[12] + s[13] + s[14] + s[15]  # utime stime cutime cstime
				}
				close(f)
			}
			printf "%.0f\n", total * 1e9 / hz
		}'
}

declare -A roots=()
cpu_ns() { # GROUP
	if [ "$cgmode" = cgroup ]; then
		cat "$CGBASE/$cgprefix-$1/cpuacct.usage"
	elif [ -n "${roots[$1]:-}" ]; then
		proc_tree_ns ${roots[$1]}
	else
		echo 0
	fi
}

# group_procs GROUP: the PIDs still in a group (cgroup mode only).
group_procs() {
	[ "$cgmode" = cgroup ] && cat "$CGBASE/$cgprefix-$1/cgroup.procs" 2>/dev/null
	return 0
}

# drain_group GROUP: waits up to 10 s for a group to empty, then kills what
# is left in it (all of it started by this script) and removes nothing.
drain_group() {
	local i left
	for i in $(seq 100); do
		left=$(group_procs "$1")
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	log "still in group $1 after 10 s, killing: $(echo $left)"
	kill -KILL $left 2>/dev/null
	sleep 0.5
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT: up to 10 s for a listener
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- the servers ----

pf_dir=$work/postfix
pf_port=
pf_running=0
pf_maildir=$pf_dir/vmail/demo/Maildir

postfix_start() {
	pf_port=$(free_port)
	"$here/postfix-setup.sh" "$pf_dir" "$pf_port" >"$work/postfix-setup.log" 2>&1 ||
		{ cat "$work/postfix-setup.log" >&2; die "postfix setup"; }
	pf_running=1
	(in_group postfix postfix -c "$pf_dir/etc" start) >>"$work/postfix-setup.log" 2>&1 ||
		{ cat "$work/postfix-setup.log" "$pf_dir/maillog" >&2; die "postfix start"; }
	wait_port "$pf_port" || die "postfix does not listen on $pf_port"
	roots[postfix]=$(tr -d ' ' <"$pf_dir/queue/pid/master.pid")
	log "postfix $(postconf -h mail_version) on 127.0.0.1:$pf_port (master ${roots[postfix]})"
}

postfix_stop() {
	[ "$pf_running" = 1 ] || return 0
	timeout 30 postfix -c "$pf_dir/etc" stop >>"$work/postfix-setup.log" 2>&1 ||
		log "postfix stop failed"
	pf_running=0
	drain_group postfix
}

ours_root=$work/mailsrv
ours_port=
ours_pids=
ours_maildir=$ours_root/mail/example.test/demo

ours_init() {
	local m="$BIN/mailctl" r=$ours_root
	"$m" --root "$r" init --hostname localhost &&
		"$m" --root "$r" domain add example.test &&
		echo 'a-long-enough-Passw0rd!x' | "$m" --root "$r" user add --password-stdin "$RCPT" ||
		die "mailctl could not make the root"
}

ours_start() { # MODE:INJECTORS:CONCURRENCY
	local mode=${1%%:*} rest=${1#*:}
	local inj=${rest%%:*} conc=${rest#*:}
	ours_port=$(free_port)
	export MAILSRV_LIBEXEC=$BIN
	(in_group queue "$BIN/queue" --root "$ours_root" run --concurrency "$conc" \
		--deliver-mode "$mode") 2>>"$work/queue.log" &
	roots[queue]=$!
	(in_group smtpd "$BIN/smtpd" --root "$ours_root" --listen "127.0.0.1:$ours_port" \
		--inject "$mode" --injectors "$inj") 2>>"$work/smtpd.log" &
	roots[smtpd]=$!
	ours_pids="${roots[queue]} ${roots[smtpd]}"
	wait_port "$ours_port" || die "smtpd does not listen on $ours_port"
	log "mailsrv smtpd --inject $mode --injectors $inj, queue run --deliver-mode $mode --concurrency $conc, on 127.0.0.1:$ours_port"
}

label() { # MODE:INJECTORS:CONCURRENCY -> mode/iN/cN
	local mode=${1%%:*} rest=${1#*:}
	echo "$mode/i${rest%%:*}/c${rest#*:}"
}

ours_stop() {
	local p i
	[ -n "$ours_pids" ] || return 0
	kill -TERM $ours_pids 2>/dev/null
	for i in $(seq 100); do
		kill -0 $ours_pids 2>/dev/null || break
		sleep 0.1
	done
	for p in $ours_pids; do
		kill -0 "$p" 2>/dev/null && { log "mailsrv $p did not stop: KILL"; kill -KILL "$p"; }
	done
	wait $ours_pids 2>/dev/null
	ours_pids=
	drain_group smtpd
	drain_group queue
}

cleanup() {
	local g
	trap - EXIT INT TERM
	[ -n "$src_pid" ] && kill -TERM "$src_pid" 2>/dev/null # timeout passes it on
	ours_stop
	postfix_stop
	for g in $made_groups; do
		drain_group "$g"
		rmdir "$CGBASE/$cgprefix-$g" 2>/dev/null || log "could not remove cgroup $cgprefix-$g"
	done
	if [ "$KEEP" = 1 ] || [ "$failures" -gt 0 ]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
KEEP=${BENCH_KEEP:-0}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# ---- one measured run ----

count_mail() { # MAILDIR: files in new/ and cur/
	local n=0 d
	for d in "$1/new" "$1/cur"; do
		[ -d "$d" ] && n=$((n + $(ls -U1 "$d" | wc -l)))
	done
	echo "$n"
}

queue_len() { # SERVER: messages still in the server's queue
	if [ "$1" = postfix ]; then
		find "$pf_dir/queue/incoming" "$pf_dir/queue/active" "$pf_dir/queue/deferred" \
			"$pf_dir/queue/maildrop" -type f 2>/dev/null | wc -l
	else
		find "$ours_root/queue/incoming" "$ours_root/queue/active" -type f 2>/dev/null | wc -l
	fi
}

# fresh_maildir MAILDIR: moves new/ and cur/ aside (renamed, not deleted:
# deleting thousands of files just before a run would make the next run's
# inode allocations slower on ext4 without a journal, as on this machine).
fresh_maildir() {
	local d
	for d in new cur; do
		[ -d "$1/$d" ] || continue
		mv "$1/$d" "$1/$d.old.$((++aside))" &&
			mkdir "$1/$d" &&
			chmod --reference="$1/$d.old.$aside" "$1/$d" &&
			chown --reference="$1/$d.old.$aside" "$1/$d" || die "cannot renew $1/$d"
	done
}
aside=0
src_pid= # the load generator (timeout smtp-source) of the run in progress

# run_one SERVER LABEL SIZE SESSIONS MSGS [smtp-source options]: one load run;
# appends a line to results.tsv unless LABEL is "warmup".
run_one() {
	local server=$1 label=$2 size=$3 sess=$4 n=$5
	shift 5
	local port maildir g0 s0 q0 t0 t1 got deadline rc errs status=ok
	if [ "$server" = postfix ]; then
		port=$pf_port maildir=$pf_maildir
	else
		port=$ours_port maildir=$ours_maildir
	fi
	fresh_maildir "$maildir"
	local out=$work/source.$server.${label//\//-}.$size.$sess
	sync
	sleep 0.5
	g0=$(cpu_ns postfix) s0=$(cpu_ns smtpd) q0=$(cpu_ns queue)
	t0=$EPOCHREALTIME
	timeout "$RUN_TIMEOUT" smtp-source "$@" -s "$sess" -m "$n" -l "$size" -f "$FROM" -t "$RCPT" \
		"127.0.0.1:$port" >"$out.out" 2>"$out.err" &
	src_pid=$!
	deadline=$((SECONDS + RUN_TIMEOUT))
	while :; do
		got=$(count_mail "$maildir")
		if [ "$got" -ge "$n" ] && ! kill -0 "$src_pid" 2>/dev/null; then
			t1=$EPOCHREALTIME
			break
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			t1=$EPOCHREALTIME
			status=timeout
			break
		fi
		sleep 0.05
	done
	wait "$src_pid"
	rc=$?
	src_pid=
	# CPU: until the queue is empty (bounded), so that every message's
	# clean-up is counted; the servers are otherwise idle.
	for _ in $(seq 100); do
		[ "$(queue_len "$server")" = 0 ] && break
		sleep 0.1
	done
	sleep 0.2
	local g1 s1 q1
	g1=$(cpu_ns postfix) s1=$(cpu_ns smtpd) q1=$(cpu_ns queue)
	errs=$(head -c 300 "$out.err" | tr '\n' ' ')
	got=$(count_mail "$maildir")
	[ "$rc" = 0 ] || status="smtp-source-exit-$rc"
	[ -z "$errs" ] || status="smtp-source-stderr"
	[ "$got" = "$n" ] || status="$status,count-$got-of-$n"
	if [ "$status" = ok ]; then
		local one
		one=$(find "$maildir/new" -type f | head -n 1)
		# smtp-source's SIZE counts CRLF line ends; stored mail has LF.
		[ "$(stat -c %s "$one")" -ge $((size * 95 / 100)) ] || status="short-message"
	fi
	[ "$label" = warmup ] && { log "warm-up $server: $status"; return 0; }
	local secs rate cpu smtpd_ns queue_ns
	if [ "$server" = postfix ]; then
		cpu=$((g1 - g0)) smtpd_ns=0 queue_ns=0
	else
		smtpd_ns=$((s1 - s0)) queue_ns=$((q1 - q0))
		cpu=$((smtpd_ns + queue_ns))
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v s="$secs" -v n="$n" 'BEGIN { printf "%.0f", n / s }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$label" "$size" "$sess" \
		"$n" "$secs" "$rate" "$cpu" "$smtpd_ns" "$queue_ns" "$status" >>"$results"
	log "$(printf '%-8s %-12s %6s B %3s sessions %5s msgs %7s s %5s msg/s %6.2f ms CPU/msg %s' \
		"$server" "$label" "$size" "$sess" "$n" "$secs" "$rate" \
		"$(awk -v c="$cpu" -v n="$n" 'BEGIN { print c / n / 1e6 }')" "$status")"
	if [ "$status" != ok ]; then
		failures=$((failures + 1))
		[ -n "$errs" ] && log "smtp-source said: $errs"
	fi
	return 0
}

matrix() { # SERVER LABEL [smtp-source options]
	local server=$1 label=$2 size sess
	shift 2
	for size in $SIZES; do
		for sess in $SESSIONS; do
			run_one "$server" "$label" "$size" "$sess" "$(msgs_for "$size")" "$@"
		done
	done
}

# ---- the run ----

log "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
setup_cgroups
log "work directory $work, CPU accounting by $cgmode"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
ours_init
postfix_start
set -- $VARIANTS
default=$1
shift
others="$*"
ours_start "$default"
run_one postfix warmup 1024 10 "$WARMUP_MSGS"
run_one mailsrv warmup 1024 10 "$WARMUP_MSGS"
# Postfix and our default settings, alternating, so that both see the same
# machine (other load on it changes over minutes).
for rep in $(seq "$REPEAT"); do
	for size in $SIZES; do
		for sess in $SESSIONS; do
			n=$(msgs_for "$size")
			run_one postfix postfix "$size" "$sess" "$n"
			run_one mailsrv "$(label "$default")" "$size" "$sess" "$n"
		done
	done
done
if [ "${BENCH_REUSE:-1}" = 1 ]; then
	run_one postfix "postfix-d" 1024 10 "$(msgs_for 1024)" -d
	run_one mailsrv "$(label "$default")-d" 1024 10 "$(msgs_for 1024)" -d
fi
postfix_stop
ours_stop
for v in $others; do
	ours_start "$v"
	run_one mailsrv warmup 1024 10 "$WARMUP_MSGS"
	matrix mailsrv "$(label "$v")"
	ours_stop
done

for f in "$work/smtpd.log" "$work/queue.log"; do
	n=$(grep -c 'level=ERROR' "$f")
	[ "$n" = 0 ] || log "$n ERROR lines in $(basename "$f") (kept in $work)"
	[ "$n" = 0 ] || failures=$((failures + 1))
done
n=$(grep -Ec 'fatal|panic|error' "$pf_dir/maillog")
[ "$n" = 0 ] || log "$n fatal/panic/error lines in the Postfix maillog"

{
	echo "SMTP accept to Maildir new/, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)"
	echo "smtp-source: one connection per message$([ "${BENCH_REUSE:-1}" = 1 ] && echo ', except rows marked -d'); CPU by $cgmode; load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "Postfix $(postconf -h mail_version): Debian's settings, private instance (bench/smtp/postfix-setup.sh)${POSTFIX_EXTRA:+, and $POSTFIX_EXTRA}"
	echo
	awk -f "$here/report.awk" -v default="$(label "$default")" "$results"
} | tee "$work/report.txt"
[ "$failures" = 0 ] || { log "$failures runs failed"; exit 1; }
