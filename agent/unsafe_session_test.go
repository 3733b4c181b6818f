package agent

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"
)

// lock-delay-ignored: after the holder's session is destroyed, another session acquires at once;
// the correct agent refuses it for the lock-delay.
func TestUnsafeLockDelayIgnored(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, _ := startExpect3(t, func(cfg *Config) { cfg.Unsafe[UnsafeLockDelayIgnored] = unsafe })
		cl := client(t, follower(c))
		waitFor(t, 10*time.Second, "catalog", func() bool { n, _, err := cl.Catalog().Nodes(nil); return err == nil && len(n) == 3 })
		s1, _, err := cl.Session().Create(&api.SessionEntry{LockDelay: 10 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s2, _, err := cl.Session().Create(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := cl.KV().Acquire(&api.KVPair{Key: "l", Session: s1}, nil); err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		if _, err := cl.Session().Destroy(s1, nil); err != nil {
			t.Fatal(err)
		}
		ok, _, err := cl.KV().Acquire(&api.KVPair{Key: "l", Session: s2}, nil)
		if err != nil || ok != unsafe {
			t.Errorf("unsafe=%v: acquire within the 10 s lock-delay returned %v (%v)", unsafe, ok, err)
		}
	}
}

// session-ttl-1x: an unrenewed session expires after 1×TTL; the correct agent keeps it 2×TTL.
func TestUnsafeSessionTTL1x(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, _ := startExpect3(t, func(cfg *Config) {
			cfg.Unsafe[UnsafeSessionTTL1x] = unsafe
			cfg.SessionTTLMin = time.Second
		})
		cl := client(t, follower(c))
		waitFor(t, 10*time.Second, "catalog", func() bool { n, _, err := cl.Catalog().Nodes(nil); return err == nil && len(n) == 3 })
		id, _, err := cl.Session().Create(&api.SessionEntry{TTL: "2s"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // past 1×TTL, well before 2×TTL
		s, _, err := cl.Session().Info(id, &api.QueryOptions{RequireConsistent: true})
		if err != nil {
			t.Fatal(err)
		}
		if (s == nil) != unsafe {
			t.Errorf("unsafe=%v: 3 s after creation (TTL 2 s) the session exists=%v", unsafe, s != nil)
		}
	}
}

// local-check-session: a follower whose local state wrongly shows a session holding the lock lets
// a fenced write [check-session, set] through; the correct agent lets the leader check.
func TestUnsafeLocalCheckSession(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, _ := startExpect3(t, func(cfg *Config) { cfg.Unsafe[UnsafeLocalCheckSession] = unsafe })
		f := follower(c)
		cl := client(t, f)
		waitFor(t, 10*time.Second, "catalog", func() bool { n, _, err := cl.Catalog().Nodes(nil); return err == nil && len(n) == 3 })
		s, _, err := cl.Session().Create(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the follower has the session", func() bool { return f.fsm.Session(s) != nil })
		// Only the follower believes s holds the lock (a lagging or diverged local state).
		f.fsm.Apply(&raft.Log{Index: 999999, Data: encodeCommand(command{Op: "lock", KV: &TxnKVOp{Key: "l", Session: s}})})
		ok, _, _, err := cl.Txn().Txn(api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: "l", Session: s}},
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "resource", Value: []byte("fenced")}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok != unsafe {
			t.Errorf("unsafe=%v: fenced write under a session the cluster never granted committed=%v", unsafe, ok)
		}
	}
}

// session-timers-not-rearmed: after a leadership transfer, an unrenewed session that existed
// before it never expires; the correct agent's new leader expires it 2×TTL after taking over.
func TestUnsafeSessionTimersNotRearmed(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, l := startExpect3(t, func(cfg *Config) {
			cfg.Unsafe[UnsafeSessionTimersNotRearmed] = unsafe
			cfg.SessionTTLMin = time.Second
		})
		cl := client(t, follower(c))
		waitFor(t, 10*time.Second, "catalog", func() bool { n, _, err := cl.Catalog().Nodes(nil); return err == nil && len(n) == 3 })
		id, _, err := cl.Session().Create(&api.SessionEntry{TTL: "1s"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.raft.LeadershipTransfer().Error(); err != nil {
			t.Fatal(err)
		}
		moved := time.Now()
		waitFor(t, 10*time.Second, "a new leader", func() bool { n := c.leaders(); return len(n) == 1 && n[0] != l })
		time.Sleep(2*time.Second + 2*time.Second - time.Since(moved)) // 2×TTL after the transfer, and 2 s more
		s, _, err := cl.Session().Info(id, &api.QueryOptions{RequireConsistent: true})
		if err != nil {
			t.Fatal(err)
		}
		if (s != nil) != unsafe {
			t.Errorf("unsafe=%v: 4 s after a leader change, an unrenewed session (TTL 1 s) exists=%v", unsafe, s != nil)
		}
	}
}
