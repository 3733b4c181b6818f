package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the path of this project's Go module.
const ModulePath = "github.com/raftcheck/harness"

// ModuleRoot finds the checkout of this module by walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot build the agent or the fault helper: run inside a checkout of %s", ModulePath)
		}
		dir = parent
	}
}

// CacheDir is the folder of the harness's builds: the user's cache directory/raftcheck.
func CacheDir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "raftcheck")
}

// ownBinary is a static Linux program of this module and the folders its sources are in.
type ownBinary struct {
	pkg     string   // ./cmd/…
	out     string   // file name in CacheDir
	sources []string // folders whose non-test Go files make it (besides go.mod and go.sum)
}

var (
	agentBinary  = ownBinary{pkg: "./cmd/agent", out: "agent", sources: []string{"agent", "cmd/agent"}}
	helperBinary = ownBinary{pkg: "./cmd/netfault", out: "netfault", sources: []string{"netfault", "cmd/netfault"}}
)

// AgentBinary builds ./cmd/agent of this checkout (CGO off) into the cache and returns its path.
func AgentBinary(ctx context.Context) (string, error) { return agentBinary.build(ctx) }

// HelperBinary builds ./cmd/netfault, the network-fault helper every target's faults go through.
func HelperBinary(ctx context.Context) (string, error) { return helperBinary.build(ctx) }

// build runs go build unless the cached binary is newer than every source (a no-op build still
// costs ~0.6 s on every run).
func (b ownBinary) build(ctx context.Context) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(CacheDir(), b.out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", b.pkg, err)
	}
	if upToDate(root, out, b.sources) {
		return out, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, b.pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s (go build %s in %s): %v\n%s", b.out, b.pkg, root, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// upToDate reports whether bin is newer than every non-test Go file in the source folders and
// than go.mod/go.sum. Any doubt means rebuild.
func upToDate(root, bin string, sources []string) bool {
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
	for _, dir := range sources {
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
