package history

import (
	"encoding/json"
	"strconv"
)

// appendOp appends the JSON encoding of op to buf, byte for byte what json.Marshal(op) gives.
// The common shape (plain ASCII strings, compact simple values) is written by hand, which
// avoids reflection; anything else goes through json.Marshal.
func appendOp(buf []byte, op Op) ([]byte, error) {
	if !plainOut(string(op.Type)) || !plainOut(op.F) || !plainOut(op.Key) || !plainOut(op.Node) ||
		!plainOut(op.Error) || !compactSimple(op.Value) {
		b, err := json.Marshal(op)
		return append(buf, b...), err
	}
	buf = append(buf, `{"index":`...)
	buf = strconv.AppendInt(buf, op.Index, 10)
	buf = append(buf, `,"time":`...)
	buf = strconv.AppendInt(buf, op.Time, 10)
	buf = append(buf, `,"process":`...)
	if op.Process == NemesisProcess {
		buf = append(buf, `"nemesis"`...)
	} else {
		buf = strconv.AppendInt(buf, int64(op.Process), 10)
	}
	buf = append(buf, `,"type":"`...)
	buf = append(buf, op.Type...)
	buf = append(buf, `","f":"`...)
	buf = append(buf, op.F...)
	buf = append(buf, '"')
	if op.Key != "" {
		buf = append(buf, `,"key":"`...)
		buf = append(buf, op.Key...)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"value":`...)
	if len(op.Value) == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, op.Value...)
	}
	if op.Node != "" {
		buf = append(buf, `,"node":"`...)
		buf = append(buf, op.Node...)
		buf = append(buf, '"')
	}
	if op.Error != "" {
		buf = append(buf, `,"error":"`...)
		buf = append(buf, op.Error...)
		buf = append(buf, '"')
	}
	return append(buf, '}'), nil
}

// plainOut reports whether json.Marshal writes s unchanged between quotes.
func plainOut(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// compactSimple reports whether v is null/empty, an integer or a flat integer array, without
// whitespace (json.Marshal compacts raw values, so anything else takes the slow path).
func compactSimple(v json.RawMessage) bool {
	if len(v) == 0 {
		return v == nil // json.Marshal writes null for nil and fails on an empty non-nil value
	}
	for _, c := range v {
		if isSpace(c) {
			return false
		}
	}
	end, ok := simpleValue(v, 0)
	return ok && end == len(v)
}
