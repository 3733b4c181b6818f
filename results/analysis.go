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
	open := make(map[history.Process]int)
	for _, op := range ops {
		end = max(end, op.Time)
		if op.IsNemesis() {
			continue
		}
		if op.Type == history.Invoke {
			open[op.Process] = len(out)
			out = append(out, clientOp{Index: op.Index, Done: -1, Process: op.Process, F: op.F, Key: op.Key,
				Type: history.Info, Call: op.Time, Return: -1, Invoke: op.Value, Value: op.Value})
			continue
		}
		i, ok := open[op.Process]
		if !ok {
			continue // a completion without an invoke: nothing to fold it into
		}
		delete(open, op.Process)
		c := &out[i]
		c.Done, c.Type, c.Return, c.Node, c.Error = op.Index, op.Type, op.Time, op.Node, op.Error
		if len(op.Value) > 0 {
			c.Value = op.Value
		}
	}
	return out, end
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
