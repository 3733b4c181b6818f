package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/harness"
)

func newBuildCmd() *cobra.Command {
	o := harness.Defaults()
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build (or find) a target and import its image, without running a test",
		Long: `build does what a run does before it starts nodes: it builds the target (the agent from this
checkout; real Consul from its Go module, cached per version in the user's cache directory, which
takes minutes the first time) and the network-fault helper, imports both into the local Docker
Engine as scratch images, and prints what it made. CI runs it before the tests so that a cold
Consul build shows its progress.`,
		Example: `  harness build --target consul
  harness build --target consul@1.19.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := harness.Build(cmd.Context(), o, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Printf("target: %s\n", p.Target)
			if p.Version != "" {
				fmt.Printf("version: %s\n", p.Version)
			}
			if p.Binary != "" {
				fmt.Printf("binary: %s\n", p.Binary)
			}
			fmt.Printf("image: %s\nhelper image: %s\n", p.Image, p.Helper)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Target, "target", "", "agent (default), consul or consul@X.Y.Z")
	f.StringVar(&o.AgentBinary, "agent-binary", "", "make the image of this static Linux binary instead")
	return cmd
}
