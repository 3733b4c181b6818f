package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/results"
)

func newServeCmd() *cobra.Command {
	store := harness.Defaults().Store
	addr := "127.0.0.1:8080"
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Browse stored runs in a web browser",
		Long: `serve shows the runs in the store, newest first and coloured by verdict, with each run's
report, its files and a zip download. It listens on the loopback interface unless --addr says
otherwise; nothing outside the store is served. Stop it with Ctrl-C.`,
		Example: `  harness serve
  harness serve --store /var/lib/harness/store --addr 127.0.0.1:9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if st, err := os.Stat(store); err != nil || !st.IsDir() {
				return usage(fmt.Errorf("store %q is not a folder: give --store (runs are written by 'harness run')", store))
			}
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return usage(fmt.Errorf("--addr %q: %v (want host:port, e.g. 127.0.0.1:8080)", addr, err))
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				fmt.Fprintf(os.Stderr, "harness: warning: serving on %s, reachable from other hosts; the store's histories and logs become readable there\n", addr)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (is another server using the port? pick one with --addr)", addr, err)
			}
			srv := &http.Server{Handler: results.NewServer(store), ReadHeaderTimeout: 10 * time.Second}
			fmt.Printf("serving %s at http://%s/ (Ctrl-C to stop)\n", store, ln.Addr())
			ctx := cmd.Context()
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil {
					return fmt.Errorf("serve: stop: %w", err)
				}
				if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return fmt.Errorf("serve: %w", err)
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&store, "store", store, "folder that holds run folders")
	cmd.Flags().StringVar(&addr, "addr", addr, "address to listen on (host:port; loopback by default)")
	return cmd
}
