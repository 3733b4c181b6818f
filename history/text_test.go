package history

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPlainInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int64
		want bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"7", 7, true}, {"-42", -42, true},
		{"123456789012345678", 123456789012345678, true},
		{"1234567890123456789", 0, false}, // 19 digits: encoding/json decides
		{"", 0, false}, {"-", 0, false}, {"01", 0, false}, {"+1", 0, false},
		{"1.5", 0, false}, {"1e3", 0, false}, {"12 ", 0, false}, {" 12", 0, false}, {"null", 0, false},
	} {
		n, ok := PlainInt([]byte(tc.in))
		if ok != tc.want || ok && n != tc.n {
			t.Errorf("PlainInt(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("short", 10); got != "short" {
		t.Errorf("Truncate of a short string changed it: %q", got)
	}
	if got := Truncate("abcdef", 3); got != "abc… (3 more bytes)" {
		t.Errorf("Truncate(abcdef, 3) = %q", got)
	}
	// "é" is two bytes: a cut inside it moves back to its start.
	got := Truncate("aéb", 2)
	if !utf8.ValidString(got) || !strings.HasPrefix(got, "a…") {
		t.Errorf("Truncate cut a character: %q", got)
	}
}
