package nemesis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

const relA, relB = "consul@1.15.7", "consul@1.16.3"

func upgradeOptions() Options {
	return Options{Faults: []string{FaultUpgrade}, UpgradeFrom: relA, UpgradeTo: relB, StopTimeout: time.Millisecond, RejoinTimeout: time.Second}
}

func TestUpgradeNeedsTwoReleases(t *testing.T) {
	bad := map[string]Options{
		"needs both releases":    {Faults: []string{FaultUpgrade}, UpgradeFrom: relA},
		"needs two releases":     {Faults: []string{FaultUpgrade}, UpgradeFrom: relA, UpgradeTo: relA},
		"RejoinTimeout must not": {RejoinTimeout: -time.Second},
	}
	for want, o := range bad {
		if _, err := New(o, newFakeCluster(3), history.NewRecorder(&strings.Builder{})); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", o, err, want)
		}
	}
	n := mustNew(t, upgradeOptions(), newFakeCluster(3), history.NewRecorder(&strings.Builder{}))
	if got := n.Releases(); len(got) != 3 || got["n2"] != relA {
		t.Errorf("before any roll every node runs UpgradeFrom: %v", got)
	}
}

// upgradeDetail decodes the detail of an upgrade line with the given event.
func upgradeDetail(t *testing.T, op history.Op, want string) map[string]any {
	t.Helper()
	ev := event(t, op)
	if op.F != FaultUpgrade || ev.Event != want {
		t.Fatalf("want an upgrade %s line, got %s %s", want, op.F, ev.Event)
	}
	d, ok := ev.Detail.(map[string]any)
	if !ok {
		t.Fatalf("detail %T", ev.Detail)
	}
	return d
}

func endDetail(t *testing.T, op history.Op) map[string]any {
	t.Helper()
	return upgradeDetail(t, op, history.EventEnd)
}

func TestUpgradeRollsOneServerAtATime(t *testing.T) {
	for _, tt := range []struct {
		order string
		want  []string // servers in the order they are switched (n1 leads)
	}{
		{UpgradeLeaderLast, []string{"n2", "n3", "n1"}},
		{UpgradeLeaderFirst, []string{"n1", "n2", "n3"}},
	} {
		t.Run(tt.order, func(t *testing.T) {
			c := newFakeCluster(3)
			rec, read := recording(t)
			n := mustNew(t, upgradeOptions(), c, rec)
			var linesAtFirstStop int
			c.onCall = func(call string) {
				if strings.HasSuffix(call, "stop TERM") && linesAtFirstStop == 0 {
					linesAtFirstStop = len(read())
				}
			}
			f, err := n.Start(context.Background(), Step{Fault: FaultUpgrade, Target: tt.order, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			// Each server: stopped, switched, started with its rules, before the next is touched.
			var want []string
			for _, s := range tt.want {
				want = append(want, s+" stop TERM", s+" switch "+relB, s+" start", s+" net heal")
			}
			if got := c.callLog(); !slices.Equal(got, want) {
				t.Fatalf("calls\n%v\nwant\n%v", got, want)
			}
			if linesAtFirstStop != 1 {
				t.Errorf("the start line must be the only line before the first stop; %d lines", linesAtFirstStop)
			}
			if err := f.End(context.Background()); err != nil {
				t.Fatal(err)
			}
			ops := read()
			if len(ops) != 2 {
				t.Fatalf("want a start and an end line: %+v", ops)
			}
			if d := upgradeDetail(t, ops[0], history.EventStart); d["from"] != relA || d["to"] != relB || len(event(t, ops[0]).Targets) != 3 {
				t.Errorf("start line %+v", d)
			}
			d := endDetail(t, ops[1])
			if d["complete"] != true || strings.Join(anyStrings(d["order"]), " ") != strings.Join(tt.want, " ") {
				t.Errorf("end detail %v", d)
			}
			for _, s := range tt.want {
				if d["releases"].(map[string]any)[s] != relB || d["versions"].(map[string]any)[s] != "v-"+relB {
					t.Errorf("%s: end detail %v", s, d)
				}
			}
		})
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestUpgradeScheduleAlternates: Run rolls A→B, then B→A, then A→B again; every roll's end line
// follows its start at once, with no other line between.
func TestUpgradeScheduleAlternates(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	o := upgradeOptions()
	o.Interval = time.Millisecond
	n := mustNew(t, o, c, rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	ends := func() int {
		k := 0
		for _, op := range read() {
			if event(t, op).Event == history.EventEnd {
				k++
			}
		}
		return k
	}
	for deadline := time.Now().Add(10 * time.Second); ends() < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ops := read()
	if len(ops) < 6 {
		t.Fatalf("want three rolls within 10 s: %d lines", len(ops))
	}
	wantTo := []string{relB, relA, relB}
	for i := range 3 {
		start, end := upgradeDetail(t, ops[2*i], history.EventStart), endDetail(t, ops[2*i+1])
		if start["to"] != wantTo[i] {
			t.Errorf("roll %d: start %+v, want to %s", i+1, start, wantTo[i])
		}
		for node, rel := range end["releases"].(map[string]any) {
			if rel != wantTo[i] {
				t.Errorf("roll %d: %s runs %v after it, want %s", i+1, node, rel, wantTo[i])
			}
		}
	}
}

// TestUpgradeStopsBetweenServersWhenTheRunEnds: the server being switched when the run ends is
// finished, the others are left on their release; the next roll finishes the job.
func TestUpgradeStopsBetweenServersWhenTheRunEnds(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, upgradeOptions(), c, rec)
	run, cancel := context.WithCancel(context.Background())
	c.onCall = func(call string) {
		if call == "n2 switch "+relB {
			cancel()
		}
	}
	f, err := n.Start(detached(run), Step{Fault: FaultUpgrade, Target: UpgradeLeaderLast})
	if err != nil {
		t.Fatal(err)
	}
	f.End(context.Background())
	d := endDetail(t, read()[1])
	if d["complete"] != false || d["stopped"] != "the run ended" || !slices.Equal(anyStrings(d["order"]), []string{"n2"}) {
		t.Fatalf("end detail %v", d)
	}
	if running, _, _ := c.node("n2").state(); !running {
		t.Fatal("n2 was left stopped")
	}
	if got := n.Releases(); got["n1"] != relA || got["n2"] != relB || got["n3"] != relA {
		t.Fatalf("releases %v", got)
	}
	// The next roll goes to the same release and switches only the rest.
	c.onCall = nil
	g, err := n.Start(context.Background(), Step{Fault: FaultUpgrade, Target: UpgradeLeaderLast})
	if err != nil {
		t.Fatal(err)
	}
	g.End(context.Background())
	ops := read()
	if d := upgradeDetail(t, ops[2], history.EventStart); d["to"] != relB {
		t.Errorf("second roll goes to %v, want %s", d["to"], relB)
	}
	if d := endDetail(t, ops[3]); d["complete"] != true || !slices.Equal(anyStrings(d["order"]), []string{"n3", "n1"}) {
		t.Errorf("second roll: %v", d)
	}
}

// TestUpgradeGivesUpOnAServerThatDoesNotRejoin: the roll stops at a server that does not come
// back (it is left running), records the error, and touches no other server.
func TestUpgradeGivesUpOnAServerThatDoesNotRejoin(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	o := upgradeOptions()
	o.RejoinTimeout = 20 * time.Millisecond
	n := mustNew(t, o, c, rec)
	c.stuck["n2"] = true
	f, err := n.Start(context.Background(), Step{Fault: FaultUpgrade, Target: UpgradeLeaderLast})
	if err == nil || !strings.Contains(err.Error(), "n2: not rejoined within 20ms") {
		t.Fatalf("Start error %v", err)
	}
	f.End(context.Background())
	ops := read()
	if len(ops) != 3 || event(t, ops[1]).Event != EventError {
		t.Fatalf("want start, error, end: %+v", ops)
	}
	if d := endDetail(t, ops[2]); d["complete"] != false || d["stopped"] != nil {
		t.Errorf("end detail %v", d)
	}
	for _, call := range c.callLog() {
		if !strings.HasPrefix(call, "n2 ") {
			t.Errorf("a roll that failed on n2 touched another server: %s", call)
		}
	}
	if running, _, _ := c.node("n2").state(); !running {
		t.Error("n2 left stopped")
	}
}

// TestUpgradeWaitsForAServerAnotherFaultHolds: a server killed by another fault is switched but
// not started by the roll; the roll goes on once the kill ends and the server rejoins.
func TestUpgradeWaitsForAServerAnotherFaultHolds(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, upgradeOptions(), c, rec)
	ctx := context.Background()
	kill, err := n.Start(ctx, Step{Fault: FaultKill, Target: "one", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	victim := kill.Targets[0]
	rolled := make(chan error, 1)
	go func() {
		f, err := n.Start(ctx, Step{Fault: FaultUpgrade, Target: UpgradeLeaderFirst})
		f.End(ctx)
		rolled <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); !slices.Contains(c.callLog(), victim+" switch "+relB); {
		if time.Now().After(deadline) {
			t.Fatalf("the roll did not reach %s within 10 s: %v", victim, c.callLog())
		}
		time.Sleep(time.Millisecond)
	}
	if running, _, _ := c.node(victim).state(); running {
		t.Fatalf("the roll started %s, which the kill holds down", victim)
	}
	if err := kill.End(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-rolled; err != nil {
		t.Fatal(err)
	}
	for name, rel := range n.Releases() {
		if running, _, _ := c.node(name).state(); !running || rel != relB {
			t.Errorf("%s: running %v, release %s", name, running, rel)
		}
	}
	if d := endDetail(t, read()[len(read())-1]); d["complete"] != true {
		t.Errorf("roll: %v", d)
	}
}
