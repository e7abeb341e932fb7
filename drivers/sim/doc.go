// Package sim owns the simulated cloud: datacenters whose VNF instances have
// the capacities of the paper's Table 2, boot in virtual time, queue and lose
// load when the offered load exceeds their capacity, and report CPU, memory
// and input-packet statistics derived from their load every second, like the
// statistics agents of paper 4.3. It also owns the inter-datacenter delay
// matrix with scheduled changes (paper 6.3.1).
//
// Cloud implements drivers.Driver on a clock.Clock, so the local
// controllers drive it exactly as they drive OpenStack. It starts no
// goroutines: boots and events are clock timers, and the per-second load
// model runs when the traffic engine (package traffic) calls SetLoad and
// Report once per simulated second.
//
// Instance lifecycle:
//
//	Launch ──▶ booting ──(BootDelay)──▶ active ──Terminate/Kill──▶ gone
//	              │                        │
//	              └──Terminate──▶ gone     └──Fail──▶ error ──Terminate──▶ gone
//
// Only active instances carry load and report statistics.
//
// Load model (one instance, one simulated second; see docs/simulator.md):
//
//	μ = capacity, λ = offered, ρ = λ/μ
//	served  = min(λ, μ)
//	loss    = 1 − served/λ                       (0 when λ = 0)
//	W [ms]  = min(1000/(μ−λ), Wmax)  when λ < μ  (M/M/1 sojourn, capped by the buffer)
//	        = Wmax                   when λ ≥ μ  (the buffer is full)
//	Wmax    = 1000·B/μ with B the buffer in units of load (BufferSec·μ)
//	CPU %   = min(100, 100·α·ρ),   α = Thresholds.CPU/(100·TriggerUtil)
//	Mem %   = min(100, MemBase + MemSlope·ρ), MemSlope = (Thresholds.Mem − MemBase)/TriggerUtil
//	pkt/s   = λ·PktPerUnit        (PktPerUnit = 2 SIP messages per transaction for CP, 1 for DP)
//
// With the Table 2 thresholds, CPU and memory both pass their thresholds
// when ρ exceeds TriggerUtil (0.9 for the data plane, 0.7 for the control
// plane), so an instance is seen overloaded (two metrics over for 5 s)
// from that utilisation on.
package sim
