// Command flotilla is Flotilla's command-line interface. `flotilla solve`
// plans nodes for pending pods from the same YAML manifests Karpenter users
// already have, without a cluster.
package main

import (
	"os"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	// plan and audit read the cluster with controller-runtime's client,
	// which logs nothing they need (they report through their own output,
	// one line on stderr when they fail) but, left without a logger, prints
	// a "log.SetLogger(...) was never called" stack trace when it is first
	// used 30 seconds or more after the process started.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
