package trace

import "math"

// rng is SplitMix64 (Steele, Lea, Flood 2014): a tiny generator written here
// so that a seed gives the same trace on every Go release (math/rand/v2 does
// not promise stable streams for its helper methods).
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float is uniform in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn is uniform in [0, n), n > 0 (modulo bias < 2^-50 for small n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// norm is standard normal (Box–Muller, one of the pair).
func (r *rng) norm() float64 {
	u := 1 - r.float() // (0, 1]
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.float())
}

// poisson draws Poisson(lambda): Knuth's product method for lambda ≤ 30,
// the normal approximation N(λ, λ) rounded and clamped at 0 above.
func (r *rng) poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return int(max(0, math.Round(lambda+math.Sqrt(lambda)*r.norm())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.float()
		if p <= l {
			return k
		}
		k++
	}
}
