// Command vulndb gives `make verify` an offline Go vulnerability database and
// a short verdict on govulncheck's findings. It is a module of its own
// (hack/vulndb/go.mod, outside go.work); hack/verify.sh runs it.
//
//	vulndb build -version V -sum h1:... -out DIR
//
// takes the golang.org/x/vulndb module at version V from the Go module proxy
// (`go mod download`, checked against the go.sum-style hash -sum), reads the
// OSV entries under data/osv in its zip, and writes DIR in the layout that
// `govulncheck -db file://DIR` reads: index/db.json, index/modules.json and
// ID/<GO-ID>.json.
//
//	govulncheck -format json ./... | vulndb report -module NAME [-stdlib warn]
//
// prints one line per vulnerability that the module's code reaches (calls a
// vulnerable symbol of), with the version that fixes it and where the call
// starts, and exits 1 when there is any. With -stdlib warn, reachable
// vulnerabilities of the standard library are printed as warnings only.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:], os.Stdin, os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vulndb build -version V -sum h1:... -out DIR\n       govulncheck -format json ./... | vulndb report -module NAME [-stdlib fail|warn]")
	os.Exit(2)
}
