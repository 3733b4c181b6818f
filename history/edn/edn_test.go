package edn

import (
	"context"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

func TestDecodeForms(t *testing.T) {
	in := `nil true false 42 -7 +3 12N 123456789012345678901234567890 1.5 "a\"b\n\u00e9" \a \newline
	:ok :jepsen/x sym [1, 2] (3 4) {:a 1 "b" [2]} #{1 2} #inst "2020-01-01" #_ :skipped :kept ; comment
	#jepsen.independent.Tuple{:key 1, :value 2}`
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	want := []any{nil, true, false, int64(42), int64(-7), int64(3), int64(12), big1, 1.5, "a\"b\né", Char('a'), Char('\n'),
		Keyword("ok"), Keyword("jepsen/x"), Symbol("sym"), Vector{int64(1), int64(2)}, List{int64(3), int64(4)},
		Map{{Keyword("a"), int64(1)}, {"b", Vector{int64(2)}}}, Set{int64(1), int64(2)},
		Tagged{"inst", "2020-01-01"}, Keyword("kept"),
		Tagged{"jepsen.independent.Tuple", Map{{Keyword("key"), int64(1)}, {Keyword("value"), int64(2)}}}}
	d := NewDecoder(strings.NewReader(in))
	for i, w := range want {
		got, err := d.Next()
		if err != nil {
			t.Fatalf("form %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("form %d: got %#v (%s), want %#v", i, got, String(got), w)
		}
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("after the last form: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{`[1 2`, `{:a}`, `"open`, `)`, `[1 }`, `#`, `:`, `\bogus`, `#tag`} {
		d := NewDecoder(strings.NewReader(in))
		var err error
		for err == nil {
			_, err = d.Next()
		}
		if err == io.EOF {
			t.Errorf("%q: no error", in)
		} else if !strings.Contains(err.Error(), "edn line") {
			t.Errorf("%q: error %q does not name the line", in, err)
		}
	}
}

func readTestdata(t *testing.T, name string) []history.Op {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := ReadJepsen(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ops
}

// TestJepsenHistories: hand-written Jepsen-shaped histories that must pass and must fail.
func TestJepsenHistories(t *testing.T) {
	cases := []struct {
		file string
		c    checker.Checker
		want checker.Validity
		keys int
	}{
		{"register-valid.edn", checker.Register{}, checker.Valid, 1},
		{"register-stale.edn", checker.Register{}, checker.Invalid, 1},
		{"independent-valid.edn", checker.Register{}, checker.Valid, 2},
		{"independent-stale.edn", checker.Register{}, checker.Invalid, 2},
		{"set-valid.edn", checker.Set{}, checker.Valid, 0},
		{"set-lost.edn", checker.Set{}, checker.Invalid, 0},
	}
	for _, c := range cases {
		ops := readTestdata(t, c.file)
		res := c.c.Check(context.Background(), ops)
		if res.Valid != c.want {
			t.Errorf("%s: %v (%s), want %v", c.file, res.Valid, res.Error, c.want)
		}
		if d, ok := res.Details.(*checker.RegisterDetails); ok && d.Keys != c.keys {
			t.Errorf("%s: %d keys, want %d", c.file, d.Keys, c.keys)
		}
		for i, op := range ops {
			if op.Index != int64(i) || !op.Type.Valid() {
				t.Fatalf("%s: line %d is %+v", c.file, i, op)
			}
		}
	}
}

// TestJepsenNemesis: Jepsen's :start/:stop nemesis ops become one fault window.
func TestJepsenNemesis(t *testing.T) {
	ops := readTestdata(t, "register-valid.edn")
	w := checker.FaultWindows(ops)
	if len(w) != 1 || w[0].F != "nemesis" || w[0].Start != 4100 || w[0].End != 9100 {
		t.Fatalf("windows %+v", w)
	}
}

func TestJepsenBadInput(t *testing.T) {
	for _, in := range []string{
		`{:type :invoke, :f :write, :value 1, :process "x", :time 1}`,
		`{:type :done, :f :write, :value 1, :process 0, :time 1}`,
		`{:type :invoke, :f :write, :value 1, :process 0, :time 1.5}`,
		`42`,
		``,
	} {
		if _, err := ReadJepsen(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// TestJepsenTaggedOps: ops written as tagged records (#jepsen.history.Op{…}) in one vector, with
// commas and a discarded form, read like plain maps.
func TestJepsenTaggedOps(t *testing.T) {
	in := `[#jepsen.history.Op{:index 0, :time 1, :type :invoke, :process 0, :f :write, :value 5}
	 #_ {:ignored true}
	 #jepsen.history.Op{:index 1, :time 2, :type :ok, :process 0, :f :write, :value 5},
	 #jepsen.history.Op{:index 2, :time 3, :type :invoke, :process 1, :f :read, :value nil}
	 #jepsen.history.Op{:index 3, :time 4, :type :ok, :process 1, :f :read, :value 6}]`
	ops, err := ReadJepsen(strings.NewReader(in))
	if err != nil || len(ops) != 4 {
		t.Fatalf("%d ops, %v", len(ops), err)
	}
	if res := (checker.Register{}).Check(context.Background(), ops); res.Valid != checker.Invalid || !strings.Contains(res.Error, "never written") {
		t.Fatalf("read of 6, never written: %v %s", res.Valid, res.Error)
	}
}
