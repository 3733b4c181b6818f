package checker

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// ShrinkBudget bounds the time spent shrinking one invalid key's history to a counterexample.
const ShrinkBudget = 2 * time.Second

// checkUniqueKeys decides every key whose values are unique, several at once, and records the
// method (and, for the others, why porcupine is needed) in d.PerKey.
func (r Register) checkUniqueKeys(keys []*registerKey, d *RegisterDetails) map[*registerKey]uniqueVerdict {
	out := make(map[*registerKey]uniqueVerdict, len(keys))
	for _, k := range keys {
		if len(k.corrupt) > 0 { // decided without any search
			c := k.corrupt[0]
			out[k] = uniqueVerdict{applies: true, kind: "corrupt value",
				problem: fmt.Sprintf("read by process %d (index %d) returned %s, which is neither an integer nor null (%d such reads)", c.o.proc, c.o.index, c.raw, len(k.corrupt)),
				culprit: c.o}
			d.PerKey[k.name] = KeyResult{Method: MethodCorrupt}
		}
	}
	if r.PorcupineOnly {
		for _, k := range keys {
			if _, ok := out[k]; !ok {
				d.PerKey[k.name] = KeyResult{Method: MethodPorcupine, Fallback: "porcupine only (PorcupineOnly)"}
			}
		}
		return out
	}
	verdicts := make([]uniqueVerdict, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := r.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				if _, ok := out[keys[i]]; !ok { // read-only: written before the workers start
					verdicts[i] = checkUnique(keys[i].ops)
				}
			}
		}()
	}
	wg.Wait()
	for i, k := range keys {
		v := verdicts[i]
		if _, ok := out[k]; ok {
			continue
		}
		if !v.applies {
			d.PerKey[k.name] = KeyResult{Method: MethodPorcupine, Fallback: v.why}
			continue
		}
		out[k] = v
		d.UniqueKeys++
		d.PerKey[k.name] = KeyResult{Method: MethodUnique}
	}
	return out
}

// explainUnique names the anomaly of each key found invalid by the unique-value method, shrinks
// its history to a counterexample and visualises the counterexample with porcupine.
func (r Register) explainUnique(bad []*registerKey, decided map[*registerKey]uniqueVerdict, d *RegisterDetails, res *Result, remaining func() (time.Duration, bool), windows []Window) {
	if len(bad) > 0 && r.VisualizeDir != "" {
		if err := os.MkdirAll(r.VisualizeDir, 0o755); err != nil {
			res.Error = fmt.Sprintf("cannot create visualisation folder: %v", err)
		}
	}
	for i, k := range bad {
		u := decided[k]
		kr := d.PerKey[k.name]
		if u.ops != nil {
			kr.Excerpt = briefs(u.ops, "shows the anomaly")
		}
		o := u.culprit
		a := &Anomaly{Index: o.index, Time: o.call, Key: k.name, Process: o.proc,
			Description: fmt.Sprintf("key %q: %s: %s", k.name, u.kind, u.problem)}
		if o.done >= 0 {
			a.Index, a.Time = o.done, o.ret
		}
		kr.Anomaly = a
		if _, ok := remaining(); ok && i < MaxVisualize && u.ops != nil {
			small := shrinkUnique(k.ops, u, ShrinkBudget)
			kr.Counterexample = briefs(small, "")
			if r.VisualizeDir != "" {
				seg := &segment{key: k, start: absentState, ops: small}
				m := seg.model(nil)
				result, info := porcupine.CheckOperationsVerbose(m, seg.operations(), time.Second)
				if result == porcupine.Illegal {
					annotate(&info, windows, small)
					path := filepath.Join(r.VisualizeDir, "linear-"+sanitize(k.name)+".html")
					if err := porcupine.VisualizePath(m, info, path); err == nil {
						d.Files = append(d.Files, path)
						a.Visualization = filepath.Base(path)
					}
				}
			}
		}
		d.PerKey[k.name] = kr
		if res.FirstAnomaly == nil || a.Time < res.FirstAnomaly.Time {
			res.FirstAnomaly = a
			res.Error = a.Description
		}
	}
}

// briefs lists ops in invocation order.
func briefs(ops []*rop, note string) []OpBrief {
	sorted := append([]*rop(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].call < sorted[j].call })
	out := make([]OpBrief, 0, len(sorted))
	for i, o := range sorted {
		if i > 0 && o == sorted[i-1] {
			continue
		}
		ret := o.ret
		if o.unknown {
			ret = -1
		}
		out = append(out, OpBrief{Index: o.index, Process: o.proc, Op: o.String(), Call: o.call, Return: ret, Note: note})
	}
	return out
}

// shrinkUnique finds a small set of a key's ops that is still not linearizable, by delta
// debugging (ddmin) within budget. Every candidate set is closed under "the write of a value
// that an op in it observes", and with unique values a closed subset of a linearizable history
// is linearizable (restrict the linearization: nothing can come between a write of v and an
// observation of v), so the counterexample shows the key itself is not linearizable.
func shrinkUnique(ops []*rop, u uniqueVerdict, budget time.Duration) []*rop {
	writer := make(map[int64]*rop, len(ops)/2+1)
	for _, o := range ops {
		switch o.kind {
		case fWrite:
			writer[o.a] = o
		case fCAS:
			writer[o.b] = o
		}
	}
	closure := func(set []*rop) []*rop {
		in := make(map[*rop]bool, 2*len(set))
		var out []*rop
		var add func(o *rop)
		add = func(o *rop) {
			for o != nil && !in[o] {
				in[o] = true
				out = append(out, o)
				var need int64
				switch {
				case o.kind == fRead && o.present:
					need = o.a
				case o.kind == fCAS:
					need = o.a
				default:
					return
				}
				o = writer[need]
			}
		}
		for _, o := range set {
			add(o)
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].index < out[j].index })
		return out
	}
	invalid := func(set []*rop) bool {
		v := checkUnique(set)
		return v.applies && !v.valid
	}
	deadline := time.Now().Add(budget)
	// Start from the ops that show the anomaly, else from the ops overlapping them, else all.
	current := closure(u.ops)
	if !invalid(current) {
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, o := range u.ops {
			lo, hi = min(lo, o.call), max(hi, o.ret)
		}
		var near []*rop
		for _, o := range ops {
			if o.ret >= lo && o.call <= hi {
				near = append(near, o)
			}
		}
		current = closure(append(near, u.ops...))
		if !invalid(current) {
			current = ops
		}
	}
	// ddmin: try removing chunks, from halves down to single ops.
	n := 2
	for len(current) >= 2 && time.Now().Before(deadline) {
		chunk := (len(current) + n - 1) / n
		removed := false
		for start := 0; start < len(current) && time.Now().Before(deadline); start += chunk {
			end := min(start+chunk, len(current))
			rest := append(append([]*rop(nil), current[:start]...), current[end:]...)
			rest = closure(rest)
			if len(rest) < len(current) && invalid(rest) {
				current, removed = rest, true
				n = max(n-1, 2)
				break
			}
		}
		if !removed {
			if chunk == 1 {
				break
			}
			n = min(2*n, len(current))
		}
	}
	return current
}

// annotate adds the fault windows that overlap the ops' time span to porcupine's visualisation,
// clipped to that span, so the picture shows which faults were active around the anomaly.
func annotate(info *porcupine.LinearizationInfo, windows []Window, ops []*rop) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, o := range ops {
		lo = min(lo, o.call)
		if o.ret != math.MaxInt64 {
			hi = max(hi, o.ret)
		}
		hi = max(hi, o.call)
	}
	var as []porcupine.Annotation
	for _, w := range windows {
		if w.End < lo || w.Start > hi {
			continue
		}
		as = append(as, porcupine.Annotation{Tag: "nemesis", Start: max(w.Start, lo), End: min(w.End, hi),
			Description: w.F, Details: fmt.Sprintf("%s %v from %.3f s to %.3f s", w.F, w.Targets, float64(w.Start)/1e9, float64(w.End)/1e9),
			BackgroundColor: "#fde2c4"})
	}
	info.AddAnnotations(as)
}

// Counterexamples returns the shrunk counterexample of each invalid key in a register result,
// whether its Details are the checker's own or were read back from results.json; keys in order.
func Counterexamples(r Result) (keys []string, ops map[string][]OpBrief) {
	var d struct {
		PerKey map[string]struct {
			Counterexample []OpBrief `json:"counterexample"`
		} `json:"per_key"`
	}
	switch x := r.Details.(type) {
	case *RegisterDetails:
		ops = map[string][]OpBrief{}
		for k, kr := range x.PerKey {
			if len(kr.Counterexample) > 0 {
				ops[k] = kr.Counterexample
			}
		}
	default:
		b, err := json.Marshal(r.Details)
		if err != nil || json.Unmarshal(b, &d) != nil {
			return nil, nil
		}
		ops = map[string][]OpBrief{}
		for k, kr := range d.PerKey {
			if len(kr.Counterexample) > 0 {
				ops[k] = kr.Counterexample
			}
		}
	}
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, ops
}

// Describe is one line of a counterexample: index, process, the op, and its interval in seconds.
func (b OpBrief) Describe() string {
	ret := "?"
	if b.Return >= 0 {
		ret = fmt.Sprintf("%.9f", float64(b.Return)/1e9)
	}
	return fmt.Sprintf("index %d, process %d: %s  [%.9f s, %s s]", b.Index, b.Process, b.Op, float64(b.Call)/1e9, ret)
}

// shrinkSegment finds a smaller set of ops of an invalid segment (values may repeat) that
// porcupine still finds not linearizable, within budget, by two steps that each keep a
// linearizable history linearizable, so the result shows the key is not linearizable:
//
//   - Truncation: keep the ops invoked up to some time T; an op still open at T becomes
//     unknown (info: return ∞, any output), and a read open at T is dropped. Every op that
//     returned by T keeps its point, and no removed op (invoked after T) can precede it. Not
//     being linearizable only grows with T, so the shortest such prefix is found by bisection.
//   - Removing ok reads, which change nothing (ddmin over the reads).
//
// Unknown ops given a finite return by pruneKey are open again (return ∞), since the op that
// justified it may be removed; ops pruneKey dropped stay dropped (nothing observes their value
// in any subset either).
func shrinkSegment(seg *segment, guard *memGuard, budget time.Duration) []*rop {
	deadline := time.Now().Add(budget)
	ops := make([]*rop, 0, len(seg.ops))
	for _, o := range seg.ops {
		if o.unknown && o.ret != math.MaxInt64 {
			// pruneKey pinned it to the return of an op that observed its value; that op may be
			// cut away here, so it is open again (return ∞), as the history says.
			c := *o
			c.ret = math.MaxInt64
			o = &c
		}
		ops = append(ops, o)
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].call < ops[j].call })
	invalid := func(set []*rop) bool {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		s := &segment{key: seg.key, start: seg.start, ops: set}
		return porcupine.CheckOperationsTimeout(s.model(guard), s.operations(), left) == porcupine.Illegal && !guard.tripped()
	}
	prefix := func(n int) []*rop {
		t := ops[n-1].call
		out := make([]*rop, 0, n)
		for _, o := range ops[:n] {
			if o.ret > t && !o.unknown {
				if o.kind == fRead {
					continue
				}
				c := *o
				c.unknown, c.ret = true, math.MaxInt64
				o = &c
			}
			out = append(out, o)
		}
		return out
	}
	lo, hi := 1, len(ops) // prefix(hi) is the whole segment, known invalid
	best := ops
	for lo < hi && time.Now().Before(deadline) {
		mid := (lo + hi) / 2
		if p := prefix(mid); invalid(p) {
			hi, best = mid, p
		} else {
			lo = mid + 1
		}
	}
	// ddmin over the ok reads.
	n := 2
	for time.Now().Before(deadline) {
		var reads []int
		for i, o := range best {
			if o.kind == fRead && !o.unknown {
				reads = append(reads, i)
			}
		}
		if len(reads) == 0 {
			break
		}
		n = min(n, len(reads))
		chunk := (len(reads) + n - 1) / n
		removed := false
		for start := 0; start < len(reads) && time.Now().Before(deadline); start += chunk {
			drop := map[int]bool{}
			for _, i := range reads[start:min(start+chunk, len(reads))] {
				drop[i] = true
			}
			var rest []*rop
			for i, o := range best {
				if !drop[i] {
					rest = append(rest, o)
				}
			}
			if invalid(rest) {
				best, removed = rest, true
				n = max(n-1, 2)
				break
			}
		}
		if !removed {
			if chunk == 1 {
				break
			}
			n = min(2*n, len(reads))
		}
	}
	return best
}
