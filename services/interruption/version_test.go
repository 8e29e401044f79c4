package main

import (
	"context"
	"testing"

	"github.com/flotilla-io/flotilla/internal/version/versiontest"
)

func TestRunVersion(t *testing.T) {
	versiontest.CheckFlag(t, "interruption", &stdout, func(args []string) error { return run(context.Background(), args) })
}
