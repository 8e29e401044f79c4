//go:build !unix

package workload

import "time"

// ProcessCPUTime is the CPU time of the process so far: not measured on
// this platform (0).
func ProcessCPUTime() time.Duration { return 0 }
