package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestConsulAPIClient drives a 3-node cluster through the official client, talking to a
// follower so every leader-bound request is forwarded.
func TestConsulAPIClient(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, _ := startExpect3(t, nil)
	f := follower(c)
	cl := client(t, f)
	kv := cl.KV()

	if _, err := kv.Put(&api.KVPair{Key: "app/a", Value: []byte("1"), Flags: 42}, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []*api.QueryOptions{nil, {AllowStale: true}, {RequireConsistent: true}} {
		var p *api.KVPair
		var meta *api.QueryMeta
		var err error
		waitFor(t, 3*time.Second, "read", func() bool {
			p, meta, err = kv.Get("app/a", q)
			return err == nil && p != nil
		})
		if string(p.Value) != "1" || p.Flags != 42 || meta.LastIndex == 0 {
			t.Fatalf("get %+v: %+v %+v", q, p, meta)
		}
		if q == nil || !q.AllowStale {
			if !meta.KnownLeader {
				t.Fatalf("get %+v: KnownLeader false", q)
			}
		}
	}
	p := mustGet(t, kv, "app/a")
	ok, _, err := kv.CAS(&api.KVPair{Key: "app/a", Value: []byte("2"), ModifyIndex: p.ModifyIndex + 100}, nil)
	if err != nil || ok {
		t.Fatalf("stale CAS succeeded: %v %v", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/a", Value: []byte("2"), ModifyIndex: p.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS failed: %v %v", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/new", Value: []byte("n"), ModifyIndex: 0}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS create failed: %v %v", ok, err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/sub/x", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	list, _, err := kv.List("app/", &api.QueryOptions{RequireConsistent: true})
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %v %v", list, err)
	}
	keys, _, err := kv.Keys("app/", "/", &api.QueryOptions{RequireConsistent: true})
	if err != nil || strings.Join(keys, ",") != "app/a,app/new,app/sub/" {
		t.Fatalf("keys: %v %v", keys, err)
	}
	p = mustGet(t, kv, "app/new")
	if ok, _, err := kv.DeleteCAS(&api.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex + 1}, nil); err != nil || ok {
		t.Fatalf("stale DeleteCAS: %v %v", ok, err)
	}
	if ok, _, err := kv.DeleteCAS(&api.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex}, nil); err != nil || !ok {
		t.Fatalf("DeleteCAS: %v %v", ok, err)
	}
	if _, err := kv.Delete("app/sub/x", nil); err != nil {
		t.Fatal(err)
	}
	if p, _, err := kv.Get("app/sub/x", &api.QueryOptions{RequireConsistent: true}); err != nil || p != nil {
		t.Fatalf("deleted key still there: %+v %v", p, err)
	}

	// Txn: commit, then a rollback with a stale check.
	a := mustGet(t, kv, "app/a")
	ok, resp, _, err := kv.Txn(api.KVTxnOps{
		{Verb: api.KVCheckIndex, Key: "app/a", Index: a.ModifyIndex},
		{Verb: api.KVSet, Key: "app/t1", Value: []byte("t")},
		{Verb: api.KVGet, Key: "app/a"},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 3 || string(resp.Results[2].Value) != "2" {
		t.Fatalf("txn commit: ok=%v resp=%+v err=%v", ok, resp, err)
	}
	ok, resp, _, err = kv.Txn(api.KVTxnOps{
		{Verb: api.KVSet, Key: "app/t2", Value: []byte("t")},
		{Verb: api.KVCheckIndex, Key: "app/a", Index: a.ModifyIndex + 1000},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Fatalf("txn rollback: ok=%v resp=%+v err=%v", ok, resp, err)
	}
	if p, _, err := kv.Get("app/t2", &api.QueryOptions{RequireConsistent: true}); err != nil || p != nil {
		t.Fatalf("rolled-back txn wrote app/t2: %+v %v", p, err)
	}

	// Blocking query returns after a write. The write is issued once the query has been sent to
	// the agent (observed through httptrace), so a query that does not block returns "2".
	_, meta, err := kv.Get("app/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	type getResult struct {
		p    *api.KVPair
		meta *api.QueryMeta
		err  error
	}
	sent, got := make(chan struct{}), make(chan getResult, 1)
	var sentOnce sync.Once
	trace := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { sentOnce.Do(func() { close(sent) }) },
	})
	start := time.Now()
	go func() {
		p, m, err := kv.Get("app/a", (&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second}).WithContext(trace))
		got <- getResult{p, m, err}
	}()
	select {
	case <-sent:
	case r := <-got:
		t.Fatalf("blocking query ended before it was sent: %+v %+v %v", r.p, r.meta, r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not sent within 5s")
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/a", Value: []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || r.p == nil || string(r.p.Value) != "3" || r.meta.LastIndex <= meta.LastIndex {
			t.Fatalf("blocking query at index %d: %+v %+v %v after %s", meta.LastIndex, r.p, r.meta, r.err, time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("blocking query at index %d did not return within 5s of the write", meta.LastIndex)
	}

	// Status, operator, agent.
	leader, err := cl.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("status leader: %q %v", leader, err)
	}
	peers, err := cl.Status().Peers()
	if err != nil || len(peers) != 3 {
		t.Fatalf("status peers: %v %v", peers, err)
	}
	rc, err := cl.Operator().RaftGetConfiguration(nil)
	if err != nil || len(rc.Servers) != 3 {
		t.Fatalf("raft configuration: %+v %v", rc, err)
	}
	leaders := 0
	for _, s := range rc.Servers {
		if s.Leader {
			leaders++
		}
		if s.Node == "(unknown)" || !s.Voter {
			t.Fatalf("raft server %+v", s)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders in configuration", leaders)
	}
	members, err := cl.Agent().Members(false)
	if err != nil || len(members) != 3 || members[0].Tags == nil || members[0].Tags["role"] != "consul" {
		t.Fatalf("members: %+v %v", members, err)
	}
	self, err := cl.Agent().Self()
	if err != nil || self["Config"]["NodeName"] != f.cfg.NodeName {
		t.Fatalf("self: %v %v", self["Config"], err)
	}
	if name, err := cl.Agent().NodeName(); err != nil || name != f.cfg.NodeName {
		t.Fatalf("node name %q %v", name, err)
	}
	if err := cl.Agent().Join(c.serfAddr("n1"), false); err != nil {
		t.Fatalf("join: %v", err)
	}
	// Remove a follower by ID through the operator endpoint; reconcile re-adds it (alive in Serf).
	other := follower(c)
	if err := cl.Operator().RaftRemovePeerByID(other.NodeID(), nil); err != nil {
		t.Fatalf("remove peer: %v", err)
	}
	if err := cl.Operator().RaftRemovePeerByID("nope", nil); err == nil {
		t.Fatal("removing an unknown peer succeeded")
	}
}

// TestBadInput sends each malformed request and checks the status, then that the agent
// still serves.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	c, l := startExpect3(t, nil)
	for _, a := range []*Agent{l, follower(c)} {
		base := "http://" + a.HTTPAddr()
		cases := []struct {
			name, method, path string
			body               []byte
			code               int
		}{
			{"bad cas", "PUT", "/v1/kv/k?cas=abc", []byte("v"), 400},
			{"negative cas", "DELETE", "/v1/kv/k?cas=-1", nil, 400},
			{"bad flags", "PUT", "/v1/kv/k?flags=x", []byte("v"), 400},
			{"value too large", "PUT", "/v1/kv/k", bytes.Repeat([]byte("x"), MaxValueSize+1), 413},
			{"malformed txn", "PUT", "/v1/txn", []byte(`[{"KV":`), 400},
			{"txn wrong type", "PUT", "/v1/txn", []byte(`{"KV":{}}`), 400},
			{"txn bad verb", "PUT", "/v1/txn", []byte(`[{"KV":{"Verb":"explode","Key":"k"}}]`), 409}, // as Consul: a rolled-back transaction
			{"txn too many ops", "PUT", "/v1/txn", txnBody(MaxTxnOps + 1), 413},
			{"other dc", "GET", "/v1/kv/k?dc=dc9", nil, 500},
			{"stale and consistent", "GET", "/v1/kv/k?stale&consistent", nil, 400},
			{"bad index", "GET", "/v1/kv/k?index=x", nil, 400},
			{"bad wait", "GET", "/v1/kv/k?index=1&wait=forever", nil, 400},
			{"missing key", "GET", "/v1/kv/", nil, 400},
			{"recurse and cas", "DELETE", "/v1/kv/k?recurse&cas=1", nil, 400},
			{"cas and acquire", "PUT", "/v1/kv/k?cas=1&acquire=s", []byte("v"), 400},
			{"wrong method", "POST", "/v1/kv/k", nil, 405},
			{"remove peer without id", "DELETE", "/v1/operator/raft/peer", nil, 400},
			{"unknown endpoint", "GET", "/v1/nope", nil, 404},
		}
		for _, tc := range cases {
			req, err := http.NewRequest(tc.method, base+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			msg, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: read body: %v", tc.name, err)
			}
			if resp.StatusCode != tc.code {
				t.Errorf("%s on %s: status %d (%s), want %d", tc.name, a.cfg.NodeName, resp.StatusCode, msg, tc.code)
			}
			if tc.code != 404 && len(msg) == 0 {
				t.Errorf("%s: empty error body", tc.name)
			}
		}
		if _, err := client(t, a).KV().Put(&api.KVPair{Key: "still", Value: []byte("ok")}, nil); err != nil {
			t.Fatalf("agent %s does not serve after bad input: %v", a.cfg.NodeName, err)
		}
	}
}

// mustGet is a consistent read of key that fails the test on an error or a missing key.
func mustGet(t *testing.T, kv *api.KV, key string) *api.KVPair {
	t.Helper()
	p, _, err := kv.Get(key, &api.QueryOptions{RequireConsistent: true})
	if err != nil || p == nil {
		t.Fatalf("get %s: %+v %v", key, p, err)
	}
	return p
}

func txnBody(n int) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"KV":{"Verb":"set","Key":"k%d","Value":"eA=="}}`, i)
	}
	b.WriteString("]")
	return []byte(b.String())
}
