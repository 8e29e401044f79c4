package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/flotilla-io/flotilla/internal/version"
)

// TestRunVersion: --version (or -version) prints one line, the version,
// commit and Go version, and returns without serving — without the
// required flags, and even when the environment holds a bad value.
func TestRunVersion(t *testing.T) {
	t.Setenv("FLOTILLA_LOG_LEVEL", "shout")
	t.Setenv("FLOTILLA_VERSION", "not-a-bool")
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--log-format=json", "--version=true"}} {
		var out bytes.Buffer
		stdout = &out
		err := run(args)
		stdout = os.Stdout
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if want := version.Line("launcher") + "\n"; out.String() != want {
			t.Errorf("%q printed %q, want %q", args, out.String(), want)
		}
	}
}
