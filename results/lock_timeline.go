package results

import (
	"fmt"
	"slices"
	"strings"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// lockTimelineView is one lock's holders over the whole run, for the lock workload's report
// section: a lane per process that held the lock, a bar per holding from its acquisition to the
// moment its holder stopped believing it held the lock (noticed the loss or began to release),
// the part of that belief that overlapped a later holder's marked, the fault windows shaded and
// every new leadership term the harness's leader watch saw drawn as a dashed line.
type lockTimelineView struct {
	Lock     string
	Holdings int
	Overlaps int
	Omitted  int // holdings of processes beyond maxLockLanes, not drawn
	TL       timeline
}

// maxLockLanes bounds a lock's timeline: later processes are left out, and the page says how many holdings.
const maxLockLanes = 40

// lockTimelines draws every lock of a lock workload history; nil for other workloads.
func lockTimelines(ops []history.Op, end int64, faults []faultWindow) []lockTimelineView {
	a := checker.AnalyzeLocks(ops)
	locks := make([]string, 0, len(a.Holdings))
	for l := range a.Holdings {
		locks = append(locks, l)
	}
	slices.Sort(locks)
	var out []lockTimelineView
	for _, l := range locks {
		out = append(out, lockTimeline(l, a.Holdings[l], end, faults, a.NewLeaders))
	}
	return out
}

func lockTimeline(l string, hs []*checker.LockHolding, end int64, faults []faultWindow, newTerms []int64) lockTimelineView {
	v := lockTimelineView{Lock: l, Holdings: len(hs)}
	lo, hi := int64(0), max(end, 1)
	x := func(t int64) int {
		return tlLeft + int(float64(min(max(t, lo), hi)-lo)/float64(hi-lo)*float64(tlWidth-tlLeft-10))
	}
	var procs []history.Process
	for _, h := range hs {
		if !slices.Contains(procs, h.Process) {
			procs = append(procs, h.Process)
		}
	}
	slices.Sort(procs)
	if len(procs) > maxLockLanes {
		procs = procs[:maxLockLanes]
	}
	tl := timeline{Width: tlWidth, Height: tlTop + len(procs)*tlLane + tlBottom}
	tl.AxisY = tl.Height - tlBottom + 4
	for i, p := range procs {
		tl.Lanes = append(tl.Lanes, lane{Y: tlTop + i*tlLane + tlLane/2 + 4, Label: fmt.Sprintf("process %d", p)})
	}
	for _, f := range faults {
		x0, x1 := x(f.Start), x(f.End)
		tl.Faults = append(tl.Faults, timelineFault{X: x0, W: max(x1-x0, 2), Label: f.F + " " + strings.Join(f.Targets, ",")})
	}
	secs := func(t int64) string { return fmt.Sprintf("%.3f s", float64(t)/1e9) }
	for i, h := range hs {
		lane := slices.Index(procs, h.Process)
		if lane < 0 {
			v.Omitted++
			continue
		}
		y := tlTop + lane*tlLane + 4
		believe := h.BelieveEnd(end)
		x0, x1 := x(h.AcquireOK), x(believe)
		title := fmt.Sprintf("session %s (%s checks), process %d: acquired %s (index %d, LockIndex %d), believed held until %s",
			h.Session, h.Checks, h.Process, secs(h.AcquireOK), h.Index, h.LockIndex, secs(believe))
		if h.Lost >= 0 {
			title += ", loss noticed " + secs(h.Lost)
		}
		if h.Release >= 0 {
			title += ", release invoked " + secs(h.Release)
		}
		ok := 0
		for _, w := range h.Writes {
			if w.Type == history.OK {
				ok++
			}
		}
		title += fmt.Sprintf(", %d of %d fenced writes committed", ok, len(h.Writes))
		tl.Bars = append(tl.Bars, bar{X: x0, Y: y, W: max(x1-x0, 2), H: tlLane - 8, Class: "ok", Title: title})
		// The part of this belief that a later holder's acquisition overlapped.
		for _, o := range hs[i+1:] {
			if o.AcquireOK >= believe {
				continue
			}
			ox0, ox1 := x(o.AcquireOK), x(min(believe, o.BelieveEnd(end)))
			v.Overlaps++
			tl.Bars = append(tl.Bars, bar{X: ox0, Y: y, W: max(ox1-ox0, 2), H: tlLane - 8, Class: "info", Anomaly: true,
				Title: fmt.Sprintf("overlap: session %s (process %d) acquired at %s while session %s still believed it held the lock", o.Session, o.Process, secs(o.AcquireOK), h.Session)})
		}
	}
	for i := 0; i < 5; i++ {
		t := lo + (hi-lo)*int64(i)/5
		tl.Ticks = append(tl.Ticks, tick{X: x(t), Label: fmt.Sprintf("%.1f s", float64(t)/1e9)})
	}
	for _, t := range newTerms {
		tl.Marks = append(tl.Marks, tick{X: x(t), Label: fmt.Sprintf("a new leadership term first seen at %.3f s (sessions' TTL timers re-armed)", float64(t)/1e9)})
	}
	v.TL = tl
	return v
}
