package history

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestScanAgreesWithRead: Scan gives the ops Read gives, with the same errors and the same
// tolerance of a truncated last line.
func TestScanAgreesWithRead(t *testing.T) {
	good := `{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":1}
{"index":1,"time":2,"process":0,"type":"ok","f":"write","key":"k","value":1,"node":"n1"}

{"index":2,"time":3,"process":"nemesis","type":"info","f":"kill","value":{"event":"start"}}
{"index":3,"time":4,"process":1,"type":"invoke","f":"read","key":"k","value":null}
{"index":4,"ti`
	for _, in := range []string{good, good[:strings.LastIndexByte(good, '\n')], good + "\n{}\n",
		`{"index":0,"time":1,"process":0,"type":"bogus","f":"read"}`} {
		want, werr := Read(strings.NewReader(in))
		var got []Op
		gerr := Scan(strings.NewReader(in), func(op *Op) error {
			c := *op
			c.Value = append(json.RawMessage(nil), op.Value...)
			got = append(got, c)
			return nil
		})
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			t.Fatalf("errors differ: read %v, scan %v", werr, gerr)
		}
		if len(got) != len(want) {
			t.Fatalf("scan gave %d ops, read %d", len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if !bytes.Equal(g.Value, w.Value) {
				t.Fatalf("op %d: scan value %s, read %s", i, g.Value, w.Value)
			}
			g.Value, w.Value = nil, nil
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("op %d: scan %+v, read %+v", i, g, w)
			}
		}
	}
	// An error from the callback stops the scan and comes back as it is.
	stop := Scan(strings.NewReader(good), func(*Op) error { return errStop })
	if stop != errStop {
		t.Fatalf("callback error: %v", stop)
	}
}

var errStop = bytes.ErrTooLarge
