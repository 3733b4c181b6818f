package history

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var fuzzSeeds = []string{
	`{"index":7,"time":1523000000,"process":3,"type":"invoke","f":"cas","key":"r2","value":[4,9]}`,
	`{"index":8,"time":1541000000,"process":3,"type":"ok","f":"cas","key":"r2","value":[4,9],"node":"n2"}`,
	`{"index":9,"time":1,"process":"nemesis","type":"info","f":"partition","value":{"event":"start","targets":["n1"]}}`,
	`{"index":1,"time":2,"process":0,"type":"ok","f":"read","key":"k","value":null,"Extra":1}`,
	`{"INDEX":1,"Time":2,"process":-0,"type":"ok","f":"read","value":[ 1 , 2 ]}`,
	`{"index":1.5,"time":1e3,"process":"x","type":"ok"}`,
	`{"index":1,"index":2,"key":"a\u0041","value":"str","error":"e\n"}`,
	`{"index":99999999999999999999}`,
	"{\"f\":\"\xff\"}",
	`null`,
	`{}`,
	`[1]`,
	`{"value":nul}`,
	`{"value":[1,2}`,
	"{\"value\":1}\n{\"value\":2",
}

// FuzzRead: Read never panics, whatever the input.
func FuzzRead(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s + "\n" + s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := Read(bytes.NewReader(b))
		if err == nil {
			for _, op := range ops {
				if !op.Type.Valid() {
					t.Fatalf("Read returned op with type %q", op.Type)
				}
			}
		}
	})
}

// FuzzDecode: the fast decoder agrees with encoding/json on every input it accepts.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Op
		d := newDecoder()
		ok := d.fast(b, &fast)
		var slow Op
		err := json.Unmarshal(b, &slow)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(normal(fast), normal(slow)) {
			t.Fatalf("fast path on %q:\n got %+v\nwant %+v", b, fast, slow)
		}
	})
}

// normal maps an empty non-nil RawMessage to nil so DeepEqual compares content.
func normal(op Op) Op {
	if len(op.Value) == 0 {
		op.Value = nil
	}
	return op
}

// FuzzEncode: the hand-written encoder writes what json.Marshal writes, and it reads back.
func FuzzEncode(f *testing.F) {
	f.Add(int64(1), int64(2), 3, "ok", "cas", "r2", []byte("[4,9]"), "n1", "")
	f.Add(int64(-1), int64(0), -1, "info", "kill", "", []byte(`{"a":1}`), "", "x<y")
	f.Fuzz(func(t *testing.T, idx, tm int64, p int, typ, fn, key string, val []byte, node, errText string) {
		op := Op{Index: idx, Time: tm, Process: Process(p), Type: Type(typ), F: fn, Key: key, Value: val, Node: node, Error: errText}
		want, werr := json.Marshal(op)
		got, gerr := appendOp(nil, op)
		if (werr != nil) != (gerr != nil) || (werr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("appendOp(%+v) = %s, %v; json.Marshal = %s, %v", op, got, gerr, want, werr)
		}
	})
}
