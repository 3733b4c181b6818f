package harness

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/raftcheck/harness/agent"
	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/workloads"
)

// TestSeededBugsMatchAgent ties the self-test to the agent's seeded bugs: every bug the
// self-test runs is an -unsafe switch the agent knows, and every switch the agent knows is
// either self-tested or listed in NotSelftested with a reason.
func TestSeededBugsMatchAgent(t *testing.T) {
	tested := map[string]bool{}
	for _, b := range SeededBugs {
		if !slices.Contains(agent.UnsafeNames, b.Name) {
			t.Errorf("SeededBugs has %q, which the agent does not know (agent.UnsafeNames: %v)", b.Name, agent.UnsafeNames)
		}
		if tested[b.Name] {
			t.Errorf("SeededBugs lists %q twice", b.Name)
		}
		tested[b.Name] = true
		if !slices.Contains(workloads.Names(), b.Workload) {
			t.Errorf("seeded bug %q: unknown workload %q", b.Name, b.Workload)
		}
		if b.Why == "" {
			t.Errorf("seeded bug %q does not say how it shows", b.Name)
		}
	}
	for name, why := range NotSelftested {
		switch {
		case !slices.Contains(agent.UnsafeNames, name):
			t.Errorf("NotSelftested has %q, which the agent does not know", name)
		case tested[name]:
			t.Errorf("%q is both in SeededBugs and in NotSelftested", name)
		case why == "":
			t.Errorf("NotSelftested[%q] gives no reason", name)
		}
	}
	for _, name := range agent.UnsafeNames {
		if _, skipped := NotSelftested[name]; !tested[name] && !skipped {
			t.Errorf("the agent's -unsafe=%s has no self-test row in SeededBugs (add one, or list it in NotSelftested with a reason)", name)
		}
	}
}

// TestPrintSelftestNamesErrors: a run that failed with an error shows it under the table, so an
// "unknown" row is not left unexplained.
func TestPrintSelftestNamesErrors(t *testing.T) {
	var b strings.Builder
	PrintSelftest(&b, []SelftestRow{
		{Bug: "local-cas", Nemesis: "partition", Verdict: checker.Invalid, Detected: true, Seconds: 0.4, Dir: "d1"},
		{Bug: "(correct agent)", Nemesis: "partition", Verdict: checker.Unknown, Seconds: -1, Dir: "d2", Error: "cannot build the agent"},
	})
	out := b.String()
	if !strings.Contains(out, "local-cas") || !strings.Contains(out, "(correct agent) (d2): cannot build the agent") {
		t.Errorf("table:\n%s", out)
	}
	if strings.Count(out, "cannot build") != 1 {
		t.Errorf("error printed %d times:\n%s", strings.Count(out, "cannot build"), out)
	}
}

// TestMissedDigestSaysWhatTheCheckersSaw: an undetected bug's row carries every checker's verdict
// and the start of its details, in name order, with long details cut; PrintSelftest shows it.
func TestMissedDigestSaysWhatTheCheckersSaw(t *testing.T) {
	res := results.Results{Valid: checker.Valid, Ops: 1234, Checkers: map[string]checker.Result{
		"stats":    {Valid: checker.Valid, Details: map[string]int{"ok": 1200}},
		"lock":     {Valid: checker.Valid, Details: map[string]string{"holdings": strings.Repeat("x", 1000)}},
		"liveness": {Valid: checker.Unknown, NotApplicable: "no phases"},
	}}
	d := missedDigest(res)
	if !strings.HasPrefix(d, "1234 ops; liveness unknown (not applicable: no phases); lock true {\"holdings\":\"xxx") {
		t.Errorf("digest %q", d)
	}
	if !strings.Contains(d, "…; stats true {\"ok\":1200}") || len([]rune(d)) > 600 {
		t.Errorf("digest not cut or stats missing (%d runes): %q", len([]rune(d)), d)
	}
	var b strings.Builder
	PrintSelftest(&b, []SelftestRow{{Bug: "local-check-session", Verdict: checker.Valid, Runs: 1, Seconds: -1, Dir: "d", Missed: d}})
	if !strings.Contains(b.String(), "local-check-session not detected in 1 run; the last saw: 1234 ops") {
		t.Errorf("table:\n%s", b.String())
	}
}

// fakeRuns stands in for Run in the self-test's search: verdict decides each run's verdict from
// its options; every call is remembered.
type fakeRuns struct {
	verdict func(o Options) checker.Validity
	calls   []Options
}

func (f *fakeRuns) run(_ context.Context, o Options, _ io.Writer) (*Outcome, error) {
	f.calls = append(f.calls, o)
	dir := fmt.Sprintf("store/%s/%d", o.Name, o.Seed)
	return &Outcome{Dir: dir, Results: results.Results{Valid: f.verdict(o), Ops: 10}}, nil
}

// TestSelftestSearchesUntilDetected: a seeded bug runs seed after seed until a run is invalid,
// and no further; a bug never seen uses the whole bound and fails the self-test; the correct
// agent runs once, with the first seed.
func TestSelftestSearchesUntilDetected(t *testing.T) {
	base := Defaults()
	base.Seed = 7
	f := &fakeRuns{verdict: func(o Options) checker.Validity {
		switch {
		case len(o.Unsafe) == 0:
			return checker.Valid
		case o.Unsafe[0] == "local-cas" && o.Seed == 8: // seen on the second run
			return checker.Invalid
		case o.Unsafe[0] == "bootstrap-alone" && o.Seed == 7: // seen on the first
			return checker.Invalid
		}
		return checker.Valid
	}}
	rows, ok, err := selftest(context.Background(), base, []string{"local-cas", "bootstrap-alone"}, 3, f.run, io.Discard)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v; rows %+v", ok, err, rows)
	}
	byBug := map[string]SelftestRow{}
	for _, r := range rows {
		byBug[r.Bug+"/"+r.Nemesis] = r
	}
	cas := byBug["local-cas/partition"]
	if !cas.Detected || cas.Runs != 2 || cas.Seed != 8 || len(cas.Misses) != 1 || cas.Missed != "" {
		t.Errorf("local-cas row %+v, want detected on run 2 (seed 8) with one miss listed", cas)
	}
	if b := byBug["bootstrap-alone/none"]; !b.Detected || b.Runs != 1 || b.Seed != 7 {
		t.Errorf("bootstrap-alone row %+v, want detected on run 1", b)
	}
	for _, key := range []string{"(correct agent)/partition", "(correct agent)/none"} {
		if c := byBug[key]; c.Runs != 1 || c.Seed != 7 || c.Verdict != checker.Valid {
			t.Errorf("%s row %+v, want one valid run with seed 7", key, c)
		}
	}
	if len(f.calls) != 2+1+1+1 {
		t.Errorf("%d runs, want 5 (local-cas twice, its correct agent, bootstrap-alone, its correct agent)", len(f.calls))
	}
	var table strings.Builder
	PrintSelftest(&table, rows)
	if !strings.Contains(table.String(), "local-cas needed 2 runs; unseen in store/selftest-local-cas/7") {
		t.Errorf("table does not name the missed run:\n%s", table.String())
	}

	never := &fakeRuns{verdict: func(Options) checker.Validity { return checker.Valid }}
	rows, ok, _ = selftest(context.Background(), base, []string{"local-cas"}, 3, never.run, io.Discard)
	if ok || len(rows) != 2 || rows[0].Detected || rows[0].Runs != 3 || rows[0].Missed == "" {
		t.Errorf("an unseen bug: ok %v, rows %+v; want not ok, 3 runs, a digest of the last", ok, rows)
	}
	badCorrect := &fakeRuns{verdict: func(Options) checker.Validity { return checker.Invalid }}
	if _, ok, _ = selftest(context.Background(), base, []string{"local-cas"}, 3, badCorrect.run, io.Discard); ok {
		t.Error("the correct agent judged invalid, yet the self-test passed")
	}
}
