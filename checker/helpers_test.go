package checker

import (
	"encoding/json"

	"github.com/raftcheck/harness/history"
)

// hb builds a history line by line; times are given explicitly, indexes are assigned in order.
type hb struct{ ops []history.Op }

func (h *hb) add(t int64, p history.Process, typ history.Type, f, key string, v any) *hb {
	raw := json.RawMessage("null")
	if v != nil {
		raw = history.MustValue(v)
	}
	h.ops = append(h.ops, history.Op{Index: int64(len(h.ops)), Time: t, Process: p, Type: typ, F: f, Key: key, Value: raw})
	return h
}

func (h *hb) inv(t int64, p history.Process, f, key string, v any) *hb {
	return h.add(t, p, history.Invoke, f, key, v)
}
func (h *hb) ok(t int64, p history.Process, f, key string, v any) *hb {
	return h.add(t, p, history.OK, f, key, v)
}
func (h *hb) fail(t int64, p history.Process, f, key string, v any) *hb {
	return h.add(t, p, history.Fail, f, key, v)
}
func (h *hb) info(t int64, p history.Process, f, key string, v any) *hb {
	return h.add(t, p, history.Info, f, key, v)
}
func (h *hb) nemesis(t int64, f string, ev history.NemesisEvent) *hb {
	return h.add(t, history.NemesisProcess, history.Info, f, "", ev)
}
