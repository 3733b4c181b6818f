package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/harness"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Keep a cluster running for exploration (up, status, down)",
		Example: `  harness cluster up --nodes 3
  harness cluster up --target consul                 # real Consul
  CONSUL_HTTP_ADDR=10.231.7.11:8500 consul members   # any consul/api client or curl works
  harness cluster status
  harness cluster down`,
	}
	o := harness.Defaults()
	up := &cobra.Command{
		Use:   "up",
		Short: "Start a cluster, wait until it has a leader, print each node's HTTP address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Name = "cluster"
			rec, err := harness.ClusterUp(cmd.Context(), o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Printf("cluster %s is up:\n", rec.ID)
			for _, n := range rec.Nodes {
				fmt.Printf("  %s  http://%s\n", n.Name, n.HTTPAddr)
			}
			fmt.Printf("remove it with: harness cluster down %s\n", rec.ID)
			return nil
		},
	}
	f := up.Flags()
	targetFlags(f, &o)
	nodesFlag(f, &o)
	serverFlags(f, &o)
	var store string
	for _, c := range []*cobra.Command{cmd} {
		c.PersistentFlags().StringVar(&store, "store", "store", "folder that records running clusters")
	}
	up.PreRun = func(*cobra.Command, []string) { o.Store = store }
	status := &cobra.Command{
		Use:   "status",
		Short: "List clusters started with up and whether they still run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			recs, err := harness.ClusterStatus(cmd.Context(), store)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				fmt.Println("no clusters")
			}
			for _, r := range recs {
				state := "gone"
				if r.Running {
					state = "running"
				}
				fmt.Printf("%s  %s  started %s\n", r.ID, state, r.Started.Format("2006-01-02 15:04:05"))
				for _, n := range r.Nodes {
					fmt.Printf("  %s  http://%s\n", n.Name, n.HTTPAddr)
				}
			}
			return nil
		},
	}
	down := &cobra.Command{
		Use:   "down [ID]",
		Short: "Remove a cluster (all recorded clusters without ID)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage(fmt.Errorf("down takes at most one cluster id"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			ids, err := harness.ClusterDown(cmd.Context(), store, id)
			if err != nil {
				return err
			}
			fmt.Printf("removed %d cluster(s) %v\n", len(ids), ids)
			return nil
		},
	}
	cmd.AddCommand(up, status, down)
	return cmd
}

func newCleanCmd() *cobra.Command {
	var images bool
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove every container and network a harness left behind (label harness.run), and its power-loss mounts",
		Example: `  harness clean
  harness clean --images   # also the cached agent images`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := harness.Clean(cmd.Context(), images)
			for _, l := range removed {
				fmt.Printf("removed %s %s (run %s)\n", l.Kind, l.Name, l.RunID)
			}
			if err != nil {
				return err
			}
			fmt.Printf("%d removed\n", len(removed))
			return nil
		},
	}
	cmd.Flags().BoolVar(&images, "images", false, "also remove the cached agent images")
	return cmd
}
