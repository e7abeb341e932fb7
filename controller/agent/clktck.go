package agent

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// atClkTck is the auxiliary vector's entry holding the kernel's clock ticks
// per second (AT_CLKTCK, <linux/auxvec.h>): the value sysconf(_SC_CLK_TCK)
// returns (the C library reads it from there), `getconf CLK_TCK`.
const atClkTck = 17

// ClkTck is the unit of /proc/PID/stat's utime and stime, in ticks per
// second (USER_HZ): sysconf(_SC_CLK_TCK), read from this process's
// auxiliary vector, which the kernel fills at exec. Read once.
func ClkTck() (int, error) { return clkTck() }

// clkTck is ClkTck's source (tests replace it).
var clkTck = sync.OnceValues(func() (int, error) {
	auxv, err := unix.Auxv()
	if err != nil {
		return 0, fmt.Errorf("clock ticks per second: auxiliary vector: %w", err)
	}
	return clkTckFrom(auxv)
})

// clkTckFrom reads AT_CLKTCK from an auxiliary vector.
func clkTckFrom(auxv [][2]uintptr) (int, error) {
	for _, kv := range auxv {
		if kv[0] != atClkTck {
			continue
		}
		if kv[1] == 0 || kv[1] > 1_000_000 {
			return 0, fmt.Errorf("clock ticks per second: AT_CLKTCK %d: not a tick rate", kv[1])
		}
		return int(kv[1]), nil
	}
	return 0, fmt.Errorf("clock ticks per second: no AT_CLKTCK in the auxiliary vector (%d entries)", len(auxv))
}
