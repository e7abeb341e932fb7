package simulation

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// Plot files written by WritePlots, by the paper figure they correspond to.
var PlotFiles = []string{
	"fig4-instances-created.png",    // Fig. 4: new VNF instances created (over time, per strategy)
	"fig5-sip-cdf.png",              // Fig. 5: SIP transaction completion time
	"fig6-7-dp-loss.png",            // Figs. 6/7: DP loss rate over time
	"fig8a-instances-per-dc.png",    // Fig. 8(a): working instances per DC over time (first run)
	"fig8b-paths-per-dc.png",        // Fig. 8(b): service chain paths through each DC (first run)
	"fig9a-rtt-cdf.png",             // Fig. 9(a) (and the RTT of Figs. 6/7): CDF of flow RTT
	"fig9b-paths-changed-links.png", // Fig. 9(b): paths using the changed (high-delay) links
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func addLine(p *plot.Plot, i int, name string, xy plotter.XYs) error {
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func save(p *plot.Plot, dir, name string) error {
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, name))
}

// WritePlots writes the PNG plots of Figs. 4–9 for one or more runs of the
// same experiment (one line per run; per-DC figures show the first run).
func WritePlots(dir string, results []*Result) error {
	if len(results) == 0 {
		return fmt.Errorf("plots: no run")
	}
	title := results[0].Experiment
	// Fig. 4: instances created so far, summed over DCs and VNFs.
	p := newPlot(title+": VNF instances created", "time (s)", "instances created")
	for i, r := range results {
		var xy plotter.XYs
		rows := r.Recorder.Instances
		for j := 0; j < len(rows); {
			t, sum := rows[j].T, 0
			for ; j < len(rows) && rows[j].T == t; j++ {
				sum += rows[j].Created
			}
			xy = append(xy, plotter.XY{X: float64(t), Y: float64(sum)})
		}
		if err := addLine(p, i, r.Strategy.Name(), xy); err != nil {
			return err
		}
	}
	if err := save(p, dir, PlotFiles[0]); err != nil {
		return err
	}
	// Fig. 5 and 9(a): CDFs.
	for _, c := range []struct {
		file, what string
		hist       func(*Result) []plotter.XY
	}{
		{PlotFiles[1], "SIP transaction completion time (ms)", func(r *Result) []plotter.XY { return cdf(r.Recorder.SIP.CDF()) }},
		{PlotFiles[5], "flow RTT (ms)", func(r *Result) []plotter.XY { return cdf(r.Recorder.FlowRTT.CDF()) }},
	} {
		p := newPlot(title+": CDF of "+c.what, c.what, "fraction")
		for i, r := range results {
			if err := addLine(p, i, r.Strategy.Name(), c.hist(r)); err != nil {
				return err
			}
		}
		if err := save(p, dir, c.file); err != nil {
			return err
		}
	}
	// Figs. 6/7: DP loss per second (10 s moving window).
	p = newPlot(title+": data-plane loss rate", "time (s)", "loss rate (10 s window)")
	for i, r := range results {
		var xy plotter.XYs
		s := r.Recorder.Seconds
		off, lost := 0.0, 0.0
		for j := range s {
			off += s[j].DPOffered
			lost += s[j].DPLost
			if j >= 10 {
				off -= s[j-10].DPOffered
				lost -= s[j-10].DPLost
			}
			y := 0.0
			if off > 0 {
				y = lost / off
			}
			xy = append(xy, plotter.XY{X: float64(s[j].T), Y: y})
		}
		if err := addLine(p, i, r.Strategy.Name(), xy); err != nil {
			return err
		}
	}
	if err := save(p, dir, PlotFiles[2]); err != nil {
		return err
	}
	// Fig. 8(a): working (booting + active) instances per DC.
	r0 := results[0]
	p = newPlot(fmt.Sprintf("%s (%s): instances per datacenter", title, r0.Strategy.Name()), "time (s)", "instances (booting + active)")
	n := len(r0.DCs)
	series := make([]plotter.XYs, n)
	rows := r0.Recorder.Instances
	for j := 0; j < len(rows); {
		t := rows[j].T
		sum := make([]int, n)
		for ; j < len(rows) && rows[j].T == t; j++ {
			sum[rows[j].DC] += rows[j].Booting + rows[j].Active
		}
		for d := range sum {
			series[d] = append(series[d], plotter.XY{X: float64(t), Y: float64(sum[d])})
		}
	}
	for d := range series {
		if err := addLine(p, d, r0.DCs[d], series[d]); err != nil {
			return err
		}
	}
	if err := save(p, dir, PlotFiles[3]); err != nil {
		return err
	}
	// Fig. 8(b): paths through each DC per interval.
	p = newPlot(fmt.Sprintf("%s (%s): service chain paths through each DC", title, r0.Strategy.Name()), "time (s)", "paths")
	series = make([]plotter.XYs, n)
	for _, pr := range r0.Paths {
		series[pr.DC] = append(series[pr.DC], plotter.XY{X: float64(pr.T), Y: float64(pr.Through)})
	}
	for d := range series {
		if err := addLine(p, d, r0.DCs[d], series[d]); err != nil {
			return err
		}
	}
	if err := save(p, dir, PlotFiles[4]); err != nil {
		return err
	}
	// Fig. 9(b): paths over the changed links.
	p = newPlot(title+": paths using the changed links", "time (s)", "paths")
	for i, r := range results {
		var xy plotter.XYs
		for _, pr := range r.Paths {
			if pr.DC == 0 {
				xy = append(xy, plotter.XY{X: float64(pr.T), Y: float64(pr.OverChanged)})
			}
		}
		if err := addLine(p, i, r.Strategy.Name(), xy); err != nil {
			return err
		}
	}
	p.Y.Min = 0
	return save(p, dir, PlotFiles[6])
}

func cdf(pts []traffic.CDFPoint) []plotter.XY {
	out := make([]plotter.XY, 0, len(pts))
	for _, x := range pts {
		out = append(out, plotter.XY{X: x.Le, Y: x.Fraction})
	}
	return out
}
