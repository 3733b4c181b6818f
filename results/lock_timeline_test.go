package results

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// lockHist is a lock workload history: s1 holds l0, a partition cuts it off, s2 acquires while
// s1 still believes it holds the lock (1 s of overlap), then s1 notices.
func lockHist() *hist {
	h := &hist{}
	step := func(t0, t1 float64, p history.Process, f, sid string, v map[string]any) {
		if v == nil {
			v = map[string]any{}
		}
		v["session"] = sid
		h.add(t0, p, history.Invoke, f, "l0", map[string]any{"session": sid})
		h.add(t1, p, history.OK, f, "l0", v)
	}
	step(0, 0.01, 0, "session", "s1", map[string]any{"checks": "node", "ttl_ms": 10000, "lock_delay_ms": 3000})
	step(0.1, 0.2, 0, "acquire", "s1", map[string]any{"index": 10, "lock_index": 1})
	h.fault(1, "partition", "start", "n1")
	step(2, 6, 1, "session", "s2", map[string]any{"checks": "none", "ttl_ms": 10000, "lock_delay_ms": 3000})
	step(6.1, 7, 1, "acquire", "s2", map[string]any{"index": 20, "lock_index": 2})
	step(8, 8, 0, "lost", "s1", nil)
	h.fault(8.5, "partition", "end", "n1")
	step(9, 9.1, 1, "release", "s2", nil)
	return h
}

func TestLockTimelines(t *testing.T) {
	h := lockHist()
	views := lockTimelines(h.ops, 10e9, faultWindows(h.ops))
	if len(views) != 1 || views[0].Lock != "l0" || views[0].Holdings != 2 || views[0].Overlaps != 1 {
		t.Fatalf("views %+v, want lock l0 with 2 holdings and 1 overlap", views)
	}
	tl := views[0].TL
	if len(tl.Lanes) != 2 || len(tl.Faults) != 1 || len(tl.Bars) != 3 {
		t.Fatalf("lanes %d faults %d bars %d, want 2, 1, 3", len(tl.Lanes), len(tl.Faults), len(tl.Bars))
	}
	over := tl.Bars[1]
	if over.Class != "info" || !strings.Contains(over.Title, "s2") || over.X <= tl.Bars[0].X {
		t.Errorf("overlap bar %+v", over)
	}
	if len(tl.Marks) != 0 {
		t.Errorf("marks %+v without a leader watch", tl.Marks)
	}
	// With the leader watch: the leader the workload began with is no mark, a new one is.
	w := &hist{}
	w.add(0, history.NemesisProcess, history.Info, history.FPhase, "", history.NemesisEvent{Event: history.PhaseWorkload})
	w.add(0.01, history.NemesisProcess, history.Info, history.FLeader, "", history.NemesisEvent{Event: history.EventObserved, Leaders: map[string]string{"n1": "n1", "n2": "n1"}})
	w.add(5, history.NemesisProcess, history.Info, history.FLeader, "", history.NemesisEvent{Event: history.EventObserved, Leaders: map[string]string{"n1": "", "n2": "n2"}})
	w.ops = append(w.ops, h.ops...)
	if m := lockTimelines(w.ops, 10e9, nil)[0].TL.Marks; len(m) != 1 || !strings.Contains(m[0].Label, "5.000 s") {
		t.Errorf("marks %+v, want one new leader at 5 s", m)
	}
	many := &hist{}
	for p := range history.Process(maxLockLanes + 3) {
		sid := fmt.Sprintf("s%d", p)
		t := float64(p)
		many.add(t, p, history.Invoke, "acquire", "l0", map[string]any{"session": sid})
		many.add(t+0.1, p, history.OK, "acquire", "l0", map[string]any{"session": sid, "index": 10 + p})
		many.add(t+0.5, p, history.Invoke, "release", "l0", map[string]any{"session": sid})
		many.add(t+0.6, p, history.OK, "release", "l0", map[string]any{"session": sid})
	}
	if v := lockTimelines(many.ops, 100e9, nil); len(v[0].TL.Lanes) != maxLockLanes || v[0].Omitted != 3 {
		t.Errorf("lanes %d, omitted %d; want %d and 3", len(v[0].TL.Lanes), v[0].Omitted, maxLockLanes)
	}
	reg := &hist{}
	reg.add(0, 0, history.Invoke, "write", "r0", 1)
	reg.add(0.1, 0, history.OK, "write", "r0", 1)
	if v := lockTimelines(reg.ops, 1e9, nil); len(v) != 0 {
		t.Errorf("register history drew lock timelines: %+v", v)
	}
}

func TestReportShowsLockHolders(t *testing.T) {
	dir := t.TempDir()
	lockHist().write(t, filepath.Join(dir, HistoryFile))
	if err := WriteJSON(filepath.Join(dir, ResultsFile), Results{Valid: checker.Valid, Checkers: map[string]checker.Result{}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{`id="locks"`, "lock <code>l0</code>: 2 holdings, 1 overlapping beliefs", `aria-label="holders of lock l0"`, "partition n1", "process 1"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
