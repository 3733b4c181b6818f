package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

// fakeCluster records every call its nodes receive and tracks their state.
type fakeCluster struct {
	mu      sync.Mutex
	nodes   []*fakeNode
	leader  string
	removed map[string]bool
	calls   []string
	fail    map[string]error // call prefix ("n1 kill") → error to return
	// dieOnStart names nodes whose process exits by itself as soon as it is started.
	dieOnStart map[string]bool
	onCall     func(call string)
	// stuck lists nodes that never rejoin after a switch (Rejoined says no).
	stuck map[string]bool
}

type fakeNode struct {
	c       *fakeCluster
	name    string
	ip      netip.Addr
	running bool
	paused  bool
	net     []string // last NetFault args
	release string   // what SwitchRelease last gave it
}

func newFakeCluster(n int) *fakeCluster {
	c := &fakeCluster{leader: "n1", removed: map[string]bool{}, fail: map[string]error{}, stuck: map[string]bool{}}
	for i := n; i >= 1; i-- { // reverse order: New must sort
		c.nodes = append(c.nodes, &fakeNode{c: c, name: fmt.Sprintf("n%d", i), ip: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), running: true})
	}
	return c
}

func (c *fakeCluster) call(s string) error {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	on := c.onCall
	var err error
	for prefix, e := range c.fail {
		if strings.HasPrefix(s, prefix) {
			err = e
		}
	}
	c.mu.Unlock()
	if on != nil {
		on(s)
	}
	return err
}

func (c *fakeCluster) node(name string) *fakeNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (c *fakeCluster) callLog() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

func (c *fakeCluster) Nodes() []Node {
	var out []Node
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

func (c *fakeCluster) Leader(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader, nil
}

func (c *fakeCluster) RemovePeer(_ context.Context, node string) error {
	if err := c.call(node + " remove-peer"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed[node] = true
	return nil
}

func (c *fakeCluster) Join(_ context.Context, node string) error {
	if err := c.call(node + " join"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.removed, node)
	return nil
}

func (c *fakeCluster) Leave(_ context.Context, node string) error {
	return c.call(node + " leave")
}

func (c *fakeCluster) SwitchRelease(_ context.Context, node, release string) error {
	n := c.node(node)
	if running, _, _ := n.state(); running {
		return c.call(node + " switch while running!")
	}
	return n.do("switch "+release, func() { n.release = release })
}

// Rejoined: a running node that is not stuck and not removed has rejoined.
func (c *fakeCluster) Rejoined(_ context.Context, node string) (bool, error) {
	running, _, _ := c.node(node).state()
	c.mu.Lock()
	defer c.mu.Unlock()
	return running && !c.stuck[node] && !c.removed[node], nil
}

func (c *fakeCluster) Version(_ context.Context, node string) (string, error) {
	n := c.node(node)
	c.mu.Lock()
	defer c.mu.Unlock()
	return "v-" + n.release, nil
}

func (n *fakeNode) Name() string   { return n.name }
func (n *fakeNode) IP() netip.Addr { return n.ip }

func (n *fakeNode) do(call string, f func()) error {
	if err := n.c.call(n.name + " " + call); err != nil {
		return err
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	f()
	return nil
}

func (n *fakeNode) Kill(context.Context) error {
	// The engine thaws a paused container to deliver the signal.
	return n.do("kill", func() { n.running, n.paused = false, false; n.net = nil })
}
func (n *fakeNode) Start(context.Context) error {
	// dieOnStart: the engine starts the container and its process exits at once by itself.
	return n.do("start", func() { n.running = !n.c.dieOnStart[n.name] })
}
func (n *fakeNode) Wipe(context.Context) error {
	return n.do("wipe", func() { n.running = false; n.net = nil })
}
func (n *fakeNode) Stop(_ context.Context, sig string, _ time.Duration) error {
	return n.do("stop "+sig, func() { n.running, n.paused = false, false; n.net = nil })
}
func (n *fakeNode) Exited(context.Context) (bool, error) {
	running, _, _ := n.state()
	return !running, nil
}
func (n *fakeNode) LoseUnsynced(context.Context) (any, error) {
	var lost any
	err := n.do("lose-unsynced", func() {
		if n.running {
			lost = "while running!"
		} else {
			lost = map[string]int{"unsynced_files": 1}
		}
	})
	return lost, err
}
func (n *fakeNode) Pause(context.Context) error { return n.do("pause", func() { n.paused = true }) }
func (n *fakeNode) Unpause(context.Context) error {
	return n.do("unpause", func() { n.paused = false })
}
func (n *fakeNode) NetFault(_ context.Context, args []string) error {
	if running, _, _ := n.state(); !running {
		return n.c.call(n.name + " net on a stopped node")
	}
	return n.do("net "+strings.Join(args, " "), func() { n.net = slices.Clone(args) })
}

func (n *fakeNode) state() (running, paused bool, net []string) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.running, n.paused, slices.Clone(n.net)
}

var errBoom = errors.New("boom")

// recording returns a recorder into a buffer and a function reading the nemesis events back.
func recording(t *testing.T) (*history.Recorder, func() []history.Op) {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	rec := history.NewRecorder(lockedWriter{&mu, &buf})
	return rec, func() []history.Op {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		ops, err := history.Read(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		return ops
	}
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

// event decodes a nemesis line's value.
func event(t *testing.T, op history.Op) history.NemesisEvent {
	t.Helper()
	var ev history.NemesisEvent
	if err := json.Unmarshal(op.Value, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}
