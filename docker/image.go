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

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// ImageRepo is the repository of agent images; the tag is the binary's content hash.
const ImageRepo = "harness-agent"

type imageCache struct {
	size  int64
	mtime time.Time
	ref   string
}

// EnsureImage returns an image holding the static Linux binary at binaryPath as /agent, with
// ENTRYPOINT ["/agent"], an empty /tmp, and the label harness.run=image-cache. It is tagged
// harness-agent:<first 12 hex digits of the binary's SHA-256> and made (by ImageImport, no
// registry needed) only when no image has that tag; otherwise the cost is one ImageInspect.
// The binary must be an executable, statically linked ELF file. The first image ensured also
// becomes the helper image (SetHelperImage).
func (c *Client) EnsureImage(ctx context.Context, binaryPath string) (ref string, err error) {
	defer func() {
		if err == nil {
			c.mu.Lock()
			if c.helper == "" {
				c.helper = ref
			}
			c.mu.Unlock()
		}
	}()
	st, err := os.Stat(binaryPath)
	if err != nil {
		return "", fmt.Errorf("agent binary: %w", err)
	}
	c.mu.Lock()
	cached, ok := c.images[binaryPath]
	c.mu.Unlock()
	if ok && cached.size == st.Size() && cached.mtime.Equal(st.ModTime()) {
		if _, err := c.api.ImageInspect(ctx, cached.ref); err == nil {
			return cached.ref, nil
		}
	}

	bin, err := readStaticBinary(binaryPath, st)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	ref = ImageRepo + ":" + hex.EncodeToString(sum[:6])
	remember := func() {
		c.mu.Lock()
		c.images[binaryPath] = imageCache{size: st.Size(), mtime: st.ModTime(), ref: ref}
		c.mu.Unlock()
	}
	if _, err := c.api.ImageInspect(ctx, ref); err == nil {
		remember()
		return ref, nil
	}
	rootfs, err := rootfsTar("agent", bin)
	if err != nil {
		return "", err
	}
	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, ref,
		image.ImportOptions{
			Message: "harness agent " + hex.EncodeToString(sum[:]),
			Changes: []string{`ENTRYPOINT ["/agent"]`, "LABEL " + LabelRun + "=" + ImageCacheRun},
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
