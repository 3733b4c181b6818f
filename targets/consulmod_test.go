package targets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeGo answers the go commands releaseModule runs from a made-up module cache and records the
// others.
type fakeGo struct {
	mods  map[string]moduleInfo // module@version → what `go mod download -json` says
	files map[string]goModFile  // go.mod path → what `go mod edit -json` says
	calls []string
}

func (g *fakeGo) run(out io.Writer, args ...string) error {
	call := strings.Join(args, " ")
	g.calls = append(g.calls, call)
	switch {
	case len(args) == 4 && args[0] == "mod" && args[1] == "download":
		m, ok := g.mods[args[3]]
		if !ok {
			m = moduleInfo{Error: args[3] + ": invalid version: unknown revision"}
		}
		_ = json.NewEncoder(out).Encode(m)
		if !ok {
			return errors.New("exit status 1")
		}
	case len(args) == 4 && args[0] == "mod" && args[1] == "edit" && args[2] == "-json":
		return json.NewEncoder(out).Encode(g.files[args[3]])
	}
	return nil
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseModuleKeepsTheReleasesOwnResolution: the release's excludes reach the build module,
// and troubleshoot is the published version with the release's own list of Envoy packages.
func TestReleaseModuleKeepsTheReleasesOwnResolution(t *testing.T) {
	cache, src := t.TempDir(), t.TempDir()
	rel, ts := filepath.Join(cache, "consul"), filepath.Join(cache, "troubleshoot")
	write(t, filepath.Join(rel, "agent/xds", xdsPackagesFile), "// generated\n\npackage xds\n\nimport _ \"new/envoy/pkg\"\n")
	write(t, filepath.Join(ts, "proxy", xdsPackagesFile), "// generated\n\npackage troubleshoot\n\nimport _ \"old/envoy/pkg\"\n")
	write(t, filepath.Join(ts, "proxy/proxy.go"), "package troubleshoot\n")
	var mod goModFile
	mod.Require = append(mod.Require, struct{ Path, Version string }{consulTroubleshoot, "v0.2.0"})
	mod.Exclude = append(mod.Exclude, struct{ Path, Version string }{"github.com/hashicorp/go-msgpack", "v1.1.5"}, struct{ Path, Version string }{"github.com/hashicorp/go-msgpack", "v1.1.6"})
	var local struct {
		Old struct{ Path, Version string }
		New struct{ Path, Version string }
	}
	local.Old.Path, local.New.Path = consulTroubleshoot, "./troubleshoot"
	mod.Replace = append(mod.Replace, local)
	g := &fakeGo{
		mods: map[string]moduleInfo{
			ConsulModule + "@v1.15.7":      {Dir: rel, GoMod: filepath.Join(cache, "consul.mod")},
			consulTroubleshoot + "@v0.2.0": {Dir: ts},
		},
		files: map[string]goModFile{filepath.Join(cache, "consul.mod"): mod},
	}
	if err := releaseModule(context.Background(), "1.15.7", src, g.run, io.Discard); err != nil {
		t.Fatal(err)
	}
	wantEdit := "mod edit -exclude=github.com/hashicorp/go-msgpack@v1.1.5 -exclude=github.com/hashicorp/go-msgpack@v1.1.6 -replace=" + consulTroubleshoot + "=./troubleshoot"
	if !slices.Contains(g.calls, wantEdit) || g.calls[len(g.calls)-1] != "get "+ConsulModule+"@v1.15.7" {
		t.Fatalf("go commands:\n%s\nwant %q, then the get", strings.Join(g.calls, "\n"), wantEdit)
	}
	list, err := os.ReadFile(filepath.Join(src, "troubleshoot/proxy", xdsPackagesFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := "// generated\n\npackage troubleshoot\n\nimport _ \"new/envoy/pkg\"\n"; string(list) != want {
		t.Errorf("troubleshoot's list:\n%s\nwant the release's with its package clause:\n%s", list, want)
	}
	if _, err := os.Stat(filepath.Join(src, "troubleshoot/proxy/proxy.go")); err != nil {
		t.Errorf("the rest of troubleshoot was not copied: %v", err)
	}

	// A release the proxy does not have is the user's mistake.
	err = releaseModule(context.Background(), "1.15.99", t.TempDir(), (&fakeGo{}).run, io.Discard)
	if !IsUsage(err) || !strings.Contains(err.Error(), "no such release") {
		t.Errorf("unknown release: %v, want a usage error", err)
	}
}

// TestPinnedBuildKeepsConsulsExcludes: the checked-in module repeats the exclude block of
// Consul's go.mod (a dependency's excludes are ignored), so raft, serf and memberlist encode with
// go-msgpack v0.5.5 as in HashiCorp's build of the release.
func TestPinnedBuildKeepsConsulsExcludes(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, consulModDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\tgithub.com/hashicorp/go-msgpack v1.1.5\n", "\tgithub.com/hashicorp/go-msgpack v1.1.6\n", "\tgithub.com/hashicorp/go-msgpack v0.5.5 // indirect\n"} {
		if !bytes.Contains(mod, []byte(want)) {
			t.Errorf("%s/go.mod lacks %q", consulModDir, strings.TrimSpace(want))
		}
	}
}

func TestWithPackageClause(t *testing.T) {
	got, err := withPackageClause([]byte("// Code generated. DO NOT EDIT.\n\npackage xds\n\nimport ()\n"), "troubleshoot")
	if err != nil || string(got) != "// Code generated. DO NOT EDIT.\n\npackage troubleshoot\n\nimport ()\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := withPackageClause([]byte("// no code\n"), "x"); err == nil {
		t.Error("no package clause: no error")
	}
}
