package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/results"
)

// The upgrade fault's end-to-end tests roll three servers of real Consul from one open-source
// release to another under the register workload: both releases are built from their Go modules
// on first use (7 to 13 minutes each here, then cached). The interval is half the time limit, so
// the one roll starts at 30 s and a second cannot start; rolls took 5–17 s here
// (docs/measurements.md, "Upgrades"), a roll longer than 30 s would be cut and fail the test.

// upgradeOld and upgradeNew are the MPL-2.0 releases the tests roll between.
const upgradeOld, upgradeNew = "consul@1.15.7", "consul@1.16.3"

func upgradeRun(t *testing.T, from, to string) Options {
	o := shortRun(t)
	o.Nemesis = []string{nemesis.FaultUpgrade}
	o.UpgradeFrom, o.UpgradeTo = from, to
	o.TimeLimit, o.NemesisInterval = 60*time.Second, 30*time.Second
	return o
}

// TestConsulRollingUpgrade: every server is stopped, started on the new release with its data
// dir, and waited for, one at a time; the history is valid and every server ends on the new
// release, by what it says (the roll's end line: /v1/agent/self after it rejoined) and by what
// its last start logged.
func TestConsulRollingUpgrade(t *testing.T) {
	rollValid(t, upgradeRun(t, upgradeOld, upgradeNew))
}

// TestConsulRollingDowngrade is the same roll from the newer release to the older one.
func TestConsulRollingDowngrade(t *testing.T) {
	rollValid(t, upgradeRun(t, upgradeNew, upgradeOld))
}

// rollValid runs o, wants it valid with exactly one complete roll to o.UpgradeTo, and logs the
// figures docs/measurements.md records.
func rollValid(t *testing.T, o Options) {
	t.Helper()
	out := runValidOutcome(t, o)
	want := strings.TrimPrefix(o.UpgradeTo, "consul@")
	start, end := upgradeLines(t, out.Dir)
	d, _ := end.Value.Detail.(map[string]any)
	if d["complete"] != true {
		t.Fatalf("the roll did not complete within the run (%s): %v", out.Dir, d)
	}
	versions, _ := d["versions"].(map[string]any)
	for _, n := range []string{"n1", "n2", "n3"} {
		if versions[n] != want {
			t.Errorf("%s says it runs %v after the roll, want %s (%s)", n, versions[n], want, out.Dir)
		}
		if got := lastStartedVersion(t, filepath.Join(out.Dir, results.NodesDir, n+".log")); got != want {
			t.Errorf("%s's last start logged version %q, want %s", n, got, want)
		}
	}
	var ti results.TestInfo
	if err := results.ReadJSON(filepath.Join(out.Dir, results.TestFile), &ti); err != nil {
		t.Fatal(err)
	}
	if ti.TargetName() != o.UpgradeFrom || len(ti.Releases) != 2 || ti.Releases[o.UpgradeTo].Version != "Consul v"+want {
		t.Errorf("test.json: target %s, releases %+v", ti.TargetName(), ti.Releases)
	}
	var stored results.Results // as results.json has it: details decoded as JSON objects
	if err := results.ReadJSON(filepath.Join(out.Dir, results.ResultsFile), &stored); err != nil {
		t.Fatal(err)
	}
	live, _ := stored.Checkers[checker.NameLiveness].Details.(map[string]any)
	t.Logf("%s → %s: verdict %s, ops %d, roll %.1f s (order %v, rejoin_s %v), leaderless %v (%s)",
		o.UpgradeFrom, o.UpgradeTo, out.Results.Valid, out.Results.Ops, float64(end.Time-start.Time)/1e9, d["order"], d["rejoin_s"], live["leaderless"], out.Dir)
}

type nemesisLine struct {
	Time  int64
	Value history.NemesisEvent
}

// upgradeLines returns the one upgrade start line and the one end line of the run's history.
func upgradeLines(t *testing.T, dir string) (start, end nemesisLine) {
	t.Helper()
	ops, err := history.ReadFile(filepath.Join(dir, results.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var starts, ends []nemesisLine
	for _, op := range ops {
		if !op.IsNemesis() || op.F != nemesis.FaultUpgrade {
			continue
		}
		l := nemesisLine{Time: op.Time}
		if err := json.Unmarshal(op.Value, &l.Value); err != nil {
			t.Fatal(err)
		}
		switch l.Value.Event {
		case history.EventStart:
			starts = append(starts, l)
		case history.EventEnd:
			ends = append(ends, l)
		default:
			t.Errorf("upgrade %s line: %+v", l.Value.Event, l.Value)
		}
	}
	if len(starts) != 1 || len(ends) != 1 {
		t.Fatalf("want one roll, got %d starts and %d ends (%s)", len(starts), len(ends), dir)
	}
	return starts[0], ends[0]
}

// consulVersionLine is the line a Consul agent logs at start: "Version: '1.16.3'".
var consulVersionLine = regexp.MustCompile(`Version: '([^']+)'`)

// lastStartedVersion is the version the last Consul process in a node's log started as.
func lastStartedVersion(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	m := consulVersionLine.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return ""
	}
	return string(m[len(m)-1][1])
}
