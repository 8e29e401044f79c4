// Command printversion prints its version line; TestBuiltBinary builds it
// as a release would, with a VCS stamp and -X.
package main

import (
	"fmt"

	"github.com/flotilla-io/flotilla/internal/version"
)

func main() {
	fmt.Println(version.Line("printversion"))
}
