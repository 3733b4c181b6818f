package harness

import (
	"strings"
	"testing"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/results"
)

// TestVerdictSummariesShareOneOrder: the CLI's verdict lines and the soak/JUnit reason follow
// checker.Reasons, never map order.
func TestVerdictSummariesShareOneOrder(t *testing.T) {
	res := results.Results{Valid: checker.Invalid, Error: "boom\nmore", Checkers: map[string]checker.Result{
		checker.NameLiveness:     {Valid: checker.Unknown, Error: "no leader"},
		checker.NameStats:        {Valid: checker.Invalid, Error: "no read ever succeeded"},
		checker.NameLinearizable: {Valid: checker.Invalid, Error: "stale read", FirstAnomaly: &checker.Anomaly{Time: 3}},
		checker.NameSet:          {Valid: checker.Valid},
	}}
	want := "verdict: false\n  linearizable: false stale read\n  stats: false no read ever succeeded\n  liveness: unknown no leader\n  harness: boom"
	for i := 0; i < 20; i++ {
		if got := DescribeVerdict(res); got != want {
			t.Fatalf("DescribeVerdict:\n%s\nwant\n%s", got, want)
		}
		if got := FirstFailure(res); got != "linearizable: stale read" {
			t.Fatalf("FirstFailure = %q", got)
		}
	}
	if got := FirstFailure(results.Results{Error: "docker: gone\nstack"}); !strings.HasPrefix(got, "docker: gone") || strings.Contains(got, "\n") {
		t.Errorf("FirstFailure of a harness error = %q", got)
	}
}
