package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/api"
)

var applyOpts struct {
	file   string
	dryRun bool
}

var applyCmd = &cobra.Command{
	Use:   "apply -f POLICY.yaml [--dry-run]",
	Short: "Create or update scaling policies declaratively (idempotent; prints the diff)",
	Long: `Apply writes the policies of a YAML or JSON file (one policy, or
"policies: [...]") through the API and prints, per policy, whether it was
created, updated or left unchanged and which fields changed. Applying the same
file twice changes nothing. With --dry-run nothing is written: the diff is
shown with what the next proactive round would decide under the new policy.
The policy named "default" is the one in force.`,
	Example: `  ims-orch apply -f deploy/config/policy-tight-delay.yaml --dry-run
  ims-orch apply -f deploy/config/policy-tight-delay.yaml`,
	Args: cobra.NoArgs,
	RunE: runApply,
}

func init() {
	addClientFlags(applyCmd)
	applyCmd.Flags().StringVarP(&applyOpts.file, "file", "f", "", "policy file (YAML or JSON; - for stdin)")
	applyCmd.Flags().BoolVar(&applyOpts.dryRun, "dry-run", false, "show the diff and the next round's decisions; write nothing")
	_ = applyCmd.MarkFlagFilename("file", "yaml", "yml", "json")
	rootCmd.AddCommand(applyCmd)
}

// maxPolicyFile bounds a policy file.
const maxPolicyFile = 1 << 20

// parsePolicies reads one policy or a "policies:" list, strictly (unknown
// fields are errors); every policy needs a name.
func parsePolicies(data []byte) ([]api.Policy, error) {
	if len(data) > maxPolicyFile {
		return nil, fmt.Errorf("%d bytes, at most %d", len(data), maxPolicyFile)
	}
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return nil, err
	}
	m, ok := generic.(map[string]any)
	if !ok {
		return nil, errors.New("want a policy (a mapping) or \"policies:\" with a list of them")
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var ps []api.Policy
	if _, list := m["policies"]; list {
		var doc api.PolicyList
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		ps = doc.Policies
	} else {
		var p api.Policy
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		ps = []api.Policy{p}
	}
	if len(ps) == 0 {
		return nil, errors.New("policies: empty list")
	}
	for i, p := range ps {
		if p.Name == "" {
			return nil, fmt.Errorf("policies[%d].name: required", i)
		}
	}
	return ps, nil
}

type applyResult struct {
	Policy string `json:"policy"`
	api.PutResult
	DryRun    bool           `json:"dryRun,omitempty"`
	Decisions []api.Decision `json:"decisions,omitempty"`
}

func runApply(cmd *cobra.Command, _ []string) error {
	if applyOpts.file == "" {
		return usageErr(errors.New("-f FILE: required"))
	}
	var (
		data []byte
		err  error
	)
	if applyOpts.file == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxPolicyFile+1))
	} else {
		data, err = os.ReadFile(applyOpts.file)
	}
	if err != nil {
		return usageErr(err)
	}
	ps, err := parsePolicies(data)
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", applyOpts.file, err))
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	var results []applyResult
	for _, p := range ps {
		if applyOpts.dryRun {
			r, err := c.DryRunPolicy(cmd.Context(), p)
			if err != nil {
				return fmt.Errorf("policy %s: %w", p.Name, err)
			}
			outcome := api.OutcomeUpdated
			if len(r.Changes) == 0 {
				outcome = api.OutcomeUnchanged
			}
			results = append(results, applyResult{Policy: p.Name, PutResult: api.PutResult{Outcome: outcome, Changes: r.Changes},
				DryRun: true, Decisions: r.Decisions})
			continue
		}
		r, err := c.PutPolicy(cmd.Context(), p)
		if err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
		results = append(results, applyResult{Policy: p.Name, PutResult: r})
	}
	return emit(cmd.OutOrStdout(), results, func(w io.Writer) error {
		for _, r := range results {
			suffix := ""
			if r.DryRun {
				suffix = " (dry run: would be " + r.Outcome + ")"
				if r.Outcome == api.OutcomeUnchanged {
					suffix = " (dry run: unchanged)"
				}
			} else {
				suffix = " " + r.Outcome
			}
			fmt.Fprintf(w, "policy/%s%s\n", r.Policy, suffix)
			for _, ch := range r.Changes {
				fmt.Fprintf(w, "  %s: %s → %s\n", ch.Path, show(ch.From), show(ch.To))
			}
			if r.DryRun {
				fmt.Fprintf(w, "next round would decide (%d changes):\n", len(r.Decisions))
				if err := decisionTable(w, r.Decisions); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func show(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
