package edn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"

	"github.com/raftcheck/harness/history"
)

// Jepsen's histories: one op map per line (or one vector of op maps), each with :type (:invoke,
// :ok, :fail, :info), :f, :value, :process (an integer, or :nemesis) and usually :time (ns) and
// :index. Register histories have :f :read, :write and :cas ([old new]); set histories :add and
// :read (a set or vector). With jepsen.independent every value is a [key value] tuple (also
// written #jepsen.independent.Tuple{:key k, :value v}), which becomes the op's key.

// SingleKey is the key given to the ops of a register history without independent keys.
const SingleKey = "jepsen"

// ReadJepsen reads a Jepsen EDN history and returns it as history lines, in order, with indexes
// renumbered from 0 (the file's :index values are not needed).
func ReadJepsen(r io.Reader) ([]history.Op, error) {
	d := NewDecoder(r)
	var raw []Map
	for {
		v, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := collectOps(v, &raw, d.Line()); err != nil {
			return nil, err
		}
	}
	if len(raw) == 0 {
		return nil, errors.New("no operations in the EDN history")
	}
	independent := isIndependent(raw)
	out := make([]history.Op, 0, len(raw))
	var lastNemesis string
	for i, m := range raw {
		op, skip, err := convert(m, independent, &lastNemesis)
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s): %w", i, history.Truncate(String(m), 120), err)
		}
		if skip {
			continue
		}
		if op.Time == 0 && i > 0 {
			op.Time = out[len(out)-1].Time // no :time: keep the order
		}
		op.Index = int64(len(out))
		out = append(out, op)
	}
	return out, nil
}

// collectOps appends the op maps of a top-level value: a map, a tagged map, or a sequence of them.
func collectOps(v any, out *[]Map, line int) error {
	switch x := v.(type) {
	case Map:
		*out = append(*out, x)
	case Tagged:
		return collectOps(x.Value, out, line)
	case Vector:
		for _, e := range x {
			if err := collectOps(e, out, line); err != nil {
				return err
			}
		}
	case List:
		for _, e := range x {
			if err := collectOps(e, out, line); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("edn line %d: expected an operation map, got %s", line, history.Truncate(String(v), 60))
	}
	return nil
}

// tuple splits an independent [key value] tuple.
func tuple(v any) (key, value any, ok bool) {
	switch x := v.(type) {
	case Vector:
		if len(x) == 2 {
			return x[0], x[1], true
		}
	case Tagged:
		if m, isMap := x.Value.(Map); isMap && strings.HasSuffix(string(x.Tag), "Tuple") {
			k, ok1 := m.Get("key")
			val, ok2 := m.Get("value")
			return k, val, ok1 && ok2
		}
	}
	return nil, nil, false
}

// isIndependent tells whether values are [key value] tuples: a write of a tuple, a cas of
// [key [old new]], or a read that returns a pair (a plain register read returns an integer).
func isIndependent(ops []Map) bool {
	for _, m := range ops {
		if p, _ := m.Get("process"); p == Keyword("nemesis") {
			continue
		}
		f, _ := m.Get("f")
		v, _ := m.Get("value")
		if v == nil {
			continue
		}
		_, inner, ok := tuple(v)
		switch f {
		case Keyword("write"), Keyword("add"):
			return ok
		case Keyword("cas"):
			_, _, pair := tuple(inner)
			return ok && pair
		case Keyword("read"):
			if _, tagged := v.(Tagged); tagged {
				return ok
			}
			if vec, isVec := v.(Vector); isVec && len(vec) == 2 {
				if _, isInt := vec[1].(int64); isInt || vec[1] == nil {
					return true
				}
			}
		}
	}
	return false
}

func keywordName(v any) (string, bool) {
	switch x := v.(type) {
	case Keyword:
		return string(x), true
	case Symbol:
		return string(x), true
	case string:
		return x, true
	}
	return "", false
}

// convert turns one Jepsen op into a history line; skip is set for nemesis lines that repeat the
// previous one (Jepsen logs a nemesis op's invocation and completion, both :info).
func convert(m Map, independent bool, lastNemesis *string) (op history.Op, skip bool, err error) {
	typ, _ := m.Get("type")
	t, _ := keywordName(typ)
	op.Type = history.Type(t)
	if !op.Type.Valid() {
		return op, false, fmt.Errorf(":type must be :invoke, :ok, :fail or :info, got %s", String(typ))
	}
	fv, _ := m.Get("f")
	f, ok := keywordName(fv)
	if !ok {
		return op, false, fmt.Errorf(":f must be a keyword, got %s", String(fv))
	}
	op.F = f
	if tv, ok := m.Get("time"); ok {
		n, isInt := tv.(int64)
		if !isInt {
			return op, false, fmt.Errorf(":time must be an integer, got %s", String(tv))
		}
		op.Time = n
	}
	if ev, ok := m.Get("error"); ok && ev != nil {
		op.Error = history.Truncate(String(ev), 200)
	}
	if nv, ok := m.Get("node"); ok && nv != nil {
		op.Node, _ = keywordName(nv)
	}
	value, _ := m.Get("value")
	switch pv, _ := m.Get("process"); p := pv.(type) {
	case Keyword:
		if p != "nemesis" {
			return op, false, fmt.Errorf(":process must be an integer or :nemesis, got %s", String(pv))
		}
		op.Process = history.NemesisProcess
		return nemesisOp(op, value, lastNemesis)
	case int64:
		if p < 0 {
			return op, false, fmt.Errorf(":process must not be negative, got %d", p)
		}
		op.Process = history.Process(p)
	default:
		return op, false, fmt.Errorf(":process must be an integer or :nemesis, got %s", String(pv))
	}
	if independent {
		k, v, ok := tuple(value)
		if !ok {
			return op, false, fmt.Errorf("value %s is not a [key value] tuple, as the other ops' are", history.Truncate(String(value), 60))
		}
		op.Key, value = keyString(k), v
	} else if f == "read" || f == "write" || f == "cas" {
		op.Key = SingleKey
	}
	op.Value, err = jsonValue(f, op.Type, value)
	return op, false, err
}

func keyString(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	return String(k)
}

// jsonValue encodes a client op's value as the register and set workloads record it.
func jsonValue(f string, t history.Type, v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return history.MustValue(nil), nil
	case int64:
		return history.MustValue(x), nil
	case *big.Int:
		return json.RawMessage(x.String()), nil
	case Vector, List, Set:
		items := seqItems(x)
		ints := make([]int64, 0, len(items))
		for _, it := range items {
			n, ok := it.(int64)
			if !ok {
				return rawString(v), nil // not a list of integers: kept as text
			}
			ints = append(ints, n)
		}
		if f == "read" { // a set read: sorted, as the set workload records it
			sort.Slice(ints, func(i, j int) bool { return ints[i] < ints[j] })
		}
		return history.MustValue(ints), nil
	}
	return rawString(v), nil
}

func seqItems(v any) []any {
	switch x := v.(type) {
	case Vector:
		return x
	case List:
		return x
	case Set:
		return x
	}
	return nil
}

// rawString keeps a value the workloads do not know as its EDN text (a JSON string); the
// register checker names a read of such a value as corrupt.
func rawString(v any) json.RawMessage {
	if s, ok := v.(string); ok {
		return history.MustValue(s)
	}
	return history.MustValue(String(v))
}

// nemesisOp turns a Jepsen nemesis op into a fault event: :start-X / :stop-X (and :start /
// :stop) open and close a window of fault X ("nemesis" for the bare ones), other fs are kept as
// events with their value as text.
func nemesisOp(op history.Op, value any, last *string) (history.Op, bool, error) {
	key := op.F + " " + String(value)
	if *last == op.F || *last == key {
		*last = ""
		return op, true, nil // the completion of the op just seen
	}
	*last = op.F
	op.Type = history.Info
	ev := history.NemesisEvent{Event: "info"}
	switch {
	case op.F == "start", op.F == "stop":
		ev.Event = map[string]string{"start": history.EventStart, "stop": history.EventEnd}[op.F]
		op.F = "nemesis"
	case strings.HasPrefix(op.F, "start-"):
		ev.Event, op.F = history.EventStart, strings.TrimPrefix(op.F, "start-")
	case strings.HasPrefix(op.F, "stop-"):
		ev.Event, op.F = history.EventEnd, strings.TrimPrefix(op.F, "stop-")
	}
	if value != nil {
		ev.Targets = []string{history.Truncate(String(value), 120)}
		if ev.Event == history.EventEnd {
			ev.Targets = nil // the end names no targets; windows pair by f
		}
	}
	op.Value = history.MustValue(ev)
	return op, false, nil
}
