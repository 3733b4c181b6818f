package netfault

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// The tests below need a network namespace of their own, so that rules never touch the host.
// Each re-executes the test binary in a fresh namespace (CLONE_NEWNET, needs root) and runs
// its body there; the env variable tells the child which body to run.
const childEnv = "NETFAULT_TEST_CHILD"

// inFreshNetns runs test name in a new network namespace, as uid if uid >= 0, and fails t if
// the child fails. It returns false in the child, where the caller must run the body. Not being
// root skips t under -short and fails it otherwise.
func inFreshNetns(t *testing.T, uid int) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return false
	}
	if os.Geteuid() != 0 {
		if testing.Short() {
			t.Skip("-short: needs root to create a network namespace (CLONE_NEWNET)")
		}
		t.Fatalf("this test needs root to create a network namespace (CLONE_NEWNET), and runs as uid %d: "+
			"run it as root (CI does), or with -short to skip it", os.Geteuid())
	}
	bin := os.Args[0]
	if uid >= 0 {
		bin = worldExecutableCopy(t, bin)
	}
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in fresh netns: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS")) {
		t.Fatalf("child did not run the test:\n%s", out)
	}
	return true
}

// worldExecutableCopy copies the test binary where another user can run it: go test keeps it
// in a private folder.
func worldExecutableCopy(t *testing.T, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "netfault-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "netfault.test")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// loopbackUp brings lo up; a new namespace starts with it down.
func loopbackUp(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
}

// canDial reports whether a TCP connection to addr completes within 300 ms.
func canDial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestInNetnsApplyShowHeal(t *testing.T) {
	if inFreshNetns(t, -1) {
		return
	}
	loopbackUp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()

	// A foreign table (as Docker's DNS NAT table) must survive everything we do.
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "foreign"})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	if err := Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if r, err := Show(); err != nil || !r.IsZero() {
		t.Fatalf("Show before Apply = %+v, %v; want zero", r, err)
	}
	if !canDial(addr) {
		t.Fatal("cannot dial before any fault")
	}

	steps := []struct {
		rules  Rules
		dialOK bool
	}{
		{Rules{DropOut: addrs("127.0.0.1")}, false},
		{Rules{DropIn: addrs("127.0.0.1", "10.9.9.9")}, false},
		{Rules{DropIn: addrs("10.9.9.9")}, true},                        // replaces the previous drop
		{Rules{LossPercent: 100}, true},                                 // loopback is exempt without loss peers
		{Rules{LossPercent: 100, LossPeers: addrs("127.0.0.1")}, false}, // numgen path really drops
		{Rules{LossPercent: 0, DropOut: addrs("10.1.1.1"), DropIn: addrs("10.2.2.2")}, true},
	}
	for _, s := range steps {
		if err := Apply(s.rules); err != nil {
			t.Fatalf("Apply(%v): %v", s.rules, err)
		}
		got, err := Show()
		if err != nil {
			t.Fatalf("Show: %v", err)
		}
		if want := s.rules.normalize(); !reflect.DeepEqual(got, want) {
			t.Errorf("Show after Apply(%v) = %+v, want %+v", s.rules, got, want)
		}
		if ok := canDial(addr); ok != s.dialOK {
			t.Errorf("after Apply(%v): dial ok = %v, want %v", s.rules, ok, s.dialOK)
		}
	}

	for range 2 { // idempotent
		if err := Heal(); err != nil {
			t.Fatalf("Heal: %v", err)
		}
	}
	if r, err := Show(); err != nil || !r.IsZero() {
		t.Errorf("Show after Heal = %+v, %v; want zero", r, err)
	}
	if !canDial(addr) {
		t.Error("cannot dial after Heal")
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	if !reflect.DeepEqual(names, []string{"foreign"}) {
		t.Errorf("tables after Heal = %q, want only the foreign one", names)
	}

	// The CLI on the same namespace.
	var out, errb bytes.Buffer
	if code := run([]string{"set", "--drop-in", "10.3.3.3", "--loss", "7"}, &out, &errb); code != 0 {
		t.Fatalf("net set: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"show"}, &out, &errb); code != 0 || strings.TrimSpace(out.String()) != "--drop-in 10.3.3.3 --loss 7" {
		t.Errorf("net show: exit %d, %q", code, out.String())
	}
	if code := run([]string{"heal"}, &out, &errb); code != 0 {
		t.Errorf("net heal: exit %d: %s", code, errb.String())
	}
}

func TestInNetnsWithoutCapability(t *testing.T) {
	if inFreshNetns(t, 65534) {
		return
	}
	for name, f := range map[string]func() error{
		"Probe": Probe,
		"Heal":  Heal,
		"Apply": func() error { return Apply(Rules{DropIn: addrs("10.0.0.1")}) },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "needs CAP_NET_ADMIN") {
			t.Errorf("%s as nobody = %v, want an error naming CAP_NET_ADMIN", name, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"probe"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "CAP_NET_ADMIN") {
		t.Errorf("net probe as nobody: exit %d, stderr %q", code, errb.String())
	}
}
