package checker

import (
	"fmt"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// DefaultMemoryLimit is the Go heap the linearizability check may use before it gives up on the
// keys it is still searching (Register.MemoryLimit).
const DefaultMemoryLimit = 2 << 30

// memGuard watches the Go heap while porcupine searches and trips once it passes the limit. A
// tripped guard makes every model step fail, which ends porcupine's search within moments; the
// verdict of a search that ran while the guard was tripped is discarded (Unknown), so a forced
// failure can never be reported as a violation.
type memGuard struct {
	limit uint64 // 0: no limit
	over  atomic.Bool
	heap  atomic.Uint64 // heap when it tripped
	done  chan struct{}
}

// heapObjectsBytes is the Go heap in use, live objects and garbage not yet swept.
func heapObjectsBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startMemGuard samples the heap every few milliseconds until stop; limit 0 means no limit.
func startMemGuard(limit uint64) *memGuard {
	g := &memGuard{limit: limit, done: make(chan struct{})}
	if limit == 0 {
		return g
	}
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if h := heapObjectsBytes(); h > limit {
				g.heap.Store(h)
				g.over.Store(true)
				return
			}
			select {
			case <-g.done:
				return
			case <-t.C:
			}
		}
	}()
	return g
}

func (g *memGuard) stop() { close(g.done) }

// tripped reports whether the heap passed the limit.
func (g *memGuard) tripped() bool { return g != nil && g.over.Load() }

// reason says why the search stopped.
func (g *memGuard) reason() string {
	return fmt.Sprintf("the linearizability search passed the memory limit of %s (Go heap %s)", mib(g.limit), mib(g.heap.Load()))
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// guard wraps a model so that its steps fail once g has tripped.
func (g *memGuard) guard(m porcupine.Model) porcupine.Model {
	if g == nil || g.limit == 0 {
		return m
	}
	step := m.Step
	m.Step = func(state, input, output any) (bool, any) {
		if g.over.Load() {
			return false, state
		}
		return step(state, input, output)
	}
	return m
}
