package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// logStore is Raft's log and stable store, and closes.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// Log store backends (Consul's raft_logstore.backend).
const (
	LogStoreWAL    = "wal"
	LogStoreBoltDB = "boltdb"
)

// openLogStore opens the Raft log store as Consul 1.20 does: a data dir that already holds
// raft.db keeps BoltDB; otherwise the configured backend, by default raft-wal (an append-only
// segment log: one fsync per batch of entries, where BoltDB commits a B+tree with two). The seeded
// bug skip-fsync is BoltDB with every fsync off.
func openLogStore(raftDir string, cfg *Config) (logStore, string, error) {
	boltPath := filepath.Join(raftDir, "raft.db")
	if cfg.Unsafe[UnsafeSkipFsync] {
		s, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, NoSync: true, BoltOptions: &bbolt.Options{NoGrowSync: true}})
		return s, LogStoreBoltDB + " without fsync (seeded bug skip-fsync)", err
	}
	_, err := os.Stat(boltPath)
	boltExists := err == nil
	backend := cfg.RaftLogStore
	if backend == "" || boltExists {
		backend = LogStoreWAL
		if boltExists {
			backend = LogStoreBoltDB
		}
	}
	switch backend {
	case LogStoreBoltDB:
		// Consul's options: the freelist is not synced (raft_logstore.boltdb.no_freelist_sync).
		s, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, BoltOptions: &bbolt.Options{NoFreelistSync: true}})
		return s, backend, err
	case LogStoreWAL:
		dir := filepath.Join(raftDir, "wal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
		s, err := raftwal.Open(dir)
		return s, backend, err
	}
	return nil, "", fmt.Errorf("unknown Raft log store %q (want %s or %s)", backend, LogStoreWAL, LogStoreBoltDB)
}
