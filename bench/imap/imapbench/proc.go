package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// vmHWM returns the peak resident set size of pid in kB (/proc/PID/status).
func vmHWM(pid int) (int, error) { return procStatus(pid, "VmHWM:") }

// vmRSS returns the resident set size of pid in kB.
func vmRSS(pid int) (int, error) { return procStatus(pid, "VmRSS:") }

func procStatus(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("pid %d: no %s", pid, field)
}

// resetHWM sets the peak resident set size of pid to its current size
// (proc(5), /proc/PID/clear_refs, value 5; Linux 4.0 and later).
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// newestChild finds the youngest child of parent whose command name is
// comm, waiting up to 2 s for it to appear.
func newestChild(parent int, comm string) (int, error) {
	for range 40 {
		best, bestStart := 0, int64(-1)
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			open, close := bytes.IndexByte(st, '('), bytes.LastIndexByte(st, ')')
			if open < 0 || close < open || string(st[open+1:close]) != comm {
				continue
			}
			f := strings.Fields(string(st[close+2:]))
			if len(f) < 20 {
				continue
			}
			ppid, _ := strconv.Atoi(f[1])
			start, _ := strconv.ParseInt(f[19], 10, 64) // field 22, starttime
			if ppid == parent && start > bestStart {
				best, bestStart = pid, start
			}
		}
		if best != 0 {
			return best, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("no %q child of pid %d", comm, parent)
}

// cpuTime returns the CPU time pid has run, all its threads together
// (/proc/PID/task/TID/schedstat, first field, in ns): finer than the clock
// ticks of /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			total += v
		}
	}
	return time.Duration(total)
}
