package powerfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mountT mounts a filesystem for the test and unmounts it at the end. Without /dev/fuse the test
// is skipped under -short and fails otherwise, saying what is missing.
func mountT(t *testing.T, strict bool) *FS {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if testing.Short() {
			t.Skip("-short: needs /dev/fuse")
		}
		t.Fatalf("powerfs needs /dev/fuse (a kernel with FUSE, and root or fusermount): %v", err)
	}
	dir := t.TempDir()
	f, err := Mount(Options{Dir: filepath.Join(dir, "backing"), Mountpoint: filepath.Join(dir, "mnt"), StrictDirs: strict})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Remove(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *FS) p(name string) string { return filepath.Join(f.Mountpoint(), name) }

func writeFile(t *testing.T, p, data string, sync bool) {
	t.Helper()
	fh, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, p string) {
	t.Helper()
	d, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func powerLoss(t *testing.T, f *FS) Loss {
	t.Helper()
	l, err := f.PowerLoss()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// content is the file's content, or "<missing>".
func content(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnsyncedWriteIsLost(t *testing.T) {
	for _, strict := range []bool{false, true} {
		f := mountT(t, strict)
		writeFile(t, f.p("a"), "hello", false)
		syncDir(t, f.Mountpoint())
		if got := content(t, f.p("a")); got != "hello" {
			t.Fatalf("before the power loss: %q", got)
		}
		l := powerLoss(t, f)
		if l.UnsyncedFiles != 1 {
			t.Errorf("loss %+v, want 1 unsynced file", l)
		}
		// The entry was committed by the directory's fsync, the data never synced.
		if got := content(t, f.p("a")); got != "" {
			t.Errorf("strict=%v: after the power loss a = %q, want empty", strict, got)
		}
	}
}

func TestSyncedWriteSurvives(t *testing.T) {
	f := mountT(t, false)
	writeFile(t, f.p("a"), "hello", true)
	powerLoss(t, f)
	if got := content(t, f.p("a")); got != "hello" {
		t.Fatalf("after the power loss a = %q, want hello", got)
	}
	// Only what was written after the fsync is lost; the rest of the file stays.
	fh, err := os.OpenFile(f.p("a"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("J"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("XY world"), 3); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if got := content(t, f.p("a")); got != "JelXY world" {
		t.Fatalf("before the power loss: %q", got)
	}
	powerLoss(t, f)
	if got := content(t, f.p("a")); got != "Jello" {
		t.Fatalf("after the second power loss a = %q, want Jello", got)
	}
	// And a loss with nothing unsynced changes nothing.
	if l := powerLoss(t, f); l.UnsyncedFiles != 0 || l.UnsyncedEntries {
		t.Errorf("loss %+v, want nothing", l)
	}
	if got := content(t, f.p("a")); got != "Jello" {
		t.Fatalf("after a third power loss a = %q, want Jello", got)
	}
}

func TestEntriesNeedADirectoryFsync(t *testing.T) {
	// Strict: a file's own fsync does not make its name durable.
	f := mountT(t, true)
	writeFile(t, f.p("a"), "one", true)
	powerLoss(t, f)
	if got := content(t, f.p("a")); got != "<missing>" {
		t.Fatalf("strict: created and synced without a directory fsync: a = %q, want missing", got)
	}
	writeFile(t, f.p("a"), "one", true)
	syncDir(t, f.Mountpoint())
	powerLoss(t, f)
	if got := content(t, f.p("a")); got != "one" {
		t.Fatalf("strict: after a directory fsync a = %q, want one", got)
	}
	// A rename and a delete without a directory fsync are undone, even after a file fsync.
	writeFile(t, f.p("b"), "two", true)
	syncDir(t, f.Mountpoint())
	if err := os.Rename(f.p("a"), f.p("c")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.p("b")); err != nil {
		t.Fatal(err)
	}
	fh, _ := os.OpenFile(f.p("c"), os.O_RDWR, 0)
	_ = fh.Sync()
	fh.Close()
	powerLoss(t, f)
	if a, b, c := content(t, f.p("a")), content(t, f.p("b")), content(t, f.p("c")); a != "one" || b != "two" || c != "<missing>" {
		t.Fatalf("strict: rename and delete without a directory fsync: a=%q b=%q c=%q, want one two missing", a, b, c)
	}
}

func TestJournalCommitsEntriesAtAnyFsync(t *testing.T) {
	f := mountT(t, false)
	if err := os.Mkdir(f.p("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.p("d/a"), "one", true) // its fsync commits d and d/a
	powerLoss(t, f)
	if got := content(t, f.p("d/a")); got != "one" {
		t.Fatalf("journal: d/a = %q, want one", got)
	}
	// A rename with no fsync after it is undone.
	if err := os.Rename(f.p("d/a"), f.p("d/b")); err != nil {
		t.Fatal(err)
	}
	powerLoss(t, f)
	if a, b := content(t, f.p("d/a")), content(t, f.p("d/b")); a != "one" || b != "<missing>" {
		t.Fatalf("journal: rename without any fsync: a=%q b=%q, want one, missing", a, b)
	}
	// An fsync of another file commits it (the journal is shared).
	if err := os.Rename(f.p("d/a"), f.p("d/b")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.p("other"), "x", true)
	powerLoss(t, f)
	if a, b := content(t, f.p("d/a")), content(t, f.p("d/b")); a != "<missing>" || b != "one" {
		t.Fatalf("journal: rename then another fsync: a=%q b=%q, want missing, one", a, b)
	}
}

func TestWipe(t *testing.T) {
	f := mountT(t, false)
	writeFile(t, f.p("a"), "one", true)
	if err := f.Wipe(); err != nil {
		t.Fatal(err)
	}
	if got := content(t, f.p("a")); got != "<missing>" {
		t.Fatalf("after Wipe a = %q", got)
	}
}

// TestBolt runs the store the agent and Consul keep their Raft log in (bbolt: reads through
// mmap, writes with pwrite and fdatasync) on the filesystem: what a commit synced survives a
// power loss; with NoSync (and NoGrowSync) the commits are lost. bbolt runs in a child process, as a node would:
// a page fault on a FUSE mmap in the process that serves the mount can deadlock Go's garbage
// collector (the faulting goroutine never reaches a safe point).
func TestBolt(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		f := mountT(t, false)
		db := f.p("raft.db")
		if out := boltChild(t, "write", db, noSync); out != "200" {
			t.Fatalf("noSync=%v: wrote %s keys, want 200", noSync, out)
		}
		powerLoss(t, f)
		want := map[bool]string{false: "200", true: "0"}[noSync]
		if got := boltChild(t, "count", db, false); got != want {
			t.Errorf("noSync=%v: %s keys after the power loss, want %s", noSync, got, want)
		}
	}
}

// boltChild runs TestBoltChild in a new process and returns what it printed.
func boltChild(t *testing.T, op, path string, noSync bool) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBoltChild$")
	cmd.Env = append(os.Environ(), "POWERFS_BOLT="+op+","+path+","+strconv.FormatBool(noSync))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bolt child %s: %v\n%s", op, err, out)
	}
	s := string(out)
	if i := strings.Index(s, "keys="); i >= 0 {
		return strings.Fields(s[i+5:])[0]
	}
	t.Fatalf("bolt child %s printed no count:\n%s", op, out)
	return ""
}

// TestBoltChild is the child of TestBolt; it does nothing when run by itself.
func TestBoltChild(t *testing.T) {
	spec := os.Getenv("POWERFS_BOLT")
	if spec == "" {
		return
	}
	parts := strings.Split(spec, ",")
	op, path, noSync := parts[0], parts[1], parts[2] == "true"
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: noSync, NoGrowSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	if op == "write" {
		val := bytes.Repeat([]byte("v"), 3000)
		for i := range 200 {
			err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("logs"))
				if err != nil {
					return err
				}
				return b.Put([]byte{byte(i >> 8), byte(i)}, val)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	n := 0
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("logs")); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	// Exit without Close, as a killed process would (Close does not sync either).
	fmt.Printf("keys=%d\n", n)
	os.Exit(0)
}

func TestDirtySpans(t *testing.T) {
	var d dirty
	for _, w := range [][2]int64{{10, 20}, {30, 40}, {20, 25}, {5, 6}, {39, 50}, {0, 0}} {
		d.add(w[0], w[1])
	}
	want := []span{{5, 6}, {10, 25}, {30, 50}}
	if !slices.Equal(d.spans, want) {
		t.Fatalf("spans %v, want %v", d.spans, want)
	}
	for i := range maxSpans + 1 {
		d.add(int64(100+2*i), int64(101+2*i))
	}
	if !d.full || d.spans != nil {
		t.Fatalf("over %d spans: full=%v, %d spans; want the whole file", maxSpans, d.full, len(d.spans))
	}
}

func TestLeftovers(t *testing.T) {
	f := mountT(t, false)
	mps, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mps, f.Mountpoint()) {
		t.Fatalf("Leftovers() = %v, want it to list %s", mps, f.Mountpoint())
	}
}

// With Writeback, data and entries older than the kernel's delays survive without an fsync;
// what is newer is still lost.
func TestWriteback(t *testing.T) {
	f := mountT(t, false)
	f.o.Writeback = 30 * time.Second // as the harness sets it at Mount; the flusher is driven by hand here
	writeFile(t, f.p("old"), "kept", false)
	if err := f.writeBack(time.Now().Add(31 * time.Second)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.p("new"), "lost", false)
	if err := f.writeBack(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	powerLoss(t, f)
	if old, new := content(t, f.p("old")), content(t, f.p("new")); old != "kept" || new != "<missing>" {
		t.Fatalf("after the power loss old=%q new=%q, want kept, missing", old, new)
	}
}
