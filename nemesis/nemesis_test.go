package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		want []string
		err  string
	}{
		{"partition,kill", []string{"partition", "kill"}, ""},
		{" kill , partition,kill", []string{"partition", "kill"}, ""},
		{"all", Faults, ""},
		{"all,kill", Faults, ""},
		{"none", nil, ""},
		{"", nil, ""},
		{"partition,clock", nil, `unknown nemesis "clock" (valid: partition, kill, pause, restart, membership, loss, power, upgrade, all, none)`},
		{"upgrade,kill", []string{"kill", "upgrade"}, ""},
		{"all,upgrade", append(slices.Clone(Faults), FaultUpgrade), ""},
		{"none,kill", nil, "combines none"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.spec, got, err, tt.want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := map[string]Options{
		"RestartSignal": {RestartSignal: "HUP"},
		"Shapes":        {Shapes: []string{"star"}},
		"Faults":        {Faults: []string{"clock"}},
		"LossMin":       {LossMin: 50, LossMax: 10},
	}
	for field, o := range bad {
		if _, err := New(o, newFakeCluster(3), history.NewRecorder(&strings.Builder{})); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: error %v should name it", field, err)
		}
	}
	if _, err := New(Options{Faults: []string{FaultPartition}}, newFakeCluster(1), history.NewRecorder(&strings.Builder{})); err == nil {
		t.Error("partition on one node should be refused")
	}
	n, err := New(Options{RestartSignal: "sigint"}, newFakeCluster(3), history.NewRecorder(&strings.Builder{}))
	if err != nil || n.Options().RestartSignal != "INT" || n.Options().Interval != 10*time.Second {
		t.Fatalf("defaults: %+v, %v", n.Options(), err)
	}
}

// mustNew is New that fails the test on an error.
func mustNew(t *testing.T, o Options, c Cluster, rec *history.Recorder) *Nemesis {
	t.Helper()
	n, err := New(o, c, rec)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return n
}

// stripped is a nemesis line without its index and time, for comparing schedules.
type stripped struct {
	F     string
	Value string
}

func runSchedule(t *testing.T, seed int64, steps int) ([]stripped, *Nemesis) {
	t.Helper()
	c := newFakeCluster(5)
	rec, read := recording(t)
	n, err := New(Options{Faults: Faults, Interval: time.Millisecond, Seed: seed, StopTimeout: time.Millisecond}, c, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	starts := 0
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	// With a 1 ms interval the steps take milliseconds; the deadline only bounds a hung Run.
	deadline := time.Now().Add(10 * time.Second)
	for starts < steps && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		starts = 0
		for _, op := range read() {
			if event(t, op).Event == history.EventStart {
				starts++
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if starts < steps {
		t.Fatalf("seed %d: only %d of %d fault starts recorded within 10s", seed, starts, steps)
	}
	if err := n.HealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []stripped
	for _, op := range read() {
		out = append(out, stripped{op.F, string(op.Value)})
	}
	return out, n
}

func TestScheduleIsDeterministic(t *testing.T) {
	const steps = 12
	a, na := runSchedule(t, 42, steps)
	b, _ := runSchedule(t, 42, steps)
	c, _ := runSchedule(t, 43, steps)
	// Compare the first steps start events: what was chosen. (Whether the last fault's end was
	// written by Run or by HealAll depends on when the run was cancelled.)
	prefix := func(s []stripped) []stripped {
		var starts []stripped
		for _, e := range s {
			if strings.Contains(e.Value, `"event":"start"`) && e.F != history.FHeal && len(starts) < steps {
				starts = append(starts, e)
			}
		}
		return starts
	}
	pa, pb, pc := prefix(a), prefix(b), prefix(c)
	if !slices.Equal(pa, pb) {
		t.Fatalf("same seed, different schedules:\n%v\n%v", pa, pb)
	}
	if slices.Equal(pa, pc) {
		t.Fatalf("seeds 42 and 43 gave the same schedule")
	}
	// The plan announces the steps that ran.
	plan := na.Plan(steps)
	i := 0
	kinds := map[string]bool{}
	for _, e := range pa {
		var ev history.NemesisEvent
		if err := json.Unmarshal([]byte(e.Value), &ev); err != nil {
			t.Fatalf("nemesis value %s: %v", e.Value, err)
		}
		if ev.Event != history.EventStart || e.F == history.FHeal {
			continue
		}
		d := ev.Detail.(map[string]any)
		if e.F != plan[i].Fault || d["target"] != plan[i].Target || uint64(d["seed"].(float64)) != plan[i].Seed {
			t.Fatalf("step %d ran %s %v, plan says %v", i, e.F, d, plan[i])
		}
		kinds[e.F] = true
		i++
	}
	if len(kinds) < 3 {
		t.Errorf("only %v in %d steps", kinds, steps)
	}
}

func TestStartRecordsBeforeApplying(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, Options{}, c, rec)
	var before []history.Op
	c.onCall = func(call string) {
		if strings.HasSuffix(call, "kill") {
			before = read()
		}
	}
	c.fail["n1 kill"] = errBoom
	f, err := n.Start(context.Background(), Step{Fault: FaultKill, Target: "leader", Seed: 1})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Start error %v", err)
	}
	if len(before) != 1 || event(t, before[0]).Event != history.EventStart || before[0].F != FaultKill {
		t.Fatalf("history when kill ran: %+v", before)
	}
	ops := read()
	if ev := event(t, ops[1]); len(ops) != 2 || ev.Event != EventError || !strings.Contains(ev.Error, "n1: boom") {
		t.Fatalf("no error event after the failed kill: %+v", ops)
	}
	if ev := event(t, ops[0]); !slices.Equal(ev.Targets, []string{"n1"}) {
		t.Fatalf("kill leader targeted %v", ev.Targets)
	}
	if err := f.End(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ops := read(); len(ops) != 3 || event(t, ops[2]).Event != history.EventEnd {
		t.Fatalf("end not recorded: %+v", ops)
	}
	if got := c.callLog(); !slices.Contains(got, "n1 start") {
		t.Fatalf("End did not start the node: %v", got)
	}
}

func TestPartitionRules(t *testing.T) {
	c := newFakeCluster(3)
	rec, _ := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	f, err := n.Start(ctx, Step{Fault: FaultPartition, Target: ShapeIsolateLeader})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"n1": "set --drop-in 10.0.0.2,10.0.0.3 --drop-out 10.0.0.2,10.0.0.3",
		"n2": "set --drop-in 10.0.0.1 --drop-out 10.0.0.1",
		"n3": "set --drop-in 10.0.0.1 --drop-out 10.0.0.1",
	}
	for name, w := range want {
		if _, _, net := c.node(name).state(); strings.Join(net, " ") != w {
			t.Errorf("%s rules %q, want %q", name, net, w)
		}
	}
	// A node that restarts during the partition gets its rules back.
	k, err := n.Start(ctx, Step{Fault: FaultKill, Target: "one", Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	victim := k.Targets[0]
	if running, _, _ := c.node(victim).state(); running {
		t.Fatal("victim still running")
	}
	if err := k.End(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, net := c.node(victim).state(); strings.Join(net, " ") != want[victim] {
		t.Fatalf("restarted %s has rules %q, want %q", victim, net, want[victim])
	}
	// Loss on top of the partition joins the same rule set.
	l, err := n.Start(ctx, Step{Fault: FaultLoss, Target: "all", Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	pct := l.Detail["percent"].(int)
	if pct < 20 || pct > 40 {
		t.Fatalf("loss %d%%", pct)
	}
	_, _, net := c.node("n2").state()
	if got := strings.Join(net, " "); !strings.HasPrefix(got, want["n2"]+" --loss ") || !strings.HasSuffix(got, "--loss-peers 10.0.0.1,10.0.0.3") {
		t.Fatalf("n2 rules with loss %q", got)
	}
	if err := l.End(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.End(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		if _, _, net := c.node(name).state(); strings.Join(net, " ") != "heal" {
			t.Errorf("%s rules after end %q", name, net)
		}
	}
	if err := n.ReapplyNet(ctx, "n9"); err == nil {
		t.Error("ReapplyNet of an unknown node succeeded")
	}
}

func TestRestartUsesSignal(t *testing.T) {
	c := newFakeCluster(3)
	rec, _ := recording(t)
	n := mustNew(t, Options{RestartSignal: "INT"}, c, rec)
	f, err := n.Start(context.Background(), Step{Fault: FaultRestart, Target: "all"})
	if err != nil {
		t.Fatal(err)
	}
	log := c.callLog()
	slices.Sort(log)
	if !slices.Equal(log, []string{"n1 stop INT", "n2 stop INT", "n3 stop INT"}) {
		t.Fatalf("calls %v", log)
	}
	if err := f.End(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.nodes {
		if running, _, _ := node.state(); !running {
			t.Errorf("%s not started again", node.name)
		}
	}
}

func TestHealAllReversesEverything(t *testing.T) {
	c := newFakeCluster(5)
	rec, read := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	steps := []Step{
		{FaultPartition, ShapeMajoritiesRing, 1},
		{FaultLoss, "all", 2},
		{FaultPause, "leader", 3},
		{FaultKill, "minority", 4},
		{FaultMembership, "follower", 5},
	}
	var faults []*Fault
	for _, s := range steps {
		f, err := n.Start(ctx, s)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		faults = append(faults, f)
	}
	if len(c.removed) != 1 {
		t.Fatalf("removed %v", c.removed)
	}
	if err := n.HealAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.nodes {
		running, paused, net := node.state()
		if !running || paused || strings.Join(net, " ") != "heal" {
			t.Errorf("%s after heal: running %v paused %v net %q", node.name, running, paused, net)
		}
	}
	if len(c.removed) != 0 {
		t.Errorf("still removed: %v", c.removed)
	}
	// History: heal start, the end of every fault in start order, heal end.
	ops := read()
	tail := ops[len(ops)-len(steps)-2:]
	if tail[0].F != history.FHeal || event(t, tail[0]).Event != history.EventStart {
		t.Fatalf("no heal start: %+v", tail[0])
	}
	for i, s := range steps {
		if op := tail[i+1]; op.F != s.Fault || event(t, op).Event != history.EventEnd {
			t.Fatalf("expected end of %s, got %+v", s.Fault, op)
		}
	}
	if last := tail[len(tail)-1]; last.F != history.FHeal || event(t, last).Event != history.EventEnd || event(t, last).Error != "" {
		t.Fatalf("bad heal end: %+v", last)
	}
	// Ending a fault after the heal records nothing more.
	before := len(read())
	for _, f := range faults {
		if err := f.End(ctx); err != nil {
			t.Fatalf("End of %s after HealAll: %v", f.Step.Fault, err)
		}
	}
	if len(read()) != before {
		t.Fatal("End after HealAll recorded events")
	}
}

func TestHealAllReportsFailures(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	if _, err := n.Start(ctx, Step{Fault: FaultPause, Target: "one", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.nodes {
		c.fail[node.name+" unpause"] = errBoom
	}
	err := n.HealAll(ctx)
	if err == nil || !strings.Contains(err.Error(), "unpause") {
		t.Fatalf("HealAll error %v", err)
	}
	ops := read()
	if ev := event(t, ops[len(ops)-1]); !strings.Contains(ev.Error, "boom") {
		t.Fatalf("heal end without the error: %+v", ev)
	}
	// The paused node is still known, so a second heal can try again.
	clear(c.fail)
	if err := n.HealAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.nodes {
		if _, paused, _ := node.state(); paused {
			t.Errorf("%s still paused", node.name)
		}
	}
}

func TestMembershipReplaceWipesAFollowerAndStartsItFresh(t *testing.T) {
	c := newFakeCluster(3)
	rec, _ := recording(t)
	n := mustNew(t, Options{}, c, rec)
	f, err := n.Start(context.Background(), Step{Fault: FaultMembership, Target: "replace-follower", Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Targets) != 1 || f.Targets[0] == "n1" {
		t.Fatalf("replace targeted %v (n1 is the leader)", f.Targets)
	}
	target := f.Targets[0]
	var mine []string
	for _, call := range c.callLog() {
		if strings.HasPrefix(call, target+" ") {
			mine = append(mine, strings.TrimPrefix(call, target+" "))
		}
	}
	if len(mine) < 4 || mine[0] != "kill" || mine[1] != "wipe" || mine[2] != "start" || !strings.HasPrefix(mine[3], "net") {
		t.Fatalf("replace of %s called %v, want kill, wipe, start, net …", target, mine)
	}
	if err := f.End(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.HealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMembershipLeaveAsksTheFollowerToLeaveAndStartsItAtTheEnd(t *testing.T) {
	c := newFakeCluster(3)
	rec, _ := recording(t)
	n, err := New(Options{}, c, rec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := n.Start(context.Background(), Step{Fault: FaultMembership, Target: "leave-follower", Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Targets) != 1 || f.Targets[0] == "n1" || f.Detail["action"] != "leave" {
		t.Fatalf("leave targeted %v (n1 is the leader), detail %v", f.Targets, f.Detail)
	}
	target := f.Targets[0]
	if err := f.End(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, call := range c.callLog() {
		if strings.HasPrefix(call, target+" ") {
			mine = append(mine, strings.TrimPrefix(call, target+" "))
		}
	}
	if len(mine) < 3 || mine[0] != "leave" || !strings.HasPrefix(mine[1], "stop") || mine[2] != "start" {
		t.Fatalf("leave of %s called %v, want leave, stop, start …", target, mine)
	}
}

func TestHealAllStartsANodeThatExitedUnasked(t *testing.T) {
	c := newFakeCluster(3)
	rec, _ := recording(t)
	n, err := New(Options{}, c, rec)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[1].running = false // crashed, or shut down after leaving: no fault stopped it
	if err := n.HealAll(context.Background()); err != nil {
		t.Fatalf("heal of a cluster with a crashed node: %v", err)
	}
	if running, _, _ := c.nodes[1].state(); !running {
		t.Error("the exited node was not started")
	}
}

// TestFailedPauseLeavesNothingToUnpause: a freeze the engine refuses (runc "unable to freeze" on
// a loaded machine: the container keeps running) is the fault's error line; neither its end nor
// the heal then tries to unpause the node, which the engine would refuse ("is not paused") and
// which made a soak's run a harness error.
func TestFailedPauseLeavesNothingToUnpause(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	c.fail["n1 pause"] = errBoom
	c.fail["n1 unpause"] = errors.New("Container n1 is not paused")
	f, err := n.Start(ctx, Step{Fault: FaultPause, Target: "leader", Seed: 1})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Start error %v, want the failed freeze", err)
	}
	if err := f.End(ctx); err != nil {
		t.Errorf("the end of a pause that never froze: %v", err)
	}
	if err := n.HealAll(ctx); err != nil {
		t.Errorf("heal after a pause that never froze: %v", err)
	}
	if slices.Contains(c.callLog(), "n1 unpause") {
		t.Errorf("unpaused a node that was never paused: %v", c.callLog())
	}
	var errorLine bool
	for _, op := range read() {
		errorLine = errorLine || event(t, op).Event == EventError
	}
	if !errorLine {
		t.Error("the failed freeze left no error line")
	}
}

// TestHealExcusesANodeThatDiesAfterStart: a node the heal starts whose process exits at once by
// itself (Consul refusing its own data dir after a power loss) is the system's failure, for the
// checkers: the heal succeeds and names it in its end line, instead of failing the run as a
// harness error because the node's network rules could not be set.
func TestHealExcusesANodeThatDiesAfterStart(t *testing.T) {
	c := newFakeCluster(3)
	rec, read := recording(t)
	n := mustNew(t, Options{}, c, rec)
	ctx := context.Background()
	if _, err := n.Start(ctx, Step{Fault: FaultKill, Target: "leader", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.dieOnStart = map[string]bool{"n1": true}
	c.fail["n1 net on a stopped node"] = errors.New("cannot join network of a non running container")
	c.mu.Unlock()
	if err := n.HealAll(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if !slices.Contains(c.callLog(), "n1 start") {
		t.Fatalf("n1 was not started: %v", c.callLog())
	}
	ops := read()
	end := event(t, ops[len(ops)-1])
	if ops[len(ops)-1].F != history.FHeal || end.Event != history.EventEnd || end.Error != "" {
		t.Fatalf("last line %+v, want a heal end without error", end)
	}
	if got := fmt.Sprint(end.Detail.(map[string]any)["exited_after_start"]); got != "[n1]" {
		t.Errorf("heal end names %s as exited after start, want [n1]", got)
	}
	// A node that is running and still refuses its rules is the heal's failure.
	c2 := newFakeCluster(3)
	n2 := mustNew(t, Options{}, c2, rec)
	c2.fail["n2 net"] = errBoom
	if err := n2.HealAll(ctx); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("heal of a running node that refused its rules: %v, want the error", err)
	}
}
