package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestBootstrapExpectWaitsForThree(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c := newCluster(t)
	expect := func(cfg *Config) { cfg.BootstrapExpect = 3; cfg.RetryJoin = []string{c.serfAddr("n1")} }
	c.start("n1", func(cfg *Config) { cfg.BootstrapExpect = 3 })
	c.start("n2", expect)
	waitFor(t, 5*time.Second, "two members", func() bool { return c.get("n1").serf.NumNodes() == 2 })
	never(t, 3*time.Second, "a leader with only two of three expected servers", func() bool { return len(c.leaders()) > 0 })
	c.start("n3", expect)
	l := c.waitLeader(10 * time.Second)
	c.waitVoters(l, 3, 5*time.Second)
	never(t, time.Second, "two leaders", func() bool { return len(c.leaders()) > 1 })
}

func TestNoBootstrapFlagNeverElects(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c := newCluster(t)
	c.start("n1", nil)
	for _, n := range []string{"n2", "n3"} {
		c.start(n, func(cfg *Config) { cfg.RetryJoin = []string{c.serfAddr("n1")} })
	}
	waitFor(t, 5*time.Second, "three members", func() bool { return c.get("n1").serf.NumNodes() == 3 })
	never(t, 3*time.Second, "a leader without any bootstrap", func() bool { return len(c.leaders()) > 0 })

	// Manual bootstrap: PUT /v1/operator/raft/bootstrap on one node.
	req, _ := http.NewRequest(http.MethodPut, "http://"+c.get("n2").HTTPAddr()+"/v1/operator/raft/bootstrap", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("manual bootstrap: %v %v", err, resp)
	}
	resp.Body.Close()
	l := c.waitLeader(10 * time.Second)
	if l.cfg.NodeName != "n2" {
		t.Logf("leader is %s (n2 bootstrapped, then leadership may move)", l.cfg.NodeName)
	}
	c.waitVoters(l, 3, 10*time.Second)
	// A second manual bootstrap is refused: there is Raft state now.
	req, _ = http.NewRequest(http.MethodPut, "http://"+c.get("n1").HTTPAddr()+"/v1/operator/raft/bootstrap", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("second bootstrap: want 409, got %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestBootstrapSingleNodeGrowsToThree(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c := newCluster(t)
	n1 := c.start("n1", func(cfg *Config) { cfg.Bootstrap = true })
	c.waitLeader(5 * time.Second)
	if _, err := client(t, n1).KV().Put(&api.KVPair{Key: "early", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n2", "n3"} {
		c.start(n, func(cfg *Config) { cfg.RetryJoin = []string{n1.SerfAddr()} })
	}
	c.waitVoters(n1, 3, 10*time.Second)
	// A second bootstrap-mode server is refused by the leader. (Started for real it would
	// elect itself and could capture the others, as in Consul: only one -bootstrap node.)
	n1.addServer(serverInfo{Name: "n4", ID: "00000000-0000-4000-8000-000000000004", DC: "dc1", Addr: "127.0.0.1:1", Bootstrap: true, Status: 1})
	if v := voters(n1); v != 3 {
		t.Fatalf("second bootstrap-mode server was added: %d voters", v)
	}
	kv, _, err := client(t, c.get("n3")).KV().Get("early", &api.QueryOptions{RequireConsistent: true})
	if err != nil || kv == nil || string(kv.Value) != "1" {
		t.Fatalf("read through n3: %v %v", kv, err)
	}
}

// keyWriter writes keys from 4 goroutines, each through the running agents in turn, until
// stopped. It remembers when each acknowledged write was invoked, so a test can wait until
// writes begun after some moment were acknowledged.
type keyWriter struct {
	mu    sync.Mutex
	acked map[string]time.Time // key → when its write was invoked
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// startKeyWriter starts the writers; they stop at finish or, if the test fails first, at its end.
func startKeyWriter(t *testing.T, c *cluster) *keyWriter {
	kw := &keyWriter{acked: map[string]time.Time{}, stop: make(chan struct{})}
	t.Cleanup(kw.halt)
	for w := 0; w < 4; w++ {
		kw.wg.Add(1)
		go func(w int) {
			defer kw.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-kw.stop:
					return
				default:
				}
				as := c.running()
				if len(as) == 0 {
					return
				}
				a := as[i%len(as)]
				cl, _ := api.NewClient(&api.Config{Address: a.HTTPAddr()})
				key := fmt.Sprintf("w%d/%d", w, i)
				invoked := time.Now()
				if _, err := cl.KV().Put(&api.KVPair{Key: key, Value: []byte(key)}, nil); err == nil {
					kw.mu.Lock()
					kw.acked[key] = invoked
					kw.mu.Unlock()
				}
			}
		}(w)
	}
	return kw
}

// ackedSince counts the acknowledged writes invoked at or after since.
func (kw *keyWriter) ackedSince(since time.Time) int {
	kw.mu.Lock()
	defer kw.mu.Unlock()
	n := 0
	for _, at := range kw.acked {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// waitAcked waits until n writes invoked at or after since were acknowledged.
func (kw *keyWriter) waitAcked(t *testing.T, n int, since time.Time, what string) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d writes acknowledged %s", n, what), func() bool { return kw.ackedSince(since) >= n })
}

func (kw *keyWriter) halt() {
	kw.once.Do(func() { close(kw.stop) })
	kw.wg.Wait()
}

// finish stops the writers, waits for them, and returns the acknowledged keys.
func (kw *keyWriter) finish() map[string]bool {
	kw.halt()
	acked := map[string]bool{}
	for k := range kw.acked {
		acked[k] = true
	}
	return acked
}

func checkKeys(t *testing.T, a *Agent, acked map[string]bool) {
	t.Helper()
	pairs, _, err := client(t, a).KV().List("w", &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	have := map[string]bool{}
	for _, p := range pairs {
		have[p.Key] = true
	}
	lost := 0
	for k := range acked {
		if !have[k] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
	t.Logf("all %d acknowledged writes present (%d keys stored)", len(acked), len(pairs))
}

func TestLeaderKilledNoAckedWriteLost(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, nil)
	kw := startKeyWriter(t, c)
	kw.waitAcked(t, 50, time.Time{}, "before the kill")
	killed := time.Now()
	l.Shutdown()
	nl := c.waitLeader(10 * time.Second)
	elected := time.Now()
	t.Logf("new leader %s after %s", nl.cfg.NodeName, elected.Sub(killed).Round(time.Millisecond))
	// A write invoked after the new leader was seen is committed in its term (the old one is dead).
	kw.waitAcked(t, 50, elected, "under the new leader")
	checkKeys(t, nl, kw.finish())
}

// TestGracefulLeaveAllRecovers documents the modern outcome of #993: servers that leave
// one after another shrink the configuration 3→2→1; the last keeps {itself}, so after a
// restart of all three it elects itself and re-adds the others. Data is intact.
func TestGracefulLeaveAllRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, nil)
	if _, err := client(t, l).KV().Put(&api.KVPair{Key: "w/before", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if err := c.get(n).Leave(); err != nil {
			t.Fatalf("leave %s: %v", n, err)
		}
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		c.start(n, func(cfg *Config) {
			cfg.BootstrapExpect = 3
			cfg.RetryJoin = []string{c.serfAddr("n1"), c.serfAddr("n2"), c.serfAddr("n3")}
		})
	}
	nl := c.waitLeader(15 * time.Second)
	if nl.cfg.NodeName != "n3" {
		t.Errorf("leader %s, want n3 (the last to leave keeps a one-server configuration)", nl.cfg.NodeName)
	}
	c.waitVoters(nl, 3, 10*time.Second)
	checkKeys(t, nl, map[string]bool{"w/before": true})
}

// writePeersJSON writes a protocol-3 peers.json listing the given agents into each data dir.
func writePeersJSON(t *testing.T, c *cluster, names []string, ids map[string]string) {
	t.Helper()
	type peer struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		NonVoter bool   `json:"non_voter"`
	}
	var peers []peer
	for _, n := range names {
		peers = append(peers, peer{ID: ids[n], Address: fmt.Sprintf("127.0.0.1:%d", c.ports[n][2])})
	}
	b, _ := json.Marshal(peers)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(c.dir, n, "raft", "peers.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPeersJSONRecovery: after an outage that left only two servers, peers.json listing
// them brings the cluster back with its data; the file is consumed.
func TestPeersJSONRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, nil)
	if _, err := client(t, l).KV().Put(&api.KVPair{Key: "w/before", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, n := range []string{"n1", "n2", "n3"} {
		ids[n] = c.get(n).NodeID()
	}
	c.stopAll()
	survivors := []string{"n1", "n2"} // n3 is lost for good
	writePeersJSON(t, c, survivors, ids)
	for _, n := range survivors {
		c.start(n, func(cfg *Config) { cfg.RetryJoin = []string{c.serfAddr("n1")} })
	}
	nl := c.waitLeader(15 * time.Second)
	if v := voters(nl); v != 2 {
		t.Fatalf("%d voters after recovery, want 2", v)
	}
	for _, n := range survivors {
		if _, err := os.Stat(filepath.Join(c.dir, n, "raft", "peers.json")); !os.IsNotExist(err) {
			t.Fatalf("%s: peers.json not deleted: %v", n, err)
		}
	}
	checkKeys(t, nl, map[string]bool{"w/before": true})
}
