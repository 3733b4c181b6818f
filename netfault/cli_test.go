package netfault

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestParseSet(t *testing.T) {
	tests := []struct {
		args []string
		want Rules
		bad  string // substring of the error, "" = valid
	}{
		{args: nil, want: Rules{}},
		{args: []string{"--drop-in", "10.0.0.1,10.0.0.2"}, want: Rules{DropIn: addrs("10.0.0.1", "10.0.0.2")}},
		{args: []string{"-drop-out=10.0.0.3", "--drop-out", "10.0.0.4"}, want: Rules{DropOut: addrs("10.0.0.3", "10.0.0.4")}},
		{args: []string{"--loss", "30"}, want: Rules{LossPercent: 30}},
		{args: []string{"--loss", "100", "--loss-peers", "10.0.0.5, 10.0.0.6,"}, want: Rules{LossPercent: 100, LossPeers: addrs("10.0.0.5", "10.0.0.6")}},
		{args: []string{"--drop-in", ""}, want: Rules{}},
		{args: []string{"--drop-in", "nope"}, bad: `"nope" is not an IP address`},
		{args: []string{"--drop-in", "fd00::1"}, bad: "not an IPv4 address"},
		{args: []string{"--loss", "101"}, bad: "out of range"},
		{args: []string{"--loss", "-1"}, bad: "out of range"},
		{args: []string{"--loss", "x"}, bad: "invalid value"},
		{args: []string{"--loss-peers", "10.0.0.1"}, bad: "needs --loss"},
		{args: []string{"--bogus"}, bad: "not defined"},
		{args: []string{"10.0.0.1"}, bad: "unexpected argument"},
	}
	for _, tt := range tests {
		got, err := ParseSet(tt.args)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) || !errors.Is(err, errUsage) {
				t.Errorf("ParseSet(%q) error = %v, want usage error containing %q", tt.args, err, tt.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSet(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSet(%q) = %+v, want %+v", tt.args, got, tt.want)
		}
	}
}

func TestArgsRoundTrip(t *testing.T) {
	for _, r := range []Rules{
		{},
		{DropIn: addrs("10.0.0.1"), DropOut: addrs("10.0.0.2", "10.0.0.3")},
		{LossPercent: 5},
		{DropIn: addrs("10.0.0.1"), LossPercent: 50, LossPeers: addrs("10.0.0.9")},
	} {
		got, err := ParseSet(r.Args())
		if err != nil {
			t.Fatalf("ParseSet(%q): %v", r.Args(), err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
}

func TestNormalize(t *testing.T) {
	r := Rules{DropIn: addrs("10.0.0.2", "::ffff:10.0.0.1", "10.0.0.2")}.normalize()
	if want := addrs("10.0.0.1", "10.0.0.2"); !reflect.DeepEqual(r.DropIn, want) {
		t.Errorf("normalize: %v, want %v", r.DropIn, want)
	}
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"heal", "extra"}, 2, "takes no arguments"},
		{[]string{"set", "--loss", "200"}, 2, "out of range"},
		{[]string{"help"}, 0, ""},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := run(tt.args, &out, &errb); code != tt.code {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.code, errb.String())
		}
		if !strings.Contains(errb.String(), tt.err) {
			t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, errb.String(), tt.err)
		}
	}
}
