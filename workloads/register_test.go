package workloads

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

func runFor(t *testing.T, w Workload, cfg Config, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := w.Run(ctx, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRegisterHistoryIsWellFormed(t *testing.T) {
	fake := newFakeConsul()
	rec, read := recording(t)
	cfg := Config{Endpoints: fake.endpoints(t, 3), Concurrency: 6, Keys: 3, OpTimeout: time.Second, Seed: 1, Recorder: rec}
	runFor(t, &Register{}, cfg, 300*time.Millisecond)
	ops := read()
	checkWellFormed(t, ops)

	okByF := map[string]int{}
	written := map[string]map[int64]bool{} // key → values invoked by write or cas
	for _, op := range ops {
		if op.Type == history.OK {
			okByF[op.F]++
		}
		if op.Type != history.Invoke {
			continue
		}
		if !strings.HasPrefix(op.Key, "r") || op.Key > "r2" {
			t.Fatalf("key %q outside r0..r2", op.Key)
		}
		var v int64
		switch op.F {
		case "write":
			v, _, _ = op.Int()
		case "cas":
			_, v, _ = op.Pair()
		default:
			continue
		}
		if written[op.Key] == nil {
			written[op.Key] = map[int64]bool{}
		}
		if written[op.Key][v] {
			t.Fatalf("value %d written twice to %s", v, op.Key)
		}
		written[op.Key][v] = true
	}
	for _, f := range []string{"read", "write", "cas"} {
		if okByF[f] == 0 {
			t.Errorf("no ok %s in %d ops: %v", f, len(ops), okByF)
		}
	}
	// The KV keys carry the prefix.
	if _, ok := fake.value("jepsen/r0"); !ok {
		t.Errorf("nothing written to jepsen/r0")
	}
}

// With one worker the history is sequential, so every outcome can be checked against a plain
// register: reads see the last write, a cas succeeds exactly when its expectation holds.
func TestRegisterSequentialSemantics(t *testing.T) {
	fake := newFakeConsul()
	rec, read := recording(t)
	cfg := Config{Endpoints: fake.endpoints(t, 1), Concurrency: 1, Keys: 2, Seed: 7, Recorder: rec, ReadMode: ReadDefault}
	runFor(t, &Register{}, cfg, 200*time.Millisecond)
	state := map[string]*int64{}
	counts := map[string]int{}
	for _, op := range read() {
		if op.Type == history.Invoke {
			continue
		}
		counts[string(op.Type)+" "+op.F]++
		cur := state[op.Key]
		switch {
		case op.F == "read" && op.Type == history.OK:
			v, ok, _ := op.Int()
			if ok != (cur != nil) || ok && v != *cur {
				t.Fatalf("read %s = %s, register holds %v", op.Key, op.Value, cur)
			}
		case op.F == "write" && op.Type == history.OK:
			v, _, _ := op.Int()
			state[op.Key] = &v
		case op.F == "cas":
			exp, nv, _ := op.Pair()
			holds := cur != nil && *cur == exp
			if holds != (op.Type == history.OK) {
				t.Fatalf("cas %s %s was %s (%s) but register holds %v", op.Key, op.Value, op.Type, op.Error, cur)
			}
			if holds {
				state[op.Key] = &nv
			}
		default:
			t.Fatalf("unexpected %+v", op)
		}
	}
	if counts["ok cas"] == 0 || counts["ok read"] == 0 || counts["ok write"] == 0 {
		t.Errorf("too few of some op: %v", counts)
	}
	for _, r := range fake.requestsOf("n1") {
		if strings.HasPrefix(r, "GET") && strings.Contains(r, "stale") {
			t.Fatalf("default read mode sent %q", r)
		}
	}
}

func TestRegisterReadModes(t *testing.T) {
	for mode, want := range map[string]string{ReadConsistent: " consistent", ReadStale: " stale", ReadDefault: ""} {
		t.Run(mode, func(t *testing.T) {
			fake := newFakeConsul()
			rec, _ := recording(t)
			eps := fake.endpoints(t, 1)
			r := &Register{}
			c, err := newClient(eps[0])
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Config{Endpoints: eps, Recorder: rec}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if typ := r.read(context.Background(), cfg, c, 0, "r0", mode); typ != history.OK {
				t.Fatalf("read in mode %q completed %s", mode, typ)
			}
			if got := fake.requestsOf("n1"); len(got) != 1 || got[0] != "GET jepsen/r0"+want {
				t.Fatalf("requests %q, want GET jepsen/r0%s", got, want)
			}
		})
	}
}

func TestRegisterOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		hook     func(w http.ResponseWriter, r *http.Request) bool
		wantPut  history.Type
		wantRead history.Type
		wantErr  string
		// opTimeout is the client's op timeout; 0 is a generous 2 s, so that only the hook that
		// never answers in time may time out, even when the machine is loaded (a 100 ms timeout
		// made reads fail spuriously under CI load).
		opTimeout time.Duration
	}{
		{"500 on writes is info", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut {
				http.Error(w, "No cluster leader", http.StatusInternalServerError)
				return true
			}
			return false
		}, history.Info, history.OK, "http 500: No cluster leader", 0},
		{"timeout on writes is info", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut {
				time.Sleep(time.Second) // longer than the op timeout below
				return true
			}
			return false
		}, history.Info, history.OK, "timeout", 300 * time.Millisecond},
		{"400 on writes is fail", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut {
				http.Error(w, "Request body too large", http.StatusRequestEntityTooLarge)
				return true
			}
			return false
		}, history.Fail, history.OK, "http 413: Request body too large", 0},
		{"500 on reads is fail", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet {
				http.Error(w, "No cluster leader", http.StatusInternalServerError)
				return true
			}
			return false
		}, history.OK, history.Fail, "http 500: No cluster leader", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeConsul()
			fake.hook = func(_ string, w http.ResponseWriter, r *http.Request) bool { return tt.hook(w, r) }
			rec, read := recording(t)
			timeout := tt.opTimeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			cfg := Config{Endpoints: fake.endpoints(t, 2), Concurrency: 2, Keys: 2, OpTimeout: timeout, Seed: 3, Recorder: rec}
			runFor(t, &Register{}, cfg, 700*time.Millisecond)
			ops := read()
			checkWellFormed(t, ops)
			var writes, reads, newProcs int
			for _, op := range ops {
				if op.Process >= 2 && op.Type == history.Invoke {
					newProcs++
				}
				if op.Type == history.Invoke {
					continue
				}
				want := tt.wantPut
				if op.F == "read" {
					want = tt.wantRead
					reads++
				} else {
					writes++
				}
				if op.F == "cas" && op.Type == history.Fail && want != history.Fail {
					continue // a cas may fail on its read or its comparison
				}
				if op.Type != want {
					t.Fatalf("%s completed %s (%s), want %s", op.F, op.Type, op.Error, want)
				}
				if want != history.OK && op.Error != tt.wantErr {
					t.Fatalf("error %q, want %q", op.Error, tt.wantErr)
				}
			}
			if writes == 0 || reads == 0 {
				t.Fatalf("writes %d reads %d", writes, reads)
			}
			if (tt.wantPut == history.Info) != (newProcs > 0) {
				t.Fatalf("%d invocations under new processes; want them only after info", newProcs)
			}
		})
	}
}

func TestRefusedConnectionIsFail(t *testing.T) {
	rec, read := recording(t)
	// A port nobody listens on: take a free port, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := Config{Endpoints: []Endpoint{{Name: "n1", Addr: addr}}, Concurrency: 1, Keys: 1, OpTimeout: time.Second, Recorder: rec}
	runFor(t, &Register{}, cfg, 50*time.Millisecond)
	for _, op := range read() {
		if op.Type != history.Invoke && op.Type != history.Fail {
			t.Fatalf("refused connection gave %s (%s)", op.Type, op.Error)
		}
	}
}

func TestRateLimit(t *testing.T) {
	fake := newFakeConsul()
	rec, read := recording(t)
	cfg := Config{Endpoints: fake.endpoints(t, 2), Concurrency: 4, Rate: 100, Keys: 2, Recorder: rec}
	start := time.Now()
	runFor(t, &Register{}, cfg, time.Second)
	elapsed := time.Since(start).Seconds()
	invokes := 0
	for _, op := range read() {
		if op.Type == history.Invoke {
			invokes++
		}
	}
	if rate := float64(invokes) / elapsed; rate < 60 || rate > 130 {
		t.Fatalf("%d invocations in %.2fs = %.0f/s, want about 100/s", invokes, elapsed, rate)
	}
}

func TestRegisterFinalReadsEveryKeyOnEveryEndpoint(t *testing.T) {
	fake := newFakeConsul()
	rec, read := recording(t)
	eps := fake.endpoints(t, 3)
	cfg := Config{Endpoints: eps, Concurrency: 3, Keys: 4, ReadMode: ReadStale, Recorder: rec}
	r := &Register{}
	runFor(t, r, cfg, 100*time.Millisecond)
	runOps := len(read())
	if err := r.Final(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ops := read()
	checkWellFormed(t, ops)
	seen := map[string]bool{}
	maxRunProc := history.Process(-1)
	for _, op := range ops[:runOps] {
		maxRunProc = max(maxRunProc, op.Process)
	}
	for _, op := range ops[runOps:] {
		if op.F != "read" {
			t.Fatalf("final op %+v", op)
		}
		if op.Process <= maxRunProc {
			t.Fatalf("final read reuses process %d", op.Process)
		}
		if op.Type == history.OK {
			seen[op.Node+" "+op.Key] = true
			v, ok, _ := op.Int()
			stored, exists := fake.value("jepsen/" + op.Key)
			if ok != exists || ok && fmt.Sprint(v) != stored {
				t.Fatalf("final read %s on %s = %s, store has %q", op.Key, op.Node, op.Value, stored)
			}
		}
	}
	for _, ep := range eps {
		for i := 0; i < 4; i++ {
			if !seen[ep.Name+" r"+fmt.Sprint(i)] {
				t.Errorf("no ok final read of r%d on %s", i, ep.Name)
			}
		}
		reqs := fake.requestsOf(ep.Name)
		for _, req := range reqs[len(reqs)-4:] {
			if !strings.HasSuffix(req, " consistent") {
				t.Errorf("final read %q on %s is not consistent", req, ep.Name)
			}
		}
	}
}

// TestRegisterCorruptReadIsOK: a stored value that is not an integer is read as ok with the raw
// value, which the register checker then names as a corrupt value.
func TestRegisterCorruptReadIsOK(t *testing.T) {
	fake := newFakeConsul()
	fake.kv["jepsen/r0"] = fakeEntry{value: []byte("12x"), create: 1, modify: 1}
	rec, read := recording(t)
	cfg := Config{Endpoints: fake.endpoints(t, 1), Concurrency: 1, Keys: 1, Recorder: rec, KeyPrefix: "jepsen/", OpTimeout: 5 * time.Second}
	r := &Register{}
	c, err := newClient(cfg.Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if got := r.read(context.Background(), cfg, c, 0, "r0", ReadConsistent); got != history.OK {
		t.Fatalf("read of a corrupt value: %s", got)
	}
	ops := read()
	last := ops[len(ops)-1]
	if last.Type != history.OK || string(last.Value) != `"12x"` {
		t.Fatalf("recorded %+v", last)
	}
	res := (&checker.Register{}).Check(context.Background(), ops)
	if res.Valid != checker.Invalid || !strings.Contains(res.Error, "corrupt value") {
		t.Fatalf("checker: %v %s", res.Valid, res.Error)
	}
}
