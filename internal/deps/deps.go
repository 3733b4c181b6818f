//go:build tools

// Package deps pins the module's dependency set while packages are being written.
package deps

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/docker/docker/client"
	_ "github.com/google/nftables"
	_ "github.com/hashicorp/consul/api"
	_ "github.com/hashicorp/go-metrics"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/hashicorp/serf/serf"
	_ "github.com/spf13/cobra"
)
