package harness

import (
	"strings"
	"testing"

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
