package targets

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/raftcheck/harness/docker"
)

// Source overrides where the target comes from: a static Linux binary (--agent-binary) or an
// image already in the local engine (--agent-image). At most one is set.
type Source struct {
	Binary string `json:"binary,omitempty"`
	Image  string `json:"image,omitempty"`
}

// Images is what Prepare needs of the Docker engine.
type Images interface {
	EnsureImage(ctx context.Context, spec docker.ImageSpec) (string, error)
	EnsureHelperImage(ctx context.Context, binary string) (string, error)
	ImageExists(ctx context.Context, ref string) (bool, error)
}

// Prepared is a target ready to run.
type Prepared struct {
	Target  Target `json:"target"`
	Image   string `json:"image"`             // what every node runs
	Binary  string `json:"binary,omitempty"`  // the binary the image was made from ("" for --agent-image)
	Version string `json:"version,omitempty"` // what the binary says it is, e.g. "Consul v1.20.1"
	Helper  string `json:"helper_image"`      // the network-fault helper's image
}

// Check validates a source for a target before anything is built.
func (s Source) Check() error {
	if s.Binary != "" && s.Image != "" {
		return usagef("give --agent-binary or --agent-image, not both")
	}
	if s.Binary != "" {
		st, err := os.Stat(s.Binary)
		if err != nil {
			return usagef("--agent-binary: %v", err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return usagef("--agent-binary %s: not an executable file", s.Binary)
		}
	}
	return nil
}

// Prepare builds or finds what t runs (the source overriding where it comes from), makes its
// image and the helper image, and returns them. Building Consul the first time takes minutes
// and reports progress to log.
func Prepare(ctx context.Context, t Target, src Source, images Images, log io.Writer) (Prepared, error) {
	p := Prepared{Target: t}
	if err := src.Check(); err != nil {
		return p, err
	}
	helper, err := HelperBinary(ctx)
	if err != nil {
		return p, err
	}
	if p.Helper, err = images.EnsureHelperImage(ctx, helper); err != nil {
		return p, err
	}
	if src.Image != "" {
		ok, err := images.ImageExists(ctx, src.Image)
		if err != nil {
			return p, err
		}
		if !ok {
			return p, usagef("--agent-image %s: no such image in the local engine (it cannot pull: build, load or tag it first)", src.Image)
		}
		p.Image = src.Image
		return p, nil
	}
	spec := docker.ImageSpec{Repo: docker.ImageRepo, Path: "agent"}
	switch {
	case src.Binary != "":
		if p.Binary, err = filepath.Abs(src.Binary); err != nil {
			return p, err
		}
	case t.Kind == Agent:
		if p.Binary, err = AgentBinary(ctx); err != nil {
			return p, err
		}
	case t.Kind == Consul:
		if p.Binary, err = ConsulBinary(ctx, t.Version, log); err != nil {
			return p, err
		}
	default:
		return p, usagef("target %s needs --agent-binary or --agent-image", t)
	}
	if t.Kind == Consul {
		spec = docker.ImageSpec{Repo: "harness-consul", Path: "bin/consul"}
		p.Version = ConsulVersion(ctx, p.Binary)
		if src.Binary == "" && p.Version != "" && p.Version != "Consul v"+t.Version {
			return p, fmt.Errorf("the cached Consul binary %s says %q, want Consul v%s: remove it to rebuild", p.Binary, p.Version, t.Version)
		}
	}
	spec.Binary = p.Binary
	if src.Binary == "" {
		// A binary this package built into its cache: its image is remembered beside it, so a
		// run does not hash the binary again (0.5 s for Consul's 130 MB on every run).
		p.Image, err = imageOfOwnBuild(ctx, images, spec)
	} else {
		p.Image, err = images.EnsureImage(ctx, spec)
	}
	return p, err
}

// imageOfOwnBuild is EnsureImage for a binary in CacheDir, remembering the image in
// <binary>.image with the binary's size and modification time; a rebuilt binary, or an image
// removed from the engine, makes the image again.
func imageOfOwnBuild(ctx context.Context, images Images, spec docker.ImageSpec) (string, error) {
	st, err := os.Stat(spec.Binary)
	if err != nil {
		return "", err
	}
	stamp := fmt.Sprintf("%d %d %s %s", st.Size(), st.ModTime().UnixNano(), spec.Repo, spec.Path)
	memo := spec.Binary + ".image"
	if b, err := os.ReadFile(memo); err == nil {
		if have, ref, ok := strings.Cut(strings.TrimSpace(string(b)), "\n"); ok && have == stamp {
			if exists, err := images.ImageExists(ctx, ref); err == nil && exists {
				return ref, nil
			}
		}
	}
	ref, err := images.EnsureImage(ctx, spec)
	if err == nil {
		_ = os.WriteFile(memo, []byte(stamp+"\n"+ref+"\n"), 0o644)
	}
	return ref, err
}
