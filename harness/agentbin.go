package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
)

const modulePath = "github.com/raftcheck/harness"

// moduleRoot finds the checkout of this module by walking up from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot build the agent: run inside a checkout of %s, or pass --agent-binary PATH", modulePath)
		}
		dir = parent
	}
}

// AgentBinary returns the path of the static Linux agent binary: the given one, or ./cmd/agent
// of this module built with CGO_ENABLED=0 (Go's build cache makes a rebuild of unchanged sources
// cost well under a second).
func AgentBinary(ctx context.Context, given string) (string, error) {
	if given != "" {
		st, err := os.Stat(given)
		if err != nil {
			return "", usagef("--agent-binary: %v", err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", usagef("--agent-binary %s: not an executable file", given)
		}
		return filepath.Abs(given)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "raftcheck", "agent")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build agent: %w", err)
	}
	if upToDate(root, out) {
		return out, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build agent (go build ./cmd/agent in %s): %v\n%s", root, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// gitRevision is the revision the harness binary was built from (Go stamps it into binaries
// built inside a checkout), else the checkout's HEAD; "+dirty" marks uncommitted changes.
func gitRevision(ctx context.Context) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			if modified == "true" {
				rev += "+dirty"
			}
			return rev
		}
	}
	return checkoutRevision(ctx)
}

// checkoutRevision is HEAD of the checkout the harness runs in ("" outside one).
func checkoutRevision(ctx context.Context) string {
	root, err := moduleRoot()
	if err != nil {
		return ""
	}
	rev, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	r := strings.TrimSpace(string(rev))
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		r += "+dirty"
	}
	return r
}

// agentSources are the folders whose files make the agent binary (besides go.mod and go.sum).
var agentSources = []string{"agent", "cmd/agent", "netfault"}

// upToDate reports whether bin is newer than every non-test Go file of the agent and go.mod/go.sum.
// It saves the ~0.6 s a no-op `go build` costs on every run; any doubt means rebuild.
func upToDate(root, bin string) bool {
	st, err := os.Stat(bin)
	if err != nil {
		return false
	}
	built := st.ModTime()
	newer := func(path string) bool {
		fi, err := os.Stat(path)
		return err != nil || !fi.ModTime().Before(built)
	}
	if newer(filepath.Join(root, "go.mod")) || newer(filepath.Join(root, "go.sum")) {
		return false
	}
	for _, dir := range agentSources {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			return false
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			if newer(filepath.Join(root, dir, name)) {
				return false
			}
		}
	}
	return true
}
