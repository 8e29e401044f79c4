package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// lateClientEnv makes this test binary, instead of running the tests, make
// a controller-runtime client as the demo does once its cluster is up: 31
// seconds after the process started, with main's logger setup ("quiet") or
// without it ("bare").
const lateClientEnv = "FLOTILLA_DEMO_TEST_LATE_CLIENT"

// processStart is about when controller-runtime's log package started its
// 30-second clock.
var processStart = time.Now()

func TestMain(m *testing.M) {
	switch os.Getenv(lateClientEnv) {
	case "quiet":
		quietControllerRuntime()
		os.Exit(lateClient())
	case "bare":
		os.Exit(lateClient())
	}
	os.Exit(m.Run())
}

func lateClient() int {
	time.Sleep(time.Until(processStart.Add(31 * time.Second)))
	if _, err := client.New(&rest.Config{Host: "http://127.0.0.1:1"}, client.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestNoControllerRuntimeLoggerWarning: with main's logger setup, a client
// made when the cluster is up (more than 30 seconds in) prints nothing;
// without it, controller-runtime prints its "log.SetLogger(...) was never
// called" stack trace — the check would catch its return.
func TestNoControllerRuntimeLoggerWarning(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30 seconds")
	}
	for _, tc := range []struct {
		mode        string
		wantWarning bool
	}{{"quiet", false}, {"bare", true}} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), lateClientEnv+"="+tc.mode)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			warned := strings.Contains(stderr.String(), "log.SetLogger(...) was never called")
			if warned != tc.wantWarning || (!tc.wantWarning && stderr.Len() > 0) {
				t.Errorf("stderr (want the warning: %v):\n%s", tc.wantWarning, stderr.String())
			}
		})
	}
}
