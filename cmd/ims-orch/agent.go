package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/sipglue"
)

type agentFlags struct {
	controller, tokenFile, instance, dc, proc, logFormat, caFile, kamailioRPC string
	interfaces                                                                []string
	interval                                                                  time.Duration
}

var agentOpts agentFlags

var agentCmd = &cobra.Command{
	Use:   "agent --controller URL --token-file F --instance ID --dc NAME [--interval 1s]",
	Short: "Run the statistics agent inside a VNF instance: CPU, memory and packet rate to the local controller",
	Long: `Agent runs inside a VNF instance (a VM launched by serve --driver openstack,
whose user data starts it through deploy/systemd/ims-orch-agent.service). Every
interval it reads the machine's CPU busy share (/proc/stat), memory in use
(/proc/meminfo: MemTotal - MemAvailable) and received packets per second
(/proc/net/dev, every interface but lo unless --interfaces) and POSTs them to
URL/dc/NAME/stats with the bearer token of --token-file. On an S-CSCF,
--kamailio-rpc adds its CP transactions per entry>exit DC (htable cp) to every
sample: the CP workload per pair the rounds predict from. The local controller
refuses unknown instances; a sample that cannot be delivered is dropped (the
next follows one interval later). It stops on SIGINT or SIGTERM.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runAgent(ctx, agentOpts, cmd.ErrOrStderr())
	},
}

func init() {
	f := agentCmd.Flags()
	f.StringVar(&agentOpts.controller, "controller", "", "base URL (or host:port) of the node that runs the DC's local controller")
	f.StringVar(&agentOpts.tokenFile, "token-file", "", "file holding the agents' bearer token (role.agents.tokenFile on the node)")
	f.StringVar(&agentOpts.instance, "instance", "", "this instance's ims-orch id (metadata ims-orch.instance-id)")
	f.StringVar(&agentOpts.dc, "dc", "", "this instance's datacenter")
	f.DurationVar(&agentOpts.interval, "interval", time.Second, "sampling interval (100ms to 1m)")
	f.StringVar(&agentOpts.proc, "proc", "/proc", "the proc file system")
	f.StringSliceVar(&agentOpts.interfaces, "interfaces", nil, "interfaces whose received packets count (default: all but lo)")
	f.StringVar(&agentOpts.logFormat, "log-format", "text", "text or json")
	f.StringVar(&agentOpts.caFile, "ca-file", "", "PEM CA bundle that signed the node's API certificate (default: the system's)")
	f.StringVar(&agentOpts.kamailioRPC, "kamailio-rpc", "", "on an S-CSCF: its Kamailio JSON-RPC datagram socket (IP:PORT); the agent sends the "+
		"CP transactions per entry>exit DC it counted (htable cp) with every sample, the DC's CP workload per pair")
	_ = agentCmd.MarkFlagFilename("token-file")
	rootCmd.AddCommand(agentCmd)
}

// runAgent checks the flags (usage errors exit 2) and samples until ctx is
// done.
func runAgent(ctx context.Context, o agentFlags, logw interface{ Write([]byte) (int, error) }) error {
	switch {
	case o.controller == "":
		return usageErr(errors.New("--controller: required"))
	case o.tokenFile == "":
		return usageErr(errors.New("--token-file: required"))
	case o.instance == "":
		return usageErr(errors.New("--instance: required"))
	case o.dc == "":
		return usageErr(errors.New("--dc: required"))
	case o.interval < 100*time.Millisecond || o.interval > time.Minute:
		return usageErr(fmt.Errorf("--interval %v: must be in [100ms, 1m]", o.interval))
	}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(logw, nil)
	case "json":
		h = slog.NewJSONHandler(logw, nil)
	default:
		return usageErr(fmt.Errorf("--log-format %q: must be text or json", o.logFormat))
	}
	log := slog.New(h)
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return usageErr(fmt.Errorf("--token-file: %w", err))
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return usageErr(fmt.Errorf("--token-file %s: empty", o.tokenFile))
	}
	client := &http.Client{}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return usageErr(fmt.Errorf("--ca-file: %w", err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usageErr(fmt.Errorf("--ca-file %s: no PEM certificate", o.caFile))
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	push, err := agent.NewPusher(o.controller, o.dc, token, client)
	if err != nil {
		return usageErr(fmt.Errorf("--controller/--dc: %w", err))
	}
	push.Timeout = max(o.interval/2, 500*time.Millisecond)
	var cp func(ctx context.Context) (map[string]int64, error)
	if o.kamailioRPC != "" {
		rpc, err := netip.ParseAddrPort(o.kamailioRPC)
		if err != nil {
			return usageErr(fmt.Errorf("--kamailio-rpc: %w", err))
		}
		cp = sipglue.KamailioCP(rpc)
	}
	// one warning per failure streak, not one per second
	failing := false
	a, err := agent.NewHost(agent.HostConfig{ID: o.instance, Proc: os.DirFS(o.proc), Sink: sinkFunc(func(id string, s agent.Sample) error {
		err := push.ReportStats(id, s)
		if err == nil && failing {
			failing = false
			log.Info("statistics delivered again", "url", push.URL())
		}
		return err
	}), Clock: clock.Real{}, Interval: o.interval, Interfaces: o.interfaces, CP: cp,
		OnError: func(err error) {
			if !failing {
				failing = true
				log.Warn("statistics not delivered (retrying every interval)", "err", err)
			}
		}})
	if err != nil {
		return usageErr(err)
	}
	log.Info("ims-orch agent running", "instance", o.instance, "dc", o.dc, "url", push.URL(), "interval", o.interval.String())
	a.Run(ctx)
	log.Info("ims-orch agent stopped")
	return nil
}

type sinkFunc func(id string, s agent.Sample) error

func (f sinkFunc) ReportStats(id string, s agent.Sample) error { return f(id, s) }
