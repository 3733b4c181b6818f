package harness

import (
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
	PrintSelftest(&b, []SelftestRow{{Bug: "local-check-session", Verdict: checker.Valid, Seconds: -1, Dir: "d", Missed: d}})
	if !strings.Contains(b.String(), "local-check-session not detected: 1234 ops") {
		t.Errorf("table:\n%s", b.String())
	}
}
