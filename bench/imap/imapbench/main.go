// Command imapbench measures an IMAP server on one large mailbox, for
// bench/imap/run.sh, which runs it against mailsrv's imapd and a private
// Dovecot in the same run:
//
//	imapbench fill -dir MAILDIR [-n 100000] [-seed 1]
//	imapbench run -addr HOST:PORT -user U -pass P -label L (-pid PID | -parent PID -comm NAME) -out FILE.json
//	imapbench report MAILSRV.json DOVECOT.json
//
// run speaks IMAP itself (one command at a time, reading responses without
// parsing more than it needs), so that the time measured is the server's
// and not a client library's. It takes, in this order: a cold session
// (the first LOGIN and SELECT of the mailbox, then the first UID SEARCH
// HEADER SUBJECT), WARM sessions of LOGIN+SELECT+LOGOUT, and one warm
// session with RUNS x UID FETCH 1:* (FLAGS), RUNS x FETCH of the last 100
// messages' ENVELOPE and SEARCHES x UID SEARCH. It records medians in ms
// and the peak resident memory (VmHWM) of the server process that serves
// the session: mailsrv's imapd --listen process (-pid), or the process
// made for the session (-parent: the newest child named -comm of Dovecot's
// master, or of the tcpserver that runs imapd on stdin/stdout). The peak is
// read after LOGIN, then reset (/proc/PID/clear_refs: 5), and read again
// before LOGOUT: the second figure is the mailbox work alone, without the
// password check (mailsrv checks argon2id in-process, 64 MiB; Dovecot in its
// auth process).
package main

import (
	"encoding/base64"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imapbench fill|run|report [flags]")
		os.Exit(64)
	}
	var err error
	switch os.Args[1] {
	case "fill":
		err = fill(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "imapbench: unknown command %q\n", os.Args[1])
		os.Exit(64)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imapbench:", err)
		os.Exit(1)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
