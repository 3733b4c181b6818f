package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequireDockerPolicy runs helperNeedsDocker in a child test binary against an engine that
// cannot exist: without -short it must fail naming DOCKER_HOST, with -short it must skip.
func TestRequireDockerPolicy(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		return
	}
	for _, short := range []bool{false, true} {
		args := []string{"-test.run=^TestHelperNeedsDocker$", "-test.v", "-test.count=1"}
		if short {
			args = append(args, "-test.short")
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "DOCKER_HOST=unix:///nonexistent/docker.sock")
		out, err := cmd.CombinedOutput()
		s := string(out)
		switch {
		case short && (err != nil || !strings.Contains(s, "--- SKIP: TestHelperNeedsDocker")):
			t.Errorf("-short without an engine: want a skip, got %v:\n%s", err, s)
		case !short && (err == nil || !strings.Contains(s, "--- FAIL: TestHelperNeedsDocker") ||
			!strings.Contains(s, "unix:///nonexistent/docker.sock") || !strings.Contains(s, "set DOCKER_HOST")):
			t.Errorf("no engine: want a failure naming the host and DOCKER_HOST, got %v:\n%s", err, s)
		}
	}
}

// TestHelperNeedsDocker is the child of TestRequireDockerPolicy; alone it does nothing.
func TestHelperNeedsDocker(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "1" {
		return
	}
	RequireDocker(t)
	t.Log("engine reachable")
}
