#!/bin/sh
# Checks that every man page source renders with scdoc and that the
# committed roff is what it renders to. A page is rendered with the date
# it carries (SOURCE_DATE_EPOCH), so that a check on another day compares
# the text, not the day. With --write (make man), a page whose text
# changed is written anew, dated today; the others are left as they are.
set -eu
command -v scdoc >/dev/null || scripts/deps.sh scdoc
write=false
[ "${1:-}" = --write ] && write=true
status=0
for src in man/*.scd; do
	out=${src%.scd}
	# .TH "name" "section" "YYYY-MM-DD"
	day=$(sed -n 's/^\.TH "[^"]*" "[^"]*" "\([0-9-]*\)".*/\1/p' "$out" 2>/dev/null | head -n 1)
	epoch=""
	[ -n "$day" ] && epoch=$(date -u -d "$day" +%s 2>/dev/null || true)
	if ! env ${epoch:+SOURCE_DATE_EPOCH=$epoch} scdoc < "$src" > "$out.check" 2>"$out.err"; then
		echo "$src: $(cat "$out.err")"; status=1
	elif ! cmp -s "$out.check" "$out"; then
		if $write; then
			scdoc < "$src" > "$out"
		else
			echo "$out is not what $src renders to: run make man"; status=1
		fi
	fi
	rm -f "$out.check" "$out.err"
done
exit $status
