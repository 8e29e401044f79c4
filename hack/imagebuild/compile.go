package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// image is one image to build: its name and the main package of its
// binary, which is also its entrypoint /<Binary>.
type image struct {
	Name, Binary, Package string
}

// images are every image imagebuild knows, in build order. A service's
// image is flotilla-<service>, the name the Helm chart pulls
// (<image.repository>-<service>); the CLI's is flotilla.
var images = []image{
	{Name: "flotilla-watcher", Binary: "watcher", Package: "./services/watcher"},
	{Name: "flotilla-solver", Binary: "solver", Package: "./services/solver"},
	{Name: "flotilla-launcher", Binary: "launcher", Package: "./services/launcher"},
	{Name: "flotilla-interruption", Binary: "interruption", Package: "./services/interruption"},
	{Name: "flotilla", Binary: "flotilla", Package: "./cmd/flotilla"},
}

func allImageNames() []string {
	var names []string
	for _, img := range images {
		names = append(names, img.Name)
	}
	return names
}

// platform is a GOOS/GOARCH pair.
type platform struct{ OS, Arch string }

func (p platform) String() string { return p.OS + "/" + p.Arch }

// options is one build, resolved.
type options struct {
	Root, Out string
	// Version is stamped into the binaries and is every image's tag.
	Version string
	// Epoch is SOURCE_DATE_EPOCH: every timestamp in the images.
	Epoch     int64
	Platforms []platform
	Images    []image
}

// versionPackage holds the version -ldflags -X overrides.
const versionPackage = "github.com/flotilla-io/flotilla/internal/version.Version"

// chartFile holds the default version: the chart's appVersion, which
// internal/version's default is held equal to by a test.
const chartFile = "deploy/helm/flotilla/Chart.yaml"

// tagPattern is what a registry accepts as a tag (OCI distribution spec).
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

func resolveOptions(ctx context.Context, root, out, version, platforms, names string) (options, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return options{}, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return options{}, fmt.Errorf("-root %s is not the Flotilla checkout: %w", root, err)
	}
	if out, err = filepath.Abs(out); err != nil {
		return options{}, err
	}
	o := options{Root: root, Out: out, Version: version}
	if o.Version == "" {
		if o.Version, err = chartAppVersion(ctx, root); err != nil {
			return options{}, err
		}
	}
	if !tagPattern.MatchString(o.Version) {
		return options{}, fmt.Errorf("version %q cannot be an image tag", o.Version)
	}
	if o.Epoch, err = sourceDateEpoch(ctx, root); err != nil {
		return options{}, err
	}
	if o.Platforms, err = parsePlatforms(platforms); err != nil {
		return options{}, err
	}
	if o.Images, err = selectImages(names); err != nil {
		return options{}, err
	}
	return o, nil
}

// chartAppVersion reads appVersion, a top-level scalar, quoted or not,
// from the chart of root's HEAD commit (what the images are built from).
func chartAppVersion(ctx context.Context, root string) (string, error) {
	chart, err := git(ctx, root, "show", "HEAD:"+chartFile)
	if err != nil {
		return "", fmt.Errorf("default version: %w", err)
	}
	for _, line := range strings.Split(chart, "\n") {
		if v, ok := strings.CutPrefix(line, "appVersion:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`), nil
		}
	}
	return "", fmt.Errorf("default version: %s has no appVersion", chartFile)
}

// sourceDateEpoch is $SOURCE_DATE_EPOCH when set, else the time of the
// checkout's HEAD commit.
func sourceDateEpoch(ctx context.Context, root string) (int64, error) {
	v, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok {
		out, err := git(ctx, root, "log", "-1", "--format=%ct")
		if err != nil {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		v = out
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a non-negative number of seconds", v)
	}
	return n, nil
}

// git runs git in dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...) //nolint:gosec // G204: git with imagebuild's own arguments
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}

// checkoutHEAD clones root's HEAD commit into a new directory under tmp
// and returns it. The images are built from the commit alone: the go
// command stamps its revision into the binaries (it stamps nothing in a git
// worktree, whose .git is a file), and uncommitted changes, which would
// make the build unrepeatable, stay out; they are only warned about.
func checkoutHEAD(ctx context.Context, root, tmp string, log io.Writer) (string, error) {
	rev, err := git(ctx, root, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return "", fmt.Errorf("the images are built from a git commit: %w", err)
	}
	if status, err := git(ctx, root, "status", "--porcelain", "--untracked-files=no"); err != nil {
		return "", err
	} else if status != "" {
		fmt.Fprintf(log, "imagebuild: uncommitted changes in %s are not in the images: they are built from HEAD %s\n", root, rev)
	}
	dir := filepath.Join(tmp, "src")
	if _, err := git(ctx, root, "clone", "--quiet", "--no-checkout", root, dir); err != nil {
		return "", err
	}
	if _, err := git(ctx, dir, "checkout", "--quiet", "--detach", rev); err != nil {
		return "", err
	}
	return dir, nil
}

func parsePlatforms(s string) ([]platform, error) {
	var ps []platform
	for _, f := range strings.Split(s, ",") {
		goos, arch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || goos != "linux" || (arch != "amd64" && arch != "arm64") {
			return nil, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", f)
		}
		p := platform{OS: goos, Arch: arch}
		if slices.Contains(ps, p) {
			return nil, fmt.Errorf("platform %q given twice", f)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func selectImages(s string) ([]image, error) {
	var sel []image
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(images, func(img image) bool { return img.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("image %q: want one of %s", name, strings.Join(allImageNames(), ", "))
		}
		if slices.Contains(sel, images[i]) {
			return nil, fmt.Errorf("image %q given twice", name)
		}
		sel = append(sel, images[i])
	}
	return sel, nil
}

// binDir is where the binaries of p are written.
func (o options) binDir(p platform) string {
	return filepath.Join(o.Out, "bin", p.OS+"-"+p.Arch)
}

// compile builds every selected binary for p with one go build. The
// environment is fixed (no cgo, no GOFLAGS, the baseline microarchitecture,
// no workspace) so the caller's settings do not change the binaries;
// -tags timetzdata embeds the time zone database, so the images need no
// /usr/share/zoneinfo.
func compile(ctx context.Context, o options, src string, p platform) error {
	dir := o.binDir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-buildvcs=true", "-tags", "timetzdata",
		"-ldflags", "-s -w -X " + versionPackage + "=" + o.Version, "-o", dir + string(filepath.Separator)}
	for _, img := range o.Images {
		args = append(args, img.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // G204: go build of the checkout's packages
	cmd.Dir = src
	cmd.Env = append(buildEnv(os.Environ()),
		"CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=", "GOWORK=off",
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w\n%s", p, err, stderr.Bytes())
	}
	return nil
}

// buildEnv is env without the variables compile sets itself.
func buildEnv(env []string) []string {
	fixed := []string{"CGO_ENABLED", "GOOS", "GOARCH", "GOFLAGS", "GOWORK", "GOAMD64", "GOARM64", "GOEXPERIMENT"}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(fixed, k) {
			out = append(out, kv)
		}
	}
	return out
}

// errNoRevision is returned for a binary without a VCS stamp.
var errNoRevision = errors.New("no vcs.revision in the binary's build info (built outside a git checkout?)")
