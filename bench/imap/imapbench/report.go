package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// report prints a Markdown table of two result files, with the ratio
// Dovecot/mailsrv of each figure (above 1: mailsrv is faster or smaller),
// and where it was measured the serving process's CPU time and its ratio.
func report(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("report: want MAILSRV.json DOVECOT.json")
	}
	var res [2]map[string]float64
	for i, p := range args {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &res[i]); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	ours, theirs := res[0], res[1]
	fmt.Printf("%v messages; UID SEARCH HEADER SUBJECT %q: %v hits (mailsrv), %v (Dovecot)\n\n",
		ours["messages"], SearchNeedle, ours["search_hits"], theirs["search_hits"])
	fmt.Println("| figure | mailsrv | Dovecot | ratio | mailsrv CPU | Dovecot CPU | CPU ratio |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	rows := []struct{ key, name, unit string }{
		{"cold_login_select_ms", "LOGIN+SELECT, cold (first open)", "ms"},
		{"cold_login_ms", "- of which LOGIN", "ms"},
		{"cold_select_ms", "- of which SELECT", "ms"},
		{"warm_login_select_ms", "LOGIN+SELECT, warm (median of sessions)", "ms"},
		{"warm_login_ms", "- LOGIN alone (median)", "ms"},
		{"warm_select_ms", "- SELECT alone (median)", "ms"},
		{"fetch_flags_ms", "UID FETCH 1:* (FLAGS) (median)", "ms"},
		{"fetch_flags_first_ms", "- the first, right after SELECT", "ms"},
		{"fetch_envelope100_ms", "FETCH last 100 (ENVELOPE) (median)", "ms"},
		{"cold_search_ms", "UID SEARCH HEADER SUBJECT, cold (first)", "ms"},
		{"warm_search_ms", "UID SEARCH HEADER SUBJECT, warm (median)", "ms"},
		{"cold_hwm_login_kb", "cold session: peak RSS up to LOGIN done", "MiB"},
		{"cold_rss_login_kb", "- RSS after LOGIN", "MiB"},
		{"cold_hwm_work_kb", "- peak RSS from LOGIN to LOGOUT", "MiB"},
		{"cold_growth_kb", "- growth: that peak minus RSS after LOGIN", "MiB"},
		{"warm_rss_login_kb", "FETCH+SEARCH session: RSS after LOGIN", "MiB"},
		{"warm_hwm_work_kb", "- peak RSS from LOGIN to LOGOUT", "MiB"},
		{"warm_growth_kb", "- growth: that peak minus RSS after LOGIN", "MiB"},
	}
	for _, r := range rows {
		a, b := ours[r.key], theirs[r.key]
		if r.unit == "MiB" {
			a, b = a/1024, b/1024
		}
		cpu := "| | |"
		ck := strings.TrimSuffix(r.key, "_ms") + "_cpu_ms"
		if ca, ok := ours[ck]; ok {
			cb := theirs[ck]
			cpu = fmt.Sprintf("%s ms | %s ms | %s |", num(ca), num(cb), ratio(ca, cb))
		}
		fmt.Printf("| %s | %s %s | %s %s | %s | %s\n", r.name, num(a), r.unit, num(b), r.unit, ratio(a, b), cpu)
	}
	return nil
}

func ratio(ours, theirs float64) string {
	if ours <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", theirs/ours)
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
