package history

import (
	"encoding/json"
)

// decoder turns one history line into an Op. It has a fast path for the canonical shape that
// Recorder writes (lower-case known field names, plain ASCII strings, integer numbers, values
// that are valid JSON) and falls back to encoding/json for anything else, so the result is always
// exactly what json.Unmarshal would give: the fast path only accepts lines on which it is sure to
// agree (FuzzDecode checks this), and never produces an error itself.
//
// It interns the short repeated strings (type, f, key, node) and copies values into a shared
// arena, which keeps reading a million lines cheap in time and allocations.
type decoder struct {
	strs  map[string]string
	arena []byte
	// borrow makes Value point into the decoded line instead of a copy (Scan: the op lives only
	// as long as the line).
	borrow bool
}

func newDecoder() *decoder {
	return &decoder{strs: make(map[string]string, 256)}
}

// decode fills op from line (already trimmed) exactly as json.Unmarshal(line, op) would.
func (d *decoder) decode(line []byte, op *Op) error {
	if d.fast(line, op) {
		return nil
	}
	*op = Op{}
	return json.Unmarshal(line, op)
}

// intern returns b as a string, shared with earlier equal strings while the table is small.
func (d *decoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.strs) < 1<<16 {
		d.strs[s] = s
	}
	return s
}

// keep copies b into the arena; values are never modified after decoding.
func (d *decoder) keep(b []byte) json.RawMessage {
	if d.borrow {
		return json.RawMessage(b[:len(b):len(b)])
	}
	if len(b) > 1<<10 {
		return append(json.RawMessage(nil), b...)
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, 64<<10)
	}
	n := len(d.arena)
	d.arena = append(d.arena, b...)
	return json.RawMessage(d.arena[n:len(d.arena):len(d.arena)])
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// fast decodes the canonical shape; it reports false (leaving op in any state) when unsure.
func (d *decoder) fast(b []byte, op *Op) bool {
	*op = Op{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false // empty object: leave it to encoding/json
	}
	for {
		// key
		ks, ke, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		key := b[ks:ke]
		switch string(key) {
		case "index", "time":
			n, end, ok := plainInt(b, i)
			if !ok {
				return false
			}
			if key[0] == 'i' {
				op.Index = n
			} else {
				op.Time = n
			}
			i = end
		case "process":
			if i < len(b) && b[i] == '"' {
				s, e, ok := plainString(b, i)
				if !ok || string(b[s:e]) != "nemesis" {
					return false
				}
				op.Process = NemesisProcess
				i = e + 1
			} else {
				n, end, ok := plainInt(b, i)
				if !ok || n < 0 {
					return false
				}
				op.Process = Process(n)
				i = end
			}
		case "type", "f", "key", "node", "error":
			s, e, ok := plainString(b, i)
			if !ok {
				return false
			}
			switch key[0] {
			case 't':
				op.Type = internType(b[s:e], d)
			case 'f':
				op.F = d.intern(b[s:e])
			case 'k':
				op.Key = d.intern(b[s:e])
			case 'n':
				op.Node = d.intern(b[s:e])
			default:
				op.Error = string(b[s:e])
			}
			i = e + 1
		case "value":
			end, ok := simpleValue(b, i)
			if !ok {
				end, ok = skipValue(b, i, 0)
				if !ok || !json.Valid(b[i:end]) {
					return false
				}
			}
			op.Value = d.keep(b[i:end])
			i = end
		default:
			// Unknown fields are ignored, but a key that differs only in case would match a
			// field in encoding/json, and its value must be valid JSON: be sure of both.
			if !unknownKeyOK(key) {
				return false
			}
			end, ok := skipValue(b, i, 0)
			if !ok || !json.Valid(b[i:end]) {
				return false
			}
			i = end
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// plainString matches a string of printable ASCII without escapes starting at b[i] == '"' and
// returns the bounds of its contents (e is the index of the closing quote).
func plainString(b []byte, i int) (s, e int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return i + 1, j, true
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// plainInt matches a JSON integer (no fraction or exponent) that fits in int64.
func plainInt(b []byte, i int) (n int64, end int, ok bool) {
	j := i
	neg := false
	if j < len(b) && b[j] == '-' {
		neg = true
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	digits := j - start
	if digits == 0 || digits > 18 || (digits > 1 && b[start] == '0') {
		return 0, 0, false // 18 digits always fit; longer ones go to encoding/json
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	for _, c := range b[start:j] {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, j, true
}

// simpleValue matches null, an integer or a flat array of integers, the register and set values.
func simpleValue(b []byte, i int) (end int, ok bool) {
	if i+4 <= len(b) && string(b[i:i+4]) == "null" {
		return i + 4, i+4 == len(b) || !isIdentByte(b[i+4])
	}
	if i < len(b) && b[i] != '[' {
		_, end, ok = plainInt(b, i)
		return end, ok
	}
	j := skipSpace(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, true
	}
	for {
		_, e, ok := plainInt(b, j)
		if !ok {
			return 0, false
		}
		j = skipSpace(b, e)
		if j >= len(b) {
			return 0, false
		}
		if b[j] == ']' {
			return j + 1, true
		}
		if b[j] != ',' {
			return 0, false
		}
		j = skipSpace(b, j+1)
	}
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// skipValue finds the end of the JSON value at b[i] by bracket matching; the caller validates it.
func skipValue(b []byte, i, depth int) (end int, ok bool) {
	if i >= len(b) || depth > 1000 {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
		return 0, false
	case c == '{' || c == '[':
		j := i + 1
		for {
			j = skipSpace(b, j)
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '}', ']':
				return j + 1, true
			case ',', ':':
				j++
			default:
				e, ok := skipValue(b, j, depth+1)
				if !ok {
					return 0, false
				}
				j = e
			}
		}
	default:
		j := i
		for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ':' {
			j++
		}
		if j == i {
			return 0, false
		}
		return j, true
	}
}

// unknownKeyOK reports whether key certainly matches no Op field under encoding/json's
// case-insensitive matching (keys here are plain ASCII).
func unknownKeyOK(key []byte) bool {
	for _, f := range [...]string{"index", "time", "process", "type", "f", "key", "value", "node", "error"} {
		if len(f) == len(key) && asciiEqualFold(f, key) {
			return false
		}
	}
	// encoding/json also folds 'k' with the Kelvin sign and 's' with the long s, which are not
	// ASCII and so cannot occur in a plain key.
	return true
}

func asciiEqualFold(s string, b []byte) bool {
	for i := 0; i < len(s); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// internType returns the Type constants without a map lookup.
func internType(b []byte, d *decoder) Type {
	switch string(b) {
	case "invoke":
		return Invoke
	case "ok":
		return OK
	case "fail":
		return Fail
	case "info":
		return Info
	}
	return Type(d.intern(b))
}
