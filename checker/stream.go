package checker

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/raftcheck/harness/history"
)

// Accumulator judges a history given one line at a time, so that a checker can run without the
// whole history in memory. Add must copy what it keeps of op (it is valid only during the call);
// Result is called once, after the last line.
type Accumulator interface {
	Add(op *history.Op)
	Result(ctx context.Context) Result
}

// Accumulate returns an accumulator that gives the same result as Check.
func (Stats) Accumulate() Accumulator { return newStatsAcc() }

// Accumulate returns an accumulator that gives the same result as Check: it keeps the nemesis
// lines and the client lines from the first final-reads phase on, which is all Check reads.
func (Liveness) Accumulate() Accumulator { return &livenessAcc{} }

type livenessAcc struct {
	kept  []history.Op
	final bool
}

func (a *livenessAcc) Add(op *history.Op) {
	if !a.final && !op.IsNemesis() {
		return
	}
	c := *op
	c.Value = append([]byte(nil), op.Value...)
	a.kept = append(a.kept, c)
	if op.IsNemesis() && op.F == history.FPhase {
		if ev, ok := nemesisEvent(&c); ok && ev.Event == history.PhaseFinalReads {
			a.final = true
		}
	}
}

func (a *livenessAcc) Result(ctx context.Context) Result { return Liveness{}.Check(ctx, a.kept) }

// ResultAll finishes every accumulator concurrently and returns the results by name; one that
// panics gets an Unknown result carrying the panic text, as in RunAll.
func ResultAll(ctx context.Context, accs map[string]Accumulator) map[string]Result {
	results := make(map[string]Result, len(accs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, a := range accs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := finish(ctx, name, a)
			mu.Lock()
			results[name] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

func finish(ctx context.Context, name string, a Accumulator) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{Valid: Unknown, Error: fmt.Sprintf("checker %s panicked: %v", name, p),
				Details: map[string]string{"stack": string(debug.Stack())}}
		}
	}()
	return a.Result(ctx)
}
