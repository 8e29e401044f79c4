// Command imagebuild builds Flotilla's OCI images without a container
// runtime: one multi-architecture image per service (watcher, solver,
// launcher, interruption) and one for the flotilla CLI. It compiles the
// binaries with the go command, puts each on a minimal non-root base layer
// it assembles itself, and writes an OCI image layout, an SPDX SBOM per
// image and a lock file of index digests. With -push it also pushes them.
//
// Same source, same version and same SOURCE_DATE_EPOCH give the same
// digests (docs/deploy.md, Images, says how).
//
//	cd hack/imagebuild && go run . -root ../.. -out ../../dist
//	cd hack/imagebuild && go run . -root ../.. -out ../../dist -push ghcr.io/flotilla-io
//
// It is a module of its own so that go-containerregistry stays out of the
// root go.mod.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log io.Writer) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	root := fs.String("root", ".", "the Flotilla checkout")
	out := fs.String("out", "dist", "output directory: oci/ (the image layout), sbom/, bin/ and images.lock")
	version := fs.String("version", "", "version stamped into the binaries and used as the tag; empty: the chart's appVersion")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	images := fs.String("images", strings.Join(allImageNames(), ","), "comma-separated images to build")
	push := fs.String("push", "", "registry prefix to push to, like ghcr.io/flotilla-io (images <prefix>/<image>:<tag>); empty: no push")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opts, err := resolveOptions(ctx, *root, *out, *version, *platforms, *images)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := build(ctx, opts, log)
	if err != nil {
		return err
	}
	for _, img := range res {
		fmt.Fprintf(log, "imagebuild: %s:%s %s\n", img.Name, opts.Version, img.Digest)
	}
	fmt.Fprintf(log, "imagebuild: wrote %s, %s in %s\n",
		filepath.Join(opts.Out, layoutDir), filepath.Join(opts.Out, lockFile), time.Since(start).Round(time.Millisecond))
	if *push == "" {
		return nil
	}
	if err := pushAll(ctx, *push, opts.Version, res); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	fmt.Fprintf(log, "imagebuild: pushed %d images to %s\n", len(res), *push)
	return nil
}
