package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/internal/testenv"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/targets"
)

// These tests drive the real harness binary against a real Docker cluster of the agent. They
// need a Docker Engine; without one they fail (CI starts it), unless -short.

var harnessBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "harness-cli-")
	if err != nil {
		panic(err)
	}
	harnessBin = filepath.Join(dir, "harness")
	out, err := exec.Command("go", "build", "-o", harnessBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runHarness runs the binary with args and returns its exit code and combined output.
func runHarness(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, harnessBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("harness %v: %v", args, err)
	}
	return 0, out.String()
}

func TestBadUsageExits254(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"run", "--nodes", "0"},
		{"run", "--read-mode", "sometimes"},
		{"run", "--no-such-flag"},
		{"run", "--nemesis", "meteor"},
		{"run", "--restart-signal", "HUP"},
		{"run", "--target", "etcd"},
		{"run", "--target", "consul@latest"},
		{"run", "--target", "consul", "--bootstrap", "manual"},
		{"run", "--target", "consul", "--unsafe", "local-cas"},
		{"run", "--agent-binary", "/nonexistent/consul"},
		{"check"},
		{"check", t.TempDir()},
		{"no-such-command"},
	} {
		code, out := runHarness(t, ctx, args...)
		if code != 254 {
			t.Errorf("harness %v: exit %d, want 254\n%s", args, code, out)
		}
		if !strings.Contains(out, "harness: ") {
			t.Errorf("harness %v: no reason printed:\n%s", args, out)
		}
	}
}

// TestUpgradeUsageExits254BeforeAnything: a bad combination of --nemesis upgrade, its releases
// and --target is refused before any build, container or run folder.
func TestUpgradeUsageExits254BeforeAnything(t *testing.T) {
	ctx := context.Background()
	store := filepath.Join(t.TempDir(), "store")
	up := []string{"run", "--store", store, "--nemesis", "upgrade"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{up, "--nemesis upgrade needs --upgrade-from and --upgrade-to"},
		{append(up, "--upgrade-from", "consul@1.15.7"), "needs --upgrade-from and --upgrade-to"},
		{append(up, "--upgrade-from", "consul@1.15.7", "--upgrade-to", "consul@1.15.7"), "both consul@1.15.7"},
		{append(up, "--upgrade-from", "agent", "--upgrade-to", "consul@1.16.3"), "--upgrade-from agent"},
		{append(up, "--target", "consul@1.16.3", "--upgrade-from", "consul@1.15.7", "--upgrade-to", "consul@1.16.3"), "--target consul@1.16.3 conflicts"},
		{[]string{"run", "--store", store, "--upgrade-to", "consul@1.16.3"}, "are for --nemesis upgrade"},
		{[]string{"run", "--store", store, "--nemesis", "all", "--upgrade-from", "consul@1.15.7", "--upgrade-to", "consul@1.16.3"}, "are for --nemesis upgrade"},
	} {
		code, out := runHarness(t, ctx, tc.args...)
		if code != 254 || !strings.Contains(out, tc.want) {
			t.Errorf("harness %v: exit %d, want 254 saying %q\n%s", tc.args, code, tc.want, out)
		}
	}
	if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused run made %s: %v", store, err)
	}
}

// TestBuildOfAnUnknownReleaseExits254: the module proxy has no such release. build connects to
// the engine first, so this case needs Docker (and the network).
func TestBuildOfAnUnknownReleaseExits254(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code, out := runHarness(t, ctx, "build", "--target", "consul@0.0.0")
	if code != 254 || !strings.Contains(out, "harness: ") {
		t.Errorf("build --target consul@0.0.0: exit %d, want 254 and a reason\n%s", code, out)
	}
}

func TestNoDockerExits255(t *testing.T) {
	cmd := exec.Command(harnessBin, "run", "--time-limit", "1s", "--store", t.TempDir())
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/docker.sock")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Fatalf("exit %v, want 255\n%s", err, out)
	}
	if !strings.Contains(string(out), "DOCKER_HOST") || strings.Contains(string(out), "goroutine ") {
		t.Fatalf("want a clear message naming DOCKER_HOST and no stack trace:\n%s", out)
	}
}

func TestValidRunThenCheckAgrees(t *testing.T) {
	needDocker(t)
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code, out := runHarness(t, ctx, "run", "--nodes", "3", "--time-limit", "10s", "--store", store, "--seed", "7")
	if code != 0 {
		t.Fatalf("run: exit %d, want 0 (valid)\n%s", code, out)
	}
	dir := latest(t, store)
	for _, f := range []string{"test.json", "history.jsonl", "results.json", "report.html", "nodes/n1.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	var test map[string]any
	readJSON(t, filepath.Join(dir, "test.json"), &test)
	if test["seed"] != float64(7) || test["command_line"] == nil {
		t.Errorf("test.json lacks seed or command line: %v", test)
	}
	// check needs only the history: copy it alone to a fresh folder.
	only := t.TempDir()
	copyFile(t, filepath.Join(dir, "history.jsonl"), filepath.Join(only, "history.jsonl"))
	code, out = runHarness(t, ctx, "check", only)
	if code != 0 {
		t.Fatalf("check of a valid run: exit %d\n%s", code, out)
	}
	assertNoLeftovers(t, store)
}

// TestRealConsulRunNamesItsTarget runs the README's real-Consul example through the CLI: a
// partitioned 3-node Consul cluster is valid, and run, check and the report name the target.
func TestRealConsulRunNamesItsTarget(t *testing.T) {
	needDocker(t)
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // may build Consul
	defer cancel()
	code, out := runHarness(t, ctx, "run", "--target", "consul", "--nemesis", "partition", "--nemesis-interval", "2s",
		"--time-limit", "8s", "--store", store, "--seed", "5")
	if code != 0 {
		t.Fatalf("run --target consul: exit %d, want 0 (valid)\n%s", code, out)
	}
	want := "consul@" + targets.DefaultConsulVersion + " (Consul v" + targets.DefaultConsulVersion + ")"
	if !strings.Contains(out, "target consul@"+targets.DefaultConsulVersion) {
		t.Errorf("run output does not name the target:\n%s", out)
	}
	dir := latest(t, store)
	code, out = runHarness(t, ctx, "check", dir)
	if code != 0 || !strings.Contains(out, "target: "+want) {
		t.Errorf("check: exit %d, want 0 and the target named:\n%s", code, out)
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !strings.Contains(string(report), want) || !strings.Contains(string(report), "raft_multiplier") {
		t.Errorf("report.html does not name the target and its command lines (%v)", err)
	}
	assertNoLeftovers(t, store)
}

func TestSeededBugLocalCASIsInvalid(t *testing.T) {
	needDocker(t)
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code, out := runHarness(t, ctx, "run", "--nodes", "3", "--time-limit", "10s", "--store", store,
		"--unsafe", "local-cas", "--nemesis", "partition", "--nemesis-interval", "2s", "--keys", "2", "--seed", "3")
	if code != 1 {
		t.Fatalf("run with local-cas: exit %d, want 1 (invalid)\n%s", code, out)
	}
	code, out = runHarness(t, ctx, "check", latest(t, store))
	if code != 1 {
		t.Fatalf("check of the invalid run: exit %d, want 1\n%s", code, out)
	}
	assertNoLeftovers(t, store)
}

// TestInterruptLeavesNothingAndACheckableHistory interrupts a run of the correct agent once its
// workload has completed operations. harness.Run's contract: containers and the network are
// removed, the history stays checkable and the verdict is at best "unknown"; the CLI exits with
// the verdict (DESIGN.md), so a correct agent interrupted mid-workload exits 2, and so does
// `harness check` of that history (liveness cannot be judged without final reads).
func TestInterruptLeavesNothingAndACheckableHistory(t *testing.T) {
	needDocker(t)
	store := t.TempDir()
	cmd := exec.Command(harnessBin, "run", "--time-limit", "60s", "--store", store)
	var out lockedBuffer // written by exec's copying goroutine while this one reads it
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// stop interrupts the run (it removes its containers on SIGINT) and kills it if it does not
	// end within d; it returns the run's exit code, or fails the test.
	stop := func(d time.Duration) int {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("wait: %v", err)
			}
			return cmd.ProcessState.ExitCode()
		case <-time.After(d):
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("interrupted run did not end within %s; killed\n%s", d, out.String())
			return -1
		}
	}

	// Interrupt once the workload is under way: a progress line (every 5 s when not on a
	// terminal) with completed operations.
	underWay := regexp.MustCompile(`harness: workload +\d+s of 60s +ok +[1-9][0-9]*/s`)
	const startWithin = 3 * time.Minute // setup builds the agent image on a fresh engine
	deadline := time.Now().Add(startWithin)
	for !underWay.MatchString(out.String()) {
		select {
		case err := <-exited:
			t.Fatalf("run ended (%v) before its workload was under way:\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop(2 * time.Minute)
			t.Fatalf("the workload did not complete operations within %s of the start:\n%s", startWithin, out.String())
		}
	}
	code := stop(2 * time.Minute)
	runOut := out.String()
	if code != exitUnknown {
		t.Fatalf("interrupted run: exit %d, want %d (verdict unknown)\n%s", code, exitUnknown, runOut)
	}
	if !strings.Contains(runOut, "verdict: unknown") || !strings.Contains(runOut, "harness: interrupted") {
		t.Errorf("interrupted run does not print verdict unknown and the interrupt:\n%s", runOut)
	}
	assertNoLeftovers(t, store)

	// The run folder holds what was recorded and its verdict.
	dir := latest(t, store)
	var res results.Results
	readJSON(t, filepath.Join(dir, results.ResultsFile), &res)
	if res.Valid != checker.Unknown || !strings.HasPrefix(res.Error, "interrupted") || res.Ops == 0 {
		t.Errorf("results.json: valid %v, error %q, %d ops; want unknown, interrupted, some ops", res.Valid, res.Error, res.Ops)
	}
	if lin := res.Checkers[checker.NameLinearizable]; lin.Valid != checker.Valid {
		t.Errorf("the interrupted history of the correct agent is not linearizable: %v %s", lin.Valid, lin.Error)
	}
	code, cout := runHarness(t, context.Background(), "check", dir)
	if code != exitUnknown || !strings.Contains(cout, "verdict: unknown") {
		t.Fatalf("check of the interrupted run: exit %d, want %d (unknown)\n%s\nrun output:\n%s", code, exitUnknown, cout, runOut)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBootstrapModesFormACluster(t *testing.T) {
	needDocker(t)
	for _, mode := range []string{"single", "manual"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			store := t.TempDir()
			code, out := runHarness(t, ctx, "run", "--bootstrap", mode, "--time-limit", "3s", "--store", store)
			if code != 0 {
				t.Fatalf("--bootstrap %s: exit %d\n%s", mode, code, out)
			}
			assertNoLeftovers(t, store)
		})
	}
}

// needDocker skips t under -short and fails it when no Docker Engine answers (testenv's policy).
func needDocker(t *testing.T) {
	t.Helper()
	testenv.RequireDocker(t)
}

func latest(t *testing.T, store string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Join(store, "latest"))
	if err != nil {
		t.Fatalf("no latest run: %v", err)
	}
	return dir
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertNoLeftovers fails when a container or network of any run in store remains. (Other
// packages' tests may run at the same time, so only this store's run ids are looked for.)
func assertNoLeftovers(t *testing.T, store string) {
	t.Helper()
	tests, err := filepath.Glob(filepath.Join(store, "*", "*", "test.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) == 0 {
		t.Fatalf("no run folder with a test.json in %s: nothing to check for leftovers", store)
	}
	for _, tj := range tests {
		var test struct {
			RunID string `json:"run_id"`
		}
		readJSON(t, tj, &test)
		if test.RunID == "" {
			t.Fatalf("%s has no run_id: its containers cannot be looked for", tj)
		}
		for _, kind := range []string{"ps -a", "network ls"} {
			args := append(strings.Fields(kind), "-q", "--filter", "label=harness.run="+test.RunID)
			out, err := exec.Command("docker", args...).Output()
			if err != nil {
				t.Fatalf("docker %s: %v", kind, err)
			}
			if s := strings.TrimSpace(string(out)); s != "" {
				t.Errorf("run %s left %s: %s", test.RunID, kind, s)
			}
		}
	}
}
