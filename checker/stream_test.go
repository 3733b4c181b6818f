package checker

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/raftcheck/harness/history"
)

// accumulate feeds ops one at a time through copies that are clobbered after each Add, as
// history.Scan does, so an accumulator that keeps a reference to an op is caught.
func accumulate(a Accumulator, ops []history.Op) Result {
	var scratch history.Op
	for i := range ops {
		scratch = ops[i]
		scratch.Value = append(json.RawMessage(nil), ops[i].Value...)
		a.Add(&scratch)
		for j := range scratch.Value {
			scratch.Value[j] = 'X'
		}
		scratch = history.Op{}
	}
	return a.Result(context.Background())
}

// TestAccumulatorsAgree: each accumulator gives the result of its checker's Check.
func TestAccumulatorsAgree(t *testing.T) {
	valid := GenerateRegisterHistory(4, 3000, 5, 8, 0.05)
	stale := GenerateRegisterHistory(4, 3000, 5, 8, 0.05)
	InjectStaleRead(stale, len(stale)/2)
	live := livenessHistory(history.OK, map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}).ops
	dead := livenessHistory(history.Info, map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}).ops
	for _, h := range [][]history.Op{valid, stale, live, dead} {
		for _, c := range []interface {
			Checker
			Accumulate() Accumulator
		}{Register{}, Stats{}, Liveness{}} {
			want := c.Check(context.Background(), h)
			got := accumulate(c.Accumulate(), h)
			if d, ok := want.Details.(*RegisterDetails); ok {
				d.Seconds = 0
				got.Details.(*RegisterDetails).Seconds = 0
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: accumulated %+v, checked %+v", c.Name(), got, want)
			}
		}
	}
}

// TestCorruptRead: a read of a value that is not an integer makes the key invalid, named.
func TestCorruptRead(t *testing.T) {
	h := new(hb).
		inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
		inv(3, 1, "read", "k", nil).ok(4, 1, "read", "k", "1garbage").
		inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 1)
	for _, r := range []Register{{}, {PorcupineOnly: true}} {
		res := r.Check(context.Background(), h.ops)
		if res.Valid != Invalid || !strings.Contains(res.Error, "corrupt value") || !strings.Contains(res.Error, "1garbage") || res.FirstAnomaly.Index != 3 {
			t.Fatalf("got %v: %s %+v", res.Valid, res.Error, res.FirstAnomaly)
		}
	}
	// The same history without the corrupt read passes.
	ok := new(hb).
		inv(1, 0, "write", "k", 1).ok(2, 0, "write", "k", 1).
		inv(5, 1, "read", "k", nil).ok(6, 1, "read", "k", 1)
	if res := (Register{}).Check(context.Background(), ok.ops); res.Valid != Valid {
		t.Fatalf("clean twin: %v %s", res.Valid, res.Error)
	}
}
