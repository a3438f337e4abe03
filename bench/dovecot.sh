# bench/dovecot.sh: sourced by bench/imap/run.sh and bench/pop3/run.sh.
# Helpers they share, and the private Dovecot they measure against.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# dovecot_conf PROTOCOL DIR PORT HOME [EXTRA]: writes DIR/dovecot.conf for a
# private Dovecot serving PROTOCOL (imap or pop3) on 127.0.0.1:PORT only,
# users from DIR/passwd (uid 65534), mail in HOME/Maildir (HOME may use
# %u), its run, state and log under DIR; EXTRA is added at the top level.
# DOVECOT_FAST=1: the login service keeps its processes (service_count = 0,
# process_min_avail = 1) instead of Debian's default, one per connection.
dovecot_conf() {
	local proto=$1 dir=$2 port=$3 home=$4 extra=${5:-} fast=""
	if [ "${DOVECOT_FAST:-}" = 1 ]; then
		fast="service_count = 0
  process_min_avail = 1"
	fi
	cat >"$dir/dovecot.conf" <<CONF
protocols = $proto
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
$extra
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = passwd-file
  args = $dir/passwd
  default_fields = uid=65534 gid=65534 home=$home
}
service $proto-login {
  inet_listener $proto {
    address = 127.0.0.1
    port = $port
  }
  inet_listener ${proto}s {
    port = 0
  }
  $fast
}
CONF
}
