package harness

import (
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
)

// TestHealDeposesTheLeaderOnlyWithoutPreVote: one 6 s partition isolates the leader and heals
// while the leader watch runs. With pre-vote (the agent's default) the new leader keeps its place;
// with -raft-prevote=false (as Consul 1.20.1's raft v1.5.0) the rejoining server's higher term
// deposes it, and the liveness details say so.
func TestHealDeposesTheLeaderOnlyWithoutPreVote(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		deposed bool
	}{
		{"pre-vote", nil, false},
		{"no pre-vote", []string{"-raft-prevote=false"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := shortRun(t)
			o.Nemesis = []string{"partition"}
			o.PartitionShapes = []string{"isolate-leader"}
			o.NemesisInterval = 6 * time.Second // isolated 6–12 s; the next fault starts at 18 s
			o.TimeLimit = 20 * time.Second
			o.AgentArgs = tc.args
			out := runValidOutcome(t, o)
			d, ok := out.Results.Checkers[checker.NameLiveness].Details.(checker.LivenessDetails)
			if !ok || d.PartitionHeals == nil {
				t.Fatalf("no partition_heals in the liveness details: %#v", out.Results.Checkers[checker.NameLiveness].Details)
			}
			h := *d.PartitionHeals
			if h.Heals < 1 || (h.Deposed > 0) != tc.deposed {
				t.Errorf("%s: partition heals %+v, want the leader deposed: %v (%s)", tc.name, h, tc.deposed, out.Dir)
			}
		})
	}
}
