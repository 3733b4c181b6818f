package agent

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// A follower forwards to the leader over the leader's server port, never over its HTTP API:
// with Consul's default -client=127.0.0.1 the HTTP API is loopback-only, so on separate hosts a
// follower that used the leader's HTTP address reached itself ("No cluster leader"). Here the
// leader's HTTP API is closed outright, and writes and consistent reads through the followers
// must still succeed. The bootstrap peer check uses the same path (the cluster formed above with
// -bootstrap-expect, and no server advertises an HTTP address in its Serf tags).
func TestForwardingUsesServerPortNotHTTP(t *testing.T) {
	c, l := startExpect3(t, nil)
	for _, a := range c.running() {
		if h, ok := a.serf.LocalMember().Tags["http"]; ok {
			t.Fatalf("%s advertises an HTTP address in Serf (%q): Consul's tags have none", a.cfg.NodeName, h)
		}
	}
	l.httpSrv.Close()
	if _, err := net.DialTimeout("tcp", l.HTTPAddr(), time.Second); err == nil {
		t.Fatal("the leader's HTTP API still accepts connections")
	}
	for _, f := range c.running() {
		if f == l {
			continue
		}
		kv := client(t, f).KV()
		if _, err := kv.Put(&api.KVPair{Key: "fwd/" + f.cfg.NodeName, Value: []byte("v")}, nil); err != nil {
			t.Fatalf("write through follower %s: %v", f.cfg.NodeName, err)
		}
		p, _, err := kv.Get("fwd/"+f.cfg.NodeName, &api.QueryOptions{RequireConsistent: true})
		if err != nil || p == nil || string(p.Value) != "v" {
			t.Fatalf("consistent read through follower %s: %v %v", f.cfg.NodeName, p, err)
		}
	}
}

// A connection to the server port that names no known protocol is closed, and the port keeps
// serving Raft.
func TestServerPortRejectsUnknownProtocol(t *testing.T) {
	c, l := startExpect3(t, nil)
	conn, err := net.DialTimeout("tcp", l.RaftAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection with an unknown protocol byte; want it closed", n)
	}
	conn.Close()
	if _, err := client(t, follower(c)).KV().Put(&api.KVPair{Key: "after", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("write after a bad connection: %v", err)
	}
}
