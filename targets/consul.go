package targets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/raftcheck/harness/internal/licence"
)

// ConsulModule is the Go module real Consul is built from.
const ConsulModule = "github.com/hashicorp/consul"

// consulModDir is this checkout's own module that pins DefaultConsulVersion (go.mod and go.sum):
// a separate module, so the harness's dependencies do not grow by Consul's.
const consulModDir = "targets/consulbuild"

// ConsulBinary returns the path of a static Linux Consul binary of the given release, building it
// when it is not cached: CacheDir()/consul/<version>/consul. The build runs `go build
// github.com/hashicorp/consul` (CGO off) in a small module that requires that release, so it
// needs only the Go module proxy; the first build takes minutes (progress goes to log every
// progressEvery, the whole output to build.log beside the binary). Concurrent callers (test
// packages run in parallel) wait for one build through a lock file. A release the module proxy
// does not know is a UsageError; a failed build names its log.
func ConsulBinary(ctx context.Context, version string, log io.Writer) (string, error) {
	if !semver.MatchString(version) {
		return "", usagef("consul version %q: want X.Y.Z", version)
	}
	dir := filepath.Join(CacheDir(), "consul", version)
	bin := filepath.Join(dir, "consul")
	if isExecutable(bin) && builtByThisRecipe(dir) {
		sayLicence(log, version, dir)
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("consul build: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"), log)
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) && builtByThisRecipe(dir) { // built by whoever held the lock
		sayLicence(log, version, dir)
		return bin, nil
	}
	if isExecutable(bin) {
		fmt.Fprintf(log, "harness: the cached Consul v%s was built by an older recipe; building it again (recipe %s: %s)\n", version, consulRecipe, filepath.Join(dir, recipeFile))
	}
	return bin, buildConsul(ctx, version, dir, bin, log)
}

// licenceFile, beside a cached Consul binary, holds the licence its release's module is under
// (read from the module's own LICENSE at build time) and whether that licence is open source.
const licenceFile = "licence"

// sayLicence writes one line naming the licence of a cached release that is not open source, so
// that a user who named it knows what they run; an open-source release says nothing.
func sayLicence(log io.Writer, version, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, licenceFile))
	if err != nil {
		return
	}
	name, open, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	if open != "open" {
		fmt.Fprintf(log, "harness: Consul v%s is under %s, not an open-source licence; it is built and run only because --target named it (the default, consul@%s, is MPL-2.0)\n", version, name, DefaultConsulVersion)
	}
}

// recordLicence reads the licence of the Consul module the build in src resolved, writes it beside
// the binary and says it when it is not open source.
func recordLicence(ctx context.Context, src, dir, version string, env []string, log io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", ConsulModule)
	cmd.Dir, cmd.Env = src, env
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("consul build: find the module %s: %v", ConsulModule, err)
	}
	v := licence.Module(strings.TrimSpace(string(out)))
	var names []string
	open := "open"
	for _, l := range v.Licences {
		names = append(names, l.Name)
	}
	if v.Problem != "" {
		open = "not-open"
	}
	name := strings.Join(names, ",")
	if name == "" {
		name = "an unrecognised licence"
	}
	if err := os.WriteFile(filepath.Join(dir, licenceFile), []byte(name+" "+open+"\n"), 0o644); err != nil {
		return fmt.Errorf("consul build: %w", err)
	}
	sayLicence(log, version, dir)
	return nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// lockFile takes an exclusive flock on path, telling log when it has to wait.
func lockFile(ctx context.Context, path string, log io.Writer) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("consul build lock: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("consul build lock %s: %w", path, err)
		}
		if !told {
			fmt.Fprintf(log, "harness: another process is building Consul (%s); waiting\n", path)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// progressEvery is how often a running Consul build reports.
const progressEvery = 15 * time.Second

// buildConsul prepares the build module in dir/src and builds bin; output goes to dir/build.log.
func buildConsul(ctx context.Context, version, dir, bin string, log io.Writer) error {
	logPath := filepath.Join(dir, "build.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("consul build: %w", err)
	}
	defer lf.Close()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("consul build: %w", err)
	}
	start := time.Now()
	fmt.Fprintf(log, "harness: building Consul v%s from the Go module %s (first time only; minutes on a cold module cache; log: %s)\n", version, ConsulModule, logPath)
	stop := reportProgress(log, version, logPath, start)
	defer stop()

	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-mod=mod")
	goCmd := func(out io.Writer, args ...string) error {
		fmt.Fprintf(lf, "$ go %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = src, env, lf, lf
		if out != nil {
			cmd.Stdout = io.MultiWriter(out, lf)
		}
		return cmd.Run()
	}
	run := func(args ...string) error { return goCmd(nil, args...) }
	pinned, err := writeBuildModule(src, version)
	if err != nil {
		return fmt.Errorf("consul build: %w", err)
	}
	if !pinned {
		if err := releaseModule(ctx, version, src, goCmd, lf); err != nil {
			if IsUsage(err) {
				return err
			}
			return fmt.Errorf("%w (log: %s)", err, logPath)
		}
	}
	if err := recordLicence(ctx, src, dir, version, env, log); err != nil {
		return err
	}
	tmp := bin + ".tmp"
	if err := run("build", "-trimpath", "-ldflags=-s -w", "-o", tmp, ConsulModule); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("consul build interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("consul build of v%s failed: %v (log: %s)", version, err, logPath)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("consul build: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, recipeFile), []byte(consulRecipe+"\n"), 0o644); err != nil {
		return fmt.Errorf("consul build: %w", err)
	}
	fmt.Fprintf(log, "harness: built Consul v%s in %s: %s\n", version, time.Since(start).Round(time.Second), bin)
	return nil
}

// writeBuildModule writes go.mod (and go.sum) of the build module into src. For the pinned
// release it copies this checkout's targets/consulbuild module (reviewed go.sum), and reports
// pinned; otherwise it writes a bare go.mod for `go get` to fill.
func writeBuildModule(src, version string) (pinned bool, err error) {
	if version == DefaultConsulVersion {
		if root, err := ModuleRoot(); err == nil {
			mod, err1 := os.ReadFile(filepath.Join(root, consulModDir, "go.mod"))
			sum, err2 := os.ReadFile(filepath.Join(root, consulModDir, "go.sum"))
			if err1 == nil && err2 == nil && requires(mod, version) {
				if err := os.WriteFile(filepath.Join(src, "go.mod"), mod, 0o644); err != nil {
					return false, err
				}
				return true, os.WriteFile(filepath.Join(src, "go.sum"), sum, 0o644)
			}
		}
	}
	_ = os.Remove(filepath.Join(src, "go.sum"))
	mod := "module raftcheck.local/consulbuild\n\ngo 1.22\n"
	return false, os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644)
}

// requires reports whether a go.mod requires exactly that release of Consul.
func requires(mod []byte, version string) bool {
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == ConsulModule && f[1] == "v"+version {
			return true
		}
	}
	return false
}

// unknownVersionMarks are what the go command says of a release the module proxy does not have.
var unknownVersionMarks = []string{"unknown revision", "invalid version", "no matching versions", "404 Not Found", "410 Gone", "not available"}

// reportProgress prints the elapsed time and the build log's last line every progressEvery.
func reportProgress(log io.Writer, version, logPath string, start time.Time) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(log, "harness: building Consul v%s: %s elapsed; %s\n", version, time.Since(start).Round(time.Second), lastLine(logPath))
			}
		}
	}()
	return func() { close(done) }
}

func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if last == "" {
		return "compiling"
	}
	if len(last) > 120 {
		last = last[:120] + "…"
	}
	return "last: " + last
}

// ConsulVersion asks a Consul binary for its version ("Consul v1.16.3"); "" if it cannot say.
func ConsulVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}
