// Package predictor owns workload and delay prediction for the global
// controller: once per scaling interval it predicts, for every series (the CP
// workload in SIP transactions/s or the DP workload in packets/s of one
// entry→exit datacenter pair, or one inter-datacenter delay), the value of the
// next interval.
//
// Every model implements Model and keeps its own state for one series,
// updated incrementally with Observe. Models are named by a spec string
// ("ar1", "arp", "holt", "holt-winters:season=24", "analog", "kalman",
// "holt+q90") so a scaling policy can choose its model in configuration; New
// builds one. Beyond the paper, Analog (nearest past patterns) is the best
// model on recurring ramps and Kalman (local linear trend with the Poisson
// noise of the counts) on smooth diurnal traffic. Bank holds
// many series of one model in struct-of-arrays form and runs a prediction
// round over all of them; it is what the global controller forecasts with
// (controller/global.BankForecaster maps series keys to bank indexes).
// Backtest replays a trace walk-forward and reports MAPE, RMSE and the
// under-prediction rate.
//
// The paper's model is AR1, Eq. (1) of ScalIMS section 4.2:
//
//	û(t+1) = μ + φ·(u_t − μ)
//
// with μ the mean of the last W intervals (W = 10) and φ estimated by lag-1
// least squares over the same window, clamped to [−φmax, φmax] ⊂ (−1, 1).
// docs/predictor.md states every estimator and formula.
//
// The package is pure: no I/O, no clock, no randomness. Inputs must be
// finite and in [0, MaxValue]; anything else is rejected with an error that
// names the value and the reason. Predictions are never negative.
package predictor
