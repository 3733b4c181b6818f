package results

import (
	"encoding/json"
	"math"
	"sort"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// clientOp is one client operation: its invoke line folded together with its completion.
type clientOp struct {
	Index   int64 // index of the invoke line
	Done    int64 // index of the completion line; -1 when the op never completed
	Process history.Process
	F       string
	Key     string
	Type    history.Type // ok, fail or info (info also when the op never completed)
	Call    int64        // ns since the start
	Return  int64        // ns since the start; -1 when the op never completed
	Invoke  json.RawMessage
	Value   json.RawMessage // the completion's value (the invoke's when there is none)
	Node    string
	Error   string
}

// Completed reports whether the op has a completion line.
func (o clientOp) Completed() bool { return o.Return >= 0 }

// foldOps pairs every client invoke with the next completion of the same process. It returns the
// client operations in invoke order and the time of the last line of the history.
func foldOps(ops []history.Op) (out []clientOp, end int64) {
	f := newOpFolder(len(ops)/2, false)
	for i := range ops {
		f.add(&ops[i])
	}
	return f.ops, f.end
}

// opFolder folds a history, one line at a time, into client operations (see foldOps), keeping
// copies of the nemesis lines and, when asked, of every line; it holds no reference to the
// lines it is given.
type opFolder struct {
	ops     []clientOp
	end     int64
	open    map[history.Process]int
	nemesis []history.Op // nemesis lines, and the last line when it is a client line
	all     []history.Op // every line, when keepAll
	keepAll bool
	arena   []byte
	last    history.Op
	acquire bool // a lock workload's acquire op was seen
}

func newOpFolder(hint int, keepAll bool) *opFolder {
	return &opFolder{ops: make([]clientOp, 0, hint), open: make(map[history.Process]int), keepAll: keepAll}
}

// keep copies a value into the folder's arena.
func (f *opFolder) keep(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return nil
	}
	if len(v) > 1<<10 {
		return append(json.RawMessage(nil), v...)
	}
	if cap(f.arena)-len(f.arena) < len(v) {
		f.arena = make([]byte, 0, 64<<10)
	}
	n := len(f.arena)
	f.arena = append(f.arena, v...)
	return json.RawMessage(f.arena[n:len(f.arena):len(f.arena)])
}

func (f *opFolder) add(op *history.Op) error {
	f.end = max(f.end, op.Time)
	f.last = *op
	f.last.Value = nil
	if f.keepAll {
		c := *op
		c.Value = f.keep(op.Value)
		f.all = append(f.all, c)
	}
	if op.IsNemesis() {
		c := *op
		c.Value = f.keep(op.Value)
		f.nemesis = append(f.nemesis, c)
		return nil
	}
	if op.Type == history.Invoke {
		f.acquire = f.acquire || op.F == "acquire"
		f.open[op.Process] = len(f.ops)
		v := f.keep(op.Value)
		f.ops = append(f.ops, clientOp{Index: op.Index, Done: -1, Process: op.Process, F: op.F, Key: op.Key,
			Type: history.Info, Call: op.Time, Return: -1, Invoke: v, Value: v})
		return nil
	}
	i, ok := f.open[op.Process]
	if !ok {
		return nil // a completion without an invoke: nothing to fold it into
	}
	delete(f.open, op.Process)
	c := &f.ops[i]
	c.Done, c.Type, c.Return, c.Node, c.Error = op.Index, op.Type, op.Time, op.Node, op.Error
	if len(op.Value) > 0 && string(op.Value) != string(c.Invoke) {
		c.Value = f.keep(op.Value)
	}
	return nil
}

// lines are the lines the folder kept: every line when keepAll, else the nemesis lines and the
// last line (which ends open fault windows).
func (f *opFolder) lines() []history.Op {
	if f.keepAll {
		return f.all
	}
	if len(f.nemesis) > 0 && f.nemesis[len(f.nemesis)-1].Index == f.last.Index {
		return f.nemesis
	}
	if f.last.Type == "" {
		return f.nemesis
	}
	return append(f.nemesis, f.last)
}

// faultWindow is one fault: from its nemesis start event to its end event (ns since the start).
type faultWindow struct {
	F       string
	Start   int64
	End     int64
	Targets []string
}

// faultWindows returns the fault windows of a history (checker.FaultWindows, which ends a
// window that was never closed at the last line), without the final heal, sorted by start.
func faultWindows(ops []history.Op) []faultWindow {
	var out []faultWindow
	for _, w := range checker.FaultWindows(ops) {
		if w.F == history.FHeal {
			continue
		}
		out = append(out, faultWindow{F: w.F, Start: w.Start, End: w.End, Targets: w.Targets})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// opCount is the number of operations of one f by outcome.
type opCount struct {
	F                          string
	OK, Fail, Info, Incomplete int
}

// Total is the number of invocations.
func (c opCount) Total() int { return c.OK + c.Fail + c.Info + c.Incomplete }

// countOps counts client operations per f and outcome, sorted by f; the last row is the total.
func countOps(cops []clientOp) []opCount {
	by := make(map[string]*opCount)
	total := &opCount{F: "all"}
	for _, o := range cops {
		c := by[o.F]
		if c == nil {
			c = &opCount{F: o.F}
			by[o.F] = c
		}
		for _, x := range []*opCount{c, total} {
			switch {
			case !o.Completed():
				x.Incomplete++
			case o.Type == history.OK:
				x.OK++
			case o.Type == history.Fail:
				x.Fail++
			default:
				x.Info++
			}
		}
	}
	out := make([]opCount, 0, len(by)+1)
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].F < out[j].F })
	return append(out, *total)
}

// Excerpt bounds: how many operations before the anomaly are kept to show the state it was
// judged against, and how many operations an excerpt may have at most.
const (
	excerptBefore = 4
	excerptMax    = 40
)

// excerpt selects the smallest part of the history that shows an anomaly on key: the op whose
// invoke or completion line has index anomaly, every op on key whose interval overlaps it, and
// the excerptBefore ops on key that completed last before it began. Ops that never completed
// count as running to end. At most excerptMax ops are kept (the anomaly and the ops nearest to
// it in time); the result is in invoke order. It returns nil when no op on key has that index.
func excerpt(cops []clientOp, key string, anomaly int64, end int64) []clientOp {
	var onKey []clientOp
	target := -1
	for _, o := range cops {
		if o.Key != key {
			continue
		}
		if o.Index == anomaly || o.Done == anomaly {
			target = len(onKey)
		}
		onKey = append(onKey, o)
	}
	if target < 0 {
		return nil
	}
	ret := func(o clientOp) int64 {
		if o.Completed() {
			return o.Return
		}
		return max(end, o.Call)
	}
	a := onKey[target]
	aCall, aRet := a.Call, ret(a)
	type cand struct {
		i    int
		dist int64 // distance in time from the anomaly's interval; 0 when overlapping
	}
	var overlap, before []cand
	for i, o := range onKey {
		if i == target {
			continue
		}
		r := ret(o)
		switch {
		case o.Call <= aRet && r >= aCall:
			overlap = append(overlap, cand{i, 0})
		case r < aCall:
			before = append(before, cand{i, aCall - r})
		}
	}
	sort.Slice(before, func(x, y int) bool { return before[x].dist < before[y].dist })
	if len(before) > excerptBefore {
		before = before[:excerptBefore]
	}
	// Among overlapping ops prefer those whose call is nearest the anomaly's call.
	for k := range overlap {
		d := onKey[overlap[k].i].Call - aCall
		if d < 0 {
			d = -d
		}
		overlap[k].dist = d
	}
	sort.Slice(overlap, func(x, y int) bool { return overlap[x].dist < overlap[y].dist })
	keep := []int{target}
	for _, c := range append(before, overlap...) {
		if len(keep) >= excerptMax {
			break
		}
		keep = append(keep, c.i)
	}
	sort.Ints(keep)
	out := make([]clientOp, len(keep))
	for k, i := range keep {
		out[k] = onKey[i]
	}
	return out
}

// span returns the earliest call and latest return (end for incomplete ops) of ops.
func span(ops []clientOp, end int64) (lo, hi int64) {
	lo, hi = math.MaxInt64, math.MinInt64
	for _, o := range ops {
		lo = min(lo, o.Call)
		r := o.Return
		if !o.Completed() {
			r = max(end, o.Call)
		}
		hi = max(hi, r)
	}
	return lo, hi
}
