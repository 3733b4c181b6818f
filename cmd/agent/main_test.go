package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// buildAgent compiles this command statically, as the container image uses it.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	http string
	log  *os.File
	done chan error
}

func (p *proc) start(t *testing.T, bin string) {
	t.Helper()
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func(c *exec.Cmd, d chan error) { d <- c.Wait() }(p.cmd, p.done)
}

func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		if sig != syscall.SIGKILL && err != nil {
			t.Errorf("%s exited with %v after %v", p.name, err, sig)
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not exit after %v", p.name, sig)
	}
}

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{{"agent", "-bogus"}, {"agent", "-server", "-data-dir=x", "-unsafe=nope"}, {"-server", "-data-dir=x", "-bootstrap", "-bootstrap-expect=3"}} {
		if code := run(args); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestSignalsRestart stops all three servers with one signal, restarts them, and checks a
// leader is elected again with the data intact. None of these signals leaves by default.
func TestSignalsRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary and runs clusters")
	}
	bin := buildAgent(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			logf, _ := os.Create(filepath.Join(dir, "agents.log"))
			var procs []*proc
			ports := make([][3]int, 3)
			for i := range ports {
				ports[i] = [3]int{freePort(t), freePort(t), freePort(t)}
			}
			for i := 0; i < 3; i++ {
				name := fmt.Sprintf("n%d", i+1)
				args := []string{"agent", "-server", "-bootstrap-expect=3", "-node=" + name, "-bind=127.0.0.1", "-client=127.0.0.1",
					"-data-dir=" + filepath.Join(dir, name),
					fmt.Sprintf("-http-port=%d", ports[i][0]), fmt.Sprintf("-serf-lan-port=%d", ports[i][1]), fmt.Sprintf("-server-port=%d", ports[i][2]),
					fmt.Sprintf("-retry-join=127.0.0.1:%d", ports[0][1]), "-retry-interval=200ms", "-gossip-profile=local",
					"-raft-heartbeat-timeout=300ms", "-raft-election-timeout=300ms", "-raft-leader-lease-timeout=150ms"}
				procs = append(procs, &proc{name: name, args: args, http: fmt.Sprintf("127.0.0.1:%d", ports[i][0]), log: logf})
			}
			t.Cleanup(func() {
				for _, p := range procs {
					if p.cmd != nil && p.cmd.ProcessState == nil {
						p.cmd.Process.Kill()
						<-p.done
					}
				}
				if t.Failed() {
					b, _ := os.ReadFile(logf.Name())
					lines := strings.Split(string(b), "\n")
					if len(lines) > 80 {
						lines = lines[len(lines)-80:]
					}
					t.Logf("logs:\n%s", strings.Join(lines, "\n"))
				}
				logf.Close()
			})
			for _, p := range procs {
				p.start(t, bin)
			}
			kv := waitLeader(t, procs)
			for i := 0; i < 20; i++ {
				if _, err := kv.Put(&api.KVPair{Key: fmt.Sprintf("k%d", i), Value: []byte("v")}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range procs {
				p.stop(t, sig)
			}
			for _, p := range procs {
				p.start(t, bin)
			}
			kv = waitLeader(t, procs)
			pairs, _, err := kv.List("k", &api.QueryOptions{RequireConsistent: true})
			if err != nil || len(pairs) != 20 {
				t.Fatalf("after restart: %d keys, err %v", len(pairs), err)
			}
		})
	}
}

func waitLeader(t *testing.T, procs []*proc) *api.KV {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			c, _ := api.NewClient(&api.Config{Address: p.http})
			if l, err := c.Status().Leader(); err == nil && l != "" {
				if _, _, err := c.KV().Get("probe", &api.QueryOptions{RequireConsistent: true}); err == nil {
					return c.KV()
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no leader within 20s")
	return nil
}
