package powerfs

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node that reports to its FS what changes data or entries.
type node struct {
	fs.LoopbackNode
	fs *FS
}

// livePath is the node's path in the live folder.
func (n *node) livePath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.RootData.RootNode.EmbeddedInode()))
}

func (n *node) ino() uint64 { return n.StableAttr().Ino }

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	ch, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return ch, fh, ff, errno
	}
	n.fs.created(ch.StableAttr().Ino)
	return ch, &file{FileHandle: fh, fs: n.fs, ino: ch.StableAttr().Ino}, ff, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return fh, ff, errno
	}
	if flags&syscall.O_TRUNC != 0 {
		n.fs.wrote(n.ino(), 0, 0, true)
	}
	return &file{FileHandle: fh, fs: n.fs, ino: n.ino()}, ff, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.fs.created(ch.StableAttr().Ino)
	}
	return ch, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if errno == 0 {
		n.fs.created(ch.StableAttr().Ino)
	}
	return ch, errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno == 0 {
		n.fs.created(ch.StableAttr().Ino)
	}
	return ch, errno
}

// Link is refused: a file's durable state is kept per inode and entry, and hard links would
// need both at once. Neither Raft library used here makes them.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// Tmpfile (O_TMPFILE) is refused for the same reason: its linkat would be a hard link.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.ENOTSUP
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 {
		n.fs.entriesChanged()
	}
	return errno
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	errno := n.LoopbackNode.Rmdir(ctx, name)
	if errno == 0 {
		n.fs.entriesChanged()
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	n.fs.tree.RLock()
	defer n.fs.tree.RUnlock()
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 {
		n.fs.entriesChanged()
	}
	return errno
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if fh, ok := f.(*file); ok {
		f = fh.FileHandle
	}
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	if _, ok := in.GetSize(); ok && errno == 0 {
		n.fs.wrote(n.ino(), 0, 0, true)
	}
	return errno
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if fh, ok := f.(*file); ok {
		f = fh.FileHandle
	}
	return n.LoopbackNode.Getattr(ctx, f, out)
}

func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	fh, ok := f.(*file)
	if !ok {
		return syscall.EBADF
	}
	a, ok := fh.FileHandle.(fs.FileAllocater)
	if !ok {
		return syscall.ENOTSUP
	}
	errno := a.Allocate(ctx, off, size, mode)
	if errno == 0 {
		n.fs.wrote(n.ino(), 0, 0, true)
	}
	return errno
}

// CopyFileRange is refused so that the kernel falls back to reads and writes, which are tracked.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOTSUP
}

// Fsync makes the file's data durable (and, in the journal model, every entry change before
// it); on a directory, its entries.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.IsDir() {
		return fs.ToErrno(n.fs.syncDir(n.livePath(), n.ino()))
	}
	fh, ok := f.(*file)
	if !ok {
		return syscall.EBADF
	}
	fd, ok := fh.fd()
	if !ok {
		return syscall.EBADF
	}
	return fs.ToErrno(n.fs.syncFile(fd, n.ino()))
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, ff, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return ds, ff, errno
	}
	return &dirHandle{ds: ds, n: n}, ff, 0
}

// file is an open file; it reports writes.
type file struct {
	fs.FileHandle
	fs  *FS
	ino uint64
}

func (f *file) fd() (int, bool) {
	p, ok := f.FileHandle.(fs.FilePassthroughFder)
	if !ok {
		return 0, false
	}
	return p.PassthroughFd()
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, errno := f.FileHandle.(fs.FileWriter).Write(ctx, data, off)
	if n > 0 {
		f.fs.wrote(f.ino, off, off+int64(n), false)
	}
	return n, errno
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.FileHandle.(fs.FileReader).Read(ctx, dest, off)
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	return f.FileHandle.(fs.FileReleaser).Release(ctx)
}

func (f *file) Flush(ctx context.Context) syscall.Errno {
	return f.FileHandle.(fs.FileFlusher).Flush(ctx)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.FileHandle.(fs.FileGetattrer).Getattr(ctx, out)
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.FileHandle.(fs.FileLseeker).Lseek(ctx, off, whence)
}

// dirHandle is an open directory; its fsync commits the directory's entries.
type dirHandle struct {
	ds fs.FileHandle
	n  *node
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.ds.(fs.FileReaddirenter).Readdirent(ctx)
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.ds.(fs.FileSeekdirer).Seekdir(ctx, off)
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.ds.(fs.FileReleasedirer).Releasedir(ctx, flags)
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return fs.ToErrno(d.n.fs.syncDir(d.n.livePath(), d.n.ino()))
}
