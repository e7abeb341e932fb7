package scenario

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// MethodLabel is the human name of a path method in the table output.
func MethodLabel(method string) string {
	switch method {
	case "kept":
		return "kept (Alg. 1 l. 2-4)"
	case "alg2":
		return "Alg. 2 candidate"
	case "alg2-extra":
		return "Alg. 2 extra candidate (l. 13-17)"
	case "shortest-path-dp":
		return "shortest path + stage DP"
	case "local":
		return "local (entry = exit)"
	case "exact":
		return "exact solver"
	case "":
		return "-"
	}
	return method
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func fixed1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// WriteTable renders the output for people: a header, the paths per pair,
// the instance counts per datacenter per VNF and the totals.
func (o *PlanOutput) WriteTable(w io.Writer) error {
	var b strings.Builder
	name := o.Scenario
	if name == "" {
		name = "(unnamed)"
	}
	solver := "Alg. 1/Alg. 2"
	if o.Exact {
		solver = "exact solver"
	}
	fmt.Fprintf(&b, "Scenario %s: %d datacenters, DP chain %s, delay bound %s ms, %s in %s, %s\n",
		name, len(o.Datacenters), strings.Join(o.Chain, " → "), num(o.DelayBoundMs), o.SCSCF, o.SCSCFDatacenter, solver)
	if len(o.Drained) > 0 {
		fmt.Fprintf(&b, "Drained: %s (no DP stage, P-CSCF load on the nearest datacenter in service, every instance to the buffer)\n",
			strings.Join(o.Drained, ", "))
	}

	b.WriteString("\nService-chain paths (processing order)\n")
	if len(o.Pairs) == 0 {
		b.WriteString("  (no pairs in the decision)\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ENTRY → EXIT\tPATH\tDELAY ms\tDP pkt/s\tMETHOD\tNEW\tCREATED\tCANDIDATES")
		for _, p := range o.Pairs {
			delay := fixed1(p.DelayMs)
			if p.DelayViolated {
				delay += " > bound"
			}
			fmt.Fprintf(tw, "%s → %s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", p.Entry, p.Exit,
				"("+strings.Join(p.Path, ", ")+")", delay, num(p.Workload), MethodLabel(p.Method),
				p.NewInstances, p.Created, p.Candidates)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	b.WriteString("\nInstances per datacenter and VNF\n")
	if len(o.Instances) == 0 {
		b.WriteString("  (no instance counts in the decision)\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DATACENTER\tVNF\tBEFORE\tWORKING\tCREATED\tREUSED\tTO BUFFER\tBUFFERED\tLOAD\tUTIL")
		for _, r := range o.Instances {
			util := "-"
			if r.Working > 0 && r.Capacity > 0 {
				util = fmt.Sprintf("%.0f%%", 100*r.Load/(float64(r.Working)*r.Capacity))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Datacenter, r.VNF,
				r.Before, r.Working, r.Created, r.Reused, r.ToBuffer, r.BufferedAfter, fixed1(r.Load), util)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	t := o.Totals
	fmt.Fprintf(&b, "\nTotals: %d working, %d created, %d reused from buffers, %d moved to buffers\n",
		t.Working, t.Created, t.Reused, t.ToBuffer)
	fmt.Fprintf(&b, "Paths: %d pairs: %d kept, %d Alg. 2, %d Alg. 2 extra, %d shortest path + DP, %d local, %d exact; %d over the delay bound\n",
		t.Pairs, t.Kept, t.Alg2, t.Alg2Extra, t.ShortestPathDP, t.Local, t.Exact, t.DelayViolated)
	if t.Joint > 0 || t.ExactRound > 0 || t.OverLimit > 0 {
		fmt.Fprintf(&b, "Whole round: %d pairs moved by the improvement phase, %d by the exact round; %d over a headroom limit\n", t.Joint, t.ExactRound, t.OverLimit)
	}
	if r := t.Improvement; r != nil {
		fmt.Fprintf(&b, "Improvement phase: %d of %d pair searches, %d pairs re-routed (%d back to their current path); DP instances created %d → %d, added %d → %d\n",
			r.Work, r.Budget, r.Rerouted, r.BackToCurrent, r.CreatedBefore, r.CreatedAfter, r.AddedBefore, r.AddedAfter)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
