// Package netns owns the real data-plane VNF instances on this machine: each
// firewall, IDS or transcoder instance is its own network namespace with two
// ports on its datacenter's Open vSwitch bridge (in, out) and a process of
// its own, the forwarder (drivers/netns/dpfwd): it reads every frame arriving
// on in (AF_PACKET) and sends it out of out. The stage's nftables table acts
// on out's egress hook (netdev family), so what the stage drops never
// leaves:
//
//	firewall    policy drop; accept UDP (media), ICMP and ARP; count each
//	            rule; everything else (TCP, other protocols) is dropped
//	ids         inspects every packet: a payload signature (the first four
//	            UDP payload bytes "ATCK") is counted and dropped; every UDP
//	            flow (source address . source port) is counted in a dynamic
//	            set, so the instance knows its flows and their packets
//	transcoder  forwards unchanged and counts: it does NOT transcode (no
//	            codec runs; rtpengine needs SDP offers per call, which this
//	            transparent in-path stage does not see)
//
// Statistics are the in-port's packet counters, the nftables counters and
// the forwarder process's CPU time and resident memory (/proc/PID). The
// forwarder's exit is the instance's death: Instance.Done closes at once.
package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/drivers/netns/dpfwd"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Kind is what a stage instance does.
type Kind string

// Kinds.
const (
	Firewall   Kind = vnf.Firewall
	IDS        Kind = vnf.IDS
	Transcoder Kind = vnf.Transcoder
)

// Signature is the payload prefix the IDS drops.
const Signature = "ATCK"

// ParseKind accepts a DP VNF name.
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case Firewall, IDS, Transcoder:
		return Kind(s), nil
	}
	return "", fmt.Errorf("kind: %q is not a data-plane stage (firewall, ids, transcoder)", s)
}

// egress is the chain header every kind's rules hang on: out's egress hook,
// which the forwarder's frames pass.
const egress = `chain out { type filter hook egress device "out" priority 0;`

func rules(k Kind) string {
	switch k {
	case Firewall:
		return `table netdev ims {
  ` + egress + ` policy drop;
    meta protocol arp counter accept
    ip protocol udp counter accept comment "media"
    ip protocol icmp counter accept
    counter drop comment "not media"
  }
}
`
	case IDS:
		return fmt.Sprintf(`table netdev ims {
  set flows { type ipv4_addr . inet_service; flags dynamic; size 65536; }
  `+egress+` policy accept;
    ip protocol udp @th,64,32 0x%x counter drop comment "signature"
    ip protocol udp update @flows { ip saddr . udp sport counter }
    counter comment "inspected"
  }
}
`, []byte(Signature))
	default:
		return `table netdev ims {
  ` + egress + ` policy accept;
    counter accept comment "forwarded, not transcoded"
  }
}
`
	}
}

// Instance is one DP VNF instance.
type Instance struct {
	Kind            Kind
	NS              string // network namespace
	Bridge          string
	InName, OutName string // switch-side port names
	InPort, OutPort int    // their OpenFlow port numbers
	// Pid is the forwarder process (0 before it started).
	Pid  int
	proc *exec.Cmd
	done chan struct{}
	// exit is why the forwarder ended (set before done closes)
	exit error
}

// Done is closed when the instance's forwarder exited: the instance no
// longer forwards (killed, crashed, or deleted).
func (in *Instance) Done() <-chan struct{} { return in.done }

// ExitReason says how the forwarder ended (after Done).
func (in *Instance) ExitReason() string {
	if in.exit == nil {
		return "forwarder exited"
	}
	return "forwarder exited: " + in.exit.Error()
}

// Create builds an instance named name (namespace name, ports name+"i" and
// name+"o", at most 14 characters) of kind k on bridge br with OpenFlow ports
// inPort and outPort, and starts its forwarder: fwd is the forwarder's
// command (e.g. {"/usr/bin/ims-orch", "dp-forward"}; "-in in -out out" is
// appended), run inside the namespace. It returns once the forwarder
// forwards (see start): frames the switch sends to inPort from then on
// reach outPort. readyTimeout bounds the wait for the forwarder to say so
// (DefaultReadyTimeout if 0). On error it removes what it made, the
// forwarder's process and its children included (killed and reaped).
func Create(ctx context.Context, d *ovs.Daemon, br, name string, k Kind, inPort, outPort int, fwd []string, readyTimeout time.Duration) (*Instance, error) {
	if len(name) > 14 {
		return nil, fmt.Errorf("instance name %q: longer than 14 characters", name)
	}
	if len(fwd) == 0 {
		return nil, fmt.Errorf("forwarder: no command for the instance's process")
	}
	if readyTimeout < 0 {
		return nil, fmt.Errorf("readyTimeout: %v is negative (0 means %v)", readyTimeout, DefaultReadyTimeout)
	}
	if readyTimeout == 0 {
		readyTimeout = DefaultReadyTimeout
	}
	in := &Instance{Kind: k, NS: name, Bridge: br, InName: name + "i", OutName: name + "o", InPort: inPort, OutPort: outPort,
		done: make(chan struct{})}
	err := in.create(ctx, d)
	if err == nil {
		err = in.start(ctx, fwd, readyTimeout)
	}
	if err != nil {
		// clean up even when ctx was cancelled (a closing driver)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = in.Delete(cctx, d)
		return nil, err
	}
	return in, nil
}

func (in *Instance) create(ctx context.Context, d *ovs.Daemon) error {
	if err := d.AddVeth(ctx, in.Bridge, in.InName, in.InPort, in.NS, "in", ""); err != nil {
		return err
	}
	if err := d.AddVeth(ctx, in.Bridge, in.OutName, in.OutPort, in.NS, "out", ""); err != nil {
		return err
	}
	return in.loadRules(ctx)
}

// DefaultReadyTimeout bounds how long Create waits for a started forwarder
// to say it forwards (its sockets bound: it binds within milliseconds when
// the machine is quiet, a few hundred under load) unless told otherwise
// (DriverConfig.ReadyTimeout).
const DefaultReadyTimeout = 20 * time.Second

// pipesGrace is how long the forwarder's exit waits for its stdout and
// stderr to close (cmd.WaitDelay): a child it left (a wrapper script's
// background process) may hold them for ever, and the exit must be seen
// all the same (Done, the exit status and stderr in Create's error).
const pipesGrace = time.Second

// start runs the forwarder inside the namespace and returns once it
// forwards: it wrote dpfwd.ReadyLine on its stdout, so frames arriving on
// in from now on are queued for it (before that they would be lost). It
// returns an error ("forwarder not ready") if the forwarder exits first
// (with its stderr's tail), ctx ends or readyTimeout passes; the caller
// kills and reaps the process (Delete). done closes when it exits (at
// most pipesGrace later when a child of it still holds its pipes).
func (in *Instance) start(ctx context.Context, fwd []string, readyTimeout time.Duration) error {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return err
	}
	args := append([]string{"netns", "exec", in.NS}, fwd...)
	args = append(args, "-in", "in", "-out", "out")
	cmd := exec.Command(ip, args...)
	cmd.WaitDelay = pipesGrace
	stderr := &tail{n: 4096}
	cmd.Stderr = stderr
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return fmt.Errorf("forwarder: %w", err)
	}
	in.proc, in.Pid = cmd, cmd.Process.Pid
	ready := make(chan struct{})
	go readReady(r, ready)
	go func() {
		err := cmd.Wait()
		if msg := strings.TrimSpace(stderr.String()); msg != "" && err != nil {
			err = fmt.Errorf("%v: %s", err, msg)
		}
		in.exit = err
		close(in.done)
	}()
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-in.done:
		return fmt.Errorf("forwarder not ready: %s", in.ExitReason())
	case <-ctx.Done():
		return fmt.Errorf("forwarder not ready: %w", ctx.Err())
	case <-timer.C:
		return fmt.Errorf("forwarder not ready: no %q line on its stdout within %v", dpfwd.ReadyLine, readyTimeout)
	}
}

// readReady reads the forwarder's stdout to its end, closing ready at the
// first line that is dpfwd.ReadyLine (surrounding white space aside); the
// rest is discarded (the pipe stays drained, so a forwarder writing more
// never blocks on it). A line of any length before it is skipped: it once
// read with a bufio.Scanner, which stopped at a line over 64 KiB, so the
// ready line after it was never seen.
func readReady(r io.ReadCloser, ready chan<- struct{}) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 4096)
	inLine := false // the next piece continues a line longer than the buffer
	for {
		piece, isPrefix, err := br.ReadLine()
		if err != nil {
			return // the end of stdout (or a read error): no ready line
		}
		if !inLine && !isPrefix && strings.TrimSpace(string(piece)) == dpfwd.ReadyLine {
			close(ready)
			break
		}
		inLine = isPrefix
	}
	_, _ = io.Copy(io.Discard, br)
}

// tail keeps the last n bytes written (the end of a stderr holds the
// error that ended the process).
type tail struct {
	mu  sync.Mutex
	buf []byte
	n   int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Kill kills the forwarder (SIGKILL): the instance stops forwarding, as a
// crashed VNF would; Done closes.
func (in *Instance) Kill() error {
	if in.proc == nil {
		return nil
	}
	return in.proc.Process.Kill()
}

func (in *Instance) loadRules(ctx context.Context) error {
	_, err := ovs.InNetnsStdin(ctx, in.NS, strings.NewReader(rules(in.Kind)), "nft", "-f", "-")
	return err
}

// Delete stops the forwarder and every other process of the namespace
// (children the forwarder left), then removes the instance's ports and
// namespace. The processes are killed before the wait for the forwarder's
// exit: a child holding its pipes would hold that wait (up to pipesGrace).
func (in *Instance) Delete(ctx context.Context, d *ovs.Daemon) error {
	var first error
	if in.proc != nil {
		_ = in.Kill()
	}
	_ = ovs.KillNetnsPids(ctx, in.NS)
	if in.proc != nil {
		select {
		case <-in.done:
		case <-ctx.Done():
		}
	}
	for _, p := range []string{in.InName, in.OutName} {
		if err := d.DelPort(ctx, in.Bridge, p); err != nil && first == nil {
			first = err
		}
	}
	if _, err := ovs.IP(ctx, "netns", "del", in.NS); err != nil && !strings.Contains(err.Error(), "No such file") && first == nil {
		first = err
	}
	return first
}

// Stats are an instance's counters since it was created.
type Stats struct {
	// Received is what arrived on the in port, Forwarded what left on the out
	// port.
	Received, Forwarded uint64
	// Counters are the nftables rule counters by comment ("media", "not
	// media", "signature", "inspected", ...).
	Counters map[string]uint64
	// Flows is the number of UDP flows the IDS has seen (IDS only).
	Flows int
}

// Stats reads the instance's counters: its ports' packet counters from one
// netlink dump of its namespace (ovs.Links, no process started), the
// rules' counters and the flow set from nftables.
func (in *Instance) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	links, err := ovs.Links(in.NS)
	if err != nil {
		return st, err
	}
	st.Received = links["in"].RxPackets
	st.Forwarded = links["out"].TxPackets
	st.Counters, st.Flows, err = in.nftCounters(ctx)
	return st, err
}

func (in *Instance) nftCounters(ctx context.Context) (map[string]uint64, int, error) {
	out, err := ovs.InNetns(ctx, in.NS, "nft", "-j", "list", "table", "netdev", "ims")
	if err != nil {
		return nil, 0, err
	}
	return ParseNft([]byte(out))
}

// ParseNft reads `nft -j list table` output: the packet counters of the
// rules by comment and the number of elements of the set "flows".
func ParseNft(out []byte) (map[string]uint64, int, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, 0, fmt.Errorf("nft -j: %v", err)
	}
	counters := map[string]uint64{}
	flows := 0
	for _, obj := range doc.Nftables {
		if raw, ok := obj["rule"]; ok {
			var r struct {
				Comment string           `json:"comment"`
				Expr    []map[string]any `json:"expr"`
			}
			if json.Unmarshal(raw, &r) != nil || r.Comment == "" {
				continue
			}
			for _, e := range r.Expr {
				if c, ok := e["counter"].(map[string]any); ok {
					if p, ok := c["packets"].(float64); ok && p >= 0 {
						counters[r.Comment] += uint64(p)
					}
				}
			}
		}
		if raw, ok := obj["set"]; ok {
			var s struct {
				Name string `json:"name"`
				Elem []any  `json:"elem"`
			}
			if json.Unmarshal(raw, &s) == nil && s.Name == "flows" {
				flows = len(s.Elem)
			}
		}
	}
	return counters, flows, nil
}
