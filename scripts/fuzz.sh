#!/bin/sh
# Runs every Go fuzz target in the module for the given time each. A new
# crasher fails at once (Go writes it under testdata/fuzz/ for the
# regression run); a run that dies without a crasher (the fuzzing engine
# losing a worker on a loaded machine) is tried again, twice at most.
set -eu
t=${1:-5s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		try=1
		while :; do
			echo "fuzz $pkg $target ($t)"
			if go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "$pkg" >"$log" 2>&1; then
				break
			fi
			if grep -q 'Failing input written to' "$log" || [ $try -ge 3 ]; then
				cat "$log"
				exit 1
			fi
			echo "fuzz engine failed without a crasher; again"
			try=$((try + 1))
		done
	done
done
echo "fuzz: all targets ran"
