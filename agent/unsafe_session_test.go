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
// Each verdict rests on a consistent read timed against the session's creation (see ttlProbe);
// a read too late to tell is no verdict, and a fresh session is tried.
func TestUnsafeSessionTTL1x(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	const ttl = 4 * time.Second // the margins below are TTL/2 and TTL: far above scheduling delays
	for _, unsafe := range []bool{false, true} {
		c, _ := startExpect3(t, func(cfg *Config) {
			cfg.Unsafe[UnsafeSessionTTL1x] = unsafe
			cfg.SessionTTLMin = time.Second
		})
		cl := client(t, follower(c))
		waitFor(t, 10*time.Second, "catalog", func() bool { n, _, err := cl.Catalog().Nodes(nil); return err == nil && len(n) == 3 })
		for attempt := 1; ; attempt++ {
			if attempt > ttlAttempts {
				t.Fatalf("unsafe=%v: %d sessions in a row were read too late to tell 1×TTL from 2×TTL (is the machine overloaded?)", unsafe, ttlAttempts)
			}
			p := newTTLProbe(t, cl, ttl)
			if unsafe {
				// The bug shows as a session gone at a time provably before 2×TTL.
				gone, end := p.pollUntilGone(t, cl, p.sent.Add(2*ttl))
				if gone {
					break
				}
				t.Logf("attempt %d: no read that ended before 2×TTL found the session gone (the last ended %s after its creation began); no verdict", attempt, end.Sub(p.sent).Round(time.Millisecond))
				continue
			}
			// Read in the middle of the window: after 1×TTL, before 2×TTL.
			time.Sleep(time.Until(p.created.Add(ttl * 3 / 2)))
			exists, begin, end := p.read(t, cl)
			if exists { // it existed at or after begin, more than 1×TTL after its timer was armed
				break
			}
			if age := end.Sub(p.sent); age < 2*ttl {
				t.Fatalf("unsafe=%v: session (TTL %s) gone %s after its creation began, before 2×TTL", unsafe, ttl, age.Round(time.Millisecond))
			}
			t.Logf("attempt %d: the read at %s (after 1.5×TTL) ended %s after creation, too late to tell; no verdict",
				attempt, begin.Sub(p.created).Round(time.Millisecond), end.Sub(p.sent).Round(time.Millisecond))
		}
	}
}

// ttlAttempts bounds the fresh sessions a TTL test tries when its reads came too late to judge.
const ttlAttempts = 3

// ttlProbe is one unrenewed session. The leader arms its TTL timer after the create is applied
// and before the answer, so between sent and created: a session seen at or after created+d
// provably lived longer than d, and one seen gone before sent+d provably expired sooner than d.
type ttlProbe struct {
	id            string
	sent, created time.Time
}

func newTTLProbe(t *testing.T, cl *api.Client, ttl time.Duration) ttlProbe {
	t.Helper()
	sent := time.Now()
	id, _, err := cl.Session().Create(&api.SessionEntry{TTL: ttl.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ttlProbe{id: id, sent: sent, created: time.Now()}
}

// read tells whether the session exists by a consistent read; the answer held at some instant
// between begin and end.
func (p ttlProbe) read(t *testing.T, cl *api.Client) (exists bool, begin, end time.Time) {
	t.Helper()
	begin = time.Now()
	s, _, err := cl.Session().Info(p.id, &api.QueryOptions{RequireConsistent: true})
	end = time.Now()
	if err != nil {
		t.Fatal(err)
	}
	return s != nil, begin, end
}

// pollUntilGone reads until the session is gone or a read ends at or after by. It returns
// whether a read that ended before by found it gone, and when the last read ended.
func (p ttlProbe) pollUntilGone(t *testing.T, cl *api.Client, by time.Time) (gone bool, end time.Time) {
	t.Helper()
	for {
		exists, _, end := p.read(t, cl)
		if !end.Before(by) {
			return false, end
		}
		if !exists {
			return true, end
		}
		time.Sleep(50 * time.Millisecond)
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
// An attempt counts only when the transfer was seen before the old leader's own timer (2×TTL
// from creation) could fire, so that an expiry is the new leader's doing.
func TestUnsafeSessionTimersNotRearmed(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	const ttl = 2 * time.Second
	for _, unsafe := range []bool{false, true} {
		c, l := startExpect3(t, func(cfg *Config) {
			cfg.Unsafe[UnsafeSessionTimersNotRearmed] = unsafe
			cfg.SessionTTLMin = time.Second
		})
		cl := client(t, follower(c))
		waitFor(t, 10*time.Second, "catalog", func() bool { n, _, err := cl.Catalog().Nodes(nil); return err == nil && len(n) == 3 })
		for attempt := 1; ; attempt++ {
			if attempt > ttlAttempts {
				t.Fatalf("unsafe=%v: %d leadership transfers in a row took 2×TTL or more (is the machine overloaded?)", unsafe, ttlAttempts)
			}
			p := newTTLProbe(t, cl, ttl)
			if err := l.raft.LeadershipTransfer().Error(); err != nil {
				t.Fatal(err)
			}
			old := l
			waitFor(t, 10*time.Second, "a new leader", func() bool {
				n := c.leaders()
				if len(n) == 1 && n[0] != old {
					l = n[0]
					return true
				}
				return false
			})
			moved := time.Now()
			if moved.Sub(p.sent) >= 2*ttl {
				t.Logf("attempt %d: new leader seen %s after the session's creation began, when the old leader's timer may have fired; no verdict", attempt, moved.Sub(p.sent).Round(time.Millisecond))
				continue
			}
			gone := func() bool { exists, _, _ := p.read(t, cl); return !exists }
			if !unsafe {
				waitFor(t, 30*time.Second, "the session to expire under the new leader", gone)
				break
			}
			// The bug: nothing expires it. Look when the new leader has had 2×TTL and 2 s more
			// (a later look only makes the evidence stronger).
			time.Sleep(time.Until(moved.Add(2*ttl + 2*time.Second)))
			if gone() {
				t.Errorf("unsafe=%v: %s after a leader change, an unrenewed session (TTL %s) is gone", unsafe, time.Since(moved).Round(time.Millisecond), ttl)
			}
			break
		}
	}
}
