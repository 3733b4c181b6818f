package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileDurably(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node-id")
	for _, v := range []string{"one", "two"} {
		if err := writeFileDurably(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != v {
			t.Fatalf("read back %q, %v; want %q", b, err, v)
		}
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}
