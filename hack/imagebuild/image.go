package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCI annotation and label keys (image-spec annotations.md).
const (
	keySource   = "org.opencontainers.image.source"
	keyRevision = "org.opencontainers.image.revision"
	keyVersion  = "org.opencontainers.image.version"
	keyTitle    = "org.opencontainers.image.title"
	keyCreated  = "org.opencontainers.image.created"
	keyRefName  = "org.opencontainers.image.ref.name"
)

// built is one image: its index, and what its SBOM is made of.
type built struct {
	Name   string
	Index  v1.ImageIndex
	Digest v1.Hash
	// Binaries are the image's binaries, one per platform, in platform
	// order.
	Binaries []binary
	SBOM     []byte
}

// binary is a compiled binary and its build info.
type binary struct {
	Platform platform
	Path     string
	Info     *buildinfo.BuildInfo
}

// build compiles the binaries and assembles every image, then writes the
// layout, the SBOMs and the lock file under o.Out.
func build(ctx context.Context, o options, log io.Writer) ([]built, error) {
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // a temporary clone
	src, err := checkoutHEAD(ctx, o.Root, tmp, log)
	if err != nil {
		return nil, err
	}
	for _, p := range o.Platforms {
		fmt.Fprintf(log, "imagebuild: go build for %s\n", p)
		if err := compile(ctx, o, src, p); err != nil {
			return nil, err
		}
	}
	epoch := time.Unix(o.Epoch, 0).UTC()
	base, err := tarLayer(baseEntries(), epoch)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	var res []built
	for _, img := range o.Images {
		b, err := buildImage(o, img, base, epoch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", img.Name, err)
		}
		res = append(res, b)
	}
	if err := writeOutputs(o, res); err != nil {
		return nil, err
	}
	return res, nil
}

// buildImage assembles img's index: one image per platform.
func buildImage(o options, img image, base v1.Layer, epoch time.Time) (built, error) {
	b := built{Name: img.Name}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var labels map[string]string
	for _, p := range o.Platforms {
		bin := binary{Platform: p, Path: filepath.Join(o.binDir(p), img.Binary)}
		info, err := buildinfo.ReadFile(bin.Path)
		if err != nil {
			return built{}, fmt.Errorf("build info of %s: %w", bin.Path, err)
		}
		bin.Info = info
		labels, err = imageLabels(img, o.Version, info)
		if err != nil {
			return built{}, fmt.Errorf("%s: %w", bin.Path, err)
		}
		one, err := platformImage(img, bin, base, labels, epoch)
		if err != nil {
			return built{}, fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        one,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
		b.Binaries = append(b.Binaries, bin)
	}
	anns := map[string]string{keyCreated: epoch.Format(time.RFC3339)}
	for k, v := range labels {
		anns[k] = v
	}
	b.Index = mutate.Annotations(idx, anns).(v1.ImageIndex)
	var err error
	if b.Digest, err = b.Index.Digest(); err != nil {
		return built{}, err
	}
	if b.SBOM, err = buildSBOM(img, o.Version, epoch, b.Binaries); err != nil {
		return built{}, fmt.Errorf("SBOM: %w", err)
	}
	return b, nil
}

// imageLabels are the OCI labels of img: source (the main module's
// repository), revision (the binary's VCS stamp, "-dirty" when the checkout
// had changes, as --version prints it), version and title.
func imageLabels(img image, version string, info *buildinfo.BuildInfo) (map[string]string, error) {
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return nil, errNoRevision
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return map[string]string{
		keySource:   "https://" + info.Main.Path,
		keyRevision: rev,
		keyVersion:  version,
		keyTitle:    img.Name,
	}, nil
}

// platformImage is the image of one platform: the base layer, the binary
// layer, and a config that runs /<binary> as nonroot from /.
func platformImage(img image, bin binary, base v1.Layer, labels map[string]string, epoch time.Time) (v1.Image, error) {
	entries, err := binaryEntries(img.Binary, bin.Path)
	if err != nil {
		return nil, err
	}
	layer, err := tarLayer(entries, epoch)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	created := v1.Time{Time: epoch}
	cfg := &v1.ConfigFile{
		Architecture: bin.Platform.Arch,
		OS:           bin.Platform.OS,
		Created:      created,
		Config: v1.Config{
			User:       nonrootUser,
			Entrypoint: []string{"/" + img.Binary},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	one, err := mutate.ConfigFile(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(one,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer,
			History: v1.History{Created: created, CreatedBy: "imagebuild: base (accounts, CA certificates, /home/nonroot, /tmp)"}},
		mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
			History: v1.History{Created: created, CreatedBy: "imagebuild: /" + img.Binary}},
	)
}
