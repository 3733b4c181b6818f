package agent

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPeersJSONInAFreshDataDirIsIgnored: as Consul, a peers.json in a data dir without Raft state
// is deleted and start-up goes on (it used to fail start-up: a recovery of nothing).
func TestPeersJSONInAFreshDataDirIsIgnored(t *testing.T) {
	c := newCluster(t)
	raftDir := filepath.Join(c.dir, "n1", "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		t.Fatal(err)
	}
	peers := filepath.Join(raftDir, "peers.json")
	if err := os.WriteFile(peers, []byte(`[{"id":"x","address":"127.0.0.1:1","non_voter":false}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start("n1", func(cfg *Config) { cfg.Bootstrap = true })
	if _, err := os.Stat(peers); !os.IsNotExist(err) {
		t.Errorf("peers.json still there after start-up in a fresh data dir (stat: %v)", err)
	}
	if l := c.waitLeader(10 * time.Second); l == nil {
		t.Fatal("no leader")
	}
}

// TestASlowClientCannotHoldAConnection: a client that sends headers and then stops sending its
// body is cut off after HTTPReadTimeout (it used to hold the connection for ever).
func TestASlowClientCannotHoldAConnection(t *testing.T) {
	c := newCluster(t)
	a := c.start("n1", func(cfg *Config) { cfg.Bootstrap = true; cfg.HTTPReadTimeout = 300 * time.Millisecond })
	conn, err := net.DialTimeout("tcp", a.HTTPAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = bufio.NewReader(conn).ReadString('\n')
	if err == nil {
		// An error answer is fine too, as long as the server does not wait for the rest.
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the connection after %s", time.Since(start).Round(time.Millisecond))
	}
	if err != io.EOF && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("unexpected read error: %v", err)
	}
}

// TestOneAppendEntriesMessageIsBounded: the largest AppendEntries message (entries × the largest
// value) stays at 32 MiB, as with Consul's Raft defaults (it was 256 × 512 KiB = 128 MiB).
func TestOneAppendEntriesMessageIsBounded(t *testing.T) {
	if worst := maxAppendEntries * MaxValueSize; worst > 32<<20 {
		t.Errorf("one AppendEntries message can carry %d MiB", worst>>20)
	}
}
