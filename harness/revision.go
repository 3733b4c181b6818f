package harness

import (
	"bytes"
	"context"
	"os/exec"
	"runtime/debug"
	"strings"

	"github.com/raftcheck/harness/targets"
)

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
	root, err := targets.ModuleRoot()
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
