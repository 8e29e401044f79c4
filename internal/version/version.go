// Package version is the one home of Flotilla's version: the release
// version, the commit the binary was built from and the Go release that
// built it. `flotilla version` and every service's --version print Line.
//
// The default Version is the Helm chart's appVersion
// (deploy/helm/flotilla/Chart.yaml), written here by hand; a test fails when
// the two differ, so a release changes both in one commit. A build may
// override it:
//
//	go build -ldflags "-X github.com/flotilla-io/flotilla/internal/version.Version=0.2.0-rc.1" ./services/solver
//
// The commit comes from the VCS stamp the go command writes into binaries
// built from a checkout (vcs.revision and vcs.modified); `go run`, `go test`
// and -buildvcs=false builds carry none, and say "unknown".
package version

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// chartAppVersion is the chart's appVersion; TestDefaultIsTheChartAppVersion
// holds them equal.
const chartAppVersion = "0.1.0"

// Version is Flotilla's release version. It is a variable so that -ldflags
// -X can set it; nothing else should.
var Version = chartAppVersion

// UnknownCommit stands for the commit of a binary without a VCS stamp.
const UnknownCommit = "unknown"

// FlagName is the flag with which every service prints its version and
// exits: --version. It asks a question and configures nothing, so it is
// never read from the environment (see server.ParseFlags).
const FlagName = "version"

// Info describes a binary.
type Info struct {
	// Version is the release version (Version).
	Version string
	// Commit is the full revision the binary was built from, or
	// UnknownCommit.
	Commit string
	// Modified is true when the checkout had uncommitted changes.
	Modified bool
	// GoVersion is the Go release that built the binary, like "go1.26.8".
	GoVersion string
	// Platform is the binary's GOOS/GOARCH, like "linux/arm64".
	Platform string
}

// Get describes the running binary.
func Get() Info {
	info, _ := debug.ReadBuildInfo()
	return fromBuildInfo(info)
}

// fromBuildInfo reads the VCS stamp of info, which may be nil.
func fromBuildInfo(info *debug.BuildInfo) Info {
	i := Info{Version: Version, Commit: UnknownCommit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		return i
	}
	if info.GoVersion != "" {
		i.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				i.Commit = s.Value
			}
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// CommitString is Commit with "-dirty" appended when the checkout was
// modified.
func (i Info) CommitString() string {
	if i.Modified {
		return i.Commit + "-dirty"
	}
	return i.Commit
}

// String is the one-line description --version prints after the program's
// name: "0.1.0 commit 6a98806c…-dirty go1.26.8 linux/amd64".
func (i Info) String() string {
	return fmt.Sprintf("%s commit %s %s %s", i.Version, i.CommitString(), i.GoVersion, i.Platform)
}

// Line is the running binary's version line for program, without a
// newline: "solver 0.1.0 commit 6a98806c… go1.26.8 linux/amd64".
func Line(program string) string {
	return program + " " + Get().String()
}

// AddFlag defines --version on fs and returns where its value is stored.
func AddFlag(fs *flag.FlagSet) *bool {
	return fs.Bool(FlagName, false, "print the version, commit and Go version on one line, and exit")
}
