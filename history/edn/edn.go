// Package edn reads Jepsen histories written as EDN (history.edn) and turns them into the
// harness's history lines. It holds a small EDN reader of its own: nil, booleans, integers
// (with an N suffix too), floats, strings, characters, keywords, symbols, vectors, lists, maps,
// sets, tagged values (#inst, #jepsen.independent.Tuple{…}, any #tag form), comments, and the
// #_ discard. That is everything Jepsen writes into a history.
package edn

import (
	"bufio"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// Keyword is an EDN keyword without its colon: :ok is Keyword("ok"), :jepsen/x is "jepsen/x".
type Keyword string

// Symbol is an EDN symbol.
type Symbol string

// Char is an EDN character (\a, \newline).
type Char rune

// Vector is an EDN vector [a b]; List is a list (a b).
type (
	Vector []any
	List   []any
)

// Set is an EDN set #{a b}, in the order written.
type Set []any

// Map is an EDN map, its entries in the order written (keys may be any value).
type Map []MapEntry

// MapEntry is one key and value of a Map.
type MapEntry struct{ Key, Value any }

// Get returns the value of the keyword key k, and whether it is there.
func (m Map) Get(k Keyword) (any, bool) {
	for _, e := range m {
		if kw, ok := e.Key.(Keyword); ok && kw == k {
			return e.Value, true
		}
	}
	return nil, false
}

// Tagged is a tagged value #tag value.
type Tagged struct {
	Tag   Symbol
	Value any
}

// Values are: nil, bool, int64, *big.Int (integers beyond int64 or with N), float64, string,
// Char, Keyword, Symbol, Vector, List, Map, Set, Tagged.

// Decoder reads EDN values one after another from a stream.
type Decoder struct {
	r    *bufio.Reader
	line int
}

// NewDecoder reads from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReaderSize(r, 1<<16), line: 1} }

// Line is the line the decoder has reached (1-based), for error messages.
func (d *Decoder) Line() int { return d.line }

// Next returns the next top-level value, or io.EOF when there is none.
func (d *Decoder) Next() (any, error) {
	v, err := d.value()
	if err == errClose {
		return nil, d.errorf("unexpected closing bracket")
	}
	return v, err
}

var errClose = fmt.Errorf("closing bracket")

func (d *Decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("edn line %d: %s", d.line, fmt.Sprintf(format, args...))
}

func (d *Decoder) read() (rune, error) {
	c, _, err := d.r.ReadRune()
	if c == '\n' {
		d.line++
	}
	return c, err
}

func (d *Decoder) unread(c rune) {
	_ = d.r.UnreadRune()
	if c == '\n' {
		d.line--
	}
}

func isSpace(c rune) bool { return c == ',' || unicode.IsSpace(c) }

// skip passes whitespace, commas and comments and returns the next rune.
func (d *Decoder) skip() (rune, error) {
	for {
		c, err := d.read()
		if err != nil {
			return 0, err
		}
		switch {
		case isSpace(c):
		case c == ';':
			for c != '\n' {
				if c, err = d.read(); err != nil {
					return 0, err
				}
			}
		default:
			return c, nil
		}
	}
}

// value reads one value; errClose means a closing bracket came instead (its rune is unread).
func (d *Decoder) value() (any, error) {
	c, err := d.skip()
	if err != nil {
		return nil, err
	}
	switch c {
	case ')', ']', '}':
		d.unread(c)
		return nil, errClose
	case '[':
		items, err := d.seq(']')
		return Vector(items), err
	case '(':
		items, err := d.seq(')')
		return List(items), err
	case '{':
		items, err := d.seq('}')
		if err != nil {
			return nil, err
		}
		if len(items)%2 != 0 {
			return nil, d.errorf("map with an odd number of forms")
		}
		m := make(Map, 0, len(items)/2)
		for i := 0; i < len(items); i += 2 {
			m = append(m, MapEntry{items[i], items[i+1]})
		}
		return m, nil
	case '"':
		return d.str()
	case '\\':
		return d.char()
	case '#':
		return d.dispatch()
	}
	d.unread(c)
	tok, err := d.token()
	if err != nil {
		return nil, err
	}
	return d.atom(tok)
}

// seq reads values up to the closing rune.
func (d *Decoder) seq(end rune) ([]any, error) {
	var items []any
	for {
		v, err := d.value()
		if err == errClose {
			c, _ := d.read()
			if c != end {
				return nil, d.errorf("expected %q, got %q", end, c)
			}
			return items, nil
		}
		if err == io.EOF {
			return nil, d.errorf("unexpected end of input: %q missing", end)
		}
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
}

func (d *Decoder) dispatch() (any, error) {
	c, err := d.read()
	if err != nil {
		return nil, d.errorf("unexpected end after #")
	}
	switch c {
	case '{':
		items, err := d.seq('}')
		return Set(items), err
	case '_': // discard the next value
		if _, err := d.value(); err != nil {
			return nil, err
		}
		return d.value()
	}
	d.unread(c)
	tok, err := d.token()
	if err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, d.errorf("bad dispatch #%c", c)
	}
	v, err := d.value()
	if err != nil {
		if err == errClose || err == io.EOF {
			return nil, d.errorf("tag #%s without a value", tok)
		}
		return nil, err
	}
	return Tagged{Tag: Symbol(tok), Value: v}, nil
}

// token reads a run of symbol characters.
func (d *Decoder) token() (string, error) {
	var b strings.Builder
	for {
		c, err := d.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if isSpace(c) || strings.ContainsRune("()[]{}\";", c) {
			d.unread(c)
			break
		}
		b.WriteRune(c)
	}
	return b.String(), nil
}

func (d *Decoder) atom(tok string) (any, error) {
	switch tok {
	case "":
		c, _ := d.read()
		return nil, d.errorf("unexpected %q", c)
	case "nil":
		return nil, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if tok[0] == ':' {
		if len(tok) == 1 {
			return nil, d.errorf("empty keyword")
		}
		return Keyword(tok[1:]), nil
	}
	c := tok[0]
	if c >= '0' && c <= '9' || (c == '-' || c == '+') && len(tok) > 1 && tok[1] >= '0' && tok[1] <= '9' {
		return d.number(tok)
	}
	return Symbol(tok), nil
}

func (d *Decoder) number(tok string) (any, error) {
	if strings.HasSuffix(tok, "N") {
		n, ok := new(big.Int).SetString(strings.TrimPrefix(tok[:len(tok)-1], "+"), 10)
		if !ok {
			return nil, d.errorf("bad integer %q", tok)
		}
		if n.IsInt64() {
			return n.Int64(), nil
		}
		return n, nil
	}
	if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
		return n, nil
	}
	if n, ok := new(big.Int).SetString(strings.TrimPrefix(tok, "+"), 10); ok {
		return n, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(tok, "M"), 64)
	if err != nil {
		return nil, d.errorf("bad number %q", tok)
	}
	return f, nil
}

func (d *Decoder) str() (string, error) {
	var b strings.Builder
	for {
		c, err := d.read()
		if err != nil {
			return "", d.errorf("unterminated string")
		}
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			e, err := d.read()
			if err != nil {
				return "", d.errorf("unterminated string")
			}
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				var hex [4]rune
				for i := range hex {
					if hex[i], err = d.read(); err != nil {
						return "", d.errorf("unterminated string")
					}
				}
				n, perr := strconv.ParseUint(string(hex[:]), 16, 16)
				if perr != nil {
					return "", d.errorf("bad \\u escape %q", string(hex[:]))
				}
				b.WriteRune(rune(n))
			default:
				b.WriteRune(e)
			}
		default:
			b.WriteRune(c)
		}
	}
}

func (d *Decoder) char() (any, error) {
	c, err := d.read()
	if err != nil {
		return nil, d.errorf("unexpected end after \\")
	}
	rest, err := d.token()
	if err != nil {
		return nil, err
	}
	if rest == "" {
		return Char(c), nil
	}
	name := string(c) + rest
	switch name {
	case "newline":
		return Char('\n'), nil
	case "space":
		return Char(' '), nil
	case "tab":
		return Char('\t'), nil
	case "return":
		return Char('\r'), nil
	}
	if c == 'u' && len(rest) == 4 {
		if n, err := strconv.ParseUint(rest, 16, 16); err == nil {
			return Char(rune(n)), nil
		}
	}
	return nil, d.errorf("unknown character \\%s", name)
}

// String writes v back as EDN (maps and sets in the order read).
func String(v any) string {
	var b strings.Builder
	write(&b, v)
	return b.String()
}

func write(b *strings.Builder, v any) {
	seq := func(open, close string, items []any) {
		b.WriteString(open)
		for i, x := range items {
			if i > 0 {
				b.WriteByte(' ')
			}
			write(b, x)
		}
		b.WriteString(close)
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("nil")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		b.WriteString(x.String() + "N")
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		b.WriteString(strconv.Quote(x))
	case Char:
		b.WriteString(`\` + string(rune(x)))
	case Keyword:
		b.WriteString(":" + string(x))
	case Symbol:
		b.WriteString(string(x))
	case Vector:
		seq("[", "]", x)
	case List:
		seq("(", ")", x)
	case Set:
		seq("#{", "}", x)
	case Map:
		b.WriteByte('{')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			write(b, e.Key)
			b.WriteByte(' ')
			write(b, e.Value)
		}
		b.WriteByte('}')
	case Tagged:
		b.WriteString("#" + string(x.Tag) + " ")
		write(b, x.Value)
	default:
		fmt.Fprintf(b, "%v", x)
	}
}
