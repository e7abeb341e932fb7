package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/predictor"
	"github.com/ims-orch/ims-orch/predictor/trace"
)

// defaultBacktestModels is what `predict backtest` compares without --model.
var defaultBacktestModels = []string{
	"last", "ar1", "arp", "holt", "holt:fit=120", "holt-winters:season=1728", "analog", "kalman",
	"ar1+q90", "arp+q90", "analog+q90", "kalman+q90",
}

func init() {
	predictCmd := &cobra.Command{
		Use:   "predict",
		Short: "Workload and delay prediction: backtest models on traces, generate traces",
	}
	predictCmd.AddCommand(newPredictBacktestCmd(), newPredictGenerateCmd())
	rootCmd.AddCommand(predictCmd)
}

func newPredictBacktestCmd() *cobra.Command {
	var (
		file   string
		models []string
		warmup int
		output string
	)
	cmd := &cobra.Command{
		Use:   "backtest -f TRACE.csv [--model SPEC]...",
		Short: "Walk-forward backtest: MAPE, RMSE and under-prediction rate per model",
		Long: `Replays a trace (CSV "interval,value", one value per scaling interval) through each
model: predict the next value, then observe it. The first --warmup predictions are
not scored. Model specs: kind[:key=value,...][+qNN], kinds: ` + strings.Join(predictor.Kinds(), ", ") + `.
Without --model it compares: ` + strings.Join(defaultBacktestModels, ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr(fmt.Errorf("predict backtest: --file is required"))
			}
			if output != "table" && output != "json" {
				return usageErr(fmt.Errorf("predict backtest: --output %q: want table or json", output))
			}
			specs := models
			if len(specs) == 0 {
				specs = defaultBacktestModels
			}
			for _, m := range specs {
				if _, err := predictor.ParseSpec(m); err != nil {
					return usageErr(err)
				}
			}
			tr, err := readTrace(file)
			if err != nil {
				return usageErr(err)
			}
			res, err := predictor.Compare(specs, tr.Values, warmup)
			if err != nil {
				return usageErr(err)
			}
			return printBacktest(cmd.OutOrStdout(), file, len(tr.Values), warmup, res, output)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "trace CSV file (- for standard input)")
	cmd.Flags().StringArrayVarP(&models, "model", "m", nil, "model spec to compare (repeatable)")
	cmd.Flags().IntVar(&warmup, "warmup", predictor.DefaultWindow, "predictions not scored at the start")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func readTrace(file string) (*trace.Trace, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	tr, err := trace.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return tr, nil
}

func printBacktest(w io.Writer, file string, n, warmup int, res []predictor.Result, output string) error {
	if output == "json" {
		type row struct {
			predictor.Result
			MAPE *float64 `json:"mape_pct"`
		}
		rows := make([]row, len(res))
		for i, r := range res {
			rows[i] = row{Result: r}
			if !math.IsNaN(r.MAPE) {
				rows[i].MAPE = &res[i].MAPE
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"trace": filepath.Base(file), "values": n, "warmup": warmup, "results": rows})
	}
	ref := math.NaN()
	for _, r := range res {
		if r.Model == "ar1" {
			ref = r.MAPE
		}
	}
	fmt.Fprintf(w, "trace %s: %d values, first %d predictions not scored\n", filepath.Base(file), n, warmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tMAPE %\tvs ar1\tRMSE\tunder %\tshortfall %\tcoverage %\t")
	for _, r := range res {
		vs := "-"
		if ref > 0 && !math.IsNaN(r.MAPE) {
			vs = fmt.Sprintf("%+.1f%%", 100*(r.MAPE-ref)/ref)
		}
		cov := "-"
		if r.Nominal > 0 {
			cov = fmt.Sprintf("%.1f (q%g)", r.Coverage, r.Nominal)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%.4g\t%.1f\t%.2f\t%s\t\n", r.Model, r.MAPE, vs, r.RMSE, r.UnderRate, r.Shortfall, cov)
	}
	return tw.Flush()
}

func newPredictGenerateCmd() *cobra.Command {
	var (
		c       trace.Config
		profile string
		out     string
	)
	cmd := &cobra.Command{
		Use:   "generate --kind KIND --seed N",
		Short: "Write a synthetic workload trace CSV (the generator of testdata/traces)",
		Long: `Kinds: ` + strings.Join(trace.Kinds(), ", ") + `. The same flags always give the same bytes;
testdata/traces/KIND.csv is "ims-orch predict generate --kind KIND --seed 1".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("noise") && c.Noise <= 0 {
				return usageErr(fmt.Errorf("predict generate: --noise %v: must be > 0 (use e.g. 1e-9 for a noise-free sine)", c.Noise))
			}
			if profile != "" {
				f, err := os.Open(profile)
				if err != nil {
					return usageErr(err)
				}
				p, err := trace.ParseProfile(f)
				f.Close()
				if err != nil {
					return usageErr(fmt.Errorf("%s: %w", profile, err))
				}
				c.Profile, c.ProfileName = p, profile
			}
			tr, err := trace.Generate(c)
			if err != nil {
				return usageErr(err)
			}
			if out == "" || out == "-" {
				return tr.WriteCSV(cmd.OutOrStdout())
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			if err := tr.WriteCSV(f); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Kind, "kind", "", "trace kind: "+strings.Join(trace.Kinds(), ", "))
	f.Uint64Var(&c.Seed, "seed", 1, "random seed")
	f.IntVar(&c.Intervals, "intervals", 0, "number of intervals (0 = kind default)")
	f.IntVar(&c.IntervalSeconds, "interval-seconds", trace.DefaultIntervalSeconds, "scaling interval length")
	f.Float64Var(&c.Scale, "scale", 1, "arrival-rate multiplier (1 = the paper's per-DC rates)")
	f.Float64Var(&c.Noise, "noise", 0.05, "sine kind: relative noise standard deviation")
	f.StringVar(&profile, "profile", "", "diurnal kind: hourly profile CSV (default: embedded audio profile)")
	f.StringVarP(&out, "output", "o", "", "output file (default standard output)")
	return cmd
}
