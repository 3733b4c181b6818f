package workloads

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// fakeLocks is one linearizable store of sessions and locked keys behind several endpoints: just
// what api.Lock, the fenced-write transaction and the final reads call. With broken set its reads
// hide the holder and it grants every ?acquire, held or not: a lock service without mutual
// exclusion.
type fakeLocks struct {
	mu       sync.Mutex
	index    uint64
	sessions map[string]bool
	kv       map[string]*fakeLockEntry
	broken   bool
	nextID   int
}

type fakeLockEntry struct {
	Key                             string
	Value                           []byte
	Flags, ModifyIndex, CreateIndex uint64
	LockIndex                       uint64
	Session                         string `json:",omitempty"`
}

func newFakeLocks() *fakeLocks {
	return &fakeLocks{sessions: map[string]bool{}, kv: map[string]*fakeLockEntry{}}
}

func (f *fakeLocks) endpoints(t *testing.T, n int) []Endpoint {
	t.Helper()
	var eps []Endpoint
	for i := 1; i <= n; i++ {
		srv := httptest.NewServer(http.HandlerFunc(f.serve))
		t.Cleanup(srv.Close)
		eps = append(eps, Endpoint{Name: "n" + strconv.Itoa(i), Addr: strings.TrimPrefix(srv.URL, "http://")})
	}
	return eps
}

func (f *fakeLocks) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	path := r.URL.Path
	switch {
	case path == "/v1/session/create":
		f.mu.Lock()
		f.nextID++
		id := fmt.Sprintf("sess-%04d", f.nextID)
		f.sessions[id] = true
		f.index++
		f.mu.Unlock()
		writeJSON(w, 200, map[string]string{"ID": id})
	case strings.HasPrefix(path, "/v1/session/renew/"):
		f.mu.Lock()
		ok := f.sessions[strings.TrimPrefix(path, "/v1/session/renew/")]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(404)
			return
		}
		writeJSON(w, 200, []map[string]string{{"TTL": "10s"}})
	case strings.HasPrefix(path, "/v1/session/destroy/"):
		id := strings.TrimPrefix(path, "/v1/session/destroy/")
		f.mu.Lock()
		delete(f.sessions, id)
		for _, e := range f.kv {
			if e.Session == id {
				f.index++
				e.Session, e.ModifyIndex = "", f.index
			}
		}
		f.mu.Unlock()
		writeJSON(w, 200, true)
	case path == "/v1/txn":
		f.txn(w, body)
	case strings.HasPrefix(path, "/v1/kv/"):
		key := strings.TrimPrefix(path, "/v1/kv/")
		if r.Method == http.MethodGet {
			f.get(w, key, q)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		e := f.kv[key]
		if e == nil {
			e = &fakeLockEntry{Key: key}
			f.kv[key] = e
		}
		switch {
		case q.Has("acquire"):
			sid := q.Get("acquire")
			if !f.sessions[sid] || e.Session != "" && e.Session != sid && !f.broken {
				writeJSON(w, 200, false)
				return
			}
			f.index++
			if e.Session != sid {
				e.LockIndex++
			}
			e.Session, e.Value, e.ModifyIndex = sid, body, f.index
			e.Flags, _ = strconv.ParseUint(q.Get("flags"), 10, 64)
			writeJSON(w, 200, true)
		case q.Has("release"):
			if e.Session != q.Get("release") {
				writeJSON(w, 200, false)
				return
			}
			f.index++
			e.Session, e.ModifyIndex = "", f.index
			writeJSON(w, 200, true)
		default:
			http.Error(w, "fake: unsupported PUT", 400)
		}
	default:
		http.NotFound(w, r)
	}
}

// get answers a KV read, blocking (by polling) while ?index is not below the store's index.
func (f *fakeLocks) get(w http.ResponseWriter, key string, q map[string][]string) {
	wait, _ := time.ParseDuration(first(q["wait"]))
	min, _ := strconv.ParseUint(first(q["index"]), 10, 64)
	deadline := time.Now().Add(wait)
	for {
		f.mu.Lock()
		if f.index > min || time.Now().After(deadline) {
			w.Header().Set("X-Consul-Index", strconv.FormatUint(max(f.index, 1), 10))
			e := f.kv[key]
			if e == nil {
				f.mu.Unlock()
				w.WriteHeader(404)
				return
			}
			c := *e
			if f.broken {
				c.Session = ""
			}
			f.mu.Unlock()
			writeJSON(w, 200, []fakeLockEntry{c})
			return
		}
		f.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (f *fakeLocks) txn(w http.ResponseWriter, body []byte) {
	var ops []struct {
		KV struct {
			Verb, Key, Session string
			Value              []byte
		}
	}
	if err := json.Unmarshal(body, &ops); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, op := range ops {
		if op.KV.Verb == "check-session" {
			if e := f.kv[op.KV.Key]; e == nil || e.Session != op.KV.Session {
				writeJSON(w, 409, map[string]any{"Errors": []map[string]any{{"OpIndex": i, "What": "lock is not held by the session"}}})
				return
			}
		}
	}
	var results []map[string]any
	f.index++
	for _, op := range ops {
		switch op.KV.Verb {
		case "set":
			e := f.kv[op.KV.Key]
			if e == nil {
				e = &fakeLockEntry{Key: op.KV.Key, CreateIndex: f.index}
				f.kv[op.KV.Key] = e
			}
			e.Value, e.ModifyIndex = op.KV.Value, f.index
			results = append(results, map[string]any{"KV": *e})
		case "get":
			if e := f.kv[op.KV.Key]; e != nil {
				results = append(results, map[string]any{"KV": *e})
			}
		}
	}
	writeJSON(w, 200, map[string]any{"Results": results})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// runLocks runs the lock workload against f for d, then its final reads, and checks the history.
func runLocks(t *testing.T, f *fakeLocks, d time.Duration) (checker.Result, []history.Op) {
	t.Helper()
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf)
	cfg := Config{Endpoints: f.endpoints(t, 3), Concurrency: 6, Keys: 8, Recorder: rec, Seed: 3}
	l := &Lock{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := l.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := l.Final(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	ops, err := history.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if wl, err := Infer(ops); err != nil || wl != "lock" {
		t.Errorf("Infer = %q, %v; want lock", wl, err)
	}
	return checker.Lock{}.Check(context.Background(), ops), ops
}

func TestLockWorkloadOnACorrectLockService(t *testing.T) {
	r, ops := runLocks(t, newFakeLocks(), 2*time.Second)
	d := r.Details.(*checker.LockDetails)
	if r.Valid != checker.Valid {
		t.Fatalf("verdict %v: %s %v", r.Valid, r.Error, d.Examples)
	}
	if d.Locks != 2 || d.Holdings < 4 || d.FencedOK < 4 {
		t.Errorf("too little happened: %+v", d)
	}
	fs := map[string]int{}
	for _, op := range ops {
		if op.Type == history.OK {
			fs[op.F]++
		}
	}
	for _, f := range []string{"session", "acquire", "fenced-write", "release", "destroy", "read"} {
		if fs[f] == 0 {
			t.Errorf("no ok %s in the history (%v)", f, fs)
		}
	}
}

func TestLockWorkloadCatchesALockWithoutMutualExclusion(t *testing.T) {
	f := newFakeLocks()
	f.broken = true
	r, _ := runLocks(t, f, 2*time.Second)
	if r.Valid != checker.Invalid {
		t.Fatalf("a lock that grants every acquire: verdict %v (%s), want invalid", r.Valid, r.Error)
	}
	if d := r.Details.(*checker.LockDetails); d.Violations[checker.LockMutex]+d.Violations[checker.LockDelayed]+d.Violations[checker.LockTTL] == 0 {
		t.Errorf("violations %v, want overlapping holdings (mutual exclusion, lock-delay or TTL)", d.Violations)
	}
	t.Log(r.Error)
}
