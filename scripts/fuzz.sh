#!/bin/sh
# Runs every Go fuzz target in the module for the given time each.
set -eu
t=${1:-5s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "fuzz $pkg $target ($t)"
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "$pkg" >/tmp/mailsrv-fuzz.$$ 2>&1 || {
			cat /tmp/mailsrv-fuzz.$$; rm -f /tmp/mailsrv-fuzz.$$; exit 1; }
	done
done
rm -f /tmp/mailsrv-fuzz.$$
echo "fuzz: all targets ran"
