package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func fastSessions(cfg *Config) { cfg.SessionTTLMin = 500 * time.Millisecond }

// Sessions, acquire/release and lock-delay through the official client, on a follower (so every
// write is forwarded) — Consul's rules: LockIndex grows on each new holder, a second session
// cannot acquire a held key, release keeps LockIndex, destroy releases with lock-delay.
func TestSessionsAcquireRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, _ := startExpect3(t, fastSessions)
	f := follower(c)
	cl := client(t, f)
	waitFor(t, 10*time.Second, "the catalog has every node", func() bool {
		nodes, _, err := cl.Catalog().Nodes(nil)
		return err == nil && len(nodes) == 3
	})
	s1, _, err := cl.Session().Create(&api.SessionEntry{LockDelay: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := cl.Session().CreateNoChecks(&api.SessionEntry{Behavior: api.SessionBehaviorDelete, LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := cl.Session().Info(s1, nil)
	if err != nil || info == nil {
		t.Fatalf("info: %v %v", info, err)
	}
	if info.Node != f.cfg.NodeName || len(info.NodeChecks) != 1 || info.NodeChecks[0] != "serfHealth" || info.Behavior != "release" || info.LockDelay != time.Second {
		t.Fatalf("defaults: %+v (want node %s, serfHealth, release, 1s)", info, f.cfg.NodeName)
	}
	kv := cl.KV()
	acq := func(key, sess, val string) bool {
		ok, _, err := kv.Acquire(&api.KVPair{Key: key, Value: []byte(val), Session: sess}, nil)
		if err != nil {
			t.Fatalf("acquire %s by %s: %v", key, sess, err)
		}
		return ok
	}
	if !acq("lock", s1, "a") {
		t.Fatal("first acquire failed")
	}
	if acq("lock", s2, "b") {
		t.Fatal("a second session acquired a held key")
	}
	if !acq("lock", s1, "a2") {
		t.Fatal("the holder could not re-acquire")
	}
	p, _, _ := kv.Get("lock", &api.QueryOptions{RequireConsistent: true})
	if p.LockIndex != 1 || p.Session != s1 || string(p.Value) != "a2" {
		t.Fatalf("after acquires: %+v", p)
	}
	if ok, _, err := kv.Release(&api.KVPair{Key: "lock", Session: s2}, nil); err != nil || ok {
		t.Fatalf("release by a non-holder: %v %v", ok, err)
	}
	if ok, _, err := kv.Release(&api.KVPair{Key: "lock", Session: s1}, nil); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	if !acq("lock", s2, "b") {
		t.Fatal("acquire of a released key failed")
	}
	p, _, _ = kv.Get("lock", &api.QueryOptions{RequireConsistent: true})
	if p.LockIndex != 2 || p.Session != s2 {
		t.Fatalf("second holder: %+v", p)
	}
	// Invalid session: 500 with Consul's message.
	if _, _, err := kv.Acquire(&api.KVPair{Key: "x", Session: "00000000-0000-0000-0000-000000000000"}, nil); err == nil || !strings.Contains(err.Error(), "invalid session") {
		t.Fatalf("acquire with an unknown session: %v", err)
	}
	// s1 holds "held"; destroying it releases the key, and lock-delay (1 s) blocks a new holder.
	if !acq("held", s1, "v") {
		t.Fatal("acquire held")
	}
	if _, err := cl.Session().Destroy(s1, nil); err != nil {
		t.Fatal(err)
	}
	p, _, _ = kv.Get("held", &api.QueryOptions{RequireConsistent: true})
	if p == nil || p.Session != "" {
		t.Fatalf("destroyed session still holds the key: %+v", p)
	}
	if acq("held", s2, "w") {
		t.Fatal("acquired during the lock-delay")
	}
	waitFor(t, 5*time.Second, "lock-delay ends", func() bool { return acq("held", s2, "w") })
	// s2 has behavior delete: destroying it deletes what it holds.
	if _, err := cl.Session().Destroy(s2, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lock", "held"} {
		if p, _, _ := kv.Get(k, &api.QueryOptions{RequireConsistent: true}); p != nil {
			t.Fatalf("%s survived its delete-behavior session: %+v", k, p)
		}
	}
	if list, _, err := cl.Session().List(nil); err != nil || len(list) != 0 {
		t.Fatalf("sessions left: %v %v", list, err)
	}
}

// A TTL session expires once 2×TTL passes without a renew; renewing keeps it; a new leader
// re-arms the timers; renewing an expired session is 404.
func TestSessionTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, fastSessions)
	cl := client(t, follower(c))
	waitFor(t, 10*time.Second, "the catalog has every node", func() bool {
		nodes, _, err := cl.Catalog().Nodes(nil)
		return err == nil && len(nodes) == 3
	})
	ttl := time.Second
	kept, _, err := cl.Session().Create(&api.SessionEntry{TTL: ttl.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lapsed, _, err := cl.Session().Create(&api.SessionEntry{TTL: ttl.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if ok, _, err := cl.KV().Acquire(&api.KVPair{Key: "ttl-lock", Session: lapsed}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				cl.Session().Renew(kept, nil)
			}
		}
	}()
	waitFor(t, 10*time.Second, "the unrenewed session expires", func() bool {
		s, _, err := cl.Session().Info(lapsed, &api.QueryOptions{RequireConsistent: true})
		return err == nil && s == nil
	})
	if age := time.Since(created); age < 2*ttl {
		t.Fatalf("expired after %s, before 2×TTL (%s)", age, 2*ttl)
	}
	if p, _, _ := cl.KV().Get("ttl-lock", &api.QueryOptions{RequireConsistent: true}); p == nil || p.Session != "" {
		t.Fatalf("the expired session's lock is not released: %+v", p)
	}
	if s, _, err := cl.Session().Renew(lapsed, nil); err != nil || s != nil {
		t.Fatalf("renew of an expired session: %v %v (want not found)", s, err)
	}
	// Leadership moves; the renewed session lives on, a new unrenewed one expires under the new leader.
	orphan, _, err := cl.Session().Create(&api.SessionEntry{TTL: ttl.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the orphan expires under the new leader", func() bool {
		s, _, err := cl.Session().Info(orphan, &api.QueryOptions{RequireConsistent: true})
		return err == nil && s == nil
	})
	if s, _, err := cl.Session().Info(kept, &api.QueryOptions{RequireConsistent: true}); err != nil || s == nil {
		t.Fatalf("the renewed session is gone: %v", err)
	}
}

// Bad session requests get Consul's answers.
func TestSessionBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	_, l := startExpect3(t, nil)
	base := "http://" + l.HTTPAddr()
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"PUT", "/v1/session/create", `{"TTL":"1s"}`, 500, "Invalid Session TTL"},
		{"PUT", "/v1/session/create", `{"TTL":"soon"}`, 500, "Session TTL 'soon' invalid"},
		{"PUT", "/v1/session/create", `{"Behavior":"explode"}`, 500, "Invalid Behavior setting 'explode'"},
		{"PUT", "/v1/session/create", `{"Bogus":1}`, 200, `"ID"`}, // as Consul 1.20: ignored
		{"PUT", "/v1/session/create", `{"Node":"nowhere"}`, 500, "Missing node registration"},
		{"PUT", "/v1/session/create", `{"NodeChecks":["nope"]}`, 500, "Missing check 'nope' registration"},
		{"PUT", "/v1/session/create", `{`, 400, "Request decode failed"},
		{"GET", "/v1/session/create", ``, 405, ""},
		{"PUT", "/v1/session/destroy/", ``, 400, "Missing session"},
		{"PUT", "/v1/session/renew/nope", ``, 404, "Session id 'nope' not found"},
		{"GET", "/v1/session/node/", ``, 400, "Missing node name"},
		{"GET", "/v1/session/frobnicate", ``, 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		waitFor(t, 10*time.Second, "catalog", func() bool { return l.fsm.Node(l.cfg.NodeName) != nil })
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s %s %s: %d %q, want %d containing %q", tc.method, tc.path, tc.body, resp.StatusCode, b.String(), tc.code, tc.want)
		}
	}
}

// A node that Serf marks failed turns its serfHealth check critical, which invalidates its
// sessions and releases their locks (Consul's node health rule); a session without node checks
// survives.
func TestFailedNodeInvalidatesSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, _ := startExpect3(t, fastSessions)
	f := follower(c)
	fc := client(t, f)
	waitFor(t, 10*time.Second, "the catalog has "+f.cfg.NodeName, func() bool {
		checks, _, err := fc.Health().Node(f.cfg.NodeName, nil)
		return err == nil && len(checks) == 1 && checks[0].Status == "passing"
	})
	checked, _, err := fc.Session().Create(&api.SessionEntry{LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unchecked, _, err := fc.Session().CreateNoChecks(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := fc.KV().Acquire(&api.KVPair{Key: "node-lock", Session: checked}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	f.Shutdown()
	var other *Agent
	for _, a := range c.running() {
		other = a
	}
	oc := client(t, other)
	waitFor(t, 20*time.Second, f.cfg.NodeName+"'s session invalidated", func() bool {
		s, _, err := oc.Session().Info(checked, &api.QueryOptions{RequireConsistent: true})
		return err == nil && s == nil
	})
	checks, _, err := oc.Health().Node(f.cfg.NodeName, nil)
	if err != nil || len(checks) != 1 || checks[0].Status != "critical" {
		t.Fatalf("serfHealth of the failed node: %+v %v", checks, err)
	}
	if p, _, _ := oc.KV().Get("node-lock", &api.QueryOptions{RequireConsistent: true}); p == nil || p.Session != "" {
		t.Fatalf("lock of the failed node's session not released: %+v", p)
	}
	if s, _, err := oc.Session().Info(unchecked, &api.QueryOptions{RequireConsistent: true}); err != nil || s == nil {
		t.Fatalf("a session without checks was invalidated: %v", err)
	}
}
