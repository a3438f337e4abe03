package daemon

import (
	"fmt"
	"log/slog"
	"strings"
)

// LibLog adapts the Printf-style error log of a protocol library (go-smtp's
// ErrorLog) to slog. A peer that went away (reset, EOF, broken pipe) is an
// ordinary event, logged at Info; anything else at Warn.
type LibLog struct{ Log *slog.Logger }

func (l LibLog) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }
func (l LibLog) Println(v ...any)               { l.log(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (l LibLog) log(msg string) {
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	for _, gone := range []string{"connection reset by peer", "broken pipe", "EOF", "use of closed", "file already closed"} {
		if strings.Contains(msg, gone) {
			log.Info("peer gone", "detail", msg)
			return
		}
	}
	log.Warn("protocol library", "detail", msg)
}
