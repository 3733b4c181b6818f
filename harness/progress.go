package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// startProgress reports the workload's progress until ctx is done or the returned stop is called:
// a line rewritten in place on a terminal, a plain log line every few seconds otherwise (CI).
func startProgress(ctx context.Context, w io.Writer, dir string, limit time.Duration) (stop func()) {
	tty := isTerminal(w)
	every := 5 * time.Second
	if tty {
		every = time.Second
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
			case <-done:
			case <-t.C:
				line := fmt.Sprintf("harness: workload %4.0fs of %.0fs", time.Since(start).Seconds(), limit.Seconds())
				if tty {
					fmt.Fprintf(w, "\r\033[K%s", line)
				} else {
					fmt.Fprintln(w, line)
				}
				continue
			}
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		}
	}()
	return func() { close(done); <-finished }
}

// isTerminal reports whether w is a character device (a terminal), without extra dependencies.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
