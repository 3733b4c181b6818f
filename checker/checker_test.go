package checker

import (
	"context"
	"encoding/json"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

func TestMerge(t *testing.T) {
	r := func(vs ...Validity) map[string]Result {
		m := map[string]Result{}
		for i, v := range vs {
			m[string(rune('a'+i))] = Result{Valid: v}
		}
		return m
	}
	cases := []struct {
		in   map[string]Result
		want Validity
	}{
		{r(), Unknown},
		{r(Valid), Valid},
		{r(Valid, Valid), Valid},
		{r(Valid, Unknown), Unknown},
		{r(Unknown, Invalid, Valid), Invalid},
		{r(Invalid), Invalid},
		{r(Unknown), Unknown},
	}
	for _, c := range cases {
		if got := Merge(c.in); got != c.want {
			t.Errorf("Merge(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestValidityJSON(t *testing.T) {
	for v, s := range map[Validity]string{Valid: "true", Invalid: "false", Unknown: `"unknown"`} {
		b, err := json.Marshal(Result{Valid: v})
		if err != nil || string(b) != `{"valid":`+s+`}` {
			t.Errorf("marshal %v: %s %v", v, b, err)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil || back.Valid != v {
			t.Errorf("unmarshal %s: %v %v", b, back.Valid, err)
		}
	}
	var v Validity
	if err := json.Unmarshal([]byte(`"maybe"`), &v); err == nil {
		t.Error("accepted \"maybe\"")
	}
}

type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) Check(context.Context, []history.Op) Result {
	var m map[string]int
	m["x"]++
	return Result{Valid: Valid}
}

func TestRunAll(t *testing.T) {
	h := new(hb).inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1)
	res := RunAll(context.Background(), []Checker{panicky{}, Register{}, Stats{}}, h.ops)
	if len(res) != 3 {
		t.Fatalf("results %v", res)
	}
	if p := res["panicky"]; p.Valid != Unknown || !strings.Contains(p.Error, "assignment to entry in nil map") {
		t.Fatalf("panic result %+v", p)
	}
	if res[NameLinearizable].Valid != Valid || res[NameStats].Valid != Valid {
		t.Fatalf("results %+v", res)
	}
	if Merge(res) != Unknown {
		t.Fatalf("merge %v", Merge(res))
	}
}

func TestStats(t *testing.T) {
	good := new(hb).
		inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
		inv(3, 0, "read", "k", nil).fail(4, 0, "read", "k", nil).
		inv(5, 0, "read", "k", nil).ok(6, 0, "read", "k", 1).
		nemesis(7, "kill", history.NemesisEvent{Event: "start"})
	res := Stats{}.Check(context.Background(), good.ops)
	if res.Valid != Valid {
		t.Fatalf("got %v %s", res.Valid, res.Error)
	}
	d := res.Details.(StatsDetails)
	if d.ByF["read"] != (FStats{Invoke: 2, OK: 1, Fail: 1}) || d.Total.Invoke != 3 || len(d.ByF) != 2 || d.NeverSucceeded != nil {
		t.Fatalf("details %+v", d)
	}
}

// failing appends n attempts of f by process p, each taking 10 time units from t, completed by
// done (a fail or an info); writes that succeed keep the rest of the workload healthy.
func (h *hb) failing(t int64, p history.Process, f string, n int, done func(h *hb, t int64, p history.Process, f, key string, v any) *hb) *hb {
	for i := range int64(n) {
		h.inv(t+20*i, p, "write", "k", 1).ok(t+20*i+1, p, "write", "k", 1)
		h.inv(t+20*i+5, p, f, "k", nil)
		done(h, t+20*i+15, p, f, "k", nil)
	}
	return h
}

// TestStatsNeverSucceeded: an f that never succeeded makes the run invalid only when at least
// StatsMinJudgedAttempts of its attempts ran outside every fault window; otherwise it is reported.
func TestStatsNeverSucceeded(t *testing.T) {
	start := history.NemesisEvent{Event: history.EventStart, Targets: []string{"n1"}}
	end := history.NemesisEvent{Event: history.EventEnd, Targets: []string{"n1"}}
	fail, info := (*hb).fail, (*hb).info
	cases := []struct {
		name    string
		h       *hb
		want    Validity
		outside int // of the never-succeeded f "renew"; -1: not listed
	}{
		{"rare call, only during faults (the soak's two renews)",
			new(hb).nemesis(0, "partition", start).failing(10, 0, "renew", 2, info).nemesis(100, "partition", end), Valid, 0},
		{"often tried, only during faults",
			new(hb).nemesis(0, "partition", start).failing(10, 0, "renew", 30, fail).nemesis(1000, "partition", end), Valid, 0},
		{"rare call outside faults, no faults at all",
			new(hb).failing(10, 0, "renew", 2, fail), Valid, 2},
		{"one short of the threshold outside faults",
			new(hb).failing(10, 0, "renew", StatsMinJudgedAttempts-1, fail).
				nemesis(1000, "kill", start).failing(1010, 0, "renew", 20, info).nemesis(2000, "kill", end), Valid, StatsMinJudgedAttempts - 1},
		{"often tried, never succeeded, outside faults",
			new(hb).nemesis(0, "partition", start).failing(10, 0, "renew", 5, fail).nemesis(100, "partition", end).
				failing(200, 0, "renew", StatsMinJudgedAttempts, fail), Invalid, StatsMinJudgedAttempts},
		{"broken workload, no faults",
			new(hb).failing(10, 0, "renew", 3*StatsMinJudgedAttempts, fail), Invalid, 3 * StatsMinJudgedAttempts},
		{"a fault that never ends covers an attempt that never completed",
			new(hb).failing(10, 0, "renew", StatsMinJudgedAttempts-1, fail).inv(500, 1, "renew", "k", nil).
				nemesis(600, "pause", start).inv(700, 2, "write", "k", 1), Valid, StatsMinJudgedAttempts - 1},
		{"an attempt that never completed, no faults",
			new(hb).failing(10, 0, "renew", StatsMinJudgedAttempts-1, fail).inv(500, 1, "renew", "k", nil).
				inv(700, 2, "write", "k", 1), Invalid, StatsMinJudgedAttempts},
		{"failures outside faults, then a success",
			new(hb).failing(10, 0, "renew", 3*StatsMinJudgedAttempts, fail).inv(1000, 0, "renew", "k", nil).ok(1001, 0, "renew", "k", nil), Valid, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Stats{}.Check(context.Background(), c.h.ops)
			if got := accumulate(Stats{}.Accumulate(), c.h.ops); !reflect.DeepEqual(got, res) {
				t.Fatalf("accumulated %+v, checked %+v", got, res)
			}
			if res.Valid != c.want {
				t.Fatalf("got %v %q, want %v; details %+v", res.Valid, res.Error, c.want, res.Details)
			}
			if c.want == Invalid && res.Error != "no renew operation ever succeeded" {
				t.Errorf("error %q", res.Error)
			}
			ns := res.Details.(StatsDetails).NeverSucceeded
			if c.outside < 0 {
				if ns != nil {
					t.Fatalf("never succeeded %+v, want none", ns)
				}
				return
			}
			if len(ns) != 1 || ns[0].F != "renew" || ns[0].OutsideFaults != c.outside || ns[0].Judged != (c.want == Invalid) || ns[0].Why == "" {
				t.Fatalf("never succeeded %+v, want renew with %d outside faults", ns, c.outside)
			}
			if !ns[0].Judged && !strings.HasPrefix(ns[0].Why, "not judged") {
				t.Errorf("why %q", ns[0].Why)
			}
		})
	}
}

func TestSet(t *testing.T) {
	base := func() *hb {
		return new(hb).
			inv(1, 0, "add", "s", 1).ok(2, 0, "add", "s", 1).
			inv(3, 1, "add", "s", 2).info(4, 1, "add", "s", 2).
			inv(5, 2, "add", "s", 3).fail(6, 2, "add", "s", 3).
			inv(7, 3, "add", "s", 4).ok(8, 3, "add", "s", 4)
	}
	cases := []struct {
		name string
		read any
		want Validity
	}{
		{"all there", []int{1, 4}, Valid},
		{"recovered info add", []int{1, 2, 4}, Valid},
		{"lost element", []int{4}, Invalid},
		{"unexpected element", []int{1, 4, 99}, Invalid},
	}
	for _, c := range cases {
		h := base().inv(10, 5, "read", "s", nil).ok(11, 5, "read", "s", c.read)
		res := Set{}.Check(context.Background(), h.ops)
		if res.Valid != c.want {
			t.Errorf("%s: got %v (%s), want %v", c.name, res.Valid, res.Error, c.want)
		}
		d := res.Details.(SetDetails)
		switch c.name {
		case "recovered info add":
			if d.Recovered != 1 || d.RecoveredEx[0] != 2 {
				t.Errorf("recovered %+v", d)
			}
		case "lost element":
			if d.Lost != 1 || d.LostExamples[0] != 1 || res.FirstAnomaly == nil || res.FirstAnomaly.Index != 0 {
				t.Errorf("lost %+v %+v", d, res.FirstAnomaly)
			}
		case "unexpected element":
			if d.Unexpected != 1 || d.UnexpectedEx[0] != 99 {
				t.Errorf("unexpected %+v", d)
			}
		}
	}
	h := base().inv(10, 5, "read", "s", nil).info(11, 5, "read", "s", nil)
	if res := (Set{}).Check(context.Background(), h.ops); res.Valid != Unknown {
		t.Errorf("no final read: got %v", res.Valid)
	}
}

func livenessHistory(final history.Type, leaders map[string]string) *hb {
	h := new(hb).
		nemesis(0, history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload}).
		nemesis(10, "partition", history.NemesisEvent{Event: history.EventStart, Targets: []string{"n1"}}).
		inv(11, 0, "write", "k", 1).info(20, 0, "write", "k", 1).
		nemesis(30, "partition", history.NemesisEvent{Event: history.EventEnd, Targets: []string{"n1"}}).
		nemesis(40, history.FPhase, history.NemesisEvent{Event: history.PhaseHeal}).
		nemesis(50, history.FPhase, history.NemesisEvent{Event: history.PhaseRecovery}).
		nemesis(60, history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: map[string]string{"n1": "", "n2": "n2", "n3": "n2"}}).
		nemesis(70, history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: leaders}).
		nemesis(80, history.FPhase, history.NemesisEvent{Event: history.PhaseFinalReads}).
		inv(81, 1, "read", "k", nil)
	h.add(82, 1, final, "read", "k", 1)
	return h.nemesis(90, history.FPhase, history.NemesisEvent{Event: history.PhaseDone})
}

func TestLiveness(t *testing.T) {
	agree := map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}
	res := Liveness{}.Check(context.Background(), livenessHistory(history.OK, agree).ops)
	if res.Valid != Valid {
		t.Fatalf("got %v: %s", res.Valid, res.Error)
	}
	d := res.Details.(LivenessDetails)
	if d.Leader != "n2" || d.RecoveryNanos != 30 || d.HealTime != 40 {
		t.Fatalf("details %+v", d)
	}

	res = Liveness{}.Check(context.Background(), livenessHistory(history.Info, agree).ops)
	if res.Valid != Invalid || !strings.Contains(res.Error, "final read") || res.FirstAnomaly.Index != 11 {
		t.Fatalf("failed final read: %v %q %+v", res.Valid, res.Error, res.FirstAnomaly)
	}

	split := map[string]string{"n1": "n1", "n2": "n2", "n3": "n2"}
	res = Liveness{}.Check(context.Background(), livenessHistory(history.OK, split).ops)
	if res.Valid != Invalid || !strings.Contains(res.Error, "no single leader known to every node") {
		t.Fatalf("split leaders: %v %q", res.Valid, res.Error)
	}

	h := new(hb).nemesis(0, history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload}).
		inv(1, 0, "read", "k", nil).ok(2, 0, "read", "k", nil)
	if res := (Liveness{}).Check(context.Background(), h.ops); res.Valid != Unknown || res.Error == "" || res.NotApplicable != "" {
		t.Fatalf("no final-reads phase: %v %+v", res.Valid, res)
	}
	// Without any phase (not a harness run) liveness does not apply and does not sway the verdict.
	h = new(hb).inv(1, 0, "read", "k", nil).ok(2, 0, "read", "k", nil)
	res = Liveness{}.Check(context.Background(), h.ops)
	if res.NotApplicable == "" {
		t.Fatalf("no phases at all: %+v", res)
	}
	all := map[string]Result{NameLiveness: res, NameStats: {Valid: Valid}}
	if v := Merge(all); v != Valid || len(Reasons(all)) != 0 {
		t.Fatalf("merge with a not-applicable checker: %v %v", v, Reasons(all))
	}
	if v := Merge(map[string]Result{NameLiveness: res}); v != Unknown {
		t.Fatalf("only a not-applicable checker: %v", v)
	}
}

func TestFaultWindows(t *testing.T) {
	h := livenessHistory(history.OK, nil).
		nemesis(91, "kill", history.NemesisEvent{Event: history.EventStart, Targets: []string{"n3"}}).
		nemesis(95, "pause", history.NemesisEvent{Event: history.EventEnd}) // unmatched end: ignored
	got := FaultWindows(h.ops)
	want := []Window{{F: "partition", Start: 10, End: 30, Targets: []string{"n1"}}, {F: "kill", Start: 91, End: 95, Targets: []string{"n3"}}}
	b1, _ := json.Marshal(got)
	b2, _ := json.Marshal(want)
	if string(b1) != string(b2) {
		t.Fatalf("windows %s, want %s", b1, b2)
	}
}

// TestRegisterPruningAgrees checks pruning and segmentation against plain porcupine on many
// small generated histories, some corrupted.
func TestRegisterPruningAgrees(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	disagreements, invalid := 0, 0
	for seed := int64(0); seed < 300; seed++ {
		ops := GenerateRegisterHistory(seed, 40+rng.Intn(300), 1+rng.Intn(3), 2+rng.Intn(6), 0.05)
		if seed%2 == 1 { // corrupt one completion value
			for tries := 0; tries < 20; tries++ {
				i := rng.Intn(len(ops))
				if ops[i].Type == history.OK && ops[i].F == "read" {
					ops[i].Value = history.MustValue(rng.Intn(len(ops)))
					break
				}
			}
		}
		fast := Register{}.Check(context.Background(), ops)
		slow := Register{NoPrune: true, Timeout: time.Second}.Check(context.Background(), ops)
		if slow.Valid == Unknown {
			continue // plain porcupine gave up; nothing to compare
		}
		if fast.Valid != slow.Valid {
			disagreements++
			t.Errorf("seed %d: pruned %v, plain %v", seed, fast.Valid, slow.Valid)
		}
		if slow.Valid == Invalid {
			invalid++
		}
	}
	if invalid < 50 {
		t.Errorf("only %d of 300 histories invalid: the corruption is too weak to test anything", invalid)
	}
}
