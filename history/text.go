package history

import (
	"fmt"
	"unicode/utf8"
)

// This file holds the small text helpers that the history's readers and writers share (the
// checkers, the workloads, the report): one definition each.

// PlainInt parses b, whole, as a plain JSON integer: an optional '-', 1 to 18 digits (so it
// always fits in int64), no leading zero, no fraction or exponent. It is the fast path the
// history decoder uses; ok is false for anything else, which callers hand to encoding/json.
func PlainInt(b []byte) (n int64, ok bool) {
	n, end, ok := plainInt(b, 0)
	return n, ok && end == len(b)
}

// Truncate shortens s to at most n bytes, cut at a UTF-8 character boundary, and says how many
// bytes were left off: "abc… (12 more bytes)". A string of at most n bytes is returned as is.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d more bytes)", len(s)-cut)
}
