package main

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// budgetFlag is a duration flag that also takes a bare number of seconds,
// as the help of --improve-budget offers ("-1": the first strategy only).
type budgetFlag struct{ d *time.Duration }

func (b budgetFlag) String() string {
	if b.d == nil {
		return "0s"
	}
	return b.d.String()
}

func (b budgetFlag) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		*b.d = d
		return nil
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
		return fmt.Errorf("%q is neither a duration (200ms, 1m) nor a number of seconds", s)
	}
	*b.d = time.Duration(secs * float64(time.Second))
	return nil
}
