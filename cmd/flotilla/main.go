// Command flotilla is Flotilla's command-line interface. `flotilla solve`
// plans nodes for pending pods from the same YAML manifests Karpenter users
// already have, without a cluster.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
