package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/flotilla-io/flotilla/internal/version"
)

const versionUsage = `Usage: flotilla version

Prints, on one line, Flotilla's version, the commit this binary was built
from ("-dirty" when the checkout had uncommitted changes; "unknown" when the
go command stamped none, as with go run or a build in a git worktree), the
Go release that built it and its platform:

  flotilla 0.1.0 commit 6a98806c1d2e3f4a5b6c7d8e9f00112233445566 go1.26.8 linux/amd64

'flotilla --version' prints the same line, and so does every service's
--version. The version is the Helm chart's appVersion unless the build set
another (see internal/version).
`

// runVersion prints the version line.
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return flagError("version", versionUsage, err, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flotilla version: unexpected argument %q; run 'flotilla version -h' for usage\n", fs.Arg(0))
		return exitBadInput
	}
	fmt.Fprintln(stdout, version.Line("flotilla"))
	return exitOK
}
