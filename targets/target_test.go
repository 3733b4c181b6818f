package targets

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{"", "agent"}, {"agent", "agent"}, {"consul", "consul@" + DefaultConsulVersion},
		{"consul@1.19.2", "consul@1.19.2"}, {"consul@v1.21.0-rc1", "consul@1.21.0-rc1"}, {"custom", "custom"},
	} {
		got, err := Parse(tc.spec)
		if err != nil || got.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"etcd", "consul@", "consul@latest", "consul@1.20", "agent@1.0.0", "consul@1.20.1;rm"} {
		if _, err := Parse(bad); err == nil || !IsUsage(err) {
			t.Errorf("Parse(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestCheckRefusesWhatOnlyTheAgentCanDo(t *testing.T) {
	consul, _ := Parse("consul")
	agent, _ := Parse("agent")
	if err := consul.Check(BootstrapManual, nil); err == nil || !IsUsage(err) {
		t.Errorf("consul with manual bootstrap: %v", err)
	}
	if err := consul.Check(BootstrapExpect, []string{"local-cas"}); err == nil || !IsUsage(err) {
		t.Errorf("consul with a seeded bug: %v", err)
	}
	if err := agent.Check("auto", nil); err == nil || !strings.Contains(err.Error(), "--bootstrap") {
		t.Errorf("unknown bootstrap mode: %v", err)
	}
	for _, m := range BootstrapModes {
		if err := agent.Check(m, []string{"local-cas"}); err != nil {
			t.Errorf("agent %s: %v", m, err)
		}
	}
}

func TestArgsFollowTheBootstrapModeAndTarget(t *testing.T) {
	ips := []netip.Addr{netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.13")}
	agent, _ := Parse("agent")
	consul, _ := Parse("consul")
	custom, _ := Parse("custom")
	c := ClusterSpec{Bootstrap: BootstrapExpect, IPs: ips}
	args := agent.Args(c, 1)
	if args[0] != "agent" || !slices.Contains(args, "-bootstrap-expect=3") || !slices.Contains(args, "-retry-join=10.0.0.11") ||
		slices.Contains(args, "-retry-join=10.0.0.12") || !slices.Contains(args, "-bind=10.0.0.12") ||
		!slices.Contains(args, "-raft-election-timeout=300ms") {
		t.Errorf("agent, expect mode: %v", args)
	}
	c.Bootstrap = BootstrapSingle
	if a0, a1 := consul.Args(c, 0), consul.Args(c, 1); !slices.Contains(a0, "-bootstrap") || slices.Contains(a1, "-bootstrap") {
		t.Errorf("single mode: n1 %v, n2 %v", a0, a1)
	}
	cargs := consul.Args(c, 0)
	if !slices.Contains(cargs, "-hcl=performance { raft_multiplier = 1 }") || slices.ContainsFunc(cargs, func(a string) bool { return strings.HasPrefix(a, "-raft-") }) {
		t.Errorf("consul gets Consul's timing, not the agent's: %v", cargs)
	}
	c.Bootstrap = BootstrapManual
	c.Unsafe = []string{"local-cas", "long-lease"}
	c.Extra = []string{"-leave-on-terminate"}
	args = custom.Args(c, 0)
	for _, a := range args {
		if strings.HasPrefix(a, "-bootstrap") || strings.HasPrefix(a, "-raft-") || strings.HasPrefix(a, "-hcl") {
			t.Errorf("manual mode of a custom binary got %s", a)
		}
	}
	if !slices.Contains(args, "-unsafe=local-cas,long-lease") || args[len(args)-1] != "-leave-on-terminate" {
		t.Errorf("unsafe or extra flags missing or not last: %v", args)
	}
}

func TestOwnBinaryStalenessCheck(t *testing.T) {
	root := t.TempDir()
	write := func(rel string, age int) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := mtime(age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	sources := agentBinary.sources
	for _, f := range []string{"go.mod", "go.sum", "agent/a.go", "cmd/agent/main.go", "netfault/n.go"} {
		write(f, 3600)
	}
	bin := filepath.Join(root, "bin", "agent")
	if upToDate(root, bin, sources) {
		t.Fatal("a missing binary is up to date")
	}
	write("bin/agent", 60)
	if !upToDate(root, bin, sources) {
		t.Fatal("a binary newer than every source is stale")
	}
	write("agent/a_test.go", 0)
	if !upToDate(root, bin, sources) {
		t.Fatal("a changed test file made the binary stale")
	}
	write("netfault/n.go", 0)
	if !upToDate(root, bin, sources) {
		t.Fatal("the agent does not contain netfault any more: a change there must not rebuild it")
	}
	write("agent/a.go", 0)
	if upToDate(root, bin, sources) {
		t.Fatal("a changed source file left the binary up to date")
	}
}

func TestRequires(t *testing.T) {
	mod := []byte("module x\n\nrequire (\n\tgithub.com/hashicorp/consul v1.20.1 // indirect\n\tgithub.com/hashicorp/consul/api v1.30.0\n)\n")
	if !requires(mod, "1.20.1") || requires(mod, "1.20.10") || requires(mod, "1.30.0") {
		t.Error("requires reads the wrong line")
	}
}

func mtime(ageSeconds int) (t time.Time) {
	return time.Now().Add(-time.Duration(ageSeconds) * time.Second)
}

// TestOwnBinarySourcesAreTheirPackages ties the hand-kept source folders of each own binary
// (which decide when it is rebuilt) to the module packages `go list -deps` says it is made of.
func TestOwnBinarySourcesAreTheirPackages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []ownBinary{agentBinary, helperBinary} {
		cmd := exec.Command("go", "list", "-deps", "-f",
			`{{if .Module}}{{if eq .Module.Path "`+ModulePath+`"}}{{.ImportPath}}{{end}}{{end}}`, b.pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", b.pkg, err)
		}
		var got []string
		for _, p := range strings.Fields(string(out)) {
			got = append(got, strings.TrimPrefix(p, ModulePath+"/"))
		}
		want := slices.Clone(b.sources)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s is made of %v, but its rebuild check watches %v", b.pkg, got, want)
		}
	}
}
