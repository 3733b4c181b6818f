package harness

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/internal/testenv"
	"github.com/raftcheck/harness/nemesis"
)

// End-to-end tests on a real Docker cluster of the agent. Each run's heal phase also verifies
// that no node is left paused or stopped and that no nftables rule of ours remains
// (Cluster.VerifyHealed); teardown removes every container and the network.

func shortRun(t *testing.T) Options {
	t.Helper()
	testenv.RequireDocker(t)
	o := Defaults()
	o.Store = keptOnFailure(t)
	o.TimeLimit = 8 * time.Second
	o.NemesisInterval = 2 * time.Second
	o.Seed = 11
	return o
}

func runValid(t *testing.T, o Options) { t.Helper(); runValidOutcome(t, o) }

// runValidOutcome runs o, fails the test unless the verdict is valid and nothing is left running,
// and returns the outcome.
func runValidOutcome(t *testing.T, o Options) *Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	out, err := Run(ctx, o, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if out.Results.Valid != checker.Valid {
		t.Fatalf("verdict %v, want valid (%s)\n%s\n%s", out.Results.Valid, out.Dir, DescribeVerdict(out.Results), log.String())
	}
	assertRunRemoved(t, o.Store)
	return out
}

// eachFaultKindValid runs one valid-verdict subtest per fault kind the nemesis knows, with the
// options base gives for that kind, and hands each outcome to check (may be nil). The upgrade
// fault needs two Consul releases: TestConsulRollingUpgrade and TestConsulRollingDowngrade
// (consul_upgrade_e2e_test.go) run it.
func eachFaultKindValid(t *testing.T, base func(t *testing.T, fault string) Options, check func(t *testing.T, fault string, out *Outcome)) {
	for _, fault := range nemesis.Kinds() {
		if fault == nemesis.FaultUpgrade {
			continue
		}
		t.Run(fault, func(t *testing.T) {
			o := base(t, fault)
			o.Nemesis = []string{fault}
			out := runValidOutcome(t, o)
			if check != nil {
				check(t, fault, out)
			}
		})
	}
}

func TestEachFaultKindIsValidOnTheCorrectAgent(t *testing.T) {
	eachFaultKindValid(t, func(t *testing.T, _ string) Options { return shortRun(t) }, nil)
}

func TestRestartWithEachSignalRecovers(t *testing.T) {
	for _, sig := range []string{"KILL", "TERM", "INT"} {
		t.Run(sig, func(t *testing.T) {
			o := shortRun(t)
			o.Nemesis = []string{"restart"}
			o.RestartSignal = sig
			runValid(t, o)
		})
	}
}

func TestSetWorkloadUnderPartitionIsValid(t *testing.T) {
	o := shortRun(t)
	o.Workload = "set"
	o.Nemesis = []string{"partition"}
	runValid(t, o)
}

func TestSelftestDetectsEverySeededBug(t *testing.T) {
	o := shortRun(t)
	o.TimeLimit = 10 * time.Second
	o.NemesisInterval = 3 * time.Second
	o.Seed = 1
	// The bound of the search, not a clock to beat: 11 bugs × up to 3 runs and 7 correct runs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rows, ok, err := Selftest(ctx, o, nil, DefaultSelftestAttempts, &log)
	var table bytes.Buffer
	PrintSelftest(&table, rows)
	if dir := os.Getenv("ARTEFACTS_DIR"); dir != "" { // .ci/run prints it: runs needed per bug
		if werr := os.WriteFile(filepath.Join(dir, "selftest.txt"), table.Bytes(), 0o644); werr != nil {
			t.Errorf("write the self-test table: %v", werr)
		}
	}
	t.Logf("selftest:\n%s", table.String())
	if err != nil || !ok {
		t.Fatalf("selftest failed (err %v)\n%s", err, log.String())
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.Bug] = r.Detected
	}
	for _, b := range SeededBugs {
		if !seen[b.Name] {
			t.Errorf("seeded bug %s not detected", b.Name)
		}
	}
	assertRunRemoved(t, o.Store)
}

// assertRunRemoved fails when a container or network of any run in store remains, and when
// store holds no run (runIDs): the runs the caller made must be there to be checked.
func assertRunRemoved(t *testing.T, store string) {
	t.Helper()
	ids, err := runIDs(store)
	if err != nil {
		t.Fatalf("leftover check: %v", err)
	}
	for _, id := range ids {
		for _, kind := range []string{"ps -a", "network ls"} {
			args := append(strings.Fields(kind), "-q", "--filter", "label=harness.run="+id)
			out, err := exec.Command("docker", args...).Output()
			if err != nil {
				t.Fatalf("docker %s: %v", kind, err)
			}
			if s := strings.TrimSpace(string(out)); s != "" {
				t.Errorf("run %s left %s: %s", id, kind, s)
			}
		}
	}
}

// keptOnFailure is a store folder removed after the test, unless the test failed: then its run
// folders (history, node logs, report) stay for diagnosis and the path is logged.
func keptOnFailure(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "harness-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("run folders kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}
