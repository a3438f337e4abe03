# report.awk: formats bench.sh's results.tsv (server, settings, size,
# sessions, messages, seconds, msg/s, CPU ns, CPU ns of smtpd+inject, CPU ns
# of queue+deliver, status) as two plain tables: every configuration (the
# median of its runs, with the range), then Postfix against our default
# settings (-v default=LABEL) and against our best settings.
BEGIN { FS = "\t" }
{
	k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
	if (!(k in runs)) { order[++nk] = k }
	r = ++runs[k]
	n[k] = $5; rate[k, r] = $7; cpu[k, r] = $8 / $5 / 1e6
	sd[k, r] = $9 / $5 / 1e6; qd[k, r] = $10 / $5 / 1e6
	if ($11 != "ok") bad[k] = bad[k] (bad[k] ? "," : "") $11
	cfg = $3 SUBSEP $4
	if (!(cfg in seen)) { seen[cfg] = 1; cfgs[++nc] = cfg }
}
# median of a[k, 1..m]
function median(a, k, m,    i, j, v, t) {
	for (i = 1; i <= m; i++) v[i] = a[k, i] + 0
	for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
function range(a, k, m, fmt,    i, lo, hi) {
	if (m < 2) return ""
	lo = hi = a[k, 1] + 0
	for (i = 2; i <= m; i++) { if (a[k, i] < lo) lo = a[k, i] + 0; if (a[k, i] > hi) hi = a[k, i] + 0 }
	return sprintf(" (" fmt "–" fmt ")", lo, hi)
}
function kb(b) { return b >= 1024 ? int(b / 1024) " KB" : b " B" }
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; m = runs[k]
		split(k, f, SUBSEP)
		mr[k] = median(rate, k, m); mc[k] = median(cpu, k, m)
		cfg = f[3] SUBSEP f[4]
		if (k in bad) continue
		if (f[1] == "postfix" && f[2] == "postfix") pf[cfg] = k
		if (f[1] == "mailsrv" && f[2] == default) def[cfg] = k
		if (f[1] == "mailsrv" && f[2] !~ /-d$/ && (!(cfg in best) || mr[k] > mr[best[cfg]])) best[cfg] = k
	}
	print "Every configuration: median of its runs (range). CPU is that of every server process; for"
	print "mailsrv also split into smtpd (+ its queue inject --lmtp pool) and queue run (+ its deliver --lmtp pool)."
	print ""
	print "| size | sessions | server | settings | runs x messages | msg/s | CPU ms/msg | smtpd+inject | queue+deliver | status |"
	print "|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nk; i++) {
		k = order[i]; m = runs[k]
		split(k, f, SUBSEP)
		ss = f[1] == "mailsrv" ? sprintf("%.2f", median(sd, k, m)) : "-"
		sq = f[1] == "mailsrv" ? sprintf("%.2f", median(qd, k, m)) : "-"
		printf "| %s | %d | %s | %s | %d x %d | %d%s | %.2f%s | %s | %s | %s |\n", kb(f[3]), f[4], f[1], f[2],
			m, n[k], mr[k], range(rate, k, m, "%d"), mc[k], range(cpu, k, m, "%.2f"), ss, sq,
			(k in bad) ? bad[k] : "ok"
	}
	print ""
	print "Postfix against mailsrv, medians. Rate ratio = mailsrv msg/s / Postfix msg/s; CPU ratio ="
	print "Postfix CPU per message / mailsrv CPU per message. Above 1 is better for mailsrv; the goal is 2 and 2."
	print ""
	print "| size | sessions | Postfix msg/s | Postfix CPU ms/msg | mailsrv " default " msg/s | CPU ms/msg | rate ratio | CPU ratio | mailsrv best | msg/s | CPU ms/msg | rate ratio | CPU ratio |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for (c = 1; c <= nc; c++) {
		cfg = cfgs[c]
		split(cfg, f, SUBSEP)
		p = pf[cfg]; d = def[cfg]; b = best[cfg]
		if (b != "") split(b, bl, SUBSEP)
		line = sprintf("| %s | %d ", kb(f[1]), f[2])
		line = line (p != "" ? sprintf("| %d | %.2f ", mr[p], mc[p]) : "| - | - ")
		line = line (d != "" ? sprintf("| %d | %.2f ", mr[d], mc[d]) : "| - | - ")
		line = line sprintf("| %s | %s ", (p != "" && d != "") ? ratio(mr[d], mr[p]) : "-",
			(p != "" && d != "") ? ratio(mc[p], mc[d]) : "-")
		line = line (b != "" ? sprintf("| %s | %d | %.2f ", bl[2], mr[b], mc[b]) : "| - | - | - ")
		line = line sprintf("| %s | %s |", (p != "" && b != "") ? ratio(mr[b], mr[p]) : "-",
			(p != "" && b != "") ? ratio(mc[p], mc[b]) : "-")
		print line
	}
}
