package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestTombstoneGCNotes(t *testing.T) {
	var g tombstoneGC
	t0 := time.Unix(1000, 0)
	ttl := 10 * time.Second
	if got := g.tick(t0, 5, ttl); got != 0 {
		t.Fatalf("reaped %d at once", got)
	}
	if got := g.tick(t0.Add(5*time.Second), 9, ttl); got != 0 {
		t.Fatalf("reaped %d before the TTL", got)
	}
	if got := g.tick(t0.Add(10*time.Second), 9, ttl); got != 5 {
		t.Fatalf("after the TTL of the first note: reap to %d, want 5 (index 9 is only 5 s old)", got)
	}
	g.reapedTo = 5
	if got := g.tick(t0.Add(15*time.Second), 9, ttl); got != 9 {
		t.Fatalf("reap to %d, want 9", got)
	}
	g.reapedTo = 9
	if got := g.tick(t0.Add(40*time.Second), 9, ttl); got != 0 {
		t.Fatalf("reaped %d again", got)
	}
}

// Deleted keys leave tombstones; the leader reaps them through Raft once they are TombstoneTTL
// old, on every server. Before, tombstones were kept for ever (a delete-heavy workload grew the
// state without bound).
func TestTombstonesReaped(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	ttl := 2 * time.Second
	c, l := startExpect3(t, func(cfg *Config) {
		cfg.TombstoneTTL, cfg.TombstoneGranularity = ttl, 200*time.Millisecond
	})
	kv := client(t, l).KV()
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("gc/%d", i)
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte("v")}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Delete(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	deleted := time.Now()
	_, qm, err := kv.List("gc/", &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.running() {
		waitFor(t, 5*time.Second, a.cfg.NodeName+" has the tombstones", func() bool { n, _ := a.fsm.Tombstones(); return n == 20 })
	}
	for _, a := range c.running() {
		waitFor(t, 10*time.Second, a.cfg.NodeName+" reaps them", func() bool { n, _ := a.fsm.Tombstones(); return n == 0 })
	}
	if age := time.Since(deleted); age < ttl {
		t.Fatalf("tombstones reaped %s after the deletes, before the TTL of %s", age, ttl)
	}
	// The emptied prefix falls back to the table index, which never goes backwards.
	_, qm2, err := kv.List("gc/", &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if qm2.LastIndex < qm.LastIndex {
		t.Fatalf("index of the emptied prefix went back from %d to %d", qm.LastIndex, qm2.LastIndex)
	}
}
