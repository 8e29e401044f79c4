package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Service names, also the names of their binaries and log files.
const (
	Solver       = "solver"
	Launcher     = "launcher"
	Watcher      = "watcher"
	Interruption = "interruption"
	// Flotilla is the CLI (cmd/flotilla); the cluster runs its ec2sim.
	Flotilla = "flotilla"
	// EC2Sim is the name of the ec2sim process and its log.
	EC2Sim = "ec2sim"
)

// services are the service packages Start builds when they exist, in
// start order.
var services = []string{Solver, Launcher, Watcher, Interruption}

// FindRepoRoot walks up from the working directory to the Flotilla
// checkout (the directory holding go.work and hack/controlplane.sh).
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.work")) && fileExists(filepath.Join(dir, "hack", "controlplane.sh")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no Flotilla checkout (go.work and hack/controlplane.sh) above the working directory")
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// cacheDir is ~/.cache/flotilla/<sub> (XDG_CACHE_HOME honoured).
func cacheDir(sub string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "flotilla", sub), nil
}

// BuildControlPlane runs hack/controlplane.sh (a no-op once its cache is
// built), with its progress on stderr, and returns the binaries' directory.
func BuildControlPlane(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "controlplane.sh")) //nolint:gosec // G204: the checkout's own build script
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/controlplane.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// BuildFlotilla builds the Flotilla binaries that exist in the checkout
// (services/solver, launcher, watcher, interruption and cmd/flotilla) into
// ~/.cache/flotilla/integration-bin and returns that directory and the
// services built. Concurrent callers (parallel test binaries) take turns
// through a file lock.
func BuildFlotilla(ctx context.Context, root string) (dir string, built []string, err error) {
	dir, err = cacheDir("integration-bin")
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, err
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	pkgs := []string{"./cmd/flotilla"}
	for _, s := range services {
		if fileExists(filepath.Join(root, "services", s, "main.go")) {
			pkgs = append(pkgs, "./services/"+s)
			built = append(built, s)
		}
	}
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // G204: builds the checkout's own packages
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return dir, built, nil
}

// lockFile takes an exclusive flock on path; the returned func releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
