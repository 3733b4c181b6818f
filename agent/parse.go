package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits, as Consul's defaults.
const (
	MaxValueSize   = 512 * 1024 // kv_max_value_size: larger KV values get 413
	MaxTxnBodySize = 512 * 1024 // txn_max_req_len: larger txn bodies get 413
	MaxTxnOps      = 128        // more operations in one txn get 413
	defaultWait    = 5 * time.Minute
	maxWait        = 10 * time.Minute
)

// httpError is an error with the HTTP status to answer and a plain-text reason.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errf(code int, format string, a ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, a...)}
}

// readMode is the consistency mode of a read.
type readMode int

const (
	modeDefault    readMode = iota // served by the leader from its FSM, trusting its lease
	modeStale                      // served by any server from its FSM
	modeConsistent                 // leader verifies leadership with a quorum first
)

func (m readMode) String() string {
	return [...]string{"leader", "stale", "consistent"}[m]
}

// queryOptions are the parameters every read understands.
type queryOptions struct {
	mode  readMode
	index uint64        // block until the result's index exceeds this (0: no blocking)
	wait  time.Duration // longest block
}

// parseQuery decodes dc, consistency and blocking parameters as Consul's parse() does.
// Unknown parameters are ignored.
func parseQuery(q url.Values, dc string) (queryOptions, *httpError) {
	var o queryOptions
	if d := q.Get("dc"); d != "" && d != dc {
		return o, errf(http.StatusInternalServerError, "No path to datacenter")
	}
	_, stale := q["stale"]
	_, consistent := q["consistent"]
	if ms := q.Get("max_stale"); ms != "" {
		d, err := time.ParseDuration(ms)
		if err != nil {
			return o, errf(http.StatusBadRequest, "Invalid max_stale value %q", ms)
		}
		if d > 0 {
			stale = true
		}
	}
	if stale && consistent {
		return o, errf(http.StatusBadRequest, "Cannot specify ?stale with ?consistent, conflicting semantics.")
	}
	switch {
	case stale:
		o.mode = modeStale
	case consistent:
		o.mode = modeConsistent
	}
	if w := q.Get("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			return o, errf(http.StatusBadRequest, "Invalid wait time")
		}
		o.wait = max(d, 0) // as Consul: a negative wait is the default wait

	}
	if i := q.Get("index"); i != "" {
		n, err := strconv.ParseUint(i, 10, 64)
		if err != nil {
			return o, errf(http.StatusBadRequest, "Invalid index")
		}
		o.index = n
	}
	if o.index > 0 {
		if o.wait == 0 {
			o.wait = defaultWait
		}
		if o.wait > maxWait {
			o.wait = maxWait
		}
	}
	return o, nil
}

// kvRequest is a decoded /v1/kv/<key> request.
type kvRequest struct {
	key       string
	recurse   bool
	keys      bool
	separator string
	raw       bool
	flags     uint64
	cas       *uint64
	acquire   string
	release   string
}

// parseKV decodes a KV request's parameters for the given method.
func parseKV(method, key string, q url.Values) (kvRequest, *httpError) {
	r := kvRequest{key: strings.TrimPrefix(key, "/")}
	_, r.recurse = q["recurse"]
	_, r.keys = q["keys"]
	_, r.raw = q["raw"]
	r.separator = q.Get("separator")
	if r.separator == "" {
		r.separator = q.Get("seperator") // Consul accepts the old misspelling
	}
	if v, ok := q["cas"]; ok {
		n, err := strconv.ParseUint(firstOf(v), 10, 64)
		if err != nil {
			return r, errf(http.StatusBadRequest, "Invalid cas value %q: must be an unsigned integer (the ModifyIndex to compare with)", firstOf(v))
		}
		r.cas = &n
	}
	if v, ok := q["flags"]; ok {
		n, err := strconv.ParseUint(firstOf(v), 10, 64)
		if err != nil {
			return r, errf(http.StatusBadRequest, "Invalid flags value %q: must be an unsigned integer", firstOf(v))
		}
		r.flags = n
	}
	r.acquire, r.release = q.Get("acquire"), q.Get("release")
	switch method {
	case http.MethodGet:
		if r.key == "" && !r.recurse && !r.keys {
			return r, errf(http.StatusBadRequest, "Missing key name")
		}
	case http.MethodPut:
		if r.key == "" {
			return r, errf(http.StatusBadRequest, "Missing key name")
		}
		n := 0
		for _, set := range []bool{r.cas != nil, r.acquire != "", r.release != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			return r, errf(http.StatusBadRequest, "Conflicting flags: %s: only one of cas, acquire and release is allowed", q.Encode())
		}
	case http.MethodDelete:
		if r.key == "" && !r.recurse {
			return r, errf(http.StatusBadRequest, "Missing key name")
		}
		if r.recurse && r.cas != nil {
			return r, errf(http.StatusBadRequest, "Conflicting flags: cannot combine recurse and cas")
		}
	}
	if strings.Contains(r.key, "../") || strings.HasSuffix(r.key, "/..") || r.key == ".." {
		return r, errf(http.StatusBadRequest, "Invalid key name %q: path traversal is not allowed", r.key)
	}
	return r, nil
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

var validVerbs = map[string]bool{
	"set": true, "cas": true, "lock": true, "unlock": true, "get": true, "get-or-empty": true,
	"get-tree": true, "check-index": true, "check-session": true, "check-not-exists": true,
	"delete": true, "delete-tree": true, "delete-cas": true,
}

// decodeTxn decodes and validates a PUT /v1/txn body (KV operations only).
func decodeTxn(body []byte) ([]TxnKVOp, *httpError) {
	if len(body) > MaxTxnBodySize {
		return nil, errf(http.StatusRequestEntityTooLarge, "Request body too large (%d > %d bytes)", len(body), MaxTxnBodySize)
	}
	var raw []map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, errf(http.StatusBadRequest, "Failed to parse body: %v", err)
	}
	if dec.More() {
		return nil, errf(http.StatusBadRequest, "Failed to parse body: trailing data after the JSON array")
	}
	if len(raw) > MaxTxnOps {
		return nil, errf(http.StatusRequestEntityTooLarge, "Transaction contains too many operations (%d > %d)", len(raw), MaxTxnOps)
	}
	ops := make([]TxnKVOp, 0, len(raw))
	for i, elem := range raw {
		var kv json.RawMessage
		for name, v := range elem {
			if string(bytes.TrimSpace(v)) == "null" {
				continue // the Go client sends every operation kind, unused ones as null
			}
			if !strings.EqualFold(name, "KV") {
				return nil, errf(http.StatusBadRequest, "Operation %d: only KV operations are supported, got %q", i, name)
			}
			kv = v
		}
		if kv == nil || string(kv) == "null" {
			return nil, errf(http.StatusBadRequest, "Operation %d: missing KV operation", i)
		}
		var op TxnKVOp
		if err := json.Unmarshal(kv, &op); err != nil {
			return nil, errf(http.StatusBadRequest, "Failed to parse body: operation %d: %v", i, err)
		}
		op.Verb = strings.ToLower(op.Verb)
		if len(op.Value) > MaxValueSize {
			return nil, errf(http.StatusRequestEntityTooLarge, "Value for key %q is too large (%d > %d bytes)", op.Key, len(op.Value), MaxValueSize)
		}
		ops = append(ops, op)
	}
	return ops, nil
}
