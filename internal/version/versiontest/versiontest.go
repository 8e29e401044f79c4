// Package versiontest checks a service's --version flag the same way for
// every service.
package versiontest

import (
	"bytes"
	"io"
	"testing"

	"github.com/flotilla-io/flotilla/internal/version"
)

// CheckFlag runs run with --version (and its other spellings) while the
// service's stdout writes to a buffer, and checks that it prints
// version.Line(name) alone and returns without serving — without the
// required flags, and even when the environment holds a bad value.
func CheckFlag(t *testing.T, name string, stdout *io.Writer, run func(args []string) error) {
	t.Helper()
	t.Setenv("FLOTILLA_LOG_LEVEL", "shout")
	t.Setenv("FLOTILLA_VERSION", "not-a-bool")
	saved := *stdout
	defer func() { *stdout = saved }()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--log-format=json", "--version=true"}} {
		var out bytes.Buffer
		*stdout = &out
		if err := run(args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if want := version.Line(name) + "\n"; out.String() != want {
			t.Errorf("%q printed %q, want %q", args, out.String(), want)
		}
	}
}
