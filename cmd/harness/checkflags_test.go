package main

import "testing"

func TestByteSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "1.5G": 3 << 29, "1000": 1000, "10MB": 10e6, "0": -1} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d %v, want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1GiB", "12 parsecs"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
	if s := (func() string { b := byteSize(2 << 30); return b.String() })(); s != "2GiB" {
		t.Errorf("2 GiB prints as %q", s)
	}
	// The flags exist on run and check.
	for _, c := range []string{"run", "check"} {
		cmd := newRunCmd()
		if c == "check" {
			cmd = newCheckCmd()
		}
		for _, f := range []string{"checker", "checker-memory"} {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("harness %s has no --%s", c, f)
			}
		}
	}
}
