package results

import (
	"fmt"
	"sort"
	"strings"

	"github.com/raftcheck/harness/history"
)

// timeline is the geometry of an excerpt drawn as one lane per process; the template turns it
// into SVG, escaping every text.
type timeline struct {
	Width, Height int
	AxisY         int // bottom of the tick lines
	Lanes         []lane
	Bars          []bar
	Ticks         []tick
	Faults        []timelineFault
	Marks         []tick // instants drawn as dashed lines, Label as their tooltip (the lock timeline: new leaders)
}

type lane struct {
	Y     int
	Label string
}

type bar struct {
	X, Y, W, H int
	TextX      int
	Class      string // ok, fail, info, pending
	Anomaly    bool
	Label      string // drawn inside the bar (truncated)
	Title      string // tooltip: the whole op
}

type tick struct {
	X     int
	Label string
}

type timelineFault struct {
	X, W  int
	Label string
}

const (
	tlLeft   = 110 // room for lane labels
	tlWidth  = 1000
	tlLane   = 30
	tlTop    = 24
	tlBottom = 26
)

// describe renders an op briefly: "write(3)", "read → 5", "cas(1, 4)", with its outcome.
func describe(o clientOp) string {
	val := func(b []byte) string {
		if len(b) == 0 {
			return "null"
		}
		return string(b)
	}
	var s string
	switch o.F {
	case "read":
		if o.Completed() && o.Type == history.OK {
			s = "read → " + val(o.Value)
		} else {
			s = "read"
		}
	case "cas":
		v := strings.TrimSuffix(strings.TrimPrefix(val(o.Invoke), "["), "]")
		s = "cas(" + strings.ReplaceAll(v, ",", ", ") + ")"
	default:
		s = o.F + "(" + val(o.Invoke) + ")"
	}
	switch {
	case !o.Completed():
		s += " (no completion)"
	case o.Type == history.Fail:
		s += " fail"
	case o.Type == history.Info:
		s += " ?"
	}
	return s
}

// buildTimeline lays out ops (an excerpt) on lanes by process between their earliest call and
// latest return, marks the op with index anomaly, and shades the fault windows in that range.
func buildTimeline(ops []clientOp, anomaly int64, end int64, faults []faultWindow) timeline {
	lo, hi := span(ops, end)
	if hi <= lo {
		hi = lo + 1
	}
	pad := (hi - lo) / 20
	lo, hi = max(lo-pad, 0), hi+pad
	x := func(t int64) int { return tlLeft + int(float64(t-lo)/float64(hi-lo)*float64(tlWidth-tlLeft-10)) }

	var procs []history.Process
	laneOf := make(map[history.Process]int)
	for _, o := range ops {
		if _, ok := laneOf[o.Process]; !ok {
			laneOf[o.Process] = 0
			procs = append(procs, o.Process)
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i] < procs[j] })
	tl := timeline{Width: tlWidth, Height: tlTop + len(procs)*tlLane + tlBottom}
	tl.AxisY = tl.Height - tlBottom + 4
	for i, p := range procs {
		laneOf[p] = i
		tl.Lanes = append(tl.Lanes, lane{Y: tlTop + i*tlLane + tlLane/2 + 4, Label: fmt.Sprintf("process %d", p)})
	}
	for _, f := range faults {
		if f.End < lo || f.Start > hi {
			continue
		}
		x0, x1 := x(max(f.Start, lo)), x(min(f.End, hi))
		tl.Faults = append(tl.Faults, timelineFault{X: x0, W: max(x1-x0, 2), Label: f.F + " " + strings.Join(f.Targets, ",")})
	}
	for _, o := range ops {
		r := o.Return
		class := string(o.Type)
		if !o.Completed() {
			r, class = hi, "pending"
		}
		x0, x1 := x(o.Call), x(r)
		w := max(x1-x0, 3)
		d := describe(o)
		label := d
		if maxChars := w / 7; len([]rune(label)) > maxChars {
			label = ""
			if maxChars > 3 {
				label = string([]rune(d)[:maxChars-1]) + "…"
			}
		}
		title := fmt.Sprintf("%s — process %d, index %d", d, o.Process, o.Index)
		if o.Completed() {
			title += fmt.Sprintf(", %.3f–%.3f s", float64(o.Call)/1e9, float64(o.Return)/1e9)
		} else {
			title += fmt.Sprintf(", invoked %.3f s, never completed", float64(o.Call)/1e9)
		}
		if o.Node != "" {
			title += ", node " + o.Node
		}
		if o.Error != "" {
			title += ", error: " + o.Error
		}
		y := tlTop + laneOf[o.Process]*tlLane + 4
		tl.Bars = append(tl.Bars, bar{X: x0, Y: y, W: w, H: tlLane - 8, TextX: x0 + 3, Class: class,
			Anomaly: o.Index == anomaly || o.Done == anomaly, Label: label, Title: title})
	}
	for i := 0; i < 5; i++ { // the last tick would be cut at the right edge
		t := lo + (hi-lo)*int64(i)/5
		tl.Ticks = append(tl.Ticks, tick{X: x(t), Label: fmt.Sprintf("%.3f s", float64(t)/1e9)})
	}
	return tl
}
