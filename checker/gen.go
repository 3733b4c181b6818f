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
	return GenerateRegister(RegisterGen{Seed: seed, Ops: ops, Keys: keys, Workers: workers, Info: infoFraction,
		Reads: 0.5, Writes: 0.25, MaxGap: 2000, MinLatency: 3, MaxLatency: 10000})
}

// GenerateHotKeyHistory is the one-hot-key history of the checker's scaling goal: one key, ops
// operations by workers workers, 50% reads, 30% writes, 20% cas, 1% of writes and cas info,
// latencies of 0.1–5 ms, unique values; linearizable by construction.
func GenerateHotKeyHistory(seed int64, ops, workers int) []history.Op {
	return GenerateRegister(RegisterGen{Seed: seed, Ops: ops, Keys: 1, Workers: workers, Info: 0.01,
		Reads: 0.5, Writes: 0.3, MaxGap: 100_000, MinLatency: 100_000, MaxLatency: 5_000_000})
}

// RegisterGen describes a generated register history (see GenerateRegister).
type RegisterGen struct {
	Seed                   int64
	Ops, Keys, Workers     int
	Info                   float64 // fraction of writes and cas that end info
	Reads, Writes          float64 // fractions of reads and writes; the rest are cas
	MaxGap                 int64   // ns between a worker's ops, at most
	MinLatency, MaxLatency int64   // ns from invoke to completion
}

// GenerateRegister simulates a linearizable register store as GenerateRegisterHistory describes,
// with the mix, gaps and latencies of g.
func GenerateRegister(g RegisterGen) []history.Op {
	rng := rand.New(rand.NewSource(g.Seed))
	ops, keys, workers, infoFraction := g.Ops, g.Keys, g.Workers, g.Info
	if keys < 1 {
		keys = 1
	}
	if workers < 1 {
		workers = 1
	}
	g.MinLatency = max(g.MinLatency, 2)
	g.MaxLatency = max(g.MaxLatency, g.MinLatency+1)
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
		s.call = clock[w] + 1 + rng.Int63n(max(g.MaxGap, 1))
		s.done = s.call + g.MinLatency + rng.Int63n(g.MaxLatency-g.MinLatency)
		s.point = s.call + 1 + rng.Int63n(s.done-s.call-1)
		switch r := rng.Float64(); {
		case r < g.Reads:
			s.f = "read"
		case r < g.Reads+g.Writes:
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

// InjectStaleRead makes the first ok read completed at or after line from return a value that
// was certainly overwritten before the read was invoked: the value of an ok write that returned
// before another ok write was invoked, which itself returned before the read was invoked. It
// reports false when no such read exists. The history is then not linearizable.
func InjectStaleRead(ops []history.Op, from int) bool {
	invokeOf := func(i int) int { // the invoke line of completion i
		for j := i - 1; j >= 0; j-- {
			if ops[j].Process == ops[i].Process && ops[j].Type == history.Invoke {
				return j
			}
		}
		return -1
	}
	for i := max(from, 0); i < len(ops); i++ {
		if ops[i].Type != history.OK || ops[i].F != "read" {
			continue
		}
		r := invokeOf(i)
		// Newest ok write of this key completed before the read was invoked, then an older one
		// completed before that write was invoked.
		limit := r
		for pass := 0; pass < 2 && limit > 0; pass++ {
			w := -1
			for j := limit - 1; j >= 0; j-- {
				if ops[j].Type == history.OK && ops[j].F == "write" && ops[j].Key == ops[i].Key {
					w = j
					break
				}
			}
			if w < 0 {
				break
			}
			if pass == 1 {
				ops[i].Value = ops[w].Value
				return true
			}
			limit = invokeOf(w)
		}
	}
	return false
}
