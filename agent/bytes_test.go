package agent

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// TestKeysAreBytes: keys that are not valid UTF-8 are stored and read back as they are, and two
// such keys do not collide (they did while Raft commands were JSON: both became U+FFFD). The
// conformance test against Consul found it.
func TestKeysAreBytes(t *testing.T) {
	s := newStore()
	for i, k := range []string{"\xfe", "\xff", "ok/\xff\xfe"} {
		s.Apply(&raft.Log{Index: uint64(i + 1), Data: encodeCommand(command{Op: "set", KV: &TxnKVOp{Key: k, Value: []byte(k + "-value")}})})
	}
	check := func(s *store) {
		t.Helper()
		for _, k := range []string{"\xfe", "\xff", "ok/\xff\xfe"} {
			e := s.kv[k]
			if e == nil || string(e.Value) != k+"-value" {
				t.Errorf("key %q: got %+v", k, e)
			}
		}
		if len(s.kv) != 3 {
			t.Errorf("%d keys, want 3: %q", len(s.kv), keysOf(s))
		}
	}
	check(s)
	// A snapshot keeps them too.
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	restored := newStore()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	check(restored)
}

func keysOf(s *store) []string {
	var ks []string
	for k := range s.kv {
		ks = append(ks, k)
	}
	return ks
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestByteKeysOverHTTP: PUT /v1/kv/%FE and %FF keep two values, as Consul does.
func TestByteKeysOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts a cluster")
	}
	_, l := startExpect3(t, nil)
	base := "http://" + l.HTTPAddr()
	for _, k := range []string{"%FE", "%FF"} {
		req, _ := http.NewRequest("PUT", base+"/v1/kv/"+k, strings.NewReader(k))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %s", k, resp.Status)
		}
	}
	for _, k := range []string{"%FE", "%FF"} {
		resp, err := http.Get(base + "/v1/kv/" + k + "?raw")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != k {
			t.Errorf("GET %s?raw = %s %q, want 200 %q", k, resp.Status, b, k)
		}
	}
}
