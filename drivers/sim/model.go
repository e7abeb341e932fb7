package sim

import (
	"math"
	"time"
)

// Perf is what one instance did with its offered load in one second.
type Perf struct {
	Offered float64 // λ, units/s (transactions or packets)
	Served  float64 // min(λ, μ)
	Loss    float64 // 1 − served/λ
	QueueMs float64 // sojourn time W in ms
	Util    float64 // ρ = λ/μ (may exceed 1)
}

// Serve applies the per-second load model of the package comment to an
// offered load λ ≥ 0 on an instance of type t.
func Serve(t VNFType, offered float64) Perf {
	if !(offered > 0) { // negative or NaN
		offered = 0
	}
	mu := t.Capacity
	p := Perf{Offered: offered, Util: offered / mu}
	wmax := 1000 * t.BufferSec
	if offered < mu {
		p.Served = offered
		p.QueueMs = math.Min(1000/(mu-offered), wmax)
		return p
	}
	p.Served = mu
	p.Loss = 1 - mu/offered
	p.QueueMs = wmax
	return p
}

// Sample is one statistics report of an instance's agent (paper 4.3).
type Sample struct {
	At      time.Time // when the agent measured (virtual time)
	CPU     float64   // percent
	Mem     float64   // percent
	PktRate float64   // input packets/s
	Flows   int       // flows (DP) or transactions this second (CP) through the instance
}

// Stats returns the CPU / memory / input packet rate of an instance of
// type t at utilisation p (see the package comment).
func Stats(t VNFType, p Perf) (cpu, mem, pkt float64) {
	rho := p.Util
	cpu = math.Min(100, 100*t.Alpha()*rho)
	mem = math.Min(100, t.MemBase+t.MemSlope()*rho)
	pkt = p.Offered * t.PktPerUnit
	return cpu, mem, pkt
}
