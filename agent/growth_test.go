package agent

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestGrowthFromOneServer is the seed's scenario. A cluster started as one -bootstrap server
// grows one server at a time (Raft's single-server membership change keeps old and new
// majorities overlapping). The hazard is availability: with two voters the quorum is two, so
// losing either server stops the cluster. Once three voters exist, the first server is restarted
// WITHOUT -bootstrap, as Consul's manual-bootstrap guide says to do; it must rejoin with its data
// and the cluster must keep one leader.
func TestGrowthFromOneServer(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c := newCluster(t)
	n1 := c.start("n1", func(cfg *Config) { cfg.Bootstrap = true })
	c.waitLeader(5 * time.Second)
	put := func(a *Agent, k string) error {
		_, err := client(t, a).KV().Put(&api.KVPair{Key: k, Value: []byte(k)}, nil)
		return err
	}
	if err := put(n1, "one"); err != nil {
		t.Fatal(err)
	}

	// 1 → 2 voters: quorum is now 2, so losing n2 stops writes.
	n2 := c.start("n2", func(cfg *Config) { cfg.RetryJoin = []string{n1.SerfAddr()} })
	c.waitVoters(n1, 2, 10*time.Second)
	if err := put(n1, "two"); err != nil {
		t.Fatal(err)
	}
	n2.Shutdown()
	waitFor(t, 10*time.Second, "n1 to lose leadership without n2 (2 voters, quorum 2)", func() bool {
		return n1.raft.State().String() != "Leader"
	})
	n2 = c.start("n2", nil) // same data dir: it is still a voter and restores the quorum
	c.waitLeader(10 * time.Second)

	// 2 → 3 voters.
	c.start("n3", func(cfg *Config) { cfg.RetryJoin = []string{n1.SerfAddr()} })
	c.waitVoters(n2, 3, 10*time.Second)

	// Restart n1 without -bootstrap: its Raft state decides, not the flag.
	n1.Shutdown()
	leader := c.waitLeader(10 * time.Second)
	if err := put(leader, "three"); err != nil {
		t.Fatal(err)
	}
	n1 = c.start("n1", func(cfg *Config) { cfg.RetryJoin = []string{n2.SerfAddr()} })
	waitFor(t, 10*time.Second, "n1 to follow the leader again", func() bool {
		l, _ := n1.raft.LeaderWithID()
		return l != ""
	})
	if got := len(c.leaders()); got != 1 {
		t.Fatalf("%d leaders after n1 restarted without -bootstrap", got)
	}
	for _, k := range []string{"one", "two", "three"} {
		kv, _, err := client(t, n1).KV().Get(k, &api.QueryOptions{RequireConsistent: true})
		if err != nil || kv == nil || string(kv.Value) != k {
			t.Fatalf("read %s through n1: %v %v", k, kv, err)
		}
	}
}
