package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
)

// A server that Serf reaps while this server is a follower is removed from Raft once this server
// leads. Reaping is local to each server's Serf: here only one follower's reconnect timeout is
// short, so the leader never reaps the dead fourth server, and only the follower's reap event can
// ever remove it. Before the fix a follower dropped the event, and the dead server stayed a voter
// for good (a 4-voter configuration with one voter gone: one more failure loses quorum).
func TestReapWhileFollowerIsReconciledAsLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, nil)
	n4 := c.start("n4", func(cfg *Config) { cfg.RetryJoin = []string{l.SerfAddr()} })
	c.waitVoters(l, 4, 15*time.Second)
	// One follower restarts with a short reconnect timeout (the other three keep a quorum).
	var f *Agent
	for _, a := range c.running() {
		if a != l && a != n4 {
			f = a
			break
		}
	}
	name := f.cfg.NodeName
	f.Shutdown()
	f = c.start(name, func(cfg *Config) {
		cfg.RetryJoin = []string{l.SerfAddr()}
		cfg.ReconnectTimeout, cfg.ReapInterval = 2*time.Second, 500*time.Millisecond
	})
	waitFor(t, 15*time.Second, name+" follows "+l.cfg.NodeName+" again", func() bool {
		addr, _ := f.raft.LeaderWithID()
		return string(addr) == l.RaftAddr() && f.fsm.Index() >= l.fsm.Index()
	})
	n4.Shutdown() // fails, does not leave: stays a voter (3 of 4 keep the quorum)
	waitFor(t, 30*time.Second, name+" reaps n4", func() bool {
		return !slices.ContainsFunc(f.serf.Members(), func(m serf.Member) bool { return m.Name == "n4" })
	})
	if f.IsLeader() {
		t.Fatalf("%s became leader before it reaped n4: the test needs it to reap as a follower", name)
	}
	// Whoever leads now never reaps n4 itself (72h reconnect timeout).
	cur := c.waitLeader(15 * time.Second)
	if voters(cur) != 4 {
		t.Fatalf("the leader changed the configuration on its own: %d voters", voters(cur))
	}
	waitFor(t, 15*time.Second, "leadership moves to "+name, func() bool {
		cur := c.waitLeader(10 * time.Second)
		return cur == f || cur.raft.LeadershipTransferToServer(raft.ServerID(f.nodeID), raft.ServerAddress(f.RaftAddr())).Error() == nil
	})
	waitFor(t, 10*time.Second, name+" leads", f.IsLeader)
	c.waitVoters(f, 3, 15*time.Second)
}
