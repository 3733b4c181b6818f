package powerfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

type syscallStat = syscall.Stat_t

func lstat(p string, st *syscall.Stat_t) error { return syscall.Lstat(p, st) }

// dirty is the data of one file written since its last fsync.
type dirty struct {
	full  bool      // copy the whole file (new, truncated, fallocated, or too many spans)
	spans []span    // written ranges, sorted, not overlapping
	since time.Time // the oldest unsynced write
}

type span struct{ off, end int64 }

// maxSpans bounds the memory of one file's dirty ranges; beyond it the whole file is copied.
const maxSpans = 4096

// add records [off, end) as written, merging touching ranges.
func (d *dirty) add(off, end int64) {
	if d.full || end <= off {
		return
	}
	i, _ := slices.BinarySearchFunc(d.spans, off, func(s span, o int64) int {
		switch {
		case s.end < o:
			return -1
		case s.off > o:
			return 1
		}
		return 0
	})
	j := i
	for j < len(d.spans) && d.spans[j].off <= end {
		off, end = min(off, d.spans[j].off), max(end, d.spans[j].end)
		j++
	}
	d.spans = slices.Replace(d.spans, i, j, span{off, end})
	if len(d.spans) > maxSpans {
		d.full, d.spans = true, nil
	}
}

func (f *FS) durablePath(id uint64) string {
	return filepath.Join(f.durable, strconv.FormatUint(id, 10))
}

// newID hands out an id for the live inode ino (a file created just now). Holds f.mu.
func (f *FS) newIDLocked(ino uint64) uint64 {
	f.next++
	f.ids[ino] = f.next
	f.dirty[f.next] = &dirty{full: true, since: time.Now()}
	return f.next
}

// idOf returns the id of live inode ino, handing out one if it has none.
func (f *FS) idOf(ino uint64) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.ids[ino]; ok {
		return id
	}
	return f.newIDLocked(ino)
}

// created notes a new inode and an entry change.
func (f *FS) created(ino uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.newIDLocked(ino)
	f.entryChangedLocked()
}

func (f *FS) entryChangedLocked() {
	if !f.metaDirty {
		f.metaSince = time.Now()
	}
	f.metaDirty = true
}

// entriesChanged notes an entry change (unlink, rmdir, rename).
func (f *FS) entriesChanged() {
	f.mu.Lock()
	f.entryChangedLocked()
	f.mu.Unlock()
}

// wrote records data written to the file with inode ino; full when it cannot say which range.
func (f *FS) wrote(ino uint64, off, end int64, full bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[ino]
	if !ok {
		id = f.newIDLocked(ino)
	}
	d := f.dirty[id]
	if d == nil {
		d = &dirty{since: time.Now()}
		f.dirty[id] = d
	}
	if full {
		d.full, d.spans = true, nil
		return
	}
	d.add(off, end)
}

// adopt takes whatever the live folder holds as durable: ids for every inode, every directory's
// entries committed, every file copied. Used at Mount and Wipe, with nothing mounted.
func (f *FS) adopt() error {
	f.mu.Lock()
	f.ids, f.dirty, f.dirs, f.synced, f.next, f.metaDirty = map[uint64]uint64{}, map[uint64]*dirty{}, map[uint64][]entry{}, map[uint64]bool{}, rootID, false
	var st syscall.Stat_t
	if err := lstat(f.live, &st); err != nil {
		f.mu.Unlock()
		return err
	}
	f.ids[st.Ino] = rootID
	f.mu.Unlock()
	if err := f.commitTree(); err != nil {
		return err
	}
	f.mu.Lock()
	ids := make(map[uint64]uint64, len(f.ids))
	for ino, id := range f.ids {
		ids[ino] = id
	}
	f.mu.Unlock()
	err := filepath.Walk(f.live, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		st := fi.Sys().(*syscall.Stat_t)
		return f.copyWhole(ids[st.Ino], src)
	})
	f.mu.Lock()
	clear(f.dirty)
	f.mu.Unlock()
	return err
}

// flusher writes back as Linux does (see Options.Writeback) until stop is closed.
func (f *FS) flusher(stop chan struct{}) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = f.writeBack(time.Now())
		}
	}
}

// flushEvery is how often the flusher looks (the kernel's dirty_writeback_centisecs, and ext4's
// journal commit interval).
const flushEvery = 5 * time.Second

// writeBack commits entry changes older than flushEvery and makes durable, as they are now,
// the files whose oldest unsynced write is older than Writeback.
func (f *FS) writeBack(now time.Time) error {
	f.mu.Lock()
	commit := f.metaDirty && now.Sub(f.metaSince) >= flushEvery
	expired := map[uint64]bool{}
	for id, d := range f.dirty {
		if now.Sub(d.since) >= f.o.Writeback {
			expired[id] = true
		}
	}
	ids := make(map[uint64]uint64, len(f.ids))
	for ino, id := range f.ids {
		if expired[id] {
			ids[ino] = id
		}
	}
	f.mu.Unlock()
	var errs []error
	if commit {
		errs = append(errs, f.commitTree())
	}
	if len(ids) == 0 {
		return errors.Join(errs...)
	}
	errs = append(errs, filepath.Walk(f.live, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil // a file that went away meanwhile
		}
		id, ok := ids[fi.Sys().(*syscall.Stat_t).Ino]
		if !ok {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer src.Close()
		f.syncMu.Lock()
		defer f.syncMu.Unlock()
		f.mu.Lock()
		d := f.dirty[id]
		delete(f.dirty, id)
		full := !f.synced[id] || d != nil && d.full
		f.mu.Unlock()
		if full {
			err = f.copyWhole(id, src)
		} else if d != nil {
			err = f.copySpans(id, src, d.spans)
		}
		if err != nil {
			f.wrote(fi.Sys().(*syscall.Stat_t).Ino, 0, 0, true)
		}
		return err
	}))
	return errors.Join(errs...)
}

// commitTree records the entries of every live directory as durable (a journal commit).
func (f *FS) commitTree() error {
	f.tree.Lock()
	defer f.tree.Unlock()
	f.mu.Lock()
	f.metaDirty = false
	f.stats.Commits++
	f.mu.Unlock()
	return f.commitDir(f.live, rootID, true)
}

// commitDir records the entries of the live directory p (id) as durable, and with recurse those
// of every directory below. The caller holds f.tree.
func (f *FS) commitDir(p string, id uint64, recurse bool) error {
	des, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	entries := make([]entry, 0, len(des))
	type sub struct {
		p  string
		id uint64
	}
	var subs []sub
	for _, de := range des {
		cp := filepath.Join(p, de.Name())
		var st syscall.Stat_t
		if err := lstat(cp, &st); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue
			}
			return err
		}
		e := entry{Name: de.Name(), ID: f.idOf(st.Ino), Mode: st.Mode}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFLNK:
			if e.Link, err = os.Readlink(cp); err != nil {
				return err
			}
		case syscall.S_IFDIR:
			subs = append(subs, sub{cp, e.ID})
		}
		entries = append(entries, e)
	}
	f.mu.Lock()
	f.dirs[id] = entries
	f.mu.Unlock()
	if recurse {
		for _, s := range subs {
			if err := f.commitDir(s.p, s.id, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncDir makes the entries of the live directory p durable (fsync of a directory).
func (f *FS) syncDir(p string, ino uint64) error {
	f.mu.Lock()
	f.stats.DirFsyncs++
	strict := f.o.StrictDirs
	f.mu.Unlock()
	if !strict {
		return f.commitTree()
	}
	f.tree.Lock()
	defer f.tree.Unlock()
	f.mu.Lock()
	f.stats.Commits++
	f.mu.Unlock()
	id := uint64(rootID) // the mount's root has FUSE's inode number, not the live folder's
	if p != f.live {
		id = f.idOf(ino)
	}
	return f.commitDir(p, id, false)
}

// syncFile makes the data of the open file fd (inode ino) durable, and in the journal model
// every entry change before it.
func (f *FS) syncFile(fd int, ino uint64) error {
	f.mu.Lock()
	f.stats.Fsyncs++
	commit := !f.o.StrictDirs && f.metaDirty
	f.mu.Unlock()
	if commit {
		if err := f.commitTree(); err != nil {
			return err
		}
	}
	// Read through a descriptor of our own: the caller's may be write-only.
	src, err := os.Open("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return err
	}
	defer src.Close()
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	id, ok := f.ids[ino]
	if !ok {
		id = f.newIDLocked(ino)
	}
	d := f.dirty[id]
	delete(f.dirty, id)
	full := !f.synced[id] || d != nil && d.full
	f.mu.Unlock()
	if full {
		err = f.copyWhole(id, src)
	} else if d != nil {
		err = f.copySpans(id, src, d.spans)
	}
	if err != nil {
		// Whatever was not copied is still unsynced.
		f.wrote(ino, 0, 0, true)
	}
	return err
}

// copyWhole makes src's whole content the durable content of id.
func (f *FS) copyWhole(id uint64, src *os.File) error {
	tmp := f.durablePath(id) + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(dst, io.NewSectionReader(src, 0, 1<<62))
	err = errors.Join(err, dst.Close())
	if err == nil {
		err = os.Rename(tmp, f.durablePath(id))
	}
	if err != nil {
		return fmt.Errorf("copy file %d: %w", id, err)
	}
	f.mu.Lock()
	f.synced[id] = true
	f.stats.BytesSynced += n
	f.mu.Unlock()
	return nil
}

// copySpans copies the written ranges of src to the durable content of id and gives it src's size.
func (f *FS) copySpans(id uint64, src *os.File, spans []span) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	dst, err := os.OpenFile(f.durablePath(id), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer dst.Close()
	buf := make([]byte, 256<<10)
	var n int64
	for _, s := range spans {
		for off := s.off; off < min(s.end, size); {
			k := int(min(int64(len(buf)), min(s.end, size)-off))
			r, err := src.ReadAt(buf[:k], off)
			if r > 0 {
				if _, werr := dst.WriteAt(buf[:r], off); werr != nil {
					return werr
				}
				n += int64(r)
				off += int64(r)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	if err := dst.Truncate(size); err != nil {
		return err
	}
	f.mu.Lock()
	f.stats.BytesSynced += n
	f.mu.Unlock()
	return nil
}

// rebuild replaces the live folder by one made from the durable state alone and forgets every
// unsynced change. Nothing is mounted meanwhile.
func (f *FS) rebuild() error {
	next := f.live + ".rebuild"
	if err := os.RemoveAll(next); err != nil {
		return err
	}
	if err := os.Mkdir(next, 0o755); err != nil {
		return err
	}
	f.mu.Lock()
	dirs := f.dirs
	synced := f.synced
	f.mu.Unlock()
	ids := map[uint64]uint64{}
	used := map[uint64]bool{}
	var st syscall.Stat_t
	if err := lstat(next, &st); err != nil {
		return err
	}
	ids[st.Ino] = rootID
	seen := map[uint64]bool{rootID: true}
	var build func(dir uint64, p string) error
	build = func(dir uint64, p string) error {
		for _, e := range dirs[dir] {
			cp := filepath.Join(p, e.Name)
			perm := os.FileMode(e.Mode & 0o7777)
			switch e.Mode & syscall.S_IFMT {
			case syscall.S_IFDIR:
				if seen[e.ID] { // the durable state can hold a folder twice (strict mode); keep the first
					continue
				}
				seen[e.ID] = true
				if err := os.Mkdir(cp, perm|0o700); err != nil {
					return err
				}
				if err := build(e.ID, cp); err != nil {
					return err
				}
				_ = os.Chmod(cp, perm)
			case syscall.S_IFREG:
				if err := restoreFile(cp, perm, f.durablePath(e.ID), synced[e.ID]); err != nil {
					return err
				}
				used[e.ID] = true
			case syscall.S_IFLNK:
				if err := os.Symlink(e.Link, cp); err != nil {
					return err
				}
			default:
				continue // fifos, sockets, devices: not kept
			}
			var cst syscall.Stat_t
			if err := lstat(cp, &cst); err != nil {
				return err
			}
			ids[cst.Ino] = e.ID
		}
		return nil
	}
	if err := build(rootID, next); err != nil {
		return err
	}
	if err := os.RemoveAll(f.live); err != nil {
		return err
	}
	if err := os.Rename(next, f.live); err != nil {
		return err
	}
	// Durable contents no entry refers to any more are garbage.
	des, err := os.ReadDir(f.durable)
	if err != nil {
		return err
	}
	for _, de := range des {
		id, err := strconv.ParseUint(de.Name(), 10, 64)
		if err != nil || !used[id] {
			_ = os.Remove(filepath.Join(f.durable, de.Name()))
			if err == nil {
				delete(synced, id)
			}
		}
	}
	f.mu.Lock()
	f.ids, f.dirty, f.metaDirty, f.synced = ids, map[uint64]*dirty{}, false, synced
	f.mu.Unlock()
	return nil
}

// restoreFile creates p with the durable content at from (empty if the file never synced).
func restoreFile(p string, perm os.FileMode, from string, synced bool) error {
	dst, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if synced {
		src, err := os.Open(from)
		if err != nil {
			dst.Close()
			return err
		}
		_, err = io.Copy(dst, src)
		src.Close()
		if err != nil {
			dst.Close()
			return err
		}
	}
	return dst.Close()
}
