package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// mailctl checkpassword speaks the DJB interface: descriptor 3 in, the
// program run with USER and HOME on success, 1 on a wrong password.
func TestMailctlCheckpassword(t *testing.T) {
	r := newRoot(t)
	run := func(input string) (string, int) {
		cmd := exec.Command("sh", "-c", `printf "$1" | "$2" --root "$3" checkpassword sh -c 'echo "USER=$USER HOME=$HOME"' 3<&0`,
			"sh", input, bin(t, "mailctl"), r.Dir)
		out, err := cmd.Output()
		return string(out), exitCode(err)
	}
	out, code := run(`demo@example.test\0` + DemoPassword + `\0x\0`)
	if code != 0 || !strings.Contains(out, "USER=demo@example.test HOME="+r.mailbox("demo")) {
		t.Fatalf("right password: exit %d, %q", code, out)
	}
	if out, code := run(`demo@example.test\0wrong password here\0x\0`); code != 1 || out != "" {
		t.Errorf("wrong password: exit %d, %q", code, out)
	}
	if _, code := run(`no-nul-at-all`); code != 2 {
		t.Errorf("malformed input: exit %d, want 2", code)
	}
}
