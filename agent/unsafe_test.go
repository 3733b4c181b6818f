package agent

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"
)

func TestParseFlags(t *testing.T) {
	base := []string{"-server", "-data-dir=/tmp/x"}
	tests := []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"-bootstrap-expect=3", "-retry-join=10.0.0.1", "-retry-join=10.0.0.2:8301", "-retry-interval=1s"}, true},
		{[]string{"-bootstrap", "-bootstrap-expect=3"}, false},
		{[]string{"-bogus"}, false},
		{[]string{"-unsafe=" + strings.Join(UnsafeNames, ",")}, true},
		{[]string{"-unsafe=nope"}, false},
		{[]string{"-raft-leader-lease-timeout=2s", "-raft-heartbeat-timeout=1s"}, false},
		{[]string{"-gossip-profile=wan"}, false},
		{[]string{"-node-id=not-a-uuid"}, false},
		{[]string{"-bind=nonsense"}, false},
		{[]string{"extra"}, false},
	}
	for _, tc := range tests {
		cfg, err := ParseFlags(append(append([]string{}, base...), tc.args...), io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err=%v, want ok=%v", tc.args, err, tc.ok)
		}
		if err != nil {
			if _, isUsage := err.(*UsageError); !isUsage {
				t.Errorf("%v: %T is not a *UsageError", tc.args, err)
			}
			continue
		}
		if strings.Contains(strings.Join(tc.args, " "), "-unsafe=") && len(cfg.UnsafeList()) != len(UnsafeNames) {
			t.Errorf("unsafe list %v", cfg.UnsafeList())
		}
	}
	cfg, _ := ParseFlags(append(base, "-bootstrap-expect=1"), io.Discard)
	if !cfg.Bootstrap || cfg.BootstrapExpect != 0 {
		t.Errorf("-bootstrap-expect=1 should mean -bootstrap: %+v", cfg)
	}
	cfg, _ = ParseFlags(base, io.Discard)
	if cfg.LeaveOnTerminate || !cfg.SkipLeaveOnInterrupt {
		t.Error("server leave defaults are wrong")
	}
	if cfg.RaftNoPreVote {
		t.Error("pre-vote should be on by default (hashicorp/raft v1.7)")
	}
	if cfg, _ = ParseFlags(append(base, "-raft-prevote=false"), io.Discard); cfg == nil || !cfg.RaftNoPreVote {
		t.Errorf("-raft-prevote=false did not turn pre-vote off: %+v", cfg)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A server that never bootstrapped has no leader: a consistent read must fail, unless
// stale-consistent-reads serves it locally.
func TestUnsafeStaleConsistentReads(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		c := newCluster(t)
		a := c.start("n1", func(cfg *Config) {
			cfg.HoldTimeout = 300 * time.Millisecond
			cfg.Unsafe[UnsafeStaleConsistentReads] = unsafe
		})
		code, body := get(t, "http://"+a.HTTPAddr()+"/v1/kv/k?consistent")
		want := 500
		if unsafe {
			want = 404
		}
		if code != want {
			t.Errorf("unsafe=%v: status %d (%s), want %d", unsafe, code, body, want)
		}
	}
}

// bootstrap-alone: a server with no flags elects itself.
func TestUnsafeBootstrapAlone(t *testing.T) {
	c := newCluster(t)
	c.start("n1", func(cfg *Config) { cfg.BootstrapExpect = 3; cfg.Unsafe[UnsafeBootstrapAlone] = true })
	c.waitLeader(5 * time.Second)
}

// long-lease: a leader whose followers are gone steps down; a default read must then fail,
// unless long-lease keeps serving it from local state.
func TestUnsafeLongLease(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, l := startExpect3(t, func(cfg *Config) {
			cfg.HoldTimeout = 300 * time.Millisecond
			cfg.Unsafe[UnsafeLongLease] = unsafe
		})
		if _, err := client(t, l).KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
			t.Fatal(err)
		}
		for _, a := range c.running() {
			if a != l {
				a.Shutdown()
			}
		}
		waitFor(t, 5*time.Second, "old leader steps down", func() bool { return !l.IsLeader() })
		code, body := get(t, "http://"+l.HTTPAddr()+"/v1/kv/k")
		want := 500
		if unsafe {
			want = 200
		}
		if code != want {
			t.Errorf("unsafe=%v: status %d (%s), want %d", unsafe, code, body, want)
		}
	}
}

// local-cas: a follower whose local state diverges compares a CAS against it and then
// writes unconditionally; the correct agent lets the leader decide.
func TestUnsafeLocalCAS(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, l := startExpect3(t, func(cfg *Config) { cfg.Unsafe[UnsafeLocalCAS] = unsafe })
		if _, err := client(t, l).KV().Put(&api.KVPair{Key: "k", Value: []byte("v1")}, nil); err != nil {
			t.Fatal(err)
		}
		f := follower(c)
		// Make the follower's local state disagree with the cluster: k at index 999999.
		f.fsm.Apply(&raft.Log{Index: 999999, Data: encodeCommand(command{Op: "set", KV: &TxnKVOp{Key: "k", Value: []byte("local")}})})
		ok, _, err := client(t, f).KV().CAS(&api.KVPair{Key: "k", Value: []byte("v2"), ModifyIndex: 999999}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok != unsafe {
			t.Errorf("unsafe=%v: CAS with an index only the follower has returned %v", unsafe, ok)
		}
	}
}

// ack-before-commit: a leader that lost its followers (but not yet its lease) acknowledges
// a write it can never commit; the correct agent does not acknowledge it.
func TestUnsafeAckBeforeCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts clusters")
	}
	for _, unsafe := range []bool{false, true} {
		c, l := startExpect3(t, func(cfg *Config) {
			cfg.Unsafe[UnsafeAckBeforeCommit] = unsafe
			cfg.HoldTimeout = time.Second
		})
		for _, a := range c.running() {
			if a != l {
				a.Shutdown()
			}
		}
		cl, _ := api.NewClient(&api.Config{Address: l.HTTPAddr(), WaitTime: time.Second})
		_, err := cl.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil)
		if (err == nil) != unsafe {
			t.Errorf("unsafe=%v: write without a quorum acknowledged=%v (err %v)", unsafe, err == nil, err)
		}
	}
}

// leave-wipes-peers: after all servers leave gracefully and restart, the correct agent
// elects a leader (see TestGracefulLeaveAllRecovers); with the bug none can, until
// peers.json recovery.
func TestUnsafeLeaveWipesPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	unsafe := func(cfg *Config) { cfg.Unsafe[UnsafeLeaveWipesPeers] = true }
	c, l := startExpect3(t, unsafe)
	if _, err := client(t, l).KV().Put(&api.KVPair{Key: "w/before", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	names := []string{"n1", "n2", "n3"}
	for _, n := range names {
		ids[n] = c.get(n).NodeID()
		if err := c.get(n).Leave(); err != nil {
			t.Fatalf("leave %s: %v", n, err)
		}
	}
	restart := func() {
		for _, n := range names {
			c.start(n, func(cfg *Config) {
				unsafe(cfg)
				cfg.RetryJoin = []string{c.serfAddr("n1"), c.serfAddr("n2"), c.serfAddr("n3")}
			})
		}
	}
	restart()
	never(t, 3*time.Second, "a leader after all servers left with leave-wipes-peers", func() bool { return len(c.leaders()) > 0 })
	c.stopAll()
	writePeersJSON(t, c, names, ids)
	restart()
	nl := c.waitLeader(15 * time.Second)
	checkKeys(t, nl, map[string]bool{"w/before": true})
}
