package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
		{"build", "--target", "consul@0.0.0"}, // the module proxy has no such release
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
	if testing.Short() {
		t.Skip("end to end on Docker")
	}
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
	if testing.Short() {
		t.Skip("end to end on Docker")
	}
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // may build Consul
	defer cancel()
	code, out := runHarness(t, ctx, "run", "--target", "consul", "--nemesis", "partition", "--nemesis-interval", "2s",
		"--time-limit", "8s", "--store", store, "--seed", "5")
	if code != 0 {
		t.Fatalf("run --target consul: exit %d, want 0 (valid)\n%s", code, out)
	}
	if !strings.Contains(out, "target consul@1.20.1") {
		t.Errorf("run output does not name the target:\n%s", out)
	}
	dir := latest(t, store)
	code, out = runHarness(t, ctx, "check", dir)
	if code != 0 || !strings.Contains(out, "target: consul@1.20.1 (Consul v1.20.1)") {
		t.Errorf("check: exit %d, want 0 and the target named:\n%s", code, out)
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !strings.Contains(string(report), "consul@1.20.1 (Consul v1.20.1)") || !strings.Contains(string(report), "raft_multiplier") {
		t.Errorf("report.html does not name the target and its command lines (%v)", err)
	}
	assertNoLeftovers(t, store)
}

func TestSeededBugLocalCASIsInvalid(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end on Docker")
	}
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

func TestInterruptLeavesNothingAndACheckableHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end on Docker")
	}
	store := t.TempDir()
	cmd := exec.Command(harnessBin, "run", "--time-limit", "60s", "--store", store)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the workload is under way.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 255 {
		t.Fatalf("interrupted run ended as a harness error:\n%s", out.String())
	}
	assertNoLeftovers(t, store)
	code, cout := runHarness(t, context.Background(), "check", latest(t, store))
	if code == 254 || code == 255 {
		t.Fatalf("check of the interrupted run: exit %d\n%s\nrun output:\n%s", code, cout, out.String())
	}
}

func TestBootstrapModesFormACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end on Docker")
	}
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
	tests, _ := filepath.Glob(filepath.Join(store, "*", "*", "test.json"))
	if len(tests) == 0 {
		t.Errorf("no run folder in %s", store)
	}
	for _, tj := range tests {
		var test struct {
			RunID string `json:"run_id"`
		}
		readJSON(t, tj, &test)
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
