package nemesis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec string
		want Spec
		err  string
	}{
		{"partition,kill", Spec{Faults: []string{"partition", "kill"}}, ""},
		{"kill+partition", Spec{Faults: []string{"partition", "kill"}, Together: true}, ""},
		{"all", Spec{Faults: Faults, Together: true}, ""},
		{"power", Spec{Faults: []string{"power"}}, ""},
		{"kill+kill", Spec{Faults: []string{"kill"}}, ""}, // one kind: nothing to overlap
		{"none", Spec{}, ""},
		{"partition+kill,pause", Spec{}, "mixes"},
		{"partition+clock", Spec{}, `unknown nemesis "clock"`},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSpec(%q) error %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.Faults, tt.want.Faults) || got.Together != tt.want.Together {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	if s := (Spec{Faults: []string{"partition", "kill"}, Together: true}).String(); s != "partition+kill" {
		t.Errorf("String() = %q", s)
	}
}

func TestPowerKillsThenLosesUnsyncedAndStartsAtTheEnd(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	f, err := n.Start(ctx, Step{FaultPower, "all", 7})
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(c.callLog(), "; ")
	for _, name := range []string{"n1", "n2", "n3"} {
		k, l := strings.Index(calls, name+" kill"), strings.Index(calls, name+" lose-unsynced")
		if k < 0 || l < k {
			t.Fatalf("%s: want kill, then lose-unsynced: %s", name, calls)
		}
		if running, _, _ := c.node(name).state(); running {
			t.Fatalf("%s runs during the power loss", name)
		}
	}
	if err := f.End(ctx); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.nodes {
		if running, _, _ := node.state(); !running {
			t.Errorf("%s not started at the end", node.name)
		}
	}
	ops := read()
	end := event(t, ops[len(ops)-1])
	lost, _ := end.Detail.(map[string]any)["lost"].(map[string]any)
	if end.Event != history.EventEnd || len(lost) != 3 || strings.Contains(strings.Join(c.callLog(), ";"), "while running") {
		t.Fatalf("end line should say what each node lost: %+v", end)
	}
}

// Overlapping faults that stop the same node: it starts only when the last of them ends, and a
// paused node that a kill thawed is not unpaused again.
func TestOverlappingFaultsHoldANodeUntilTheLastEnds(t *testing.T) {
	c := newFakeCluster(3)
	c.leader = "n2"
	rec, _ := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	pause, _ := n.Start(ctx, Step{FaultPause, "leader", 1})
	kill, _ := n.Start(ctx, Step{FaultKill, "leader", 2})
	power, _ := n.Start(ctx, Step{FaultPower, "all", 3})
	if err := kill.End(ctx); err != nil {
		t.Fatal(err)
	}
	if running, _, _ := c.node("n2").state(); running {
		t.Fatal("n2 started while the power loss still holds it down")
	}
	if err := pause.End(ctx); err != nil {
		t.Fatalf("end of the pause of a node a kill thawed: %v", err)
	}
	if err := power.End(ctx); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.nodes {
		if running, paused, _ := node.state(); !running || paused {
			t.Errorf("%s: running %v paused %v after every fault ended", node.name, running, paused)
		}
	}
	if err := n.HealAll(ctx); err != nil {
		t.Fatal(err)
	}
}

// With Together every kind runs on its own schedule: faults of different kinds are active at
// the same time, and the schedule still replays from the seed.
func TestTogetherOverlapsFaults(t *testing.T) {
	run := func() []history.Op {
		c := newFakeCluster(3)
		rec, read := recording(t)
		n := mustNew(t, Options{Faults: []string{FaultPartition, FaultKill}, Together: true, Interval: 20 * time.Millisecond, Seed: 9}, c, rec)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := n.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if err := n.HealAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		return read()
	}
	ops := run()
	active, most := map[string]int{}, 0
	var starts []string
	for _, op := range ops {
		if op.F == history.FHeal {
			break
		}
		switch ev := event(t, op); ev.Event {
		case history.EventStart:
			active[op.F]++
			starts = append(starts, op.F+" "+strings.Join(ev.Targets, ","))
		case history.EventEnd:
			active[op.F]--
		}
		most = max(most, active[FaultPartition]+active[FaultKill])
		if active[FaultPartition] > 1 || active[FaultKill] > 1 {
			t.Fatalf("two faults of one kind at once: %v", active)
		}
	}
	if most < 2 {
		t.Fatalf("partition and kill never overlapped: %v", starts)
	}
	// Each kind's own choices replay (the interleaving of the two depends on timing).
	var again []string
	for _, op := range run() {
		if ev := event(t, op); ev.Event == history.EventStart && op.F != history.FHeal {
			again = append(again, op.F+" "+strings.Join(ev.Targets, ","))
		}
	}
	kindSeq := func(s []string, kind string) []string {
		return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return !strings.HasPrefix(x, kind+" ") })
	}
	for _, k := range []string{FaultPartition, FaultKill} {
		a, b := kindSeq(starts, k), kindSeq(again, k)
		m := min(len(a), len(b))
		if m < 2 || !slices.Equal(a[:m], b[:m]) {
			t.Errorf("%s: same seed, different choices: %v vs %v", k, a, b)
		}
	}
}
