#!/bin/sh
# Installs the Debian packages that the tests (or, with arguments, the
# named packages) need, only when something is missing.
set -eu
if [ $# -gt 0 ]; then
	pkgs="$*"
else
	pkgs=""
	need() { command -v "$1" >/dev/null 2>&1 || pkgs="$pkgs $2"; }
	need swaks swaks
	need tcpserver ucspi-tcp
	need fetchmail fetchmail
	need getmail getmail6
	need mbsync isync
	need curl curl
	need scdoc scdoc
	need python3 python3
	need doveadm dovecot-core
	need openssl openssl
fi
[ -z "$pkgs" ] && exit 0
echo "installing:$pkgs"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
