package checker

import (
	"context"
	"slices"
	"testing"

	"github.com/raftcheck/harness/history"
)

// TestPartitionHealsDeposedOrKept: the liveness details count, for each partition that ends while
// the leader watch runs, whether the leader named before the end stopped naming itself within
// HealWindow, and how long until every node named one leader again.
func TestPartitionHealsDeposedOrKept(t *testing.T) {
	s := func(x float64) int64 { return int64(x * 1e9) }
	steady := map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}
	cut := map[string]string{"n1": "", "n2": "n2", "n3": "n2"} // n1 isolated, n2 leads the majority
	deposed := map[string]string{"n1": "", "n2": "", "n3": ""}
	reelected := map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}
	newLeader := map[string]string{"n1": "n3", "n2": "n3", "n3": "n3"}
	type obs struct {
		at float64
		l  map[string]string
	}
	build := func(after []obs, otherFaultAt float64, workloadEnd float64) []history.Op {
		b := &hb{}
		b.nemesis(s(0), history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload})
		b.nemesis(s(0.1), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: steady})
		b.nemesis(s(1), "partition", history.NemesisEvent{Event: history.EventStart, Targets: []string{"n1"}})
		b.nemesis(s(2), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: cut})
		b.nemesis(s(10), "partition", history.NemesisEvent{Event: history.EventEnd, Targets: []string{"n1"}})
		for _, o := range after {
			if otherFaultAt > 0 && otherFaultAt < o.at {
				b.nemesis(s(otherFaultAt), "kill", history.NemesisEvent{Event: history.EventStart, Targets: []string{"n2"}})
				otherFaultAt = 0
			}
			b.nemesis(s(o.at), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: o.l})
		}
		b.nemesis(s(workloadEnd), history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
		// the final heal's end comes after the watch stopped: not counted
		b.nemesis(s(workloadEnd+0.1), "partition", history.NemesisEvent{Event: history.EventEnd, Detail: map[string]any{"by": "heal"}})
		b.nemesis(s(workloadEnd+1), history.FPhase, history.NemesisEvent{Event: history.PhaseFinalReads})
		return b.ops
	}
	for _, tc := range []struct {
		name       string
		ops        []history.Op
		want       PartitionHeals
		wantNoHeal bool
	}{
		{name: "kept (pre-vote)", ops: build([]obs{{10.3, steady}}, 0, 20),
			want: PartitionHeals{Heals: 1}},
		{name: "deposed, same leader again", ops: build([]obs{{10.2, deposed}, {11.7, reelected}}, 0, 20),
			want: PartitionHeals{Heals: 1, Deposed: 1, BackS: []float64{1.7}}},
		{name: "deposed, another leader", ops: build([]obs{{10.2, deposed}, {12.5, newLeader}}, 0, 20),
			want: PartitionHeals{Heals: 1, Deposed: 1, BackS: []float64{2.5}}},
		{name: "deposed, not back before the watch ended", ops: build([]obs{{10.2, deposed}}, 0, 12),
			want: PartitionHeals{Heals: 1, Deposed: 1, BackS: []float64{-1}}},
		{name: "leader lost after the window: not the heal", ops: build([]obs{{15.5, deposed}, {16, newLeader}}, 0, 20),
			want: PartitionHeals{Heals: 1}},
		{name: "another fault inside the window", ops: build([]obs{{12, deposed}, {13, newLeader}}, 11, 20),
			want: PartitionHeals{Unjudged: 1}},
		{name: "watch ended inside the window", ops: build(nil, 0, 12),
			want: PartitionHeals{Unjudged: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Liveness{}.Check(context.Background(), tc.ops)
			got := r.Details.(LivenessDetails).PartitionHeals
			if got == nil {
				t.Fatalf("no partition_heals in %+v", r.Details)
			}
			if got.Heals != tc.want.Heals || got.Deposed != tc.want.Deposed || got.Unjudged != tc.want.Unjudged ||
				!slices.EqualFunc(got.BackS, tc.want.BackS, func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }) {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
	// The leader stepped down while the rules were being removed, before the end line (written
	// once the partition is surely gone, undo_s after the heal began): the heal still deposed it,
	// and the leader before is the one named before the undo began.
	b := &hb{}
	b.nemesis(0, history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload})
	b.nemesis(s(2), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: cut})
	b.nemesis(s(9.8), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: map[string]string{"n1": "", "n2": "", "n3": "n2"}})
	b.nemesis(s(10), "partition", history.NemesisEvent{Event: history.EventEnd, Targets: []string{"n1"}, Detail: map[string]any{history.DetailUndoSeconds: 0.5}})
	b.nemesis(s(11.5), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: reelected})
	b.nemesis(s(20), history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
	b.nemesis(s(21), history.FPhase, history.NemesisEvent{Event: history.PhaseFinalReads})
	got := (Liveness{}).Check(context.Background(), b.ops).Details.(LivenessDetails).PartitionHeals
	if got == nil || got.Heals != 1 || got.Deposed != 1 || len(got.BackS) != 1 || got.BackS[0] < 1.99 || got.BackS[0] > 2.01 {
		t.Errorf("deposed during the undo: got %+v, want 1 of 1 deposed, back 2.0 s after the undo began", got)
	}

	// No partition ended during the workload: nothing measured.
	b = &hb{}
	b.nemesis(0, history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload})
	b.nemesis(s(1), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: steady})
	b.nemesis(s(5), history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
	b.nemesis(s(6), history.FPhase, history.NemesisEvent{Event: history.PhaseFinalReads})
	if got = (Liveness{}).Check(context.Background(), b.ops).Details.(LivenessDetails).PartitionHeals; got != nil {
		t.Errorf("no partition, got %+v", *got)
	}
}

// TestLeaderlessSpans: the liveness details sum the spans of the workload in which no majority
// named a leader, and give the longest; a span still open at the heal phase ends there.
func TestLeaderlessSpans(t *testing.T) {
	s := func(x float64) int64 { return int64(x * 1e9) }
	led := map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}
	minority := map[string]string{"n1": "", "n2": "n2", "n3": ""} // n2 still names itself, alone
	none := map[string]string{"n1": "", "n2": "", "n3": ""}
	b := &hb{}
	b.nemesis(s(1), history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload})
	for _, o := range []struct {
		at float64
		l  map[string]string
	}{{1, led}, {3, minority}, {4, none}, {5.5, led}, {8, none}, {9, led}, {12, none}} {
		b.nemesis(s(o.at), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: o.l})
	}
	b.nemesis(s(12.5), history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
	b.nemesis(s(13), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: none}) // after the watch: ignored
	b.nemesis(s(14), history.FPhase, history.NemesisEvent{Event: history.PhaseFinalReads})
	got := (Liveness{}).Check(context.Background(), b.ops).Details.(LivenessDetails).Leaderless
	want := Leaderless{TotalS: 2.5 + 1 + 0.5, MaxS: 2.5, MaxFromS: 2}
	if got == nil || *got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := leaderless(b.ops[:1]); got != nil {
		t.Errorf("no watch: got %+v", got)
	}
}
