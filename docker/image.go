package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Image repositories of the images the harness makes; the tag is the binary's content hash.
const (
	ImageRepo       = "harness-agent"    // the project's agent
	HelperImageRepo = "harness-netfault" // the network-fault helper (see Node.NetFault)
)

type imageCache struct {
	size  int64
	mtime time.Time
	ref   string
}

// ImageSpec names a one-binary image: the static Linux executable Binary, stored in the image
// at Path (relative, e.g. "agent" or "bin/consul") and run as its ENTRYPOINT, tagged
// Repo:<first 12 hex digits of the binary's SHA-256>.
type ImageSpec struct {
	Binary string
	Repo   string // default ImageRepo
	Path   string // default "agent"
}

// EnsureImage returns an image holding spec.Binary with an empty /tmp and the label
// harness.run=image-cache. It is made (by ImageImport, no registry needed) only when no image
// has its tag; otherwise the cost is one ImageInspect (and hashing the binary once per client).
// The binary must be an executable, statically linked ELF file.
func (c *Client) EnsureImage(ctx context.Context, spec ImageSpec) (ref string, err error) {
	if spec.Repo == "" {
		spec.Repo = ImageRepo
	}
	if spec.Path == "" {
		spec.Path = "agent"
	}
	st, err := os.Stat(spec.Binary)
	if err != nil {
		return "", fmt.Errorf("agent binary: %w", err)
	}
	key := spec.Repo + "\x00" + spec.Path + "\x00" + spec.Binary
	c.mu.Lock()
	cached, ok := c.images[key]
	c.mu.Unlock()
	if ok && cached.size == st.Size() && cached.mtime.Equal(st.ModTime()) {
		if _, err := c.api.ImageInspect(ctx, cached.ref); err == nil {
			return cached.ref, nil
		}
	}

	bin, err := readStaticBinary(spec.Binary, st)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	ref = spec.Repo + ":" + hex.EncodeToString(sum[:6])
	remember := func() {
		c.mu.Lock()
		c.images[key] = imageCache{size: st.Size(), mtime: st.ModTime(), ref: ref}
		c.mu.Unlock()
	}
	if _, err := c.api.ImageInspect(ctx, ref); err == nil {
		remember()
		return ref, nil
	}
	rootfs, err := rootfsTar(spec.Path, bin)
	if err != nil {
		return "", err
	}
	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, ref,
		image.ImportOptions{
			Message: "harness image of " + filepath.Base(spec.Binary) + " " + hex.EncodeToString(sum[:]),
			Changes: []string{fmt.Sprintf(`ENTRYPOINT ["/%s"]`, spec.Path), "LABEL " + LabelRun + "=" + ImageCacheRun},
		})
	if err != nil {
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	defer rc.Close()
	// A failed import still answers 200: its error arrives in the stream.
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	remember()
	return ref, nil
}

// EnsureHelperImage makes the image of the network-fault helper from its static binary (one
// that runs `net ARGS…`, see Node.NetFault) and uses it for every helper container.
func (c *Client) EnsureHelperImage(ctx context.Context, binary string) (string, error) {
	ref, err := c.EnsureImage(ctx, ImageSpec{Binary: binary, Repo: HelperImageRepo, Path: "netfault"})
	if err == nil {
		c.SetHelperImage(ref)
	}
	return ref, err
}

// ImageExists reports whether ref names an image in the local engine (no pull is tried: the
// engine may have no registry).
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.api.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// TagImage gives the local image src the extra name target.
func (c *Client) TagImage(ctx context.Context, src, target string) error {
	if err := c.api.ImageTag(ctx, src, target); err != nil {
		return fmt.Errorf("tag image %s as %s: %w", src, target, err)
	}
	return nil
}

// RemoveImageTag removes the name ref (the image stays while other names hold it).
func (c *Client) RemoveImageTag(ctx context.Context, ref string) error {
	_, err := c.api.ImageRemove(ctx, ref, image.RemoveOptions{})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// readStaticBinary reads path and refuses what cannot run in a scratch image: non-executable
// files, non-ELF files and dynamically linked programs.
func readStaticBinary(path string, st os.FileInfo) ([]byte, error) {
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("agent binary %s: not an executable file (mode %v)", path, st.Mode())
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent binary: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("agent binary %s: not a Linux ELF executable (build it with GOOS=linux)", path)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("agent binary %s: dynamically linked; the image has no libc (build it with CGO_ENABLED=0)", path)
		}
	}
	return bin, nil
}

// rootfsTar is an image's whole filesystem: the executable bin at path (relative, e.g.
// "agent") and an empty /tmp.
func rootfsTar(path string, bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch}); err != nil {
		return nil, err
	}
	if dir, _ := filepath.Split(path); dir != "" {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
