package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

func TestProgressCountsOutcomesAndActiveFaults(t *testing.T) {
	p := newProgress()
	var buf strings.Builder
	rec := history.NewRecorder(&buf)
	rec.Watch(p.observe)
	inv := rec.Invoke(0, "read", "r0", nil)
	rec.Complete(inv, history.OK, history.MustValue(1), "n1", "")
	inv = rec.Invoke(1, "write", "r0", history.MustValue(2))
	rec.Complete(inv, history.Info, nil, "n1", "timeout")
	rec.Nemesis("partition", history.NemesisEvent{Event: history.EventStart})
	rec.Nemesis("kill", history.NemesisEvent{Event: history.EventStart})
	rec.Nemesis("kill", history.NemesisEvent{Event: history.EventEnd})
	rec.Nemesis(history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
	counts, faults := p.snapshot()
	if counts[history.OK] != 1 || counts[history.Info] != 1 || counts[history.Invoke] != 0 {
		t.Fatalf("counts %v", counts)
	}
	if len(faults) != 1 || faults[0] != "partition" {
		t.Fatalf("active faults %v, want [partition]", faults)
	}
	line := progressLine(3*time.Second, 10*time.Second, counts, map[history.Type]int64{}, time.Second, faults)
	for _, want := range []string{"3s of 10s", "ok     1/s", "info    1/s", "faults: partition"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
}
