package main

import (
	"testing"

	"github.com/flotilla-io/flotilla/internal/version/versiontest"
)

func TestRunVersion(t *testing.T) { versiontest.CheckFlag(t, "launcher", &stdout, run) }
