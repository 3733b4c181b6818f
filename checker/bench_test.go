package checker

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftcheck/harness/history"
)

// Benchmarks of the register checker on generated histories (100 keys, 20 workers, 1% of
// writes and cas info). "ops" counts operations; the history has twice as many lines.
//
//	go test -bench . -count 3 -run '^$' ./checker

var (
	benchFiles sync.Map // ops count → path of a jsonl file
	benchOps   sync.Map // ops count → []history.Op
)

func benchHistory(b *testing.B, n int) ([]history.Op, string) {
	b.Helper()
	var ops []history.Op
	if o, ok := benchOps.Load(n); ok {
		ops = o.([]history.Op)
	} else {
		ops = GenerateRegisterHistory(42, n, 100, 20, 0.01)
		benchOps.Store(n, ops)
	}
	if p, ok := benchFiles.Load(n); ok {
		return ops, p.(string)
	}
	dir, err := os.MkdirTemp("", "checker-bench")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "history.jsonl")
	writeHistory(b, path, ops)
	benchFiles.Store(n, path)
	return ops, path
}

func benchRegisterFromFile(b *testing.B, n int) {
	_, path := benchHistory(b, n)
	benchOps.Delete(n) // measure the checker with only the file's history in memory
	runtime.GC()
	debugFreeOSMemory()
	b.ResetTimer()
	stop := peakMemory(b)
	defer stop()
	for i := 0; i < b.N; i++ {
		h, err := history.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		res := Register{}.Check(context.Background(), h)
		if res.Valid != Valid {
			b.Fatalf("generated history is %v: %s", res.Valid, res.Error)
		}
	}
}

// BenchmarkRegister100k reads a 100,000-op history (200,000 lines) from a file and checks it.
func BenchmarkRegister100k(b *testing.B) { benchRegisterFromFile(b, 100_000) }

// BenchmarkRegister1M reads a 1,000,000-op history (2,000,000 lines) from a file and checks it.
func BenchmarkRegister1M(b *testing.B) { benchRegisterFromFile(b, 1_000_000) }

// BenchmarkRegisterInMemory1M checks the 1M-op history already in memory.
func BenchmarkRegisterInMemory1M(b *testing.B) {
	ops, _ := benchHistory(b, 1_000_000)
	b.ResetTimer()
	stop := peakMemory(b)
	defer stop()
	for i := 0; i < b.N; i++ {
		if res := (Register{}).Check(context.Background(), ops); res.Valid != Valid {
			b.Fatalf("generated history is %v: %s", res.Valid, res.Error)
		}
	}
}

// BenchmarkRead1M reads the 2,000,000-line file only.
func BenchmarkRead1M(b *testing.B) {
	_, path := benchHistory(b, 1_000_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := history.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPorcupineAlone1M is the yardstick: a plain porcupine key-value register model with
// Partition and Hash on the same history, already converted to porcupine operations in memory.
func BenchmarkPorcupineAlone1M(b *testing.B) {
	ops, _ := benchHistory(b, 1_000_000)
	pops := plainPorcupineOps(ops)
	ops = nil
	runtime.GC()
	b.ResetTimer()
	stop := peakMemory(b)
	defer stop()
	for i := 0; i < b.N; i++ {
		if res := porcupine.CheckOperationsTimeout(plainModel, pops, 0); res != porcupine.Ok {
			b.Fatalf("porcupine says %v", res)
		}
	}
}

type plainIn struct {
	key  string
	f    string
	a, b int64
}

type plainOut struct {
	unknown, present bool
	v                int64
}

type plainState struct {
	present bool
	v       int64
}

var plainModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		m := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(plainIn).key
			if _, ok := m[k]; !ok {
				keys = append(keys, k)
			}
			m[k] = append(m[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, m[k])
		}
		return out
	},
	Init: func() any { return plainState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(plainState), input.(plainIn), output.(plainOut)
		switch in.f {
		case "read":
			return out.unknown || out.present == s.present && out.v == s.v, s
		case "write":
			return true, plainState{true, in.a}
		default:
			if s.present && s.v == in.a {
				return true, plainState{true, in.b}
			}
			return out.unknown, s
		}
	},
	Hash: func(state any) uint64 {
		s := state.(plainState)
		if !s.present {
			return 1
		}
		return mix64(uint64(s.v))
	},
}

// plainPorcupineOps converts the history the obvious way: fail dropped, info reads dropped,
// info writes and cas open until the end.
func plainPorcupineOps(ops []history.Op) []porcupine.Operation {
	open := map[history.Process]int{}
	var out []porcupine.Operation
	var drop []bool
	for _, op := range ops {
		if op.IsNemesis() {
			continue
		}
		if op.Type == history.Invoke {
			in := plainIn{key: op.Key, f: op.F}
			switch op.F {
			case "write":
				in.a, _, _ = op.Int()
			case "cas":
				in.a, in.b, _ = op.Pair()
			}
			open[op.Process] = len(out)
			out = append(out, porcupine.Operation{ClientId: int(op.Process), Input: in, Call: op.Time,
				Output: plainOut{unknown: true}, Return: math.MaxInt64})
			drop = append(drop, false)
			continue
		}
		i := open[op.Process]
		delete(open, op.Process)
		switch op.Type {
		case history.OK:
			o := plainOut{}
			if op.F == "read" {
				o.v, o.present, _ = op.Int()
			}
			out[i].Output, out[i].Return = o, op.Time
		case history.Fail:
			drop[i] = true
		case history.Info:
			drop[i] = op.F == "read"
		}
	}
	kept := out[:0]
	for i, op := range out {
		if !drop[i] {
			kept = append(kept, op)
		}
	}
	return kept
}

// peakMemory samples the Go runtime's memory use until stop is called and reports the peaks:
// heap-MB (heap objects, live and not yet swept) and mapped-MB (memory obtained from the OS and
// not returned, close to the process's resident size).
func peakMemory(b *testing.B) (stop func()) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	var heap, mapped uint64
	sample := func() {
		metrics.Read(samples)
		heap = max(heap, samples[0].Value.Uint64())
		mapped = max(mapped, samples[1].Value.Uint64()-samples[2].Value.Uint64())
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		sample()
		b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
		b.ReportMetric(float64(mapped)/(1<<20), "mapped-MB")
	}
}

func debugFreeOSMemory() { debug.FreeOSMemory() }
