package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

type bench struct {
	addr, user, pass string
	pid, parent      int
	comm             string
	res              map[string]float64
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	b := bench{res: map[string]float64{}}
	fs.StringVar(&b.addr, "addr", "127.0.0.1:143", "server")
	fs.StringVar(&b.user, "user", "", "user")
	fs.StringVar(&b.pass, "pass", "", "password")
	fs.IntVar(&b.pid, "pid", 0, "server process serving every session (mailsrv imapd --listen)")
	fs.IntVar(&b.parent, "parent", 0, "a server that runs a process per session (Dovecot's master, tcpserver): the session's process is its newest child named -comm")
	fs.StringVar(&b.comm, "comm", "imap", "command name of the session's process, with -parent")
	label := fs.String("label", "server", "name in the output")
	out := fs.String("out", "", "write the results as JSON to this file")
	warm := fs.Int("warm", 5, "warm LOGIN+SELECT sessions")
	runs := fs.Int("runs", 5, "repetitions of each FETCH")
	searches := fs.Int("searches", 3, "repetitions of the warm UID SEARCH")
	_ = fs.Parse(args)
	if (b.pid == 0) == (b.parent == 0) {
		return fmt.Errorf("run: give -pid or -parent")
	}
	if err := b.cold(); err != nil {
		return fmt.Errorf("cold session: %w", err)
	}
	if err := b.warmLogins(*warm); err != nil {
		return fmt.Errorf("warm sessions: %w", err)
	}
	if err := b.work(*runs, *searches); err != nil {
		return fmt.Errorf("warm work session: %w", err)
	}
	keys := make([]string, 0, len(b.res))
	for k := range b.res {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Printf("%s:", *label)
	for _, k := range keys {
		fmt.Printf(" %s=%.4g", k, b.res[k])
	}
	fmt.Println()
	if *out != "" {
		j, err := json.MarshalIndent(b.res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*out, j, 0o644)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// session is one connection: login and select timed, the serving process
// found, its peak memory read after LOGIN and reset.
type session struct {
	*conn
	pid            int
	login, select_ time.Duration
	selectCPU      time.Duration
	exists         int
	hwmLogin       int // kB, VmHWM after LOGIN, before the reset
	rssLogin       int // kB, VmRSS just after the reset
}

func (b *bench) open(timeout time.Duration) (*session, error) {
	c, err := dial(b.addr, timeout)
	if err != nil {
		return nil, err
	}
	s := &session{conn: c}
	t0 := time.Now()
	if err := c.cmd("LOGIN "+quote(b.user)+" "+quote(b.pass), nil); err != nil {
		_ = c.Close()
		return nil, err
	}
	s.login = time.Since(t0)
	s.pid = b.pid
	if b.parent != 0 {
		if s.pid, err = newestChild(b.parent, b.comm); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if s.hwmLogin, err = vmHWM(s.pid); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := resetHWM(s.pid); err != nil {
		_ = c.Close()
		return nil, err
	}
	if s.rssLogin, err = vmRSS(s.pid); err != nil {
		_ = c.Close()
		return nil, err
	}
	c0 := cpuTime(s.pid)
	t1 := time.Now()
	err = c.cmd("SELECT INBOX", func(l []byte) {
		if f := bytes.Fields(l); len(f) == 3 && string(f[2]) == "EXISTS" {
			s.exists, _ = strconv.Atoi(string(f[1]))
		}
	})
	s.select_ = time.Since(t1)
	s.selectCPU = cpuTime(s.pid) - c0
	if err == nil && s.exists == 0 {
		err = fmt.Errorf("SELECT: no EXISTS")
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return s, nil
}

// close reads the session's peak memory and logs out.
func (s *session) close() (hwm int, err error) {
	hwm, err = vmHWM(s.pid)
	if err == nil {
		err = s.cmd("LOGOUT", nil)
	}
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	return hwm, err
}

// timed runs one command and returns its wall time and the serving
// process's CPU time.
func (s *session) timed(text string, untagged func([]byte)) (wall, cpu time.Duration, err error) {
	c0 := cpuTime(s.pid)
	t := time.Now()
	err = s.cmd(text, untagged)
	wall = time.Since(t)
	return wall, cpuTime(s.pid) - c0, err
}

// search runs UID SEARCH HEADER SUBJECT and returns the number of UIDs.
func (s *session) search() (int, time.Duration, time.Duration, error) {
	n := 0
	wall, cpu, err := s.timed("UID SEARCH HEADER SUBJECT "+quote(SearchNeedle), func(l []byte) {
		if bytes.HasPrefix(l, []byte("* SEARCH")) {
			n += len(bytes.Fields(l)) - 2
		}
	})
	return n, wall, cpu, err
}

func (b *bench) cold() error {
	s, err := b.open(20 * time.Minute)
	if err != nil {
		return err
	}
	b.res["messages"] = float64(s.exists)
	b.res["cold_login_ms"] = ms(s.login)
	b.res["cold_select_ms"] = ms(s.select_)
	b.res["cold_select_cpu_ms"] = ms(s.selectCPU)
	b.res["cold_login_select_ms"] = ms(s.login + s.select_)
	n, d, cpu, err := s.search()
	if err != nil {
		return err
	}
	b.res["search_hits"] = float64(n)
	b.res["cold_search_ms"] = ms(d)
	b.res["cold_search_cpu_ms"] = ms(cpu)
	hwm, err := s.close()
	b.res["cold_hwm_login_kb"] = float64(s.hwmLogin)
	b.res["cold_hwm_work_kb"] = float64(hwm)
	b.res["cold_rss_login_kb"] = float64(s.rssLogin)
	b.res["cold_growth_kb"] = float64(hwm - s.rssLogin)
	return err
}

func (b *bench) warmLogins(n int) error {
	var login, sel, selCPU, both []float64
	for range n {
		s, err := b.open(5 * time.Minute)
		if err != nil {
			return err
		}
		if _, err := s.close(); err != nil {
			return err
		}
		login = append(login, ms(s.login))
		sel = append(sel, ms(s.select_))
		selCPU = append(selCPU, ms(s.selectCPU))
		both = append(both, ms(s.login+s.select_))
	}
	b.res["warm_login_ms"] = median(login)
	b.res["warm_select_ms"] = median(sel)
	b.res["warm_select_cpu_ms"] = median(selCPU)
	b.res["warm_login_select_ms"] = median(both)
	return nil
}

func (b *bench) work(runs, searches int) error {
	s, err := b.open(10 * time.Minute)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	var flags, env, srch, flagsCPU, envCPU, srchCPU []float64
	for range runs {
		n := 0
		wall, cpu, err := s.timed("UID FETCH 1:* (FLAGS)", func(l []byte) { n++ })
		flags = append(flags, ms(wall))
		flagsCPU = append(flagsCPU, ms(cpu))
		if err == nil && n != s.exists {
			err = fmt.Errorf("UID FETCH 1:* (FLAGS): %d responses for %d messages", n, s.exists)
		}
		if err != nil {
			return err
		}
	}
	set := fmt.Sprintf("%d:%d", max(1, s.exists-99), s.exists)
	for range runs {
		n := 0
		wall, cpu, err := s.timed("FETCH "+set+" (ENVELOPE)", func(l []byte) {
			if bytes.Contains(l, []byte("ENVELOPE")) {
				n++
			}
		})
		env = append(env, ms(wall))
		envCPU = append(envCPU, ms(cpu))
		if err == nil && n != min(100, s.exists) {
			err = fmt.Errorf("FETCH %s (ENVELOPE): %d envelopes", set, n)
		}
		if err != nil {
			return err
		}
	}
	for range searches {
		n, d, cpu, err := s.search()
		if err != nil {
			return err
		}
		srchCPU = append(srchCPU, ms(cpu))
		if float64(n) != b.res["search_hits"] {
			return fmt.Errorf("UID SEARCH: %d hits, %v in the cold session", n, b.res["search_hits"])
		}
		srch = append(srch, ms(d))
	}
	// The first FETCH after SELECT also reads what a lazy SELECT left
	// unread (mailsrv: the folder index's listing; Dovecot: its mapped
	// index's pages): reported beside the median.
	b.res["fetch_flags_first_ms"] = flags[0]
	b.res["fetch_flags_first_cpu_ms"] = flagsCPU[0]
	b.res["fetch_flags_ms"] = median(flags)
	b.res["fetch_envelope100_ms"] = median(env)
	b.res["warm_search_ms"] = median(srch)
	b.res["fetch_flags_cpu_ms"] = median(flagsCPU)
	b.res["fetch_envelope100_cpu_ms"] = median(envCPU)
	b.res["warm_search_cpu_ms"] = median(srchCPU)
	hwm, err := s.close()
	b.res["warm_hwm_login_kb"] = float64(s.hwmLogin)
	b.res["warm_hwm_work_kb"] = float64(hwm)
	b.res["warm_rss_login_kb"] = float64(s.rssLogin)
	b.res["warm_growth_kb"] = float64(hwm - s.rssLogin)
	return err
}
