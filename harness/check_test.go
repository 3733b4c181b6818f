package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/results"
)

// TestImportJepsen: a Jepsen history.edn becomes a run folder with results and a report; the
// valid one passes, the stale one fails, and liveness does not apply to either.
func TestImportJepsen(t *testing.T) {
	store := t.TempDir()
	for _, c := range []struct {
		file string
		want checker.Validity
	}{{"register-valid.edn", checker.Valid}, {"register-stale.edn", checker.Invalid}, {"set-lost.edn", checker.Invalid}} {
		dir, res, err := ImportJepsen(context.Background(), filepath.Join("..", "history", "edn", "testdata", c.file), store, CheckConfig{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if res.Valid != c.want {
			t.Errorf("%s: %v, want %v (%s)", c.file, res.Valid, c.want, DescribeVerdict(res))
		}
		if l := res.Checkers[checker.NameLiveness]; l.NotApplicable == "" {
			t.Errorf("%s: liveness %+v", c.file, l)
		}
		for _, f := range []string{results.HistoryFile, results.ResultsFile, results.ReportFile, results.TestFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", c.file, err)
			}
		}
		report, _ := os.ReadFile(filepath.Join(dir, results.ReportFile))
		if !strings.Contains(string(report), `class="not-applicable"`) {
			t.Errorf("%s: the report does not show liveness as not applicable", c.file)
		}
		if c.file == "register-stale.edn" {
			if !strings.Contains(string(report), "Counterexample: key") || !strings.Contains(DescribeVerdict(res), "counterexample for key") {
				t.Errorf("%s: no counterexample in the report or on the terminal:\n%s", c.file, DescribeVerdict(res))
			}
		}
	}
	if _, _, err := ImportJepsen(context.Background(), filepath.Join("..", "go.mod"), store, CheckConfig{}); err == nil || !IsUsage(err) {
		t.Fatalf("a file that is not EDN: %v", err)
	}
}

// TestCheckerSelection: --checker restricts the checkers; a name that does not apply or does
// not exist is a usage error.
func TestCheckerSelection(t *testing.T) {
	store := t.TempDir()
	dir, _, err := ImportJepsen(context.Background(), filepath.Join("..", "history", "edn", "testdata", "register-stale.edn"), store, CheckConfig{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := CheckDir(context.Background(), dir, CheckConfig{Checkers: []string{checker.NameStats}})
	if err != nil || len(res.Checkers) != 1 || res.Valid != checker.Valid {
		t.Fatalf("stats only: %v %v %+v", err, res.Valid, res.Checkers)
	}
	for _, bad := range []string{checker.NameSet, "nonsense"} {
		if _, err := CheckDir(context.Background(), dir, CheckConfig{Checkers: []string{bad}}); err == nil || !IsUsage(err) || !strings.Contains(err.Error(), bad) {
			t.Errorf("--checker %s: %v", bad, err)
		}
	}
}
