package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/api"
)

// Resources of `get`.
var getResources = []string{"datacenters", "delays", "vnf-types", "chains", "policies", "policy", "state", "instances",
	"paths", "predictions", "decisions"}

var getOpts struct {
	since, after int64
	limit        int
}

var getCmd = &cobra.Command{
	Use:   "get RESOURCE [NAME]",
	Short: "Show configuration or live state from the API",
	Long: `Get reads one resource from a running ims-orch serve:
  datacenters, delays, vnf-types, chains, policies, policy NAME,
  state, instances, paths, predictions, decisions [--since ROUND] [--after SEQ] [--limit N].
Decisions are fetched page by page following the server's cursor: all of
them (rounds ≥ --since, after the decision numbered --after) unless --limit
bounds the count; -o json prints the cursor (next) to resume from.`,
	Example: `  ims-orch get instances
  ims-orch get policy default -o yaml
  ims-orch get decisions --since 10
  ims-orch get decisions --after 1200 --limit 50`,
	Args:      cobra.RangeArgs(1, 2),
	ValidArgs: getResources,
	RunE:      runGet,
}

func init() {
	addClientFlags(getCmd)
	getCmd.Flags().Int64Var(&getOpts.since, "since", 0, "decisions: rounds from this one on")
	getCmd.Flags().Int64Var(&getOpts.after, "after", 0, "decisions: those numbered (SEQ) after this cursor")
	getCmd.Flags().IntVar(&getOpts.limit, "limit", 0, "decisions: at most this many (0: all)")
	rootCmd.AddCommand(getCmd)
}

func tw(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func runGet(cmd *cobra.Command, args []string) error {
	res := args[0]
	if !slices.Contains(getResources, res) {
		return usageErr(fmt.Errorf("unknown resource %q: want one of %s", res, strings.Join(getResources, ", ")))
	}
	if (res == "policy") != (len(args) == 2) {
		return usageErr(fmt.Errorf("%s: takes a NAME only for policy (get policy NAME)", res))
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	switch res {
	case "datacenters":
		v, err := c.Datacenters(ctx)
		if err != nil {
			return err
		}
		return emit(out, api.DatacenterList{Datacenters: v}, func(w io.Writer) error {
			t := tw(w)
			fmt.Fprintln(t, "NAME\tGROUP\tREGION\tAZ\tDNS-SERVER\tZONE")
			for _, d := range v {
				dns, zone := "-", "-"
				if d.Discovery != nil {
					dns, zone = d.Discovery.DNSServer, d.Discovery.Zone
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Group, d.Region, d.AZ, dns, zone)
			}
			return t.Flush()
		})
	case "delays":
		v, err := c.Delays(ctx)
		if err != nil {
			return err
		}
		return emit(out, v, func(w io.Writer) error {
			t := tw(w)
			fmt.Fprintln(t, "FROM\\TO\t"+strings.Join(v.Datacenters, "\t"))
			for i, row := range v.DelaysMs {
				cells := make([]string, len(row))
				for j, x := range row {
					cells[j] = fmt.Sprintf("%g", x)
				}
				fmt.Fprintf(t, "%s\t%s\n", v.Datacenters[i], strings.Join(cells, "\t"))
			}
			return t.Flush()
		})
	case "vnf-types":
		v, err := c.VNFTypes(ctx)
		if err != nil {
			return err
		}
		return emit(out, api.VNFTypeList{VNFTypes: v}, func(w io.Writer) error {
			t := tw(w)
			fmt.Fprintln(t, "NAME\tPLANE\tCAPACITY\tCPU%\tMEM%\tPKT/S\tIMAGE\tFLAVOR")
			for _, x := range v {
				fmt.Fprintf(t, "%s\t%s\t%g\t%g\t%g\t%g\t%s\t%s\n", x.Name, x.Plane, x.Capacity, x.Thresholds.CPU, x.Thresholds.Mem,
					x.Thresholds.PktRate, x.Image, x.Flavor)
			}
			return t.Flush()
		})
	case "chains":
		v, err := c.Chains(ctx)
		if err != nil {
			return err
		}
		return emit(out, api.ChainList{Chains: v}, func(w io.Writer) error {
			t := tw(w)
			fmt.Fprintln(t, "NAME\tSTAGES")
			for _, x := range v {
				fmt.Fprintf(t, "%s\t%s\n", x.Name, strings.Join(x.Stages, " → "))
			}
			return t.Flush()
		})
	case "policies":
		v, err := c.Policies(ctx)
		if err != nil {
			return err
		}
		return emit(out, api.PolicyList{Policies: v}, func(w io.Writer) error { return policyTable(w, v) })
	case "policy":
		v, err := c.Policy(ctx, args[1])
		if err != nil {
			return err
		}
		return emit(out, v, func(w io.Writer) error { return policyTable(w, []api.Policy{v}) })
	case "decisions":
		if getOpts.since < 0 || getOpts.after < 0 || getOpts.limit < 0 {
			return usageErr(fmt.Errorf("--since, --after and --limit must be ≥ 0"))
		}
		l, err := c.AllDecisions(ctx, api.DecisionQuery{Since: getOpts.since, After: getOpts.after, Limit: getOpts.limit})
		if err != nil {
			return err
		}
		return emit(out, l, func(w io.Writer) error {
			if err := decisionTable(w, l.Decisions); err != nil {
				return err
			}
			if l.More {
				_, err = fmt.Fprintf(w, "(more decisions follow: --after %d)\n", l.Next)
			}
			return err
		})
	}
	st, err := c.State(ctx)
	if err != nil {
		return err
	}
	switch res {
	case "instances":
		return emit(out, st.Instances, func(w io.Writer) error { return instanceTable(w, st.Instances) })
	case "paths":
		return emit(out, st.Paths, func(w io.Writer) error {
			t := tw(w)
			fmt.Fprintln(t, "ENTRY\tEXIT\tHOPS\tDELAY-MS")
			for _, p := range st.Paths {
				fmt.Fprintf(t, "%s\t%s\t%s\t%g\n", p.Entry, p.Exit, strings.Join(p.Hops, " → "), p.DelayMs)
			}
			return t.Flush()
		})
	case "predictions":
		return emit(out, st.Predictions, func(w io.Writer) error {
			t := tw(w)
			fmt.Fprintln(t, "KIND\tENTRY\tEXIT\tPREDICTED\tACTUAL\tMODEL\tMARGIN")
			for _, p := range st.Predictions {
				act, model := "-", "-"
				if p.Actual != nil {
					act = fmt.Sprintf("%.1f", *p.Actual)
				}
				if p.Model != "" {
					model = p.Model
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%.1f\t%s\t%s\t%.1f\n", p.Kind, p.Entry, p.Exit, p.Predicted, act, model, p.Margin)
			}
			return t.Flush()
		})
	}
	return emit(out, st, func(w io.Writer) error { return stateSummary(w, st) })
}

func policyTable(w io.Writer, ps []api.Policy) error {
	t := tw(w)
	fmt.Fprintln(t, "NAME\tINTERVAL\tTAU\tDELAY-BOUND-MS\tPREDICTOR\tSTRATEGY\tLIMITS")
	for _, p := range ps {
		lim := make([]string, len(p.Limits))
		for i, l := range p.Limits {
			where := l.VNF
			if l.DC != "" {
				where = l.DC + "/" + l.VNF
			}
			lim[i] = fmt.Sprintf("%s %d..%d", where, l.Min, l.Max)
		}
		fmt.Fprintf(t, "%s\t%ds\t%d\t%g\t%s\t%s\t%s\n", p.Name, p.IntervalSeconds, p.Tau, p.DelayBoundMs, p.Predictor, p.Strategy,
			strings.Join(lim, ", "))
	}
	return t.Flush()
}

func decisionTable(w io.Writer, ds []api.Decision) error {
	t := tw(w)
	fmt.Fprintln(t, "SEQ\tROUND\tAT\tKIND\tDC\tVNF\tDELTA\tREASON")
	for _, d := range ds {
		fmt.Fprintf(t, "%d\t%d\t%s\t%s\t%s\t%s\t%+d\t%s\n", d.Seq, d.Round, d.At.UTC().Format(time.TimeOnly), d.Kind, d.DC, d.VNF, d.Delta, d.Reason)
	}
	return t.Flush()
}

func instanceTable(w io.Writer, is []api.Instance) error {
	t := tw(w)
	fmt.Fprintln(t, "ID\tDC\tVNF\tSTATE\tADDRESS\tSINCE\tREASON")
	for _, in := range is {
		addr := in.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.DC, in.VNF, in.State, addr, in.Since.UTC().Format(time.TimeOnly), in.Reason)
	}
	return t.Flush()
}

// stateSummary prints the interval and the working instances per DC and VNF.
func stateSummary(w io.Writer, st api.State) error {
	fmt.Fprintf(w, "interval %d, %s, leader %s\n", st.Interval, st.Step, st.Leader)
	type key struct{ dc, vnf string }
	count := map[key]map[string]int{}
	var keys []key
	for _, in := range st.Instances {
		k := key{in.DC, in.VNF}
		if count[k] == nil {
			count[k] = map[string]int{}
			keys = append(keys, k)
		}
		count[k][in.State]++
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.dc+"/"+a.vnf, b.dc+"/"+b.vnf) })
	t := tw(w)
	fmt.Fprintln(t, "DC\tVNF\tWORKING\tBOOTING\tBUFFERED\tOTHER")
	for _, k := range keys {
		c := count[k]
		other := 0
		for s, n := range c {
			if s != "normal" && s != "overload" && s != "booting" && s != "buffered" {
				other += n
			}
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%d\n", k.dc, k.vnf, c["normal"]+c["overload"], c["booting"], c["buffered"], other)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, b := range st.Backoffs {
		fmt.Fprintln(w, backoffLine(b))
	}
	return nil
}

// backoffLine is one crash loop, for status and describe dc.
func backoffLine(b api.Backoff) string {
	s := fmt.Sprintf("%s/%s: crash loop, %d failure(s) in a row (the last %s)", b.DC, b.VNF, b.Failures, b.LastFailure)
	if b.Until != nil {
		s += fmt.Sprintf("; backing off until %s, %d replacement(s) owed", b.Until.UTC().Format("15:04:05"), b.Owed)
	}
	return s
}
