package checker

import (
	"fmt"
	"math/rand"
	"sort"

	"github.com/raftcheck/harness/history"
)

// GenerateRegisterHistory simulates a linearizable compare-and-set register store and returns
// its history: ops operations (each an invoke and a completion line, so 2×ops lines) by workers
// concurrent processes over keys keys. Every operation takes effect at a random instant inside
// its [invoke, completion] interval, so operations overlap and the history is linearizable by
// construction. Reads are half of the ops, writes and cas a quarter each; written values are
// unique. A fraction infoFraction of writes and cas complete as info (half of them took effect,
// half did not); the worker then continues as a new process, as in Jepsen. A cas whose expected
// value does not match completes as fail. The same seed gives the same history.
func GenerateRegisterHistory(seed int64, ops, keys, workers int, infoFraction float64) []history.Op {
	rng := rand.New(rand.NewSource(seed))
	if keys < 1 {
		keys = 1
	}
	if workers < 1 {
		workers = 1
	}
	type sim struct {
		proc              history.Process
		f                 string
		key               int
		call, point, done int64
		info, applied     bool
		a, b              int64 // write value; cas expected/new; read result
		present, fail     bool
	}
	sims := make([]sim, 0, ops)
	clock := make([]int64, workers)
	procs := make([]history.Process, workers)
	for w := range procs {
		procs[w] = history.Process(w)
	}
	nextProc := history.Process(workers)
	for i := 0; i < ops; i++ {
		w := rng.Intn(workers)
		s := sim{proc: procs[w], key: rng.Intn(keys)}
		s.call = clock[w] + 1 + rng.Int63n(2000)
		s.point = s.call + 1 + rng.Int63n(5000)
		s.done = s.point + 1 + rng.Int63n(5000)
		switch r := rng.Intn(4); r {
		case 0, 1:
			s.f = "read"
		case 2:
			s.f = "write"
		default:
			s.f = "cas"
		}
		if s.f != "read" && rng.Float64() < infoFraction {
			s.info = true
			s.applied = rng.Intn(2) == 0
			procs[w] = nextProc
			nextProc++
		} else {
			s.applied = true
		}
		clock[w] = s.done
		sims = append(sims, s)
	}
	// Apply in linearization order.
	order := make([]int, len(sims))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return sims[order[i]].point < sims[order[j]].point })
	state := make([]int64, keys)
	present := make([]bool, keys)
	next := int64(1)
	for _, i := range order {
		s := &sims[i]
		switch s.f {
		case "read":
			s.a, s.present = state[s.key], present[s.key]
		case "write":
			s.a = next
			next++
			if s.applied {
				state[s.key], present[s.key] = s.a, true
			}
		case "cas":
			// Mostly the current value, so that most cas ops succeed.
			if present[s.key] && rng.Intn(4) != 0 {
				s.a = state[s.key]
			} else {
				s.a = -next
			}
			s.b = next
			next++
			match := present[s.key] && state[s.key] == s.a
			if !match && !s.info {
				s.fail = true
			} else if match && s.applied {
				state[s.key] = s.b
			}
		}
	}
	// Emit lines in time order.
	type line struct {
		t      int64
		sim    int
		invoke bool
	}
	lines := make([]line, 0, 2*len(sims))
	for i, s := range sims {
		lines = append(lines, line{s.call, i, true}, line{s.done, i, false})
	}
	sort.Slice(lines, func(i, j int) bool {
		if lines[i].t != lines[j].t {
			return lines[i].t < lines[j].t
		}
		return lines[i].invoke && !lines[j].invoke
	})
	out := make([]history.Op, len(lines))
	for n, l := range lines {
		s := &sims[l.sim]
		op := history.Op{Index: int64(n), Time: l.t, Process: s.proc, F: s.f, Key: fmt.Sprintf("r%d", s.key)}
		switch s.f {
		case "read":
			op.Value = history.MustValue(nil)
			if !l.invoke && s.present {
				op.Value = history.MustValue(s.a)
			}
		case "write":
			op.Value = history.MustValue(s.a)
		case "cas":
			op.Value = history.MustValue([2]int64{s.a, s.b})
		}
		switch {
		case l.invoke:
			op.Type = history.Invoke
		case s.info:
			op.Type, op.Error = history.Info, "timeout"
		case s.fail:
			op.Type = history.Fail
		default:
			op.Type, op.Node = history.OK, "n1"
		}
		out[n] = op
	}
	return out
}
