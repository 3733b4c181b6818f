// Package powerfs is a FUSE filesystem that forgets what was not made durable, for power-loss
// faults. It passes every operation through to a backing folder on the host ("live") and keeps
// apart what a real disk would still hold after the power went out ("durable"):
//
//   - a file's data is durable as of its last fsync or fdatasync (only the ranges written since
//     are copied, so a database that syncs often stays cheap);
//   - a directory's entries (files and folders created, renamed, deleted) are durable as of the
//     last commit of that directory. In the default journal model every fsync of any file or
//     directory commits every earlier entry change, as the journal of ext4 or xfs does; with
//     StrictDirs only an fsync of the directory itself commits its entries (POSIX's minimum).
//
// PowerLoss rebuilds the live folder from the durable state alone: everything written, created,
// renamed or deleted since it was made durable is gone. The node using the filesystem must be
// dead by then (its container killed); the filesystem is unmounted, rebuilt and mounted again,
// so no page or entry cached by the kernel survives either.
//
// Mounting needs root (or fusermount) and /dev/fuse. The mount allows other users, so that the
// Docker Engine can bind it into a container as its /data.
package powerfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FsName is the source name of every powerfs mount in /proc/self/mountinfo; Leftovers finds
// the mounts of crashed processes by it.
const FsName = "raftcheck-powerfs"

// Options configure a filesystem.
type Options struct {
	// Dir is a host folder the filesystem owns: it holds live/ (what the mount shows) and
	// durable/ (file contents as of their last fsync). It is created if missing; whatever live/
	// holds at Mount counts as durable.
	Dir string
	// Mountpoint is where the filesystem is mounted; created if missing.
	Mountpoint string
	// StrictDirs makes directory entries durable only by an fsync of their own directory.
	// Default false: any fsync commits every entry change made before it (a journalling
	// filesystem). Strict is the POSIX minimum; Raft libraries that never fsync their data
	// directory (bbolt creates its file without one) lose their files under it.
	StrictDirs bool
	// Writeback makes the filesystem write back unsynced data as Linux does by default: every
	// 5 s, a file whose oldest unsynced write is older than Writeback (the kernel's
	// dirty_expire_centisecs, 30 s) becomes durable as it is, and entry changes older than 5 s
	// are committed (ext4's journal commit interval). Zero: nothing is durable without an fsync,
	// the worst case (and the one the issue defines).
	Writeback time.Duration
}

// FS is one mounted power-loss filesystem. Its methods are safe for concurrent use.
type FS struct {
	o       Options
	live    string // backing folder the mount passes through to
	durable string // durable/<id>: a file's content as of its last fsync

	// tree is held for reading by every operation that changes directory entries and for
	// writing by a commit that records them, so a commit sees no half-done rename.
	tree sync.RWMutex
	// syncMu serialises data syncs, so two fsyncs of a file never interleave their copies.
	syncMu sync.Mutex

	mu        sync.Mutex
	ids       map[uint64]uint64  // host inode number of a live file → its id
	next      uint64             // last id handed out
	dirty     map[uint64]*dirty  // id → data written since its last fsync
	dirs      map[uint64][]entry // directory id → its durable entries
	synced    map[uint64]bool    // ids with a durable content file
	metaDirty bool               // an entry changed since the last commit
	metaSince time.Time          // when the oldest uncommitted entry change was made
	stats     Stats
	server    *fuse.Server
	stopFlush chan struct{}
}

// entry is one durable directory entry.
type entry struct {
	Name string
	ID   uint64
	Mode uint32 // type and permission bits, as in stat
	Link string // a symlink's target
}

// rootID is the id of the mount's root directory.
const rootID = 1

// Stats count what the filesystem did since it was mounted first.
type Stats struct {
	Fsyncs      int64 // fsync and fdatasync calls on files
	DirFsyncs   int64 // fsync calls on directories
	Commits     int64 // commits of directory entries
	BytesSynced int64 // file data copied to the durable state
	PowerLosses int64
}

// Loss says what one PowerLoss discarded.
type Loss struct {
	UnsyncedFiles   int  `json:"unsynced_files"`   // files with data written since their last fsync
	UnsyncedEntries bool `json:"unsynced_entries"` // directory entries changed since the last commit
	// Unmount and Rebuild are how long the two steps took, in seconds (remount included in
	// Rebuild).
	Unmount float64 `json:"unmount_seconds"`
	Rebuild float64 `json:"rebuild_seconds"`
}

// Mount prepares o.Dir and mounts the filesystem at o.Mountpoint.
func Mount(o Options) (*FS, error) {
	if o.Dir == "" || o.Mountpoint == "" {
		return nil, errors.New("powerfs: Dir and Mountpoint are required")
	}
	f := &FS{o: o, live: filepath.Join(o.Dir, "live"), durable: filepath.Join(o.Dir, "durable")}
	for _, d := range []string{f.live, f.durable, o.Mountpoint} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("powerfs: %w", err)
		}
	}
	if err := f.adopt(); err != nil {
		return nil, fmt.Errorf("powerfs: %w", err)
	}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

// Mountpoint is where the filesystem is mounted.
func (f *FS) Mountpoint() string { return f.o.Mountpoint }

// Stats returns the counters.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *FS) mount() error {
	root := &fs.LoopbackRoot{Path: f.live}
	var st syscallStat
	if err := lstat(f.live, &st); err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	root.Dev = uint64(st.Dev)
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscallStat) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, fs: f}
	}
	rootNode := &node{LoopbackNode: fs.LoopbackNode{RootData: root}, fs: f}
	root.RootNode = rootNode
	one := time.Second
	srv, err := fs.Mount(f.o.Mountpoint, rootNode, &fs.Options{
		EntryTimeout: &one, AttrTimeout: &one, NegativeTimeout: &one,
		MountOptions: fuse.MountOptions{
			AllowOther:  true,
			FsName:      FsName,
			Name:        "powerfs",
			DirectMount: os.Geteuid() == 0,
		},
	})
	if err != nil {
		return fmt.Errorf("powerfs: mount %s: %w (needs /dev/fuse and root or fusermount)", f.o.Mountpoint, err)
	}
	f.mu.Lock()
	f.server = srv
	if f.o.Writeback > 0 {
		f.stopFlush = make(chan struct{})
		go f.flusher(f.stopFlush)
	}
	f.mu.Unlock()
	return nil
}

// unmount unmounts and waits for the server to stop. A busy mount (a process still inside) is
// retried for a few seconds, then detached lazily, since its users are dead or about to be.
func (f *FS) unmount() error {
	f.mu.Lock()
	srv := f.server
	f.server = nil
	if f.stopFlush != nil {
		close(f.stopFlush)
		f.stopFlush = nil
	}
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	if mps, err := Leftovers(); err == nil && !slices.Contains(mps, f.o.Mountpoint) {
		// Already detached (harness clean): the server stops once the kernel lets go.
		waitAtMost(srv, 2*time.Second)
		return nil
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = srv.Unmount(); err == nil {
			srv.Wait()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if derr := unmountDetach(f.o.Mountpoint); derr != nil {
		return fmt.Errorf("powerfs: unmount %s: %v; lazy unmount: %w", f.o.Mountpoint, err, derr)
	}
	srv.Wait()
	return nil
}

// waitAtMost waits for the server's loop to end, or gives up after d.
func waitAtMost(srv *fuse.Server, d time.Duration) {
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// PowerLoss discards every change that was not made durable: the filesystem is unmounted, its
// live folder rebuilt from the durable state, and mounted again. Nothing may use the mount
// meanwhile (kill the node first).
func (f *FS) PowerLoss() (Loss, error) {
	start := time.Now()
	if err := f.unmount(); err != nil {
		return Loss{}, err
	}
	f.mu.Lock()
	loss := Loss{UnsyncedEntries: f.metaDirty, Unmount: time.Since(start).Seconds()}
	start = time.Now()
	for _, d := range f.dirty {
		if d.full || len(d.spans) > 0 {
			loss.UnsyncedFiles++
		}
	}
	f.stats.PowerLosses++
	f.mu.Unlock()
	if err := f.rebuild(); err != nil {
		return loss, fmt.Errorf("powerfs: rebuild %s: %w", f.live, err)
	}
	err := f.mount()
	loss.Rebuild = time.Since(start).Seconds()
	return loss, err
}

// Wipe empties the filesystem, durable state included (a disk replaced by a new one). Nothing
// may use the mount meanwhile.
func (f *FS) Wipe() error {
	if err := f.unmount(); err != nil {
		return err
	}
	for _, d := range []string{f.live, f.durable} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("powerfs: wipe: %w", err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("powerfs: wipe: %w", err)
		}
	}
	if err := f.adopt(); err != nil {
		return fmt.Errorf("powerfs: wipe: %w", err)
	}
	return f.mount()
}

// Close unmounts the filesystem and leaves its folder as it is.
func (f *FS) Close() error { return f.unmount() }

// Remove unmounts the filesystem and deletes its folder and the mountpoint.
func (f *FS) Remove() error {
	err := f.unmount()
	return errors.Join(err, os.RemoveAll(f.o.Dir), os.Remove(f.o.Mountpoint))
}
