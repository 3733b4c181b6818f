package checker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

func TestRegister(t *testing.T) {
	cases := []struct {
		name string
		h    *hb
		want Validity
	}{
		{"sequential write then read", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", 1), Valid},
		{"stale read after a completed write", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "write", "k", 2).ok(4, 0, "write", "k", 2).
			inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 1), Invalid},
		{"concurrent overlapping write and read", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "write", "k", 2).inv(4, 1, "read", "k", nil).ok(5, 1, "read", "k", 1).ok(6, 0, "write", "k", 2).
			inv(7, 1, "read", "k", nil).ok(8, 1, "read", "k", 2), Valid},
		{"missing key reads null", new(hb).
			inv(1, 1, "read", "k", nil).ok(2, 1, "read", "k", nil).
			inv(3, 0, "write", "k", 1).ok(4, 0, "write", "k", 1), Valid},
		{"null read after a completed write", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", nil), Invalid},
		{"info write later read", new(hb).
			inv(1, 0, "write", "k", 1).info(2, 0, "write", "k", 1).
			inv(10, 1, "read", "k", nil).ok(11, 1, "read", "k", nil).
			inv(20, 1, "read", "k", nil).ok(21, 1, "read", "k", 1).
			inv(30, 1, "read", "k", nil).ok(31, 1, "read", "k", 1), Valid},
		{"info write read then unread", new(hb).
			inv(1, 0, "write", "k", 1).info(2, 0, "write", "k", 1).
			inv(20, 1, "read", "k", nil).ok(21, 1, "read", "k", 1).
			inv(30, 1, "read", "k", nil).ok(31, 1, "read", "k", nil), Invalid},
		{"info write never read", new(hb).
			inv(1, 0, "write", "k", 1).info(2, 0, "write", "k", 1).
			inv(3, 1, "write", "k", 2).ok(4, 1, "write", "k", 2).
			inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 2), Valid},
		{"fail write is read", new(hb).
			inv(1, 0, "write", "k", 1).fail(2, 0, "write", "k", 1).
			inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", 1), Invalid},
		{"read of a value never written", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", 7), Invalid},
		{"cas success", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{1, 5}).ok(4, 0, "cas", "k", []int{1, 5}).
			inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 5), Valid},
		{"cas success on wrong state", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{2, 5}).ok(4, 0, "cas", "k", []int{2, 5}), Invalid},
		{"cas on missing key", new(hb).
			inv(3, 0, "cas", "k", []int{0, 5}).ok(4, 0, "cas", "k", []int{0, 5}), Invalid},
		{"info cas chain", new(hb).
			inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
			inv(3, 0, "cas", "k", []int{1, 5}).info(4, 0, "cas", "k", nil).
			inv(5, 2, "cas", "k", []int{5, 6}).ok(9, 2, "cas", "k", []int{5, 6}).
			inv(10, 1, "read", "k", nil).ok(11, 1, "read", "k", 6), Valid},
		{"keys are independent", new(hb).
			inv(1, 0, "write", "a", 1).ok(2, 0, "write", "a", 1).
			inv(3, 1, "read", "b", nil).ok(4, 1, "read", "b", 1), Invalid},
		{"pending invoke counts as info", new(hb).
			inv(1, 0, "write", "k", 1).
			inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", 1), Valid},
		{"nemesis and info reads ignored", new(hb).
			nemesis(0, "kill", history.NemesisEvent{Event: "start"}).
			inv(1, 1, "read", "k", nil).info(2, 1, "read", "k", nil).
			inv(3, 2, "read", "k", nil).fail(4, 2, "read", "k", nil), Valid},
	}
	for _, c := range cases {
		for _, prune := range []bool{true, false} {
			r := Register{NoPrune: !prune}
			res := r.Check(context.Background(), c.h.ops)
			if res.Valid != c.want {
				t.Errorf("%s (prune %v): got %v (%s), want %v", c.name, prune, res.Valid, res.Error, c.want)
			}
			if c.want == Invalid && (res.FirstAnomaly == nil || res.Error == "") {
				t.Errorf("%s: invalid without anomaly: %+v", c.name, res)
			}
		}
	}
}

func TestRegisterGenerated(t *testing.T) {
	ops := GenerateRegisterHistory(1, 20000, 10, 20, 0.05)
	for _, prune := range []bool{true, false} {
		res := Register{NoPrune: !prune}.Check(context.Background(), ops)
		if res.Valid != Valid {
			t.Fatalf("generated history (prune %v) is %v: %s", prune, res.Valid, res.Error)
		}
	}
	// Corrupt one read (a value no op wrote): it must be caught, with the anomaly at that read.
	i := len(ops) / 2
	for i < len(ops) && (ops[i].F != "read" || ops[i].Type != history.OK || string(ops[i].Value) == "null") {
		i++
	}
	if i == len(ops) {
		t.Fatalf("the generator (seed 1, %d lines) produced no ok read of a value in its second half: nothing to corrupt", len(ops))
	}
	ops[i].Value = []byte("123456789")
	for _, prune := range []bool{true, false} {
		res := Register{NoPrune: !prune}.Check(context.Background(), ops)
		if res.Valid != Invalid || res.FirstAnomaly == nil {
			t.Fatalf("history with read %d corrupted (prune %v) is %v, anomaly %+v", ops[i].Index, prune, res.Valid, res.FirstAnomaly)
		}
		if a := res.FirstAnomaly; a.Key != ops[i].Key || a.Index != ops[i].Index {
			t.Errorf("prune %v: anomaly at index %d key %q, want the corrupted read at index %d key %q: %s", prune, a.Index, a.Key, ops[i].Index, ops[i].Key, a.Description)
		}
	}
}

func TestRegisterVisualize(t *testing.T) {
	dir := t.TempDir()
	h := new(hb).
		inv(1, 0, "write", "a/b", 1).ok(2, 0, "write", "a/b", 1).
		inv(3, 1, "read", "a/b", nil).ok(4, 1, "read", "a/b", 2)
	res := Register{VisualizeDir: dir}.Check(context.Background(), h.ops)
	if res.Valid != Invalid {
		t.Fatalf("got %v", res.Valid)
	}
	d := res.Details.(*RegisterDetails)
	if len(d.Files) != 1 || !strings.HasPrefix(filepath.Base(d.Files[0]), "linear-a_b-") {
		t.Fatalf("files %v", d.Files)
	}
	if b, err := os.ReadFile(d.Files[0]); err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("visualisation %v: %.100s", err, b)
	}
	if b, err := json.Marshal(res); err != nil || !strings.Contains(string(b), `"valid":false`) {
		t.Fatalf("results.json form: %s %v", b, err)
	}
	kr := d.PerKey["a/b"]
	if kr.Valid != Invalid || len(kr.Excerpt) == 0 || res.FirstAnomaly.Index != 3 {
		t.Fatalf("key result %+v, anomaly %+v", kr, res.FirstAnomaly)
	}
}

// TestRegisterTimeout: an expired timeout gives Unknown, never Valid.
func TestRegisterTimeout(t *testing.T) {
	ops := GenerateRegisterHistory(2, 200000, 1, 20, 0.2)
	res := Register{Timeout: time.Millisecond, NoPrune: true, PorcupineOnly: true}.Check(context.Background(), ops)
	if res.Valid != Unknown {
		t.Fatalf("got %v (%s), want unknown", res.Valid, res.Error)
	}
}
