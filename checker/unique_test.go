package checker

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

// randomRegisterHistory makes a small history of one key with random timing and random results:
// most are not linearizable, some are. Written values are unique unless repeat is set. Reads
// return null, a value written by an op invoked before the read returned, or (rarely) anything.
func randomRegisterHistory(rng *rand.Rand, nops, workers int, repeat bool) []history.Op {
	type sim struct {
		proc      history.Process
		f         string
		call, ret int64
		a, b      int64
		present   bool
		typ       history.Type
	}
	var sims []sim
	clock := make([]int64, workers)
	procs := make([]history.Process, workers)
	for w := range procs {
		procs[w] = history.Process(w)
	}
	nextProc := history.Process(workers)
	next := int64(1)
	value := func() int64 {
		if repeat {
			return 1 + rng.Int63n(3)
		}
		next++
		return next - 1
	}
	for i := 0; i < nops; i++ {
		w := rng.Intn(workers)
		s := sim{proc: procs[w], typ: history.OK}
		s.call = clock[w] + 1 + rng.Int63n(10)
		s.ret = s.call + 1 + rng.Int63n(20)
		clock[w] = s.ret
		switch rng.Intn(3) {
		case 0:
			s.f = "read"
		case 1:
			s.f, s.a = "write", value()
		default:
			s.f, s.b = "cas", value()
		}
		switch r := rng.Intn(10); {
		case r == 0 && s.f != "read":
			s.typ = history.Info
			procs[w] = nextProc
			nextProc++
		case r == 1:
			s.typ = history.Fail
		}
		sims = append(sims, s)
	}
	// Results: values written by ops invoked before this op returned.
	for i := range sims {
		s := &sims[i]
		var cands []int64
		for _, o := range sims {
			if o.call < s.ret {
				switch o.f {
				case "write":
					cands = append(cands, o.a)
				case "cas":
					cands = append(cands, o.b)
				}
			}
		}
		pick := func() (int64, bool) {
			if len(cands) == 0 || rng.Intn(5) == 0 {
				if rng.Intn(8) == 0 {
					return 1000 + rng.Int63n(3), true // never written
				}
				return 0, false
			}
			return cands[rng.Intn(len(cands))], true
		}
		switch s.f {
		case "read":
			s.a, s.present = pick()
		case "cas":
			if v, ok := pick(); ok {
				s.a = v
			} else {
				s.a = 999
			}
		}
	}
	type line struct {
		t      int64
		i      int
		invoke bool
	}
	var lines []line
	for i, s := range sims {
		lines = append(lines, line{s.call, i, true}, line{s.ret, i, false})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].t < lines[j].t })
	var out []history.Op
	for n, l := range lines {
		s := sims[l.i]
		op := history.Op{Index: int64(n), Time: l.t, Process: s.proc, F: s.f, Key: "k", Type: history.Invoke}
		if !l.invoke {
			op.Type = s.typ
		}
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
		out = append(out, op)
	}
	return out
}

// TestUniqueAgreesWithPorcupine cross-checks the unique-value method against porcupine on
// thousands of small histories, valid and invalid, with info and failed ops; histories with
// repeated values must go to porcupine and agree trivially.
func TestUniqueAgreesWithPorcupine(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	n := 6000
	if testing.Short() {
		n = 2500
	}
	count := map[string]int{}
	for i := 0; i < n; i++ {
		var ops []history.Op
		repeat := i%5 == 4
		switch i % 3 {
		case 0: // linearizable by construction, sometimes with one read corrupted
			ops = GenerateRegisterHistory(int64(i), 4+rng.Intn(12), 1, 2+rng.Intn(4), 0.2)
			if rng.Intn(2) == 0 {
				staleifyRead(rng, ops)
			}
		default:
			ops = randomRegisterHistory(rng, 3+rng.Intn(20), 2+rng.Intn(4), repeat)
		}
		fast := Register{}.Check(context.Background(), ops)
		slow := Register{PorcupineOnly: true, NoPrune: true}.Check(context.Background(), ops)
		if fast.Valid != slow.Valid {
			t.Fatalf("history %d: unique-value method says %v (%s), porcupine %v (%s)\n%s", i, fast.Valid, fast.Error, slow.Valid, slow.Error, dumpOps(ops))
		}
		d := fast.Details.(*RegisterDetails)
		method := "porcupine"
		if d.UniqueKeys > 0 {
			method = "unique"
		}
		count[fmt.Sprintf("%s %v", method, fast.Valid)]++
	}
	t.Logf("verdicts: %v", count)
	for _, want := range []string{"unique true", "unique false", "porcupine true", "porcupine false"} {
		if count[want] < n/200 {
			t.Errorf("only %d histories with %q: the generators do not exercise it", count[want], want)
		}
	}
}

// staleifyRead makes one ok read return the previous value it could have seen, often stale.
func staleifyRead(rng *rand.Rand, ops []history.Op) {
	var reads []int
	for i, op := range ops {
		if op.Type == history.OK && op.F == "read" {
			reads = append(reads, i)
		}
	}
	if len(reads) == 0 {
		return
	}
	i := reads[rng.Intn(len(reads))]
	var vals []int64
	for _, op := range ops[:i] {
		if op.Type == history.Invoke && op.F == "write" {
			v, _, _ := op.Int()
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		ops[i].Value = history.MustValue(nil)
		return
	}
	ops[i].Value = history.MustValue(vals[rng.Intn(len(vals))])
}

func dumpOps(ops []history.Op) string {
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%d t=%d p=%d %s %s %s\n", op.Index, op.Time, op.Process, op.Type, op.F, op.Value)
	}
	return b.String()
}

// TestUniqueHotKey decides one key with 32 workers and 100,000 ops, valid and with one stale
// read, and names the anomaly; it also shows the shrunk counterexample is small.
func TestUniqueHotKey(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	ops := GenerateHotKeyHistory(3, n, 32)
	start := time.Now()
	res := Register{}.Check(context.Background(), ops)
	if res.Valid != Valid {
		t.Fatalf("hot key history: %v (%s)", res.Valid, res.Error)
	}
	t.Logf("valid: %d ops in %s", n, time.Since(start))
	if !InjectStaleRead(ops, len(ops)/2) {
		t.Fatal("no read to make stale")
	}
	start = time.Now()
	res = Register{}.Check(context.Background(), ops)
	if res.Valid != Invalid || !strings.Contains(res.Error, "stale read") {
		t.Fatalf("stale read: %v (%s)", res.Valid, res.Error)
	}
	kr := res.Details.(*RegisterDetails).PerKey["r0"]
	t.Logf("invalid in %s: %s; counterexample of %d ops", time.Since(start), res.Error, len(kr.Counterexample))
	if len(kr.Counterexample) == 0 || len(kr.Counterexample) > 10 {
		t.Errorf("counterexample of %d ops: %+v", len(kr.Counterexample), kr.Counterexample)
	}
}

// TestUniqueCases: hand-written histories, each named anomaly once, and their valid twins.
func TestUniqueCases(t *testing.T) {
	cases := []struct {
		name string
		h    *hb
		want Validity
		kind string
	}{
		{"stale read", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "write", "k", 2).ok(4, 0, "write", "k", 2).
			inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 1), Invalid, "stale read"},
		{"two cas from one value", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{1, 2}).ok(4, 0, "cas", "k", []int{1, 2}).
			inv(3, 1, "cas", "k", []int{1, 3}).ok(4, 1, "cas", "k", []int{1, 3}), Invalid, "two cas from one value"},
		{"read from the future", new(hb).
			inv(1, 1, "read", "k", nil).ok(2, 1, "read", "k", 1).
			inv(3, 0, "write", "k", 1).ok(4, 0, "write", "k", 1), Invalid, "read from the future"},
		{"cas cycle", new(hb).
			inv(1, 0, "cas", "k", []int{2, 1}).ok(2, 0, "cas", "k", []int{2, 1}).
			inv(1, 1, "cas", "k", []int{1, 2}).ok(2, 1, "cas", "k", []int{1, 2}), Invalid, "cas cycle"},
		{"lost write before null read", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", nil), Invalid, "stale read"},
		{"cas chain read out of order", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{1, 2}).ok(4, 0, "cas", "k", []int{1, 2}).
			inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 1), Invalid, "stale read"},
		{"concurrent writes read in either order", new(hb).
			inv(1, 0, "write", "k", 1).inv(1, 1, "write", "k", 2).ok(5, 0, "write", "k", 1).ok(5, 1, "write", "k", 2).
			inv(6, 2, "read", "k", nil).ok(7, 2, "read", "k", 2), Valid, ""},
		{"info cas observed", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{1, 2}).info(4, 0, "cas", "k", nil).
			inv(10, 1, "read", "k", nil).ok(11, 1, "read", "k", 2), Valid, ""},
		{"info cas observed after the value it replaced was read again", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{1, 2}).info(4, 0, "cas", "k", nil).
			inv(10, 1, "read", "k", nil).ok(11, 1, "read", "k", 2).
			inv(12, 1, "read", "k", nil).ok(13, 1, "read", "k", 1), Invalid, "stale read"},
	}
	for _, c := range cases {
		res := Register{}.Check(context.Background(), c.h.ops)
		d := res.Details.(*RegisterDetails)
		if res.Valid != c.want || d.UniqueKeys != 1 {
			t.Errorf("%s: got %v (%s), unique keys %d, want %v", c.name, res.Valid, res.Error, d.UniqueKeys, c.want)
			continue
		}
		if c.want == Invalid && !strings.Contains(res.Error, c.kind) {
			t.Errorf("%s: error %q does not name %q", c.name, res.Error, c.kind)
		}
		if p := (Register{PorcupineOnly: true}).Check(context.Background(), c.h.ops); p.Valid != c.want {
			t.Errorf("%s: porcupine says %v", c.name, p.Valid)
		}
	}
}

// TestUniqueRepeatedValuesUsePorcupine: a key whose values repeat is left to porcupine.
func TestUniqueRepeatedValuesUsePorcupine(t *testing.T) {
	h := new(hb).
		inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
		inv(3, 0, "write", "k", 2).ok(4, 0, "write", "k", 2).
		inv(5, 0, "write", "k", 1).ok(6, 0, "write", "k", 1).
		inv(7, 1, "read", "k", nil).ok(8, 1, "read", "k", 1)
	res := Register{}.Check(context.Background(), h.ops)
	kr := res.Details.(*RegisterDetails).PerKey["k"]
	if res.Valid != Valid || kr.Method != MethodPorcupine || !strings.Contains(kr.Fallback, "written twice") {
		t.Fatalf("got %v, key %+v", res.Valid, kr)
	}
}

// BenchmarkHotKey100k checks one key with 32 workers and 100,000 ops (the hot key), valid
// and with one stale read, reporting peak heap and mapped memory.
//
//	go test -bench HotKey -benchtime 3x -run '^$' ./checker
func BenchmarkHotKey100k(b *testing.B) {
	for _, stale := range []bool{false, true} {
		b.Run(fmt.Sprintf("stale=%v", stale), func(b *testing.B) {
			ops := GenerateHotKeyHistory(5, 100_000, 32)
			want := Valid
			if stale {
				InjectStaleRead(ops, len(ops)/2)
				want = Invalid
			}
			runtime.GC()
			b.ResetTimer()
			stop := peakMemory(b)
			defer stop()
			for i := 0; i < b.N; i++ {
				if res := (Register{}).Check(context.Background(), ops); res.Valid != want {
					b.Fatalf("got %v (%s), want %v", res.Valid, res.Error, want)
				}
			}
		})
	}
}

// TestMemoryLimit: a search that would grow past the memory limit stops there and says
// unknown with the reason; it is never killed and never says valid or invalid.
func TestMemoryLimit(t *testing.T) {
	ops := GenerateRegisterHistory(2, 200000, 1, 20, 0.2)
	runtime.GC()
	limit := heapObjectsBytes() + 64<<20
	stop, peakOf := sampleHeap()
	res := Register{NoPrune: true, PorcupineOnly: true, MemoryLimit: int64(limit), Timeout: time.Minute}.Check(context.Background(), ops)
	stop()
	if res.Valid != Unknown || !strings.Contains(res.Error, "memory limit") {
		t.Fatalf("got %v (%s), want unknown at the memory limit", res.Valid, res.Error)
	}
	if kr := res.Details.(*RegisterDetails).PerKey["r0"]; !strings.Contains(kr.Why, "memory limit") {
		t.Errorf("key says %q", kr.Why)
	}
	// The sampler of this test is slower than the guard's; allow it some slack.
	if peak := peakOf(); peak > limit+64<<20 {
		t.Errorf("heap peaked at %s, limit %s", mib(peak), mib(limit))
	}
	t.Log(res.Error)
}

// TestCounterexampleAnnotated: an invalid key's counterexample is small, still not linearizable,
// and its visualisation shows the fault window that was open around it.
func TestCounterexampleAnnotated(t *testing.T) {
	dir := t.TempDir()
	h := new(hb).
		inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
		nemesis(3, "partition", history.NemesisEvent{Event: history.EventStart, Targets: []string{"n1"}}).
		inv(4, 2, "read", "k", nil).ok(5, 2, "read", "k", 1).
		inv(6, 0, "write", "k", 2).ok(7, 0, "write", "k", 2).
		inv(8, 2, "read", "k", nil).ok(9, 2, "read", "k", 2).
		inv(10, 1, "read", "k", nil).ok(11, 1, "read", "k", 1).
		nemesis(12, "partition", history.NemesisEvent{Event: history.EventEnd, Targets: []string{"n1"}})
	res := Register{VisualizeDir: dir}.Check(context.Background(), h.ops)
	if res.Valid != Invalid {
		t.Fatalf("got %v", res.Valid)
	}
	kr := res.Details.(*RegisterDetails).PerKey["k"]
	if n := len(kr.Counterexample); n == 0 || n > 3 {
		t.Fatalf("counterexample %+v", kr.Counterexample)
	}
	b, err := os.ReadFile(filepath.Join(dir, res.FirstAnomaly.Visualization))
	if err != nil || !strings.Contains(string(b), `"partition"`) {
		t.Fatalf("visualisation without the fault window: %v", err)
	}
	// A valid twin (the last read sees 2) passes.
	h.ops[len(h.ops)-2].Value = history.MustValue(2)
	if res := (Register{}).Check(context.Background(), h.ops); res.Valid != Valid {
		t.Fatalf("twin: %v %s", res.Valid, res.Error)
	}
}

// TestPorcupineCounterexample: keys whose values repeat get a counterexample too, made of
// their own ops, smaller than the key's history, and visualised.
func TestPorcupineCounterexample(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	shrunk := 0
	for i := 0; i < 300; i++ {
		ops := randomRegisterHistory(rng, 12+rng.Intn(10), 3, true)
		res := Register{}.Check(context.Background(), ops)
		kr := res.Details.(*RegisterDetails).PerKey["k"]
		if res.Valid != Invalid || kr.Method != MethodPorcupine {
			continue
		}
		indexes := map[int64]bool{}
		for _, op := range ops {
			indexes[op.Index] = op.Type == history.Invoke
		}
		for _, b := range kr.Counterexample {
			if !indexes[b.Index] {
				t.Fatalf("history %d: counterexample op %+v is no invoke of the history", i, b)
			}
		}
		if n := len(kr.Counterexample); n > 0 && n < kr.Ops {
			shrunk++
		}
	}
	t.Logf("%d invalid repeated-value histories shrunk", shrunk)
	if shrunk < 20 {
		t.Errorf("only %d invalid repeated-value histories were shrunk", shrunk)
	}
}
