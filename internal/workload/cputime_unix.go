//go:build unix

package workload

import (
	"syscall"
	"time"
)

// ProcessCPUTime is the user and system CPU time of the process so far:
// on a shared machine it shows the work done, whatever the load.
func ProcessCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
