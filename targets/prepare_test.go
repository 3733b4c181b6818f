package targets

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftcheck/harness/docker"
)

type fakeImages struct {
	ensured int
	exists  bool
}

func (f *fakeImages) EnsureImage(context.Context, docker.ImageSpec) (string, error) {
	f.ensured++
	f.exists = true
	return "repo:tag", nil
}
func (f *fakeImages) EnsureHelperImage(context.Context, string) (string, error) { return "", nil }
func (f *fakeImages) ImageExists(context.Context, string) (bool, error)         { return f.exists, nil }

func TestImageOfOwnBuildIsRemembered(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "consul")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeImages{}
	ctx := context.Background()
	spec := docker.ImageSpec{Binary: bin, Repo: "r", Path: "p"}
	for range 3 {
		if ref, err := imageOfOwnBuild(ctx, f, spec); err != nil || ref != "repo:tag" {
			t.Fatalf("imageOfOwnBuild = %q, %v", ref, err)
		}
	}
	if f.ensured != 1 {
		t.Fatalf("EnsureImage called %d times for an unchanged binary, want 1", f.ensured)
	}
	f.exists = false // the image was removed from the engine
	_, _ = imageOfOwnBuild(ctx, f, spec)
	if f.ensured != 2 {
		t.Fatalf("a removed image was not made again (%d calls)", f.ensured)
	}
	later := time.Now().Add(time.Minute) // the binary was rebuilt
	if err := os.Chtimes(bin, later, later); err != nil {
		t.Fatal(err)
	}
	_, _ = imageOfOwnBuild(ctx, f, spec)
	if f.ensured != 3 {
		t.Fatalf("a rebuilt binary reused the old image (%d calls)", f.ensured)
	}
}
