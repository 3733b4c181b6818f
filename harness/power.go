package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/raftcheck/harness/docker"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/powerfs"
)

// powerRoot is the host folder under which runs keep their nodes' power-loss filesystems:
// <powerRoot>/<run id>/<node>/{backing,mnt}.
func powerRoot() string { return filepath.Join(os.TempDir(), "raftcheck-power") }

// usesPower reports whether o's faults include power losses: then every node's /data is a
// power-loss filesystem (package powerfs) mounted by the harness and bound into the container.
func usesPower(o Options) bool { return slices.Contains(o.Nemesis, nemesis.FaultPower) }

// mountPower mounts one power-loss filesystem per node; on error it removes what it made.
func mountPower(runID string, names []string, writeback time.Duration) (map[string]*powerfs.FS, error) {
	out := map[string]*powerfs.FS{}
	for _, name := range names {
		dir := filepath.Join(powerRoot(), runID, name)
		f, err := powerfs.Mount(powerfs.Options{Dir: filepath.Join(dir, "backing"), Mountpoint: filepath.Join(dir, "mnt"), Writeback: writeback})
		if err != nil {
			_ = removePower(runID, out)
			return nil, fmt.Errorf("power fault: data dir of %s: %w (the power fault needs root and /dev/fuse)", name, err)
		}
		out[name] = f
	}
	return out, nil
}

// removePower unmounts the run's filesystems and deletes their folders; the containers must be
// gone.
func removePower(runID string, fss map[string]*powerfs.FS) error {
	var errs []error
	for _, f := range fss {
		errs = append(errs, f.Remove())
	}
	if len(fss) > 0 {
		errs = append(errs, os.RemoveAll(filepath.Join(powerRoot(), runID)))
	}
	return errors.Join(errs...)
}

// nemesisNode is a node as the nemesis acts on it: the container, and its power-loss
// filesystem when the run has one.
type nemesisNode struct {
	*docker.Node
	fs *powerfs.FS
}

// LoseUnsynced drops what the killed node's data dir did not make durable.
func (n nemesisNode) LoseUnsynced(ctx context.Context) (any, error) {
	if n.fs == nil {
		return nil, fmt.Errorf("node %s: its data dir is not on a power-loss filesystem", n.Name())
	}
	return n.fs.PowerLoss()
}

// Wipe gives the node a new container and, with a power-loss filesystem, an empty one (the
// container's /data is that filesystem, which a new container would otherwise find as it was).
func (n nemesisNode) Wipe(ctx context.Context) error {
	if err := n.Node.Wipe(ctx); err != nil {
		return err
	}
	if n.fs != nil {
		return n.fs.Wipe()
	}
	return nil
}

// cleanPower unmounts every power-loss filesystem runs made (of crashed or running harnesses
// alike, as Clean removes every run's containers) and deletes the runs' folders.
func cleanPower() ([]docker.Leftover, error) { return cleanPowerUnder(powerRoot()) }

// cleanPowerUnder unmounts the power-loss filesystems mounted below root and deletes root.
func cleanPowerUnder(root string) ([]docker.Leftover, error) {
	mps, err := powerfs.Leftovers()
	var out []docker.Leftover
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, mp := range mps {
		rel, err := filepath.Rel(root, mp)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // not a run's
		}
		if err := powerfs.Unmount(mp); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, docker.Leftover{Kind: "mount", Name: mp, RunID: strings.Split(rel, string(filepath.Separator))[0]})
	}
	if len(errs) == 0 {
		errs = append(errs, os.RemoveAll(root))
	}
	return out, errors.Join(errs...)
}
