package agent

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"
)

// Leadership lost, won and lost again while the leader loop is in the middle of a membership
// change must not stall Raft. Raft sends every leadership change on NotifyCh and blocks while the
// channel is full; the loop that reads it waits for the leader loop to stop; the leader loop
// waits to hand Raft its AddVoter. With a one-slot channel and no bound on AddVoter that is a
// deadlock for good (the server stops applying anything); Consul's buffer of 10 and the bounded
// membership change (membershipTimeout) each break it.
func TestLeadershipFlapDuringMembershipChange(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var once bool
	l.testHookMembership = func() {
		if once {
			return
		}
		once = true
		close(entered)
		<-release
	}
	// A fourth server joins: the leader's reconcile adds it, and stops in the hook.
	c.start("n4", func(cfg *Config) { cfg.RetryJoin = []string{l.SerfAddr()} })
	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the leader never started adding n4")
	}

	isLeader := func(a *Agent) func() bool { return func() bool { return a.raft.State() == raft.Leader } }
	notLeader := func(a *Agent) func() bool { return func() bool { return a.raft.State() != raft.Leader } }
	// Lost.
	if err := l.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("transfer away from %s: %v", l.cfg.NodeName, err)
	}
	waitFor(t, 10*time.Second, "old leader steps down", notLeader(l))
	var m *Agent
	waitFor(t, 10*time.Second, "another leader", func() bool {
		for _, a := range c.running() {
			if a != l && a.IsLeader() {
				m = a
				return true
			}
		}
		return false
	})
	// Won.
	waitFor(t, 10*time.Second, "transfer back", func() bool {
		return m.raft.LeadershipTransferToServer(raft.ServerID(l.nodeID), raft.ServerAddress(l.RaftAddr())).Error() == nil
	})
	waitFor(t, 10*time.Second, "old leader leads again", isLeader(l))
	// Lost again.
	if err := l.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("second transfer away from %s: %v", l.cfg.NodeName, err)
	}
	close(release)

	// Raft on the old leader still makes progress: it applies a write made after all this.
	var idx uint64
	waitFor(t, 20*time.Second, "a write through the cluster", func() bool {
		for _, a := range c.running() {
			if a == l || !a.IsLeader() {
				continue
			}
			if _, err := client(t, a).KV().Put(&api.KVPair{Key: "after-flap", Value: []byte("v")}, nil); err == nil {
				idx = a.fsm.Index()
				return true
			}
		}
		return false
	})
	waitFor(t, 20*time.Second, "the old leader applies the write", func() bool { return l.fsm.Index() >= idx })
}
