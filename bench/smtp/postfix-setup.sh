#!/bin/bash
# postfix-setup.sh DIR PORT: make a private Postfix instance in DIR that
# listens on 127.0.0.1:PORT and delivers mail for example.test (any local
# part) to DIR/vmail/demo/Maildir/ with virtual(8). It does not start it.
#
# Settings changed from Debian's /etc/postfix (everything else stays as
# shipped, in particular in_flow_delay = 1s and the process limits):
#   queue_directory, data_directory, maillog_file    (private, under DIR)
#   inet_interfaces = 127.0.0.1, inet_protocols = ipv4
#   mydestination =, alias_maps =, alias_database =  (no local(8) delivery)
#   virtual_mailbox_domains = example.test
#   virtual_mailbox_base = DIR/vmail
#   virtual_mailbox_maps = static:demo/Maildir/     (trailing / = Maildir)
#   virtual_uid_maps = virtual_gid_maps = static:65534
#   master.cf: smtpd on 127.0.0.1:PORT, every service with chroot = n
# Extra settings may be given as POSTFIX_EXTRA="name=value name=value".
set -euo pipefail

dir=${1:?usage: postfix-setup.sh DIR PORT}
port=${2:?usage: postfix-setup.sh DIR PORT}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/etc"
cp -a /etc/postfix "$dir/etc"
rm -f "$dir/etc/makedefs.out" # a symlink out of the directory: postfix check warns
mkdir -p "$dir/queue" "$dir/data" "$dir/vmail"
chown postfix "$dir/data"
chown 65534:65534 "$dir/vmail"
: >"$dir/maillog"

pc() { postconf -c "$dir/etc" -e "$@"; }
pc "queue_directory = $dir/queue" \
	"data_directory = $dir/data" \
	"maillog_file = $dir/maillog" \
	"maillog_file_prefixes = /var, /dev/stdout, $dir" \
	"inet_interfaces = 127.0.0.1" \
	"inet_protocols = ipv4" \
	"mydestination =" \
	"alias_maps =" \
	"alias_database =" \
	"virtual_mailbox_domains = example.test" \
	"virtual_mailbox_base = $dir/vmail" \
	"virtual_mailbox_maps = static:demo/Maildir/" \
	"virtual_uid_maps = static:65534" \
	"virtual_gid_maps = static:65534"
for kv in ${POSTFIX_EXTRA:-}; do
	pc "${kv%%=*} = ${kv#*=}"
done

# Debian's master.cf services, chroot off (the private queue directory has
# no chroot tree), and the postlog service since there is no syslog here.
cat >"$dir/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
local      unix  - n n -  - local
virtual    unix  - n n -  - virtual
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF

# `postfix check` creates the queue directories with their owners and
# reports configuration errors that `postfix start` would only syslog.
postfix -c "$dir/etc" check
