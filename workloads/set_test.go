package workloads

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

func TestSetAddsAndFinalReads(t *testing.T) {
	fake := newFakeConsul()
	rec, read := recording(t)
	eps := fake.endpoints(t, 3)
	cfg := Config{Endpoints: eps, Concurrency: 3, Recorder: rec, KeyPrefix: "t/"}
	s := &Set{}
	runFor(t, s, cfg, 150*time.Millisecond)
	if err := s.Final(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ops := read()
	checkWellFormed(t, ops)
	var added []int64
	seen := map[int64]bool{}
	finals := map[string]bool{}
	for _, op := range ops {
		switch {
		case op.F == "add" && op.Type == history.Invoke:
			v, _, _ := op.Int()
			if seen[v] {
				t.Fatalf("element %d added twice", v)
			}
			seen[v] = true
		case op.F == "add" && op.Type == history.OK:
			v, _, _ := op.Int()
			added = append(added, v)
			if got, ok := fake.value("t/set/" + string(op.Value)); !ok || got != string(op.Value) {
				t.Fatalf("element %d stored as %q", v, got)
			}
		case op.F == "read" && op.Type == history.OK:
			finals[op.Node] = true
			got, err := op.Ints()
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(added)
			if !slices.Equal(got, added) {
				t.Fatalf("final read on %s has %d elements, %d were added", op.Node, len(got), len(added))
			}
		}
	}
	if len(added) == 0 || len(finals) != len(eps) {
		t.Fatalf("%d adds, final reads ok on %v", len(added), finals)
	}
}
