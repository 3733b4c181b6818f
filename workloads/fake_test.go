package workloads

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/raftcheck/harness/history"
)

// fakeConsul is a single linearizable KV store served through several fake endpoints. It
// implements only what the workloads call: GET /v1/kv/<key>[?recurse] and PUT [?cas=N].
type fakeConsul struct {
	mu    sync.Mutex
	kv    map[string]fakeEntry
	index uint64
	// requests per endpoint name: "GET r0 consistent", "PUT r0 cas=5", …
	requests map[string][]string
	// hook, if set, may answer a request itself (return true) before the store sees it.
	hook func(node string, w http.ResponseWriter, r *http.Request) bool
}

type fakeEntry struct {
	value  []byte
	create uint64
	modify uint64
}

type kvJSON struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	LockIndex   uint64
	Flags       uint64
	Value       []byte
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{kv: map[string]fakeEntry{}, requests: map[string][]string{}}
}

// endpoints starts n servers named n1…nn and returns their endpoints; they close with t.
func (f *fakeConsul) endpoints(t *testing.T, n int) []Endpoint {
	t.Helper()
	var eps []Endpoint
	for i := 1; i <= n; i++ {
		name := "n" + strconv.Itoa(i)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(name, w, r) }))
		t.Cleanup(srv.Close)
		eps = append(eps, Endpoint{Name: name, Addr: strings.TrimPrefix(srv.URL, "http://")})
	}
	return eps
}

func (f *fakeConsul) serve(node string, w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	desc := r.Method + " " + key
	for _, p := range []string{"consistent", "stale", "recurse", "cas"} {
		if q.Has(p) {
			desc += " " + p
			if v := q.Get(p); v != "" {
				desc += "=" + v
			}
		}
	}
	f.mu.Lock()
	f.requests[node] = append(f.requests[node], desc)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(node, w, r) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.get(w, key, q.Has("recurse"))
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		f.put(w, key, body, q)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

func (f *fakeConsul) get(w http.ResponseWriter, key string, recurse bool) {
	f.mu.Lock()
	var out []kvJSON
	for k, e := range f.kv {
		if k == key || recurse && strings.HasPrefix(k, key) {
			out = append(out, kvJSON{Key: k, CreateIndex: e.create, ModifyIndex: e.modify, Value: e.value})
		}
	}
	idx := f.index
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	w.Header().Set("X-Consul-Index", strconv.FormatUint(max(idx, 1), 10))
	w.Header().Set("X-Consul-LastContact", "0") // the client refuses a read without it
	w.Header().Set("X-Consul-KnownLeader", "true")
	if len(out) == 0 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (f *fakeConsul) put(w http.ResponseWriter, key string, body []byte, q map[string][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, exists := f.kv[key]
	if cas, ok := q["cas"]; ok {
		n, err := strconv.ParseUint(cas[0], 10, 64)
		if err != nil {
			http.Error(w, "bad cas", http.StatusBadRequest)
			return
		}
		if n == 0 && exists || n != 0 && (!exists || e.modify != n) {
			io.WriteString(w, "false")
			return
		}
	}
	f.index++
	if !exists {
		e.create = f.index
	}
	e.modify, e.value = f.index, body
	f.kv[key] = e
	io.WriteString(w, "true")
}

func (f *fakeConsul) value(key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.kv[key]
	return string(e.value), ok
}

func (f *fakeConsul) requestsOf(node string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests[node]...)
}

// recording returns a recorder writing into a buffer, and a function reading it back.
func recording(t *testing.T) (*history.Recorder, func() []history.Op) {
	t.Helper()
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf)
	return rec, func() []history.Op {
		t.Helper()
		ops, err := history.Read(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("read history back: %v", err)
		}
		return ops
	}
}

// checkWellFormed asserts the history contract: each process alternates invoke and completion
// with the same f and key, nothing follows an info on its process, and every invoke completes.
func checkWellFormed(t *testing.T, ops []history.Op) {
	t.Helper()
	open := map[history.Process]history.Op{}
	retired := map[history.Process]bool{}
	for i, op := range ops {
		if op.Index != int64(i) {
			t.Fatalf("op %d has index %d", i, op.Index)
		}
		if op.IsNemesis() {
			continue
		}
		if retired[op.Process] {
			t.Fatalf("process %d used after an info: %+v", op.Process, op)
		}
		inv, pending := open[op.Process]
		switch {
		case op.Type == history.Invoke && pending:
			t.Fatalf("process %d invokes %+v while %+v is open", op.Process, op, inv)
		case op.Type == history.Invoke:
			open[op.Process] = op
		case !pending:
			t.Fatalf("completion without invoke: %+v", op)
		case inv.F != op.F || inv.Key != op.Key:
			t.Fatalf("completion %+v does not match invoke %+v", op, inv)
		default:
			delete(open, op.Process)
			if op.Node == "" {
				t.Fatalf("completion without node: %+v", op)
			}
			if op.Type == history.Info {
				retired[op.Process] = true
			}
		}
	}
	for p, inv := range open {
		t.Fatalf("process %d never completed %+v", p, inv)
	}
}
