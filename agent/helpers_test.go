package agent

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"
)

// testConfig is a fast-timing configuration on 127.0.0.1 with free ports.
func testConfig(t testing.TB, name, dir string) *Config {
	t.Helper()
	c := DefaultConfig()
	c.Server = true
	c.NodeName = name
	c.DataDir = filepath.Join(dir, name)
	c.BindAddr, c.ClientAddr = "127.0.0.1", "127.0.0.1"
	c.HTTPPort, c.SerfLANPort, c.ServerPort = 0, 0, 0
	c.RaftHeartbeatTimeout = 300 * time.Millisecond
	c.RaftElectionTimeout = 300 * time.Millisecond
	c.RaftLeaderLeaseTimeout = 150 * time.Millisecond
	c.GossipProfile = "local"
	c.RetryInterval = 200 * time.Millisecond
	c.ReconcileInterval = time.Second
	c.HoldTimeout = 3 * time.Second
	return c
}

// cluster is a set of in-process agents sharing a temp dir; logs go to one file that is
// printed when the test fails.
type cluster struct {
	t      testing.TB
	dir    string
	logf   *os.File
	mu     sync.Mutex
	agents map[string]*Agent
	cfgs   map[string]*Config
	ports  map[string][3]int // http, serf, raft: fixed per name so restarts keep addresses
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "agents.log"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, logf: f, agents: map[string]*Agent{}, cfgs: map[string]*Config{}, ports: map[string][3]int{}}
	t.Cleanup(func() {
		c.mu.Lock()
		agents := c.agents
		c.mu.Unlock()
		for _, a := range agents {
			a.Shutdown()
		}
		if t.Failed() {
			f.Seek(0, 0)
			sc := bufio.NewScanner(f)
			var lines []string
			for sc.Scan() {
				if !strings.Contains(sc.Text(), "memberlist") {
					lines = append(lines, sc.Text())
				}
			}
			if len(lines) > 150 {
				lines = lines[len(lines)-150:]
			}
			t.Logf("agent logs (tail):\n%s", strings.Join(lines, "\n"))
		}
		f.Close()
	})
	return c
}

// start starts (or restarts, reusing the data dir) an agent named name. A first start whose
// ports were taken meanwhile (freePort's port is free only when it answers: a busy machine's
// outgoing connections draw from the same ephemeral range) tries fresh ports.
func (c *cluster) start(name string, mutate func(*Config)) *Agent {
	c.t.Helper()
	for try := 1; ; try++ {
		cfg := testConfig(c.t, name, c.dir)
		cfg.LogOutput = c.logf
		c.mu.Lock()
		p, restart := c.ports[name]
		if !restart {
			p = [3]int{freePort(c.t), freePort(c.t), freePort(c.t)}
		}
		c.mu.Unlock()
		cfg.HTTPPort, cfg.SerfLANPort, cfg.ServerPort = p[0], p[1], p[2]
		if mutate != nil {
			mutate(cfg)
		}
		a, err := New(cfg)
		if err != nil && !restart && try < 5 && strings.Contains(err.Error(), "address already in use") {
			c.t.Logf("start %s: %v; again on other ports", name, err)
			continue
		}
		if err != nil {
			c.t.Fatalf("start %s: %v", name, err)
		}
		c.mu.Lock()
		c.ports[name] = p
		c.agents[name], c.cfgs[name] = a, cfg
		c.mu.Unlock()
		return a
	}
}

func (c *cluster) get(name string) *Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents[name]
}

func (c *cluster) running() []*Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Agent
	for _, a := range c.agents {
		select {
		case <-a.ShutdownCh():
		default:
			out = append(out, a)
		}
	}
	return out
}

// leaders returns the running agents that consider themselves leader.
func (c *cluster) leaders() []*Agent {
	var out []*Agent
	for _, a := range c.running() {
		if a.IsLeader() {
			out = append(out, a)
		}
	}
	return out
}

// waitLeader waits until exactly one running agent is leader and all running agents agree.
func (c *cluster) waitLeader(timeout time.Duration) *Agent {
	c.t.Helper()
	var l *Agent
	waitFor(c.t, timeout, "one agreed leader", func() bool {
		ls := c.leaders()
		if len(ls) != 1 {
			return false
		}
		l = ls[0]
		for _, a := range c.running() {
			if addr, _ := a.raft.LeaderWithID(); string(addr) != l.RaftAddr() {
				return false
			}
		}
		return true
	})
	return l
}

func (c *cluster) waitVoters(a *Agent, n int, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, fmt.Sprintf("%d voters", n), func() bool { return voters(a) == n })
}

func voters(a *Agent) int {
	f := a.raft.GetConfiguration()
	if f.Error() != nil {
		return -1
	}
	n := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// never fails if cond becomes true within d.
func never(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpected: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func client(t testing.TB, a *Agent) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: a.HTTPAddr(), Transport: &http.Transport{MaxIdleConnsPerHost: 64}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serfAddr is the gossip address of a node of this cluster (running or not).
func (c *cluster) serfAddr(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", c.ports[name][1])
}

// stopAll shuts every running agent down without leaving (like a crash or SIGTERM).
func (c *cluster) stopAll() {
	for _, a := range c.running() {
		a.Shutdown()
	}
}

// startExpect3 starts n1..n3 with -bootstrap-expect=3 joined through n1 and waits for a leader.
func startExpect3(t testing.TB, mutate func(*Config)) (*cluster, *Agent) {
	t.Helper()
	c := newCluster(t)
	n1 := c.start("n1", func(cfg *Config) {
		cfg.BootstrapExpect = 3
		if mutate != nil {
			mutate(cfg)
		}
	})
	for _, n := range []string{"n2", "n3"} {
		c.start(n, func(cfg *Config) {
			cfg.BootstrapExpect = 3
			cfg.RetryJoin = []string{n1.SerfAddr()}
			if mutate != nil {
				mutate(cfg)
			}
		})
	}
	l := c.waitLeader(15 * time.Second)
	c.waitVoters(l, 3, 10*time.Second)
	return c, l
}

func follower(c *cluster) *Agent {
	for _, a := range c.running() {
		if !a.IsLeader() {
			return a
		}
	}
	return nil
}
