package checker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/raftcheck/harness/history"
)

// Stats counts client operations per f and outcome (name "stats"). An f that was attempted but
// never succeeded usually means the system was unavailable throughout or the workload is broken,
// but it can also be bad luck: a call made rarely (a lock renew) that happened to run only while
// a partition cut its node off. So Stats is invalid only when at least StatsMinJudgedAttempts
// attempts of such an f ran outside every fault window (see FaultWindows); an f not judged is
// listed in StatsDetails.NeverSucceeded with the reason, and the verdict stays valid. fs never
// attempted are ignored.
type Stats struct{}

// StatsMinJudgedAttempts is how many attempts of an f made outside every fault window must all
// have failed before Stats calls the run invalid. An attempt is outside when its invoke..completion
// interval (invoke..end of history if it never completed) overlaps no fault window of any kind on
// any node. A healthy cluster can fail an attempt or two outside a fault (a timeout on a loaded
// machine, a request during the re-election after a heal), not ten of one f in a row with no
// success in between; a broken f that the workload calls often (reads, writes, acquires) fails
// hundreds of times in a short run. The price: an f called rarely (the lock workload's renew, only
// in holdings longer than half the session TTL) may stay under ten attempts outside faults in a
// short run, and is then reported in StatsDetails.NeverSucceeded instead of judged.
const StatsMinJudgedAttempts = 10

// Name is "stats".
func (Stats) Name() string { return NameStats }

// FStats counts the completions of one f.
type FStats struct {
	Invoke int `json:"invoke"`
	OK     int `json:"ok"`
	Fail   int `json:"fail"`
	Info   int `json:"info"`
}

// StatsDetails is Result.Details of Stats.
type StatsDetails struct {
	Total FStats            `json:"total"`
	ByF   map[string]FStats `json:"by_f"`
	// NeverSucceeded lists, by f, every f attempted that never succeeded, judged or not.
	NeverSucceeded []NeverSucceeded `json:"never_succeeded,omitempty"`
}

// NeverSucceeded is an f that was attempted and never succeeded.
type NeverSucceeded struct {
	F        string `json:"f"`
	Attempts int    `json:"attempts"`
	// OutsideFaults counts the attempts that overlapped no fault window.
	OutsideFaults int `json:"outside_faults"`
	// Judged is true when OutsideFaults reached StatsMinJudgedAttempts: the run is invalid.
	Judged bool   `json:"judged"`
	Why    string `json:"why"`
}

// Check implements Checker; it gives the result of Accumulate fed the ops in order.
func (Stats) Check(ctx context.Context, ops []history.Op) Result {
	a := newStatsAcc()
	for i := range ops {
		a.Add(&ops[i])
	}
	return a.Result(ctx)
}

// statsAcc is Stats's one implementation, for Check and Accumulate alike. Besides the counts it
// keeps the nemesis lines (few) and, for each f not yet seen to succeed, its attempts' intervals,
// which are dropped at the f's first ok.
type statsAcc struct {
	d       StatsDetails
	pending map[history.Process]attempt // invoked, not yet completed
	failed  map[string][]attempt        // f → its attempts, while f has no ok
	nemesis []history.Op
	last    int64 // time of the last line
}

// attempt is one client call of f, from its invoke to its completion.
type attempt struct {
	f          string
	start, end int64
}

func newStatsAcc() *statsAcc {
	return &statsAcc{d: StatsDetails{ByF: map[string]FStats{}}, pending: map[history.Process]attempt{}, failed: map[string][]attempt{}}
}

func (a *statsAcc) Add(op *history.Op) {
	a.last = op.Time
	if op.IsNemesis() {
		c := *op
		c.Value = slices.Clone(op.Value)
		a.nemesis = append(a.nemesis, c)
		return
	}
	a.d.add(op)
	switch op.Type {
	case history.Invoke:
		a.pending[op.Process] = attempt{f: op.F, start: op.Time}
	case history.OK:
		delete(a.pending, op.Process)
		delete(a.failed, op.F)
	default:
		at, ok := a.pending[op.Process]
		if !ok {
			return
		}
		delete(a.pending, op.Process)
		if a.d.ByF[at.f].OK == 0 {
			at.end = op.Time
			a.failed[at.f] = append(a.failed[at.f], at)
		}
	}
}

func (d *StatsDetails) add(op *history.Op) {
	s := d.ByF[op.F]
	for _, c := range []*FStats{&s, &d.Total} {
		switch op.Type {
		case history.Invoke:
			c.Invoke++
		case history.OK:
			c.OK++
		case history.Fail:
			c.Fail++
		case history.Info:
			c.Info++
		}
	}
	d.ByF[op.F] = s
}

func (a *statsAcc) Result(context.Context) Result {
	failed := map[string][]attempt{}
	for f, ats := range a.failed {
		failed[f] = slices.Clone(ats)
	}
	for _, at := range a.pending { // never completed: it may have run until the end
		if a.d.ByF[at.f].OK == 0 {
			at.end = a.last
			failed[at.f] = append(failed[at.f], at)
		}
	}
	windows := FaultWindows(append(slices.Clip(a.nemesis), history.Op{Time: a.last}))
	d := a.d
	d.NeverSucceeded = nil
	var judged []string
	for f, s := range d.ByF {
		if s.Invoke == 0 || s.OK > 0 {
			continue
		}
		n := NeverSucceeded{F: f, Attempts: s.Invoke}
		for _, at := range failed[f] {
			if !overlapsAny(at, windows) {
				n.OutsideFaults++
			}
		}
		n.Judged = n.OutsideFaults >= StatsMinJudgedAttempts
		switch {
		case n.Judged:
			n.Why = fmt.Sprintf("%d attempts outside fault windows, none succeeded", n.OutsideFaults)
			judged = append(judged, f)
		case n.OutsideFaults == 0:
			n.Why = "not judged: every attempt overlapped a fault window"
		default:
			n.Why = fmt.Sprintf("not judged: %d attempts outside fault windows, fewer than %d, can be bad luck", n.OutsideFaults, StatsMinJudgedAttempts)
		}
		d.NeverSucceeded = append(d.NeverSucceeded, n)
	}
	sort.Slice(d.NeverSucceeded, func(i, j int) bool { return d.NeverSucceeded[i].F < d.NeverSucceeded[j].F })
	sort.Strings(judged)
	res := Result{Valid: Valid, Details: d}
	if len(judged) > 0 {
		res.Valid = Invalid
		res.Error = fmt.Sprintf("no %s operation ever succeeded", strings.Join(judged, ", no "))
	}
	return res
}

// overlapsAny reports whether the attempt's interval overlaps one of the windows.
func overlapsAny(at attempt, windows []Window) bool {
	for _, w := range windows {
		if w.Start <= at.end && w.End >= at.start {
			return true
		}
	}
	return false
}
