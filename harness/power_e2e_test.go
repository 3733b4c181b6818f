package harness

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/results"
)

// The finding of docs/findings/consul-power-node-id, kept as a test: with nothing unsynced
// surviving, a power loss in a Consul server's first seconds empties its node-id and the server
// never starts again. The run cannot be valid; a node log says why.
func TestConsulPowerLossSoonAfterStart(t *testing.T) {
	o := consulRun(t)
	o.Nemesis = []string{"power"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	out, _ := Run(ctx, o, &log)
	if out == nil {
		t.Fatalf("no run folder\n%s", log.String())
	}
	if out.Results.Valid == checker.Valid {
		t.Fatalf("Consul under early power losses was valid (%s): has it started to fsync node-id?", out.Dir)
	}
	var found bool
	logs, _ := filepath.Glob(filepath.Join(out.Dir, results.NodesDir, "*.log"))
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		found = found || strings.Contains(string(b), "failed to setup node ID: NodeID in /data/node-id is invalid")
	}
	if !found {
		t.Fatalf("no node log of %s says its node-id was lost\n%s", out.Dir, DescribeVerdict(out.Results))
	}
	assertRunRemoved(t, o.Store)
}
