// Command licencecheck reads the licence files of every module that provides a package to what
// the Go modules it is given build (default: this checkout's main module and targets/consulbuild) from the
// module cache, and fails, naming each module, when one is not under an open-source licence, has
// no licence file, or has a licence file whose wording it does not know. It judges each module
// at the version in the build list: Consul's sub-modules envoyextensions and troubleshoot, which
// the project's dependency policy names as not to use in their Business Source License releases,
// are MPL-2.0 at the versions Consul 1.16.3 requires (v0.4.1, v0.3.1), and refused by their text
// at any later one. CI runs it (.ci/run); so can anyone:
//
//	go run ./cmd/licencecheck                      # the modules this checkout ships
//	go run ./cmd/licencecheck -v targets/consulbuild  # one module, every module's licence listed
//
// Exit status: 0 all open source, 1 a module refused, 2 a module list could not be read.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/raftcheck/harness/internal/licence"
)

// module is one module of a build list.
type module struct {
	Path, Version, Dir, Error string
}

func main() {
	verbose := flag.Bool("v", false, "list every module with its licences")
	buildPkg := flag.String("build", "", "for a module without source of its own: the package it builds (e.g. github.com/hashicorp/consul)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: licencecheck [-v] [-build PKG] [MODULE_DIR ...]   (default: . targets/consulbuild)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{".", "targets/consulbuild"}
	}
	os.Exit(run(dirs, *buildPkg, *verbose, os.Stdout, os.Stderr))
}

func run(dirs []string, buildPkg string, verbose bool, stdout, stderr io.Writer) int {
	refused := 0
	for _, dir := range dirs {
		mods, err := buildList(dir, buildPkg)
		if err != nil {
			fmt.Fprintf(stderr, "licencecheck: %s: %v\n", dir, err)
			return 2
		}
		bad := 0
		for _, m := range mods {
			problem, names := judge(m)
			if verbose {
				fmt.Fprintf(stdout, "%s\t%s@%s\t%s\n", dir, m.Path, m.Version, names)
			}
			if problem != "" {
				fmt.Fprintf(stderr, "licencecheck: %s: %s@%s: %s\n", dir, m.Path, m.Version, problem)
				bad++
			}
		}
		fmt.Fprintf(stdout, "licencecheck: %s: %d modules, %d refused\n", dir, len(mods), bad)
		refused += bad
	}
	if refused > 0 {
		return 1
	}
	return 0
}

// judge returns why a module is refused ("" when it is not) and the names of its licences.
func judge(m module) (problem, names string) {
	if m.Error != "" {
		return m.Error, ""
	}
	v := licence.Module(m.Dir)
	var ns []string
	for _, l := range v.Licences {
		ns = append(ns, l.Name)
	}
	sort.Strings(ns)
	names = strings.Join(ns, ",")
	return v.Problem, names
}

// absReplacements points the replace directives of the go.mod copied into tmp that name a folder
// relative to the module (a Consul build's patched troubleshoot sub-module, in the harness's cache)
// at that folder, so that the copy resolves as the original does.
func absReplacements(tmp, dir string) error {
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = tmp
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go mod edit -json: %v", err)
	}
	var mod struct {
		Replace []struct {
			Old struct{ Path, Version string }
			New struct{ Path, Version string }
		}
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return fmt.Errorf("go mod edit -json: %v", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for _, r := range mod.Replace {
		if r.New.Version != "" || !(strings.HasPrefix(r.New.Path, "./") || strings.HasPrefix(r.New.Path, "../")) {
			continue
		}
		old := r.Old.Path
		if r.Old.Version != "" {
			old += "@" + r.Old.Version
		}
		edit := exec.Command("go", "mod", "edit", "-replace", old+"="+filepath.Join(abs, r.New.Path))
		edit.Dir = tmp
		if out, err := edit.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod edit -replace %s: %v: %s", old, err, out)
		}
	}
	return nil
}

// shipped is one module whose build list is checked, and the packages it ships.
type shipped struct {
	dir      string   // the module's folder
	patterns []string // packages built from it (and, with tests, their tests)
	tests    bool
}

// shipments are what this checkout builds: the harness, the agent and every tool of the main
// module with their tests, and real Consul from targets/consulbuild.
var shipments = map[string]shipped{
	".":                   {dir: ".", patterns: []string{"./..."}, tests: true},
	"targets/consulbuild": {dir: "targets/consulbuild", patterns: []string{"github.com/hashicorp/consul"}},
}

// buildList lists every module that provides a package to what the module in dir ships (the main
// module left out), downloading what the module cache lacks. A module only in the module graph,
// whose packages nothing builds, is not in a binary and not judged. For a module without source
// of its own (targets/consulbuild, or any dir with buildPkg, -build), it works on a copy of go.mod and go.sum in a temporary folder,
// so that resolving the build never changes the checkout.
func buildList(dir, buildPkg string) ([]module, error) {
	sh, ok := shipments[filepath.Clean(dir)]
	switch {
	case buildPkg != "":
		sh = shipped{dir: dir, patterns: []string{buildPkg}}
	case !ok:
		sh = shipped{dir: dir, patterns: []string{"./..."}, tests: true}
	}
	work, env := dir, os.Environ()
	if !strings.HasPrefix(sh.patterns[0], ".") {
		tmp, err := os.MkdirTemp("", "licencecheck-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		for _, name := range []string{"go.mod", "go.sum"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil && !(name == "go.sum" && errors.Is(err, fs.ErrNotExist)) {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
				return nil, err
			}
		}
		work, env = tmp, append(env, "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOOS=linux")
		if err := absReplacements(tmp, dir); err != nil {
			return nil, err
		}
	}
	args := []string{"list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{with .Replace}}\t{{.Dir}}{{end}}{{end}}{{end}}"}
	if sh.tests {
		args = append(args, "-test")
	}
	cmd := exec.Command("go", append(args, sh.patterns...)...)
	cmd.Dir, cmd.Env = work, env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %v: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(errOut.String()))
	}
	seen := map[string]bool{}
	var mods []module
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 || seen[f[0]+"@"+f[1]] {
			continue
		}
		seen[f[0]+"@"+f[1]] = true
		m := module{Path: f[0], Version: f[1], Dir: f[2]}
		if len(f) > 3 {
			m.Dir = f[3]
		}
		if m.Dir == "" {
			m.Error = "no folder in the module cache (go list gave none)"
		}
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}
