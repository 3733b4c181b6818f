package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/raftcheck/harness/internal/testenv"
)

// These tests run against the real engine. They build testdata/fakeagent once, make its
// image, and remove everything they create (runs are named t<pid>-…; TestMain sweeps them).
var (
	engine     *Client
	engineErr  error
	agentBin   string // the fakeagent binary
	agentImage string // its image
	runPrefix  = fmt.Sprintf("t%d-", os.Getpid())
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx := context.Background()
	engine, engineErr = Connect(ctx)
	if engineErr != nil {
		fmt.Fprintf(os.Stderr, "docker tests will fail (skipped with -short): %v\n", engineErr)
		return m.Run()
	}
	defer engine.Close()
	dir, err := os.MkdirTemp("", "fakeagent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBin = filepath.Join(dir, "agent")
	build := exec.Command("go", "build", "-o", agentBin, "./testdata/fakeagent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakeagent: %v\n%s", err, out)
		return 1
	}
	code := m.Run()

	// Sweep whatever a failed test left, and the test image.
	if _, err := engine.clean(ctx, false, func(l Leftover) bool { return strings.HasPrefix(l.RunID, runPrefix) }); err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		code = 1
	}
	for _, ref := range []string{agentImage, foreignImage} {
		if ref != "" {
			if _, err := engine.api.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
				fmt.Fprintln(os.Stderr, "remove image:", err)
			}
		}
	}
	return code
}

// needEngine skips t under -short, fails it when there is no engine (testenv's policy), and
// ensures the agent image.
func needEngine(t *testing.T) *Client {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no containers")
	}
	if engine == nil {
		testenv.DockerUnavailable(t, engineErr)
	}
	if agentImage == "" {
		ref, err := engine.EnsureImage(context.Background(), ImageSpec{Binary: agentBin})
		if err != nil {
			t.Fatal(err)
		}
		agentImage = ref
		// fakeagent runs `net ARGS…` too, so it also serves as the helper image.
		if _, err := engine.EnsureHelperImage(context.Background(), agentBin); err != nil {
			t.Fatal(err)
		}
	}
	return engine
}

// cluster creates a network and n started fakeagent nodes for this test, removed at cleanup.
func cluster(t *testing.T, n int) (*Network, []*Node) {
	t.Helper()
	c := needEngine(t)
	ctx := context.Background()
	runID := runPrefix + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	t.Cleanup(func() { removeRun(t, c, runID) })
	net, err := c.CreateNetwork(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	specs := make([]NodeSpec, n)
	for i := range specs {
		specs[i] = NodeSpec{Name: fmt.Sprintf("n%d", i+1), IP: net.NodeIP(i + 1), Image: agentImage, Cmd: []string{"serve"}, RunID: runID}
	}
	nodes, err := c.CreateNodes(ctx, net, specs)
	if err != nil {
		t.Fatal(err)
	}
	if err := StartNodes(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		waitDial(t, nd)
	}
	return net, nodes
}

// removeRun removes runID and checks that nothing of it is left.
func removeRun(t *testing.T, c *Client, runID string) {
	t.Helper()
	ctx := context.Background()
	if err := c.RemoveRun(ctx, runID); err != nil {
		t.Errorf("RemoveRun: %v", err)
	}
	left, err := c.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if l.RunID == runID {
			t.Errorf("left after RemoveRun: %+v", l)
		}
	}
}

// hostDial reads the greeting of the node's fakeagent from the host.
func hostDial(nd *Node) (string, error) {
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(nd.IP(), 8500).String(), 500*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

func waitDial(t *testing.T, nd *Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, err := hostDial(nd)
		if err == nil {
			if want := "hello from " + nd.Name() + "\n"; line != want {
				t.Fatalf("node %s answered %q, want %q", nd.Name(), line, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s at %v not answering: %v", nd.Name(), nd.IP(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peerDial dials to's fakeagent from inside from; true if it answered.
func peerDial(t *testing.T, from, to *Node) bool {
	t.Helper()
	_, stderr, code, err := from.Exec(context.Background(), []string{"/agent", "dial", netip.AddrPortFrom(to.IP(), 8500).String()})
	if err != nil {
		t.Fatalf("exec dial: %v", err)
	}
	if code != 0 && stderr == "" {
		t.Fatalf("dial failed without a reason (exit %d)", code)
	}
	return code == 0
}

func showRules(t *testing.T, nd *Node) string {
	t.Helper()
	out, err := nd.NetShow(context.Background())
	if err != nil {
		t.Fatalf("net show on %s: %v", nd.Name(), err)
	}
	return out
}

func state(t *testing.T, nd *Node) string {
	t.Helper()
	s, err := nd.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConnectNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent")
	c, err := Connect(context.Background())
	if err == nil {
		c.Close()
		t.Fatal("Connect to unix:///nonexistent succeeded")
	}
	if !errors.Is(err, ErrNoEngine) {
		t.Errorf("error %v does not wrap ErrNoEngine", err)
	}
	want := "cannot reach the Docker Engine at unix:///nonexistent: is the daemon running? (set DOCKER_HOST to use another)"
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

func TestEnsureImage(t *testing.T) {
	c := needEngine(t)
	ctx := context.Background()

	// Made once: drop it, make it (import), then find it (cache).
	if _, err := c.api.ImageRemove(ctx, agentImage, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	c.images = map[string]imageCache{}
	start := time.Now()
	ref, err := c.EnsureImage(ctx, ImageSpec{Binary: agentBin})
	if err != nil {
		t.Fatal(err)
	}
	imported := time.Since(start)
	start = time.Now()
	ref2, err := c.EnsureImage(ctx, ImageSpec{Binary: agentBin})
	if err != nil {
		t.Fatal(err)
	}
	cached := time.Since(start)
	t.Logf("EnsureImage: import %v, cached %v", imported, cached)
	if ref != agentImage || ref2 != ref || !strings.HasPrefix(ref, ImageRepo+":") || len(ref) != len(ImageRepo)+1+12 {
		t.Errorf("refs %q, %q; want both %q", ref, ref2, agentImage)
	}
	ins, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config == nil || strings.Join(ins.Config.Entrypoint, " ") != "/agent" || ins.Config.Labels[LabelRun] != ImageCacheRun {
		t.Errorf("image config = %+v", ins.Config)
	}

	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		plain:                         "not an executable",
		script:                        "not a Linux ELF",
	}
	if ls, err := exec.LookPath("ls"); err == nil {
		bad[ls] = "dynamically linked" // dynamic on every distribution with a libc
	}
	for path, want := range bad {
		if _, err := c.EnsureImage(ctx, ImageSpec{Binary: path}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("EnsureImage(%s) = %v, want error containing %q", path, err, want)
		}
	}
}

func TestClusterBasics(t *testing.T) {
	net, nodes := cluster(t, 3)
	ctx := context.Background()
	for i, nd := range nodes {
		if want := net.NodeIP(i + 1); nd.IP() != want {
			t.Errorf("node %s IP %v, want %v", nd.Name(), nd.IP(), want)
		}
		if s := state(t, nd); s != "running" {
			t.Errorf("node %s state %q", nd.Name(), s)
		}
	}
	if !net.Subnet.Contains(net.Gateway) || net.Subnet.Bits() != 24 || !SubnetPool.Contains(net.Subnet.Addr()) {
		t.Errorf("network %+v", net)
	}

	out, errOut, code, err := nodes[0].Exec(ctx, []string{"/agent", "echo", "a", "b"})
	if err != nil || code != 0 || out != "a b\n" || errOut != "to stderr\n" {
		t.Errorf("exec echo = %q, %q, %d, %v", out, errOut, code, err)
	}
	if _, _, code, err := nodes[0].Exec(ctx, []string{"/agent", "dial", "127.0.0.1:1"}); err != nil || code != 1 {
		t.Errorf("exec failing dial = exit %d, %v; want exit 1", code, err)
	}
	if !peerDial(t, nodes[0], nodes[1]) {
		t.Error("n1 cannot reach n2 before any fault")
	}

	// Pause and unpause.
	if err := nodes[1].Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if s := state(t, nodes[1]); s != "paused" {
		t.Errorf("state after Pause = %q", s)
	}
	if _, err := hostDial(nodes[1]); err == nil {
		t.Error("paused node answered")
	}
	if err := nodes[1].Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	waitDial(t, nodes[1])

	// Logs hold the greeting line.
	var logs strings.Builder
	if err := nodes[0].Logs(ctx, &logs); err != nil || !strings.Contains(logs.String(), "listening") {
		t.Errorf("logs = %q, %v", logs.String(), err)
	}
}

func TestNetFault(t *testing.T) {
	_, nodes := cluster(t, 3)
	ctx := context.Background()
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	if err := n1.NetFault(ctx, []string{"probe"}); err != nil {
		t.Fatalf("probe: %v", err)
	}
	// n1 drops packets from n2: n2 cannot reach n1, n3 still can.
	if err := n1.NetFault(ctx, []string{"set", "--drop-in", n2.IP().String()}); err != nil {
		t.Fatal(err)
	}
	if got, want := showRules(t, n1), "--drop-in "+n2.IP().String(); got != want {
		t.Errorf("net show = %q, want %q", got, want)
	}
	if peerDial(t, n2, n1) {
		t.Error("n2 reached n1 through drop-in")
	}
	if !peerDial(t, n3, n1) {
		t.Error("n3 cannot reach n1: the drop is too wide")
	}
	if _, err := hostDial(n1); err != nil {
		t.Errorf("host cannot reach n1: %v", err)
	}
	if err := n1.NetFault(ctx, []string{"heal"}); err != nil {
		t.Fatal(err)
	}
	if !peerDial(t, n2, n1) {
		t.Error("n2 cannot reach n1 after heal")
	}

	// Bad arguments come back with the command's reason.
	err := n1.NetFault(ctx, []string{"set", "--loss", "300"})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("bad set = %v, want the reason from stderr", err)
	}

	// A paused node gets its rules through a helper container.
	if err := n1.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n1.NetFault(ctx, []string{"set", "--drop-in", n3.IP().String()}); err != nil {
		t.Fatalf("NetFault on paused node: %v", err)
	}
	err = n1.NetFault(ctx, []string{"set", "--bogus"})
	if err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Errorf("bad set through helper = %v, want the helper's stderr", err)
	}
	if err := n1.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	if peerDial(t, n3, n1) {
		t.Error("n3 reached n1 through the drop set while paused")
	}
	if !peerDial(t, n2, n1) {
		t.Error("n2 cannot reach n1")
	}

	// Rules are gone after a restart (new network namespace); the IP stays.
	if err := n1.Restart(ctx, "SIGTERM", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDial(t, n1)
	if got := showRules(t, n1); got != "(healed)" {
		t.Errorf("net show after restart = %q, want (healed)", got)
	}
	if !peerDial(t, n3, n1) {
		t.Error("n3 cannot reach n1 after restart")
	}

	// A stopped node has no namespace.
	if err := n3.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n3.NetFault(ctx, []string{"heal"}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("NetFault on stopped node = %v", err)
	}
}

func TestStopSignals(t *testing.T) {
	_, nodes := cluster(t, 3)
	ctx := context.Background()
	tests := []struct {
		node     *Node
		stop     func() error
		exitCode int
		log      string
	}{
		{nodes[0], func() error { return nodes[0].Stop(ctx, "SIGTERM", 5*time.Second) }, 0, "got terminated"},
		{nodes[1], func() error { return nodes[1].Stop(ctx, "SIGINT", 5*time.Second) }, 0, "got interrupt"},
		{nodes[2], func() error { return nodes[2].Kill(ctx) }, 137, ""},
	}
	for _, tt := range tests {
		if err := tt.stop(); err != nil {
			t.Fatalf("stop %s: %v", tt.node.Name(), err)
		}
		if s := state(t, tt.node); s != "exited" {
			t.Errorf("%s state = %q right after stop", tt.node.Name(), s)
		}
		if code, err := tt.node.ExitCode(ctx); err != nil || code != tt.exitCode {
			t.Errorf("%s exit code = %d, %v; want %d", tt.node.Name(), code, err, tt.exitCode)
		}
		var logs strings.Builder
		if err := tt.node.Logs(ctx, &logs); err != nil || !strings.Contains(logs.String(), tt.log) {
			t.Errorf("%s logs = %q, %v; want %q", tt.node.Name(), logs.String(), err, tt.log)
		}
	}
	// Stopping a stopped node is a no-op.
	if err := nodes[2].Stop(ctx, "SIGTERM", time.Second); err != nil {
		t.Errorf("Stop of a stopped node: %v", err)
	}

	// An ignored signal escalates to SIGKILL after the timeout.
	n := nodes[0]
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitDial(t, n)
	start := time.Now()
	if err := n.Stop(ctx, "SIGHUP", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Stop(SIGHUP) returned after %v, before the timeout", took)
	}
	if code, _ := n.ExitCode(ctx); code != 137 {
		t.Errorf("exit after escalation = %d, want 137", code)
	}

	// SIGTERM to a paused node: the engine thaws it so the signal arrives.
	n = nodes[1]
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitDial(t, n)
	if err := n.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(ctx, "SIGTERM", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := n.ExitCode(ctx); code != 0 {
		t.Errorf("exit of paused node after SIGTERM = %d, want 0", code)
	}

	// Restart keeps the IP.
	n = nodes[2]
	if err := n.Restart(ctx, "SIGKILL", 0); err != nil {
		t.Fatal(err)
	}
	waitDial(t, n)

	// Signal returns at once; the process exits on its own.
	if err := n.Signal(ctx, "SIGINT"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); state(t, n) != "exited"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node did not exit after SIGINT")
		}
	}
	if err := n.Signal(ctx, "SIGINT"); err == nil {
		t.Error("Signal to an exited node succeeded")
	}
}

var foreignImage string

// TestForeignImage runs a node whose image knows nothing of the harness: faults still apply.
func TestForeignImage(t *testing.T) {
	c := needEngine(t)
	ctx := context.Background()
	bin, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := rootfsTar("bin/other", bin) // no /agent
	if err != nil {
		t.Fatal(err)
	}
	foreignImage = "harness-foreign-test:" + strings.TrimSuffix(runPrefix, "-")
	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, foreignImage,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/bin/other"]`, "LABEL " + LabelRun + "=" + runPrefix + "foreign"}})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	runID := runPrefix + "foreign"
	t.Cleanup(func() { removeRun(t, c, runID) })
	net, err := c.CreateNetwork(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := c.CreateNode(ctx, net, NodeSpec{Name: "f1", IP: net.NodeIP(1), Image: foreignImage, RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitDial(t, nd)
	if err := nd.NetFault(ctx, []string{"set", "--drop-in", "10.9.9.9"}); err != nil {
		t.Fatalf("NetFault on foreign image: %v", err)
	}
	if got := showRules(t, nd); got != "--drop-in 10.9.9.9" {
		t.Errorf("show on foreign node = %q", got)
	}
	// The rules live in the node's own namespace: the node sees them too.
	out, _, code, err := nd.Exec(ctx, []string{"/bin/other", "net", "show"})
	if err != nil || code != 0 || strings.TrimSpace(out) != "--drop-in 10.9.9.9" {
		t.Errorf("show inside the foreign node = %q, %d, %v", out, code, err)
	}
}

func TestWipeReplacesTheContainerKeepingAddressAndLogs(t *testing.T) {
	_, nodes := cluster(t, 2)
	ctx := context.Background()
	nd := nodes[1]
	old := nd.ID()
	if err := nd.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nd.Wipe(ctx); err != nil {
		t.Fatal(err)
	}
	if nd.ID() == old {
		t.Fatal("Wipe kept the old container")
	}
	if s := state(t, nd); s != "created" {
		t.Errorf("state after Wipe = %q, want created (not started)", s)
	}
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitDial(t, nd)
	if !peerDial(t, nodes[0], nd) {
		t.Error("n1 cannot reach the wiped n2 at its old address")
	}
	var logs strings.Builder
	if err := nd.Logs(ctx, &logs); err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); strings.Count(s, "listening") < 2 || !strings.Contains(s, "wiped") {
		t.Errorf("logs after wipe should hold both containers' lines and the wipe marker:\n%s", s)
	}
}

// TestReplaceKeepsNameAddressAndData: a stopped node gets a new container with another command
// line (another release's) and the same data dir; a running node is refused.
func TestReplaceKeepsNameAddressAndData(t *testing.T) {
	c := needEngine(t)
	_, nodes := cluster(t, 2)
	ctx := context.Background()
	nd := nodes[1]
	if err := nodes[0].Replace(ctx, agentImage, []string{"serve"}); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("Replace of a running node: %v", err)
	}
	if err := nd.Stop(ctx, "TERM", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := rootfsTar("data/raft/state", []byte("term 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.api.CopyToContainer(ctx, nd.ID(), "/", bytes.NewReader(data), container.CopyToContainerOptions{}); err != nil {
		t.Fatal(err)
	}
	old := nd.ID()
	if err := nd.Replace(ctx, agentImage, []string{"serve", "release-b"}); err != nil {
		t.Fatal(err)
	}
	if nd.ID() == old || state(t, nd) != "created" || strings.Join(nd.Cmd(), " ") != "serve release-b" || nd.Image() != agentImage {
		t.Fatalf("after Replace: id %s (was %s), state %s, cmd %v, image %s", nd.ID(), old, state(t, nd), nd.Cmd(), nd.Image())
	}
	rc, _, err := c.api.CopyFromContainer(ctx, nd.ID(), "/data/raft/state")
	if err != nil {
		t.Fatalf("the new container has no /data/raft/state: %v", err)
	}
	tr := tar.NewReader(rc)
	_, err = tr.Next()
	content, _ := io.ReadAll(tr)
	rc.Close()
	if err != nil || string(content) != "term 7\n" {
		t.Fatalf("/data/raft/state in the new container: %q, %v", content, err)
	}
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitDial(t, nd)
	if !peerDial(t, nodes[0], nd) {
		t.Error("n1 cannot reach the replaced n2 at its old address")
	}
	var logs strings.Builder
	if err := nd.Logs(ctx, &logs); err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); strings.Count(s, "listening") < 2 || !strings.Contains(s, "replaced: image "+agentImage+", data dir kept") {
		t.Errorf("logs after Replace should hold both containers' lines and the marker:\n%s", s)
	}
}
