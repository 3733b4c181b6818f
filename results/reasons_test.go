package results

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
)

// TestWhyFollowsReasons: the report's "Why", Results.Reason and JUnit all take checker.Reasons'
// order, whatever the map order.
func TestWhyFollowsReasons(t *testing.T) {
	res := Results{Valid: checker.Invalid, Error: "harness: first line\nsecond line", Checkers: map[string]checker.Result{
		checker.NameStats:        {Valid: checker.Invalid, Error: "no read ever succeeded"},
		checker.NameLinearizable: {Valid: checker.Invalid, Error: "stale read", FirstAnomaly: &checker.Anomaly{Time: 5, Key: "r1"}},
		checker.NameLiveness:     {Valid: checker.Unknown, Error: "no final leader observed"},
		checker.NameSet:          {Valid: checker.Valid},
	}}
	for i := 0; i < 20; i++ {
		rows := why(res)
		if len(rows) != 2 || rows[0].Checker != checker.NameLinearizable || rows[1].Checker != checker.NameStats {
			t.Fatalf("why %+v: want the invalid checkers, earliest anomaly first", rows)
		}
		if got := res.Reason(); got != "linearizable: stale read" {
			t.Fatalf("Reason() = %q", got)
		}
	}
	if c := NewJUnitCase("a", "store/a/1", res, time.Second); c.Reason != res.Reason() || c.Valid != checker.Invalid {
		t.Errorf("JUnit case %+v", c)
	}

	unknown := Results{Valid: checker.Unknown, Checkers: map[string]checker.Result{
		checker.NameLiveness:     {Valid: checker.Unknown},
		checker.NameLinearizable: {Valid: checker.Unknown, Error: "timed out"},
	}}
	rows := why(unknown)
	if len(rows) != 2 || rows[0].Checker != checker.NameLinearizable || rows[1].Reason != checker.NoReason {
		t.Errorf("why of unknown checkers %+v", rows)
	}
	if got := (Results{Error: "docker: gone\nmore"}).Reason(); got != "docker: gone" {
		t.Errorf("harness error reason %q", got)
	}
}

// TestReportUsesRecordedVisualization: the report links the file the checker named in the
// anomaly, even when other visualisations exist and the name is not the key's; a name that is
// not a visualisation in the run folder is not linked.
func TestReportUsesRecordedVisualization(t *testing.T) {
	fx := makeRun(t, t.TempDir(), "register-partition", "20260102T030405", false)
	const hashed = "linear-a_b-0123abcd.html"
	if err := os.WriteFile(filepath.Join(fx.dir, hashed), []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := func(key, file string) {
		res := readResults(t, fx.dir)
		lin := res.Checkers[checker.NameLinearizable]
		lin.FirstAnomaly.Key, lin.FirstAnomaly.Visualization = key, file
		res.Checkers[checker.NameLinearizable] = lin
		if err := WriteJSON(filepath.Join(fx.dir, ResultsFile), res); err != nil {
			t.Fatal(err)
		}
	}
	set("a/b", hashed)
	if v := buildReport(fx.dir); v.Anomaly == nil || v.Anomaly.Visual != hashed || len(v.Visuals) != 2 {
		t.Fatalf("anomaly %+v, visuals %v: want a link to %s", v.Anomaly, v.Visuals, hashed)
	}
	for _, bad := range []string{"", "../results.json", "linear-missing.html"} {
		set("r1", bad)
		if v := buildReport(fx.dir); v.Anomaly == nil || v.Anomaly.Visual != "" {
			t.Errorf("visualization %q: anomaly %+v links a file", bad, v.Anomaly)
		}
	}
}
