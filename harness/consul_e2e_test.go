package harness

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/docker"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/targets"
)

// End-to-end tests on a Docker cluster of real Consul (targets.DefaultConsulVersion, built from
// its Go module on first use and cached; .ci/run builds it first with `harness build --target
// consul`). Every fault goes through Docker and the netfault helper, never through the target.

func consulRun(t *testing.T) Options {
	t.Helper()
	o := shortRun(t)
	o.Target = "consul"
	o.TimeLimit = 12 * time.Second
	o.NemesisInterval = 3 * time.Second
	return o
}

// consulFaultRun is consulRun for one fault kind. Power losses wait until the servers are older
// than the kernel's writeback delay and let unsynced data that old survive: Consul writes its
// node-id without fsync, and a power loss in its first ~35 s leaves it empty, so that the server
// never starts again (docs/findings/consul-power-node-id; TestConsulPowerLossSoonAfterStart).
func consulFaultRun(t *testing.T, fault string) Options {
	o := consulRun(t)
	if fault == nemesis.FaultPower {
		o.PowerWriteback, o.NemesisInterval, o.TimeLimit = 30*time.Second, 40*time.Second, 45*time.Second
	}
	return o
}

func TestConsulEachFaultKindIsValid(t *testing.T) {
	eachFaultKindValid(t, consulFaultRun, func(t *testing.T, fault string, out *Outcome) {
		var ti results.TestInfo
		if err := results.ReadJSON(out.Dir+"/"+results.TestFile, &ti); err != nil {
			t.Fatal(err)
		}
		if ti.TargetName() != "consul@"+targets.DefaultConsulVersion || ti.TargetVersion != "Consul v"+targets.DefaultConsulVersion || !strings.Contains(strings.Join(ti.NodeCommands["n1"], " "), "raft_multiplier = 1") {
			t.Errorf("test.json does not name the target: %q %q %v", ti.TargetName(), ti.TargetVersion, ti.NodeCommands["n1"])
		}
		if !hasFaultStart(t, out.Dir, fault) {
			t.Errorf("no %s fault was started in %s", fault, out.Dir)
		}
	})
}

// TestConsulStaleReadsAreCaught is the negative control on real Consul: ?stale reads may be
// served by any server from its own state, so under partitions they must come out invalid.
func TestConsulStaleReadsAreCaught(t *testing.T) {
	o := consulRun(t)
	o.ReadMode = "stale"
	o.Nemesis = []string{"partition"}
	o.PartitionShapes = []string{"random-node", "isolate-leader"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	out, err := Run(ctx, o, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if out.Results.Valid != checker.Invalid || out.Results.Checkers[checker.NameLinearizable].Valid != checker.Invalid {
		t.Fatalf("stale reads on Consul under partitions: verdict %v, want invalid from the linearizability checker (%s)\n%s",
			out.Results.Valid, out.Dir, DescribeVerdict(out.Results))
	}
	assertRunRemoved(t, o.Store)
}

// TestConsulFromALocalImage runs --agent-image: an image already in the engine (here the imported
// Consul image under another name, as a user's own image would be).
func TestConsulFromALocalImage(t *testing.T) {
	o := consulRun(t)
	ctx := context.Background()
	p, err := Build(ctx, o, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := docker.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	tag := "harness-test-consul:" + NewRunID()
	if err := dc.TagImage(ctx, p.Image, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.RemoveImageTag(context.Background(), tag) })
	o.AgentImage = tag
	o.TimeLimit = 4 * time.Second
	out := runValidOutcome(t, o)
	var ti results.TestInfo
	if err := results.ReadJSON(out.Dir+"/"+results.TestFile, &ti); err != nil {
		t.Fatal(err)
	}
	if ti.AgentImage != tag {
		t.Errorf("test.json agent_image = %q, want %q", ti.AgentImage, tag)
	}

	o.AgentImage = "harness-test-no-such-image:1"
	if _, err := Run(ctx, o, &bytes.Buffer{}); err == nil || !IsUsage(err) || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("a missing image: %v, want a usage error", err)
	}
}

func hasFaultStart(t *testing.T, dir, fault string) bool {
	t.Helper()
	b, err := os.ReadFile(dir + "/" + results.HistoryFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), `"f":"`+fault+`","value":{"event":"start"`)
}
