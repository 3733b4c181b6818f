package workloads

import (
	"strings"
	"testing"

	"github.com/raftcheck/harness/history"
)

func TestNew(t *testing.T) {
	for _, name := range []string{"register", "set"} {
		w, err := New(name)
		if err != nil || w.Name() != name {
			t.Fatalf("New(%q) = %v, %v", name, w, err)
		}
		if len(w.Checkers(CheckOptions{})) == 0 {
			t.Fatalf("%s names no checkers", name)
		}
	}
	_, err := New("bank")
	if err == nil || !strings.Contains(err.Error(), "register, set") {
		t.Fatalf("New(bank) error %v should list the valid names", err)
	}
}

func TestInfer(t *testing.T) {
	op := func(p history.Process, f string) history.Op {
		return history.Op{Process: p, Type: history.Invoke, F: f}
	}
	nem := op(history.NemesisProcess, "add") // nemesis lines never decide
	tests := []struct {
		ops  []history.Op
		want string
	}{
		{[]history.Op{nem, op(0, "read"), op(1, "cas")}, "register"},
		{[]history.Op{op(0, "write")}, "register"},
		{[]history.Op{op(0, "add"), op(1, "read")}, "set"},
		{[]history.Op{nem}, ""},
		{[]history.Op{op(0, "add"), op(1, "write")}, ""},
	}
	for _, tt := range tests {
		got, err := Infer(tt.ops)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("Infer(%v) = %q, %v; want %q", tt.ops, got, err, tt.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	rec, _ := recording(t)
	ep := []Endpoint{{Name: "n1", Addr: "127.0.0.1:1"}}
	bad := map[string]Config{
		"Endpoints": {Recorder: rec},
		"Recorder":  {Endpoints: ep},
		"ReadMode":  {Endpoints: ep, Recorder: rec, ReadMode: "linearizable"},
		"Addr":      {Endpoints: []Endpoint{{Name: "n1"}}, Recorder: rec},
	}
	for field, cfg := range bad {
		if _, err := cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("config with bad %s: error %v should name it", field, err)
		}
	}
	cfg, err := Config{Endpoints: ep, Recorder: rec}.withDefaults()
	if err != nil || cfg.Concurrency != 2 || cfg.Keys != 10 || cfg.ReadMode != ReadConsistent || cfg.KeyPrefix != "jepsen/" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}
