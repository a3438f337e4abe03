#!/bin/sh
# Checks that every man page source renders with scdoc and that the
# committed roff is what it renders to.
set -eu
command -v scdoc >/dev/null || scripts/deps.sh scdoc
status=0
for src in man/*.scd; do
	out=${src%.scd}
	if ! scdoc < "$src" > "$out.check" 2>"$out.err"; then
		echo "$src: $(cat "$out.err")"; status=1
	elif ! cmp -s "$out.check" "$out"; then
		echo "$out is not what $src renders to: run make man"; status=1
	fi
	rm -f "$out.check" "$out.err"
done
exit $status
