package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/raftcheck/harness/docker"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/targets"
)

// ClusterNode is one node of a cluster kept running for exploration.
type ClusterNode struct {
	Name     string `json:"name"`
	HTTPAddr string `json:"http_addr"`
}

// ClusterRecord is <store>/clusters/<id>.json, written by ClusterUp.
type ClusterRecord struct {
	ID      string        `json:"id"`
	Started time.Time     `json:"started"`
	Options Options       `json:"options"`
	Nodes   []ClusterNode `json:"nodes"`
	Running bool          `json:"-"`
}

func clustersDir(store string) string { return filepath.Join(store, "clusters") }

// ClusterUp starts a cluster, waits until it is ready and leaves it running.
func ClusterUp(ctx context.Context, o Options, log io.Writer) (*ClusterRecord, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	p, err := prepareTarget(ctx, o, dc, log)
	if err != nil {
		return nil, err
	}
	id := NewRunID()
	cl, err := startCluster(ctx, dc, id, p.Image, o)
	if err == nil {
		err = cl.WaitReady(ctx, o.ReadyTimeout)
	}
	if err != nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cl != nil {
			fmt.Fprint(log, cl.LogTails(tctx, 10))
		}
		_ = dc.RemoveRun(tctx, id)
		return nil, err
	}
	rec := &ClusterRecord{ID: id, Started: time.Now(), Options: o, Running: true}
	for _, n := range cl.nodes {
		rec.Nodes = append(rec.Nodes, ClusterNode{Name: n.Name(), HTTPAddr: httpAddr(n)})
	}
	if err := os.MkdirAll(clustersDir(o.Store), 0o755); err != nil {
		return rec, err
	}
	return rec, results.WriteJSON(filepath.Join(clustersDir(o.Store), id+".json"), rec)
}

// ClusterStatus lists the clusters recorded in store, marking those whose containers still run.
func ClusterStatus(ctx context.Context, store string) ([]*ClusterRecord, error) {
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	left, err := dc.Leftovers(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, l := range left {
		live[l.RunID] = true
	}
	files, _ := filepath.Glob(filepath.Join(clustersDir(store), "*.json"))
	var out []*ClusterRecord
	for _, f := range files {
		var rec ClusterRecord
		if results.ReadJSON(f, &rec) != nil {
			continue
		}
		rec.Running = live[rec.ID]
		out = append(out, &rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// ClusterDown removes the cluster with the given id (every recorded one when id is "").
func ClusterDown(ctx context.Context, store, id string) ([]string, error) {
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	var ids []string
	if id != "" {
		ids = []string{id}
	} else {
		recs, _ := filepath.Glob(filepath.Join(clustersDir(store), "*.json"))
		for _, f := range recs {
			ids = append(ids, strings.TrimSuffix(filepath.Base(f), ".json"))
		}
	}
	for _, id := range ids {
		if err := dc.RemoveRun(ctx, id); err != nil {
			return nil, fmt.Errorf("remove cluster %s: %w", id, err)
		}
		_ = os.Remove(filepath.Join(clustersDir(store), id+".json"))
	}
	return ids, nil
}

// Clean removes every container and network carrying the harness label (and the cached agent
// images when images is true).
func Clean(ctx context.Context, images bool) ([]docker.Leftover, error) {
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	removed, err := dc.Clean(ctx, images)
	// Power-loss filesystems last: the containers that had them as /data are gone now.
	mounts, merr := cleanPower()
	return append(removed, mounts...), errors.Join(err, merr)
}

// Build builds or finds o's target and imports its image and the helper image, as a run's setup
// does, without starting anything.
func Build(ctx context.Context, o Options, log io.Writer) (targets.Prepared, error) {
	if err := o.Validate(); err != nil {
		return targets.Prepared{}, err
	}
	dc, err := docker.Connect(ctx)
	if err != nil {
		return targets.Prepared{}, err
	}
	defer dc.Close()
	return prepareTarget(ctx, o, dc, log)
}
