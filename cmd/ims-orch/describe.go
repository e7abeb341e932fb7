package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/api"
)

var describeCmd = &cobra.Command{
	Use:   "describe (dc NAME | instance ID | policy NAME)",
	Short: "Explain one datacenter, instance or policy: its state and the decisions behind it",
	Example: `  ims-orch describe dc tokyo
  ims-orch describe instance tokyo-ids-7`,
	Args:      cobra.ExactArgs(2),
	ValidArgs: []string{"dc", "instance", "policy"},
	RunE:      runDescribe,
}

func init() {
	addClientFlags(describeCmd)
	rootCmd.AddCommand(describeCmd)
}

func runDescribe(cmd *cobra.Command, args []string) error {
	kind, name := args[0], args[1]
	switch kind {
	case "dc", "instance", "policy":
	default:
		return usageErr(fmt.Errorf("describe %q: want dc, instance or policy", kind))
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	if kind == "policy" {
		p, err := c.Policy(ctx, name)
		if err != nil {
			return err
		}
		return emit(out, p, func(w io.Writer) error { return policyTable(w, []api.Policy{p}) })
	}
	st, err := c.State(ctx)
	if err != nil {
		return err
	}
	all, err := c.AllDecisions(ctx, api.DecisionQuery{})
	if err != nil {
		return err
	}
	decs := all.Decisions
	if kind == "instance" {
		i := slices.IndexFunc(st.Instances, func(in api.Instance) bool { return in.ID == name })
		if i < 0 {
			return fmt.Errorf("instance %q: not found in the live state", name)
		}
		in := st.Instances[i]
		var related []api.Decision
		for _, d := range decs {
			if id, _ := d.Detail["instance"].(string); id == name {
				related = append(related, d)
			}
		}
		v := struct {
			Instance  api.Instance   `json:"instance"`
			Decisions []api.Decision `json:"decisions"`
		}{in, related}
		return emit(out, v, func(w io.Writer) error {
			fmt.Fprintf(w, "instance %s: %s %s in %s since %s\nwhy: %s\n", in.ID, in.State, in.VNF, in.DC, in.Since.UTC().Format("2006-01-02 15:04:05"), in.Reason)
			if in.Address != "" {
				fmt.Fprintf(w, "address: %s\n", in.Address)
			}
			if len(related) > 0 {
				return decisionTable(w, related)
			}
			return nil
		})
	}
	dcs, err := c.Datacenters(ctx)
	if err != nil {
		return err
	}
	v := struct {
		DC        string          `json:"dc"`
		Discovery *api.Discovery  `json:"discovery,omitempty"`
		Instances []api.Instance  `json:"instances"`
		Paths     []api.Path      `json:"paths"`
		Delays    []api.LinkDelay `json:"delays"`
		Backoffs  []api.Backoff   `json:"backoffs,omitempty"`
		Decisions []api.Decision  `json:"decisions"`
	}{DC: name}
	if i := slices.IndexFunc(dcs, func(d api.Datacenter) bool { return d.Name == name }); i >= 0 {
		v.Discovery = dcs[i].Discovery
	}
	for _, l := range st.Delays {
		if l.From == name || l.To == name {
			v.Delays = append(v.Delays, l)
		}
	}
	for _, in := range st.Instances {
		if in.DC == name {
			v.Instances = append(v.Instances, in)
		}
	}
	for _, b := range st.Backoffs {
		if b.DC == name {
			v.Backoffs = append(v.Backoffs, b)
		}
	}
	for _, p := range st.Paths {
		if p.Entry == name || p.Exit == name || slices.Contains(p.Hops, name) {
			v.Paths = append(v.Paths, p)
		}
	}
	for _, d := range decs {
		if d.DC == name {
			v.Decisions = append(v.Decisions, d)
		}
	}
	if len(v.Instances) == 0 && len(v.Paths) == 0 && len(v.Decisions) == 0 {
		return fmt.Errorf("datacenter %q: no instances, paths or decisions", name)
	}
	return emit(out, v, func(w io.Writer) error {
		fmt.Fprintf(w, "datacenter %s: %d instances, %d paths through it\n", name, len(v.Instances), len(v.Paths))
		if dd := v.Discovery; dd != nil {
			fmt.Fprintf(w, "discovery DNS: server %s, zone %s, P-CSCFs %s, S-CSCFs %s\n", dd.DNSServer, dd.Zone, dd.PCSCFSRV, dd.SCSCFSRV)
		}
		fmt.Fprint(w, "\nINSTANCES\n")
		if err := instanceTable(w, v.Instances); err != nil {
			return err
		}
		for _, b := range v.Backoffs {
			fmt.Fprintln(w, backoffLine(b))
		}
		fmt.Fprintln(w, "\nPATHS")
		t := tw(w)
		fmt.Fprintln(t, "ENTRY\tEXIT\tHOPS\tDELAY-MS")
		for _, p := range v.Paths {
			fmt.Fprintf(t, "%s\t%s\t%s\t%g\n", p.Entry, p.Exit, strings.Join(p.Hops, " → "), p.DelayMs)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		if len(v.Delays) > 0 {
			fmt.Fprintln(w, "\nDELAYS")
			t = tw(w)
			fmt.Fprintln(t, "FROM\tTO\tMS\tSOURCE\tCONFIGURED-MS\tLAST-SAMPLE-MS\tAGE")
			for _, l := range v.Delays {
				age := "-"
				if l.LastSampleAt != nil {
					age = time.Since(*l.LastSampleAt).Round(time.Second).String()
				}
				fmt.Fprintf(t, "%s\t%s\t%.1f\t%s\t%g\t%.1f\t%s\n", l.From, l.To, l.Ms, l.Source, l.ConfiguredMs, l.LastSampleMs, age)
			}
			if err := t.Flush(); err != nil {
				return err
			}
		}
		fmt.Fprintln(w, "\nDECISIONS")
		return decisionTable(w, v.Decisions)
	})
}
