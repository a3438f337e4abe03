// Command popbench measures a POP3 server the way a downloading client
// uses it: connect, login (USER/PASS), STAT, UIDL, then RETR of every
// message, then QUIT (nothing deleted), one command at a time. It prints
// the wall time of each phase in milliseconds and the CPU time the server
// process used (from /proc, when -pid is given), so that mailsrv's pop3d and
// Dovecot can be compared in the same run. `popbench fill` makes the test
// Maildir.
//
//	popbench setup -root DIR -user USER@DOMAIN -pass PASSWORD
//	popbench fill -dir MAILDIR -n 10000 [-size 3000]
//	popbench run -addr 127.0.0.1:1110 -user U -pass P [-runs 5] [-label X] [-pids 1,2]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/maildir"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: popbench fill|run [flags]")
		os.Exit(64)
	}
	var err error
	switch os.Args[1] {
	case "setup":
		err = setup(os.Args[2:])
	case "fill":
		err = fill(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "popbench:", err)
		os.Exit(1)
	}
}

// setup makes a mailsrv root with one domain and one user.
func setup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	root := fs.String("root", "", "mailsrv root to create")
	user := fs.String("user", "", "user@domain")
	pass := fs.String("pass", "", "password")
	_ = fs.Parse(args)
	_, domain, ok := strings.Cut(*user, "@")
	if !ok {
		return fmt.Errorf("-user: want user@domain")
	}
	if err := config.Init(*root, "mx."+domain); err != nil {
		return err
	}
	h, err := auth.Hash(*pass)
	if err != nil {
		return err
	}
	cfg := config.Open(*root)
	if err := os.WriteFile(cfg.Path(config.FileDomains), []byte(domain+"\n"), 0644); err != nil {
		return err
	}
	return os.WriteFile(cfg.Path(config.FileUsers), []byte(*user+":"+h+"\n"), 0640)
}

// fill delivers n messages of about size bytes, with LF line endings, as
// deliver stores them.
func fill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	dir := fs.String("dir", "", "Maildir to fill")
	n := fs.Int("n", 10000, "messages")
	size := fs.Int("size", 3000, "approximate message size in bytes")
	_ = fs.Parse(args)
	if err := maildir.Create(*dir); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range *n {
		var b strings.Builder
		fmt.Fprintf(&b, "From: sender%d@example.net\nTo: bench@example.test\nSubject: message %d\n"+
			"Message-ID: <%d@bench>\nDate: Thu, 26 Nov 2026 10:00:00 +0000\n\n", i, i, i)
		for b.Len() < *size {
			line := make([]byte, 20+r.IntN(58))
			for j := range line {
				line[j] = byte('a' + r.IntN(26))
			}
			if r.IntN(40) == 0 {
				line[0] = '.'
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if _, err := maildir.Deliver(*dir, []byte(b.String()), strings.NewReader("")); err != nil {
			return err
		}
	}
	return nil
}

type phases struct{ connect, login, stat, uidl, retr, quit, total time.Duration }

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:1110", "server")
	user := fs.String("user", "", "user")
	pass := fs.String("pass", "", "password")
	runs := fs.Int("runs", 5, "measured runs (after one warm-up run)")
	label := fs.String("label", "server", "name in the output")
	pids := fs.String("pids", "", "comma-separated server pids whose CPU time to report")
	_ = fs.Parse(args)
	if _, err := session(*addr, *user, *pass); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var all []phases
	cpu0 := cpuTime(*pids)
	var msgs int
	for range *runs {
		p, err := session(*addr, *user, *pass)
		if err != nil {
			return err
		}
		all = append(all, p.phases)
		msgs = p.msgs
	}
	cpu := cpuTime(*pids) - cpu0
	med := func(f func(phases) time.Duration) float64 {
		v := make([]float64, len(all))
		for i, p := range all {
			v[i] = float64(f(p)) / 1e6
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Printf("%-10s msgs=%d median_ms connect=%.2f login=%.2f stat=%.2f uidl=%.2f retr_all=%.1f quit=%.2f total=%.1f",
		*label, msgs, med(func(p phases) time.Duration { return p.connect }),
		med(func(p phases) time.Duration { return p.login }), med(func(p phases) time.Duration { return p.stat }),
		med(func(p phases) time.Duration { return p.uidl }), med(func(p phases) time.Duration { return p.retr }),
		med(func(p phases) time.Duration { return p.quit }), med(func(p phases) time.Duration { return p.total }))
	if *pids != "" {
		fmt.Printf(" server_cpu_ms_per_run=%.1f", float64(cpu)/float64(*runs)/1e6)
	}
	fmt.Println()
	return nil
}

type result struct {
	phases
	msgs int
}

func session(addr, user, pass string) (result, error) {
	var res result
	start := time.Now()
	mark := start
	lap := func() time.Duration { now := time.Now(); d := now.Sub(mark); mark = now; return d }
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return res, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReaderSize(c, 64*1024)
	w := bufio.NewWriter(c)
	cmd := func(line string) (string, error) {
		if line != "" {
			w.WriteString(line + "\r\n")
			if err := w.Flush(); err != nil {
				return "", err
			}
		}
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "+OK") {
			return "", fmt.Errorf("%s: %s", strings.Fields(line + " x")[0], strings.TrimSpace(l))
		}
		return l, nil
	}
	multi := func() (int, error) {
		n := 0
		for {
			l, err := r.ReadSlice('\n')
			if err != nil {
				return n, err
			}
			if len(l) == 3 && l[0] == '.' {
				return n, nil
			}
			n++
		}
	}
	if _, err := cmd(""); err != nil {
		return res, err
	}
	res.connect = lap()
	if _, err := cmd("USER " + user); err != nil {
		return res, err
	}
	if _, err := cmd("PASS " + pass); err != nil {
		return res, err
	}
	res.login = lap()
	st, err := cmd("STAT")
	if err != nil {
		return res, err
	}
	res.msgs, _ = strconv.Atoi(strings.Fields(st)[1])
	res.stat = lap()
	if _, err := cmd("UIDL"); err != nil {
		return res, err
	}
	if n, err := multi(); err != nil || n != res.msgs {
		return res, fmt.Errorf("UIDL: %d lines, %v", n, err)
	}
	res.uidl = lap()
	for i := 1; i <= res.msgs; i++ {
		if _, err := cmd("RETR " + strconv.Itoa(i)); err != nil {
			return res, err
		}
		if _, err := multi(); err != nil {
			return res, err
		}
	}
	res.retr = lap()
	if _, err := cmd("QUIT"); err != nil {
		return res, err
	}
	res.quit = lap()
	res.total = time.Since(start)
	return res, nil
}

// cpuTime sums utime+stime+cutime+cstime (/proc/PID/stat fields 14-17) of
// the processes and of their children, in nanoseconds: Dovecot's pop3 and
// auth processes are children of its master, and an exited child's time
// moves into its parent's cutime.
func cpuTime(pids string) time.Duration {
	var total time.Duration
	procs := procStats()
	for _, p := range strings.Split(pids, ",") {
		pid, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		for _, st := range procs {
			if st.pid == pid || st.ppid == pid {
				total += st.cpu
			}
		}
	}
	return total
}

type procStat struct {
	pid, ppid int
	cpu       time.Duration
}

func procStats() []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 15 {
			continue
		}
		st := procStat{pid: pid}
		st.ppid, _ = strconv.Atoi(f[1])
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[i], 10, 64)
			st.cpu += time.Duration(v) * time.Second / 100
		}
		out = append(out, st)
	}
	return out
}
