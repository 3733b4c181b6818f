package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raftcheck/harness/history"
)

// progress counts completions by outcome and tracks the faults active now, from the ops the
// recorder writes.
type progress struct {
	mu     sync.Mutex
	counts map[history.Type]int64
	active map[string]int // fault kind → open windows
}

func newProgress() *progress {
	return &progress{counts: map[history.Type]int64{}, active: map[string]int{}}
}

// observe is the recorder's watch function.
func (p *progress) observe(op history.Op) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !op.IsNemesis() {
		if op.Type != history.Invoke {
			p.counts[op.Type]++
		}
		return
	}
	var ev history.NemesisEvent
	if json.Unmarshal(op.Value, &ev) != nil || op.F == history.FPhase || op.F == history.FLeader {
		return
	}
	switch ev.Event {
	case history.EventStart:
		p.active[op.F]++
	case history.EventEnd:
		if p.active[op.F] > 0 {
			p.active[op.F]--
		}
	}
}

// snapshot returns the counts so far and the names of the active faults.
func (p *progress) snapshot() (map[history.Type]int64, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := map[history.Type]int64{}
	for k, v := range p.counts {
		c[k] = v
	}
	var faults []string
	for f, n := range p.active {
		if n > 0 && f != history.FHeal {
			faults = append(faults, f)
		}
	}
	slices.Sort(faults)
	return c, faults
}

// line formats one progress report: elapsed of limit, ops/s by outcome since the last report,
// and the active faults.
func progressLine(elapsed, limit time.Duration, now, last map[history.Type]int64, dt time.Duration, faults []string) string {
	rate := func(t history.Type) float64 {
		if dt <= 0 {
			return 0
		}
		return float64(now[t]-last[t]) / dt.Seconds()
	}
	f := "none"
	if len(faults) > 0 {
		f = strings.Join(faults, ",")
	}
	return fmt.Sprintf("harness: workload %3.0fs of %.0fs  ok %5.0f/s  fail %4.0f/s  info %4.0f/s  faults: %s",
		elapsed.Seconds(), limit.Seconds(), rate(history.OK), rate(history.Fail), rate(history.Info), f)
}

// startProgress reports the workload's progress until ctx is done or the returned stop is called:
// a line rewritten in place on a terminal every second, a plain log line every 5 s otherwise (CI).
func startProgress(ctx context.Context, w io.Writer, p *progress, limit time.Duration) (stop func()) {
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
		last, lastAt := map[history.Type]int64{}, start
		for {
			select {
			case <-ctx.Done():
			case <-done:
			case now := <-t.C:
				counts, faults := p.snapshot()
				line := progressLine(now.Sub(start), limit, counts, last, now.Sub(lastAt), faults)
				last, lastAt = counts, now
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
