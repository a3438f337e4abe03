package throttle

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// LoadPolicies reads the tuning file ROOT/etc/throttle, if it exists, over
// the current policies. Each line is "KIND.SETTING VALUE", KIND ip or
// account, '#' starts a comment:
//
//	ip.free 3          failures without delay
//	ip.delay 1s        first delay, doubled after each further failure
//	ip.max-delay 30s   longest delay
//	ip.lock-after 10   failures within the window that start a lockout (0: never)
//	ip.lockout 15m     length of a lockout
//	ip.window 15m      failures are forgotten this long after the last one
func (t *Throttle) LoadPolicies(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	defer func() { _ = f.Close() }()
	ip, acct := t.IP, t.Account
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if err := setPolicy(fields, &ip, &acct); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("throttle: %s: %w", path, err)
	}
	t.IP, t.Account = ip, acct
	return nil
}

func setPolicy(fields []string, ip, acct *Policy) error {
	if len(fields) != 2 {
		return fmt.Errorf("want KIND.SETTING VALUE")
	}
	kind, name, _ := strings.Cut(fields[0], ".")
	var p *Policy
	switch kind {
	case string(KindIP):
		p = ip
	case string(KindAccount):
		p = acct
	default:
		return fmt.Errorf("unknown kind %q (ip or account)", kind)
	}
	val := fields[1]
	num := func(dst *int) error {
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: want a count, got %q", fields[0], val)
		}
		*dst = n
		return nil
	}
	dur := func(dst *time.Duration) error {
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return fmt.Errorf("%s: want a duration such as 30s or 15m, got %q", fields[0], val)
		}
		*dst = d
		return nil
	}
	switch name {
	case "free":
		return num(&p.Free)
	case "lock-after":
		return num(&p.LockAfter)
	case "delay":
		return dur(&p.Delay)
	case "max-delay":
		return dur(&p.MaxDelay)
	case "lockout":
		return dur(&p.Lockout)
	case "window":
		return dur(&p.Window)
	}
	return fmt.Errorf("unknown setting %q", fields[0])
}
