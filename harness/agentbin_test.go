package harness

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAgentBinaryStalenessCheck(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-time.Hour)
	write := func(rel string, mtime time.Time) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "agent/a.go", "cmd/agent/main.go", "netfault/n.go"} {
		write(f, old)
	}
	bin := filepath.Join(root, "bin", "agent")
	if upToDate(root, bin) {
		t.Fatal("a missing binary is up to date")
	}
	write("bin/agent", time.Now().Add(-time.Minute))
	if !upToDate(root, bin) {
		t.Fatal("a binary newer than every source is stale")
	}
	write("agent/a_test.go", time.Now())
	if !upToDate(root, bin) {
		t.Fatal("a changed test file made the binary stale")
	}
	write("netfault/n.go", time.Now())
	if upToDate(root, bin) {
		t.Fatal("a changed source file left the binary up to date")
	}
}
