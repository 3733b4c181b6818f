package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
)

// RemoveRun force-removes every container, then every network, labelled harness.run=runID.
// Things that are already gone are not errors. Call it with context.WithoutCancel so a
// cancelled run still cleans up.
func (c *Client) RemoveRun(ctx context.Context, runID string) error {
	if err := checkName("run id", runID); err != nil {
		return err
	}
	_, err := c.clean(ctx, false, func(l Leftover) bool { return l.RunID == runID })
	return err
}

// Leftover is a container, network or image made by the harness.
type Leftover struct {
	Kind  string // "container", "network" or "image"
	ID    string
	Name  string
	RunID string // value of the harness.run label
}

// Leftovers lists the containers and networks labelled harness.run, of any run (not the
// cached agent images).
func (c *Client) Leftovers(ctx context.Context) ([]Leftover, error) {
	f := filters.NewArgs(filters.Arg("label", LabelRun))
	cs, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []Leftover
	for _, ct := range cs {
		name := ""
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		out = append(out, Leftover{Kind: "container", ID: ct.ID, Name: name, RunID: ct.Labels[LabelRun]})
	}
	ns, err := c.api.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns {
		out = append(out, Leftover{Kind: "network", ID: n.ID, Name: n.Name, RunID: n.Labels[LabelRun]})
	}
	return out, nil
}

// Clean removes every leftover of every run (see Leftovers), including runs that another
// process still has in progress, and, if images is set, every image labelled harness.run
// (the cached agent images too). It returns what it removed.
func (c *Client) Clean(ctx context.Context, images bool) (removed []Leftover, err error) {
	return c.clean(ctx, images, func(Leftover) bool { return true })
}

// clean removes the leftovers that match: containers first (in parallel), then networks,
// then (if images) labelled images.
func (c *Client) clean(ctx context.Context, images bool, match func(Leftover) bool) ([]Leftover, error) {
	all, err := c.Leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		removed []Leftover
		errs    []error
		wg      sync.WaitGroup
	)
	note := func(l Leftover, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil || cerrdefs.IsNotFound(err) {
			removed = append(removed, l)
			return
		}
		errs = append(errs, fmt.Errorf("remove %s %s: %w", l.Kind, l.Name, err))
	}
	for _, l := range all {
		if l.Kind == "container" && match(l) {
			wg.Go(func() {
				note(l, c.api.ContainerRemove(ctx, l.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}))
			})
		}
	}
	wg.Wait()
	for _, l := range all {
		if l.Kind == "network" && match(l) {
			note(l, c.api.NetworkRemove(ctx, l.ID))
		}
	}
	if images {
		imgs, err := c.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelRun))})
		if err != nil {
			errs = append(errs, fmt.Errorf("list images: %w", err))
		}
		for _, im := range imgs {
			l := Leftover{Kind: "image", ID: im.ID, RunID: im.Labels[LabelRun]}
			if len(im.RepoTags) > 0 {
				l.Name = im.RepoTags[0]
			}
			if !match(l) {
				continue
			}
			_, err := c.api.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			note(l, err)
		}
	}
	return removed, errors.Join(errs...)
}
