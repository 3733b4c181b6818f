package harness

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/targets"
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
		{func(o *Options) { o.Name = "restart-skip=false" }, "--name"},
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

func TestTargetOptions(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.Target = "etcd" }, "--target"},
		{func(o *Options) { o.Target = "consul"; o.Bootstrap = "manual" }, "--bootstrap manual"},
		{func(o *Options) { o.Target = "consul"; o.Unsafe = []string{"local-cas"} }, "--unsafe"},
		{func(o *Options) { o.AgentBinary = "/nonexistent/consul" }, "--agent-binary"},
		{func(o *Options) { o.AgentBinary = "/bin/sh"; o.AgentImage = "x" }, "not both"},
	} {
		o := Defaults()
		tc.edit(&o)
		err := o.Validate()
		if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want a usage error naming %s, got %v", tc.want, err)
		}
	}
	o := Defaults()
	o.Target = "consul"
	o.Nemesis = []string{"partition"}
	if err := o.Validate(); err != nil || o.Target != "consul@"+targets.DefaultConsulVersion || o.Name != "consul-register-partition" || o.RecoveryTime == 0 || o.ReadyTimeout == 0 {
		t.Fatalf("consul options: %v %+v", err, o)
	}
	o = Defaults()
	o.AgentImage = "someone/consul:1.20"
	if err := o.Validate(); err != nil || o.Target != "custom" {
		t.Fatalf("an image alone is a custom target: %v %+v", err, o)
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
	m, err = ParseMatrix("target=agent|consul;nemesis=partition;workload=register;read-mode=consistent;nodes=3")
	if err != nil {
		t.Fatal(err)
	}
	cs := m.configs(Defaults())
	if len(cs) != 2 || cs[0].Target != "agent" || cs[1].Target != "consul@"+targets.DefaultConsulVersion || cs[1].Name != "soak-3n-consul-register-partition" {
		t.Fatalf("target matrix: %+v", cs)
	}
	for _, bad := range []string{"nodes=three", "colour=red", "workload", "target=etcd"} {
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

func TestUpgradeOptions(t *testing.T) {
	upgrade := func(from, to string) func(*Options) {
		return func(o *Options) { o.Nemesis, o.UpgradeFrom, o.UpgradeTo = []string{"upgrade"}, from, to }
	}
	for _, tc := range []struct {
		edit func(*Options)
		want string
	}{
		{upgrade("", ""), "needs --upgrade-from and --upgrade-to"},
		{upgrade("consul@1.15.7", ""), "needs --upgrade-from and --upgrade-to"},
		{upgrade("consul@1.15.7", "consul@1.15.7"), "both consul@1.15.7"},
		{upgrade("consul@1.16.3", "consul"), "both consul@1.16.3"}, // consul is the default release
		{upgrade("agent", "consul@1.16.3"), "--upgrade-from agent: the upgrade fault switches between Consul releases"},
		{upgrade("consul@1.15.7", "custom"), "--upgrade-to custom"},
		{upgrade("consul@1.15.7", "consul@latest"), "--upgrade-to"},
		{func(o *Options) { upgrade("consul@1.15.7", "consul@1.16.3")(o); o.Target = "consul" }, "--target consul conflicts with --upgrade-from consul@1.15.7"},
		{func(o *Options) { upgrade("consul@1.15.7", "consul@1.16.3")(o); o.Target = "agent" }, "--target agent conflicts"},
		{func(o *Options) { upgrade("consul@1.15.7", "consul@1.16.3")(o); o.AgentImage = "x" }, "cannot run --agent-binary or --agent-image"},
		{func(o *Options) { o.UpgradeTo = "consul@1.16.3" }, "are for --nemesis upgrade"},
		{func(o *Options) { o.Nemesis, o.UpgradeFrom = []string{"kill"}, "consul@1.15.7" }, "are for --nemesis upgrade"},
	} {
		o := Defaults()
		tc.edit(&o)
		err := o.Validate()
		if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: want a usage error saying %q, got %v", o, tc.want, err)
		}
	}
	for _, tc := range []struct {
		target, from, to string
	}{
		{"", "consul@1.15.7", "consul@1.16.3"},
		{"consul@1.15.7", "consul@1.15.7", "consul@1.16.3"},
		{"consul", "consul", "consul@1.15.7"}, // a downgrade from the default release
	} {
		o := Defaults()
		o.Target = tc.target
		upgrade(tc.from, tc.to)(&o)
		err := o.Validate()
		from, _ := targets.Parse(tc.from)
		if err != nil || o.Target != from.String() || o.UpgradeFrom != from.String() || o.Name != "consul-register-upgrade" || o.RecoveryTime != 90*time.Second {
			t.Errorf("%+v: %v; want the cluster on %s", tc, err, from)
		}
	}
}

// TestSoakOrderCoversTheMatrix: every cycle of a soak runs each configuration once, in an order
// drawn from the seed (the same seed gives the same order; the next cycle another), so a soak
// shorter than the matrix draws from all of it.
func TestSoakOrderCoversTheMatrix(t *testing.T) {
	const n = 96 // 2 targets × 8 nemeses × 3 workloads × 2 read modes
	a, b, next := soakOrder(n, 7000, 0), soakOrder(n, 7000, 0), soakOrder(n, 7000, 1)
	seen := map[int]bool{}
	for i, c := range a {
		if c < 0 || c >= n || seen[c] {
			t.Fatalf("cycle is not a permutation: %v", a)
		}
		seen[c] = true
		if b[i] != c {
			t.Fatalf("same seed, different order: %v vs %v", a, b)
		}
	}
	if slices.Equal(a, next) {
		t.Error("two cycles ran the same order")
	}
	firstHalf := 0 // configurations of the first target among the first 48 tests
	for _, c := range a[:n/2] {
		if c < n/2 {
			firstHalf++
		}
	}
	if firstHalf == 0 || firstHalf == n/2 {
		t.Errorf("the first half of the cycle drew only one target (%d of %d from the first)", firstHalf, n/2)
	}
}
