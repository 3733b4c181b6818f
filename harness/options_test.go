package harness

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestValidateNamesTheBadOption(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.Nodes = 0 }, "--nodes"},
		{func(o *Options) { o.Nodes = 10 }, "--nodes"},
		{func(o *Options) { o.TimeLimit = 0 }, "--time-limit"},
		{func(o *Options) { o.ReadMode = "eventual" }, "--read-mode"},
		{func(o *Options) { o.Bootstrap = "auto" }, "--bootstrap"},
		{func(o *Options) { o.Workload = "queue" }, "--workload"},
		{func(o *Options) { o.RestartSignal = "HUP" }, "--restart-signal"},
		{func(o *Options) { o.Unsafe = []string{"a,b"} }, "--unsafe"},
		{func(o *Options) { o.Rate = -1 }, "--rate"},
	} {
		o := Defaults()
		tc.edit(&o)
		err := o.Validate()
		if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want a usage error naming %s, got %v", tc.want, err)
		}
	}
	o := Defaults()
	o.RestartSignal = "sigint"
	if err := o.Validate(); err != nil || o.RestartSignal != "INT" || o.Name != "register-none" {
		t.Fatalf("valid options refused or not normalised: %v %+v", err, o)
	}
}

func TestNodeArgsFollowTheBootstrapMode(t *testing.T) {
	ips := []netip.Addr{netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.13")}
	o := Defaults()
	args := nodeArgs(o, ips, 1, true)
	if args[0] != "agent" || !slices.Contains(args, "-bootstrap-expect=3") || !slices.Contains(args, "-retry-join=10.0.0.11") ||
		slices.Contains(args, "-retry-join=10.0.0.12") || !slices.Contains(args, "-bind=10.0.0.12") {
		t.Errorf("expect mode args: %v", args)
	}
	o.Bootstrap = "single"
	if a0, a1 := nodeArgs(o, ips, 0, false), nodeArgs(o, ips, 1, false); !slices.Contains(a0, "-bootstrap") || slices.Contains(a1, "-bootstrap") {
		t.Errorf("single mode: n1 %v, n2 %v", a0, a1)
	}
	o.Bootstrap = "manual"
	o.Unsafe = []string{"local-cas", "long-lease"}
	for _, a := range nodeArgs(o, ips, 0, false) {
		if strings.HasPrefix(a, "-bootstrap") || strings.HasPrefix(a, "-raft-") {
			t.Errorf("manual mode with a foreign binary got %s", a)
		}
	}
	if !slices.Contains(nodeArgs(o, ips, 0, false), "-unsafe=local-cas,long-lease") {
		t.Errorf("unsafe flag missing")
	}
}

func TestAgreedLeader(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]string
		want string
	}{
		{map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}, "n2"},
		{map[string]string{"n1": "n2", "n2": "n2", "n3": ""}, ""},
		{map[string]string{"n1": "n1", "n2": "n2"}, ""},
		{map[string]string{}, ""},
	} {
		if got := agreedLeader(tc.in); got != tc.want {
			t.Errorf("agreedLeader(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseMatrix(t *testing.T) {
	m, err := ParseMatrix("nemesis=partition|kill+pause|none;workload=register;read-mode=consistent;nodes=3|5")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nemesis) != 3 || len(m.Nemesis[1]) != 2 || m.Nemesis[2] != nil || len(m.Nodes) != 2 {
		t.Fatalf("matrix %+v", m)
	}
	if n := len(m.configs(Defaults())); n != 6 {
		t.Fatalf("%d configs, want 6", n)
	}
	for _, bad := range []string{"nodes=three", "colour=red", "workload"} {
		if _, err := ParseMatrix(bad); err == nil || !IsUsage(err) {
			t.Errorf("ParseMatrix(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestSoakExitOutcomeOrder(t *testing.T) {
	s := &SoakSummary{Counts: map[string]int{"valid": 3, "invalid": 1, "unknown": 1}}
	if s.ExitOutcome() != "unknown" {
		t.Fatal("unknown must beat invalid")
	}
	s.Counts["crashed"] = 1
	if s.ExitOutcome() != "crashed" {
		t.Fatal("crashed must beat unknown")
	}
}
