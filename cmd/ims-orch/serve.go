package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/controller/daemon"
	"github.com/ims-orch/ims-orch/controller/lograte"
)

var serveOpts struct {
	config, driver, listen, logLevel, logFormat string
	printDefault                                bool
	identity                                    daemon.Identity
	raftAdvertise                               string
}

var serveCmd = &cobra.Command{
	Use:   "serve [--config FILE]",
	Short: "Run the controller daemon: global controller (raft) and/or local controllers, the REST API and /metrics",
	Long: `Serve runs a node as its config says (see deploy/config and docs/operations.md).
Without --config it runs the embedded default: one node, the simulated cloud,
the paper's 4-DC topology and a traffic ramp on 127.0.0.1:8080, so instances
follow the load within a minute:

  ims-orch serve &
  ims-orch status

It stops on SIGINT or SIGTERM: the API stops accepting requests, a round in
progress finishes (at most 10 s) or, in a cluster, leadership is handed over
so the next leader resumes it, and the local controllers stop.`,
	Args: cobra.NoArgs,
	RunE: runServe,
}

func init() {
	f := serveCmd.Flags()
	f.StringVarP(&serveOpts.config, "config", "c", "", "config file (default: the embedded single-node simulation)")
	f.StringVar(&serveOpts.driver, "driver", "", "override driver.kind: sim, local (real Kamailio; falls back to sim) or openstack")
	f.StringVar(&serveOpts.listen, "listen", "", "override api.listen")
	f.StringVar(&serveOpts.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&serveOpts.logFormat, "log-format", "text", "text or json")
	f.StringVar(&serveOpts.identity.NodeID, "node-id", "", "override node.id (and drop that id from node.peers): nodes sharing one config file")
	f.StringVar(&serveOpts.identity.APIURL, "api-url", "", "override api.url, the API base URL the peers use")
	f.StringVar(&serveOpts.identity.BootstrapNode, "bootstrap-node", "", "the node id that bootstraps the cluster (node.bootstrap is set on it, cleared on the others)")
	f.StringVar(&serveOpts.raftAdvertise, "raft-advertise", "", "host:port (a DNS name allowed) the peers reach node.raftBind at, kept in the raft configuration")
	f.BoolVar(&serveOpts.printDefault, "print-default-config", false, "print the embedded default config and exit")
	_ = serveCmd.MarkFlagFilename("config", "yaml", "yml")
	_ = serveCmd.RegisterFlagCompletionFunc("driver", cobra.FixedCompletions([]string{"sim", "local", "openstack"}, cobra.ShellCompDirectiveNoFileComp))
	rootCmd.AddCommand(serveCmd)
}

func runServe(cmd *cobra.Command, _ []string) error {
	o := serveOpts
	if o.printDefault {
		_, err := cmd.OutOrStdout().Write(daemon.DefaultYAML())
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageErr(fmt.Errorf("--log-level %q: %w", o.logLevel, err))
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(cmd.ErrOrStderr(), hopts)
	case "json":
		h = slog.NewJSONHandler(cmd.ErrOrStderr(), hopts)
	default:
		return usageErr(fmt.Errorf("--log-format %q: want text or json", o.logFormat))
	}
	// repeated warnings and errors are rate-limited (10 per message per 10 s)
	log := slog.New(lograte.New(h, lograte.Config{}))
	cfg := daemon.DefaultConfig()
	if o.config != "" {
		var err error
		if cfg, err = daemon.LoadConfig(o.config); err != nil {
			return usageErr(err)
		}
	}
	if o.driver != "" {
		cfg.Driver.Kind = o.driver
		if o.driver != daemon.DriverSim {
			// nothing simulated drives a real driver: with local or openstack
			// the rounds plan from measurement only (a config file may still
			// give traffic for driver local's simulated DP stages)
			cfg.Traffic = nil
		}
	}
	if o.listen != "" {
		cfg.API.Listen, cfg.API.URL = o.listen, ""
	}
	if o.driver != "" || o.listen != "" || o.identity != (daemon.Identity{}) {
		if err := cfg.ApplyIdentity(o.identity); err != nil {
			return usageErr(err)
		}
	}
	opts := daemon.Options{Logger: log}
	if o.raftAdvertise != "" {
		if !cfg.Clustered() {
			return usageErr(fmt.Errorf("--raft-advertise: node.raftBind is empty (single-node mode)"))
		}
		opts.RaftAdvertise = o.raftAdvertise
	}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.Run(ctx)
}
