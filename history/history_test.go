package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	r, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		r.Nemesis(FPhase, NemesisEvent{Event: PhaseWorkload}),
		r.Invoke(3, "cas", "r2", MustValue([]int{4, 9})),
		r.Invoke(4, "read", "r1", nil),
		r.Nemesis("partition", NemesisEvent{Event: EventStart, Targets: []string{"n1"}, Detail: map[string]any{"grudge": "x<y&z"}}),
	}
	want = append(want,
		r.Complete(want[1], OK, MustValue([]int{4, 9}), "n2", ""),
		r.Complete(want[2], Info, nil, "", "timeout: \"context deadline\" <ü>"),
		r.Invoke(5, "write", "ключ", MustValue(7)),
		r.Nemesis(FLeader, NemesisEvent{Event: EventObserved, Leaders: map[string]string{"n1": "n2", "n2": "n2"}}),
	)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d ops, want %d", len(got), len(want))
	}
	for i := range want {
		if want[i].Value == nil {
			want[i].Value = json.RawMessage("null")
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("op %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
		if got[i].Index != int64(i) {
			t.Errorf("op %d has index %d", i, got[i].Index)
		}
	}
	if !got[0].IsNemesis() || got[0].Process != NemesisProcess {
		t.Errorf("nemesis op read back as process %d", got[0].Process)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, []byte(`"process":"nemesis"`)) {
		t.Errorf("nemesis process not written as a string:\n%s", raw)
	}
	if a, b, err := got[4].Pair(); err != nil || a != 4 || b != 9 {
		t.Errorf("Pair = %d, %d, %v", a, b, err)
	}
	var ev NemesisEvent
	if err := json.Unmarshal(got[7].Value, &ev); err != nil || ev.Leaders["n1"] != "n2" {
		t.Errorf("leader event = %+v, %v", ev, err)
	}
}

func TestReadTolerance(t *testing.T) {
	good := `{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":"k","value":null}`
	cases := []struct {
		name    string
		in      string
		n       int
		wantErr string
	}{
		{"truncated last line", good + "\n" + `{"index":1,"time":2,"proc`, 1, ""},
		{"truncated value", good + "\n" + `{"index":1,"time":2,"process":0,"type":"ok","f":"read","value":[1,`, 1, ""},
		{"blank lines", "\n" + good + "\n\n  \n" + good + "\n", 2, ""},
		{"no trailing newline", good, 1, ""},
		{"bad middle line", good + "\n{oops\n" + good + "\n", 1, "line 2:"},
		{"bad type", good + "\n" + good + "\n" + strings.Replace(good, "invoke", "done", 1) + "\n", 2, `line 3: unknown type "done"`},
		{"negative process", strings.Replace(good, `"process":0`, `"process":-3`, 1) + "\n", 0, "line 1:"},
		{"unknown fields", `{"index":0,"time":1,"extra":{"a":[1,2,{"b":null}]},"process":0,"type":"ok","f":"read","key":"k","value":3,"zz":"q"}` + "\n", 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops, err := Read(strings.NewReader(c.in))
			if c.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if len(ops) != c.n {
				t.Fatalf("read %d ops, want %d", len(ops), c.n)
			}
		})
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	in := `{"index":5,"time":9,"process":"nemesis","type":"info","f":"kill","value":{"event":"start","targets":["n1"]},"future":[1,{"x":2}],"node":"n3"}` + "\n"
	ops, err := Read(strings.NewReader(in))
	if err != nil || len(ops) != 1 {
		t.Fatalf("Read = %v, %v", ops, err)
	}
	op := ops[0]
	if op.Index != 5 || op.Time != 9 || !op.IsNemesis() || op.F != "kill" || op.Node != "n3" ||
		string(op.Value) != `{"event":"start","targets":["n1"]}` {
		t.Fatalf("decoded %+v", op)
	}
}

func TestConcurrentRecorder(t *testing.T) {
	var buf bytes.Buffer
	r := NewRecorder(&buf)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	got := make([][]int64, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				inv := r.Invoke(Process(w), "write", fmt.Sprint("k", i%3), MustValue(i))
				done := r.Complete(inv, OK, inv.Value, "n1", "")
				got[w] = append(got[w], inv.Index, done.Index)
			}
		}(w)
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for w := range got {
		for i, idx := range got[w] {
			if seen[idx] {
				t.Fatalf("index %d handed out twice", idx)
			}
			seen[idx] = true
			if i > 0 && idx <= got[w][i-1] {
				t.Fatalf("worker %d saw index %d after %d", w, idx, got[w][i-1])
			}
		}
	}
	ops, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2*workers*each {
		t.Fatalf("read %d ops, want %d", len(ops), 2*workers*each)
	}
	for i, op := range ops {
		if op.Index != int64(i) {
			t.Fatalf("line %d carries index %d", i+1, op.Index)
		}
		if i > 0 && op.Time < ops[i-1].Time {
			t.Fatalf("time goes backwards at line %d", i+1)
		}
	}
}

// TestEncoderMatchesJSON checks the hand-written encoder against json.Marshal.
func TestEncoderMatchesJSON(t *testing.T) {
	ops := []Op{
		{},
		{Index: 1, Time: 2, Process: 3, Type: OK, F: "cas", Key: "r2", Value: json.RawMessage("[4,9]"), Node: "n2"},
		{Process: NemesisProcess, Type: Info, F: "kill", Value: json.RawMessage(`{"event":"start"}`)},
		{Type: Info, F: "read", Value: json.RawMessage("[1, 2]"), Error: "a<b"},
		{Type: Info, F: "read", Value: json.RawMessage{}},
		{Type: Info, F: "read", Value: json.RawMessage("-12345678901234567890")},
		{Type: Fail, F: "x", Key: "ü", Value: json.RawMessage("7"), Error: "line\nbreak"},
	}
	for _, op := range ops {
		want, werr := json.Marshal(op)
		got, gerr := appendOp(nil, op)
		if (werr != nil) != (gerr != nil) || (werr == nil && !bytes.Equal(got, want)) {
			t.Errorf("appendOp(%+v) = %s, %v; json.Marshal = %s, %v", op, got, gerr, want, werr)
		}
	}
}
