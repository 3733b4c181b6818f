package agent

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzParseRequest feeds arbitrary query strings to the KV and query decoders: they must
// return a value or a 4xx/5xx httpError, never panic.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"", "stale", "consistent&stale", "index=5&wait=10s", "cas=1&acquire=x",
		"recurse&cas=3", "keys&separator=/", "dc=dc2", "flags=18446744073709551615", "max_stale=1s", "wait=-1s", "%zz"} {
		f.Add("GET", "k", s)
		f.Add("PUT", "a/b", s)
		f.Add("DELETE", "", s)
	}
	f.Fuzz(func(t *testing.T, method, key, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		if _, herr := parseQuery(q, "dc1"); herr != nil && (herr.code < 400 || herr.msg == "") {
			t.Fatalf("bad error %+v", herr)
		}
		if _, herr := parseKV(method, key, q); herr != nil && (herr.code < 400 || herr.msg == "") {
			t.Fatalf("bad error %+v", herr)
		}
	})
}

// FuzzDecodeTxn: any body decodes to valid KV operations or a 4xx error.
func FuzzDecodeTxn(f *testing.F) {
	f.Add([]byte(`[{"KV":{"Verb":"set","Key":"k","Value":"eA=="}}]`))
	f.Add([]byte(`[{"KV":{"Verb":"cas","Key":"k","Index":3}},{"Node":null}]`))
	f.Add([]byte(`[{"Node":{}}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{`))
	f.Add([]byte(`[{"KV":null}] x`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, herr := decodeTxn(body)
		if herr != nil {
			if herr.code != http.StatusBadRequest && herr.code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for %q", herr.code, body)
			}
			return
		}
		if len(ops) > MaxTxnOps {
			t.Fatalf("%d ops accepted", len(ops))
		}
		for _, op := range ops {
			if !validVerbs[op.Verb] || len(op.Value) > MaxValueSize {
				t.Fatalf("invalid op accepted: %+v", op)
			}
		}
		// Evaluating the decoded operations must not panic either.
		s := newStore()
		if isReadOnlyTxn(ops) {
			s.ReadTxn(ops)
		} else {
			s.mu.Lock()
			s.txnLocked(ops, 1)
			s.mu.Unlock()
		}
	})
}
