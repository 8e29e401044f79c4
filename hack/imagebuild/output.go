package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where the outputs go under options.Out.
const (
	layoutDir = "oci"
	sbomDir   = "sbom"
	lockFile  = "images.lock"
)

// SBOM artifact media types (OCI image-spec 1.1, SPDX).
const (
	spdxMediaType  types.MediaType = "application/spdx+json"
	emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"
)

// writeOutputs replaces o.Out/oci with an OCI image layout of res (each
// index named <image>:<tag> by org.opencontainers.image.ref.name, then its
// SBOM artifact), writes each SBOM to o.Out/sbom/<image>.spdx.json and the
// lock file.
func writeOutputs(o options, res []built) error {
	dir := filepath.Join(o.Out, layoutDir)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(o.Out, sbomDir)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.Out, sbomDir), 0o750); err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image layout %s: %w", dir, err)
	}
	var lock strings.Builder
	lock.WriteString("# image tag index-digest (written by hack/imagebuild; docs/deploy.md, Images)\n")
	for _, b := range res {
		if err := lp.AppendIndex(b.Index, layout.WithAnnotations(map[string]string{keyRefName: b.Name + ":" + o.Version})); err != nil {
			return fmt.Errorf("image layout: %s: %w", b.Name, err)
		}
		art, err := sbomArtifact(b)
		if err != nil {
			return err
		}
		if err := art.writeTo(lp); err != nil {
			return fmt.Errorf("image layout: SBOM of %s: %w", b.Name, err)
		}
		if err := os.WriteFile(filepath.Join(o.Out, sbomDir, b.Name+".spdx.json"), b.SBOM, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&lock, "%s %s %s\n", b.Name, o.Version, b.Digest)
	}
	return os.WriteFile(filepath.Join(o.Out, lockFile), []byte(lock.String()), 0o600)
}

// artifact is an image's SBOM as an OCI 1.1 artifact: a manifest of
// artifactType application/spdx+json whose one layer is the SPDX document
// and whose subject is the image index, so registries list it among the
// index's referrers (GET /v2/<name>/referrers/<digest>).
type artifact struct {
	manifest []byte
	desc     v1.Descriptor
	blobs    []blob
}

type blob struct {
	mediaType types.MediaType
	data      []byte
}

func (b blob) descriptor() v1.Descriptor {
	sum := sha256.Sum256(b.data)
	return v1.Descriptor{MediaType: b.mediaType, Size: int64(len(b.data)),
		Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

// RawManifest and MediaType make an artifact a remote.Taggable.
func (a artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func sbomArtifact(b built) (artifact, error) {
	size, err := b.Index.Size()
	if err != nil {
		return artifact{}, err
	}
	config := blob{mediaType: emptyMediaType, data: []byte("{}")}
	doc := blob{mediaType: spdxMediaType, data: b.SBOM}
	docDesc := doc.descriptor()
	docDesc.Annotations = map[string]string{keyTitle: b.Name + ".spdx.json"}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: string(spdxMediaType),
		Config:  config.descriptor(),
		Layers:  []v1.Descriptor{docDesc},
		Subject: &v1.Descriptor{MediaType: types.OCIImageIndex, Size: size, Digest: b.Digest},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return artifact{}, err
	}
	desc := blob{mediaType: types.OCIManifestSchema1, data: raw}.descriptor()
	desc.ArtifactType = string(spdxMediaType)
	return artifact{manifest: raw, desc: desc, blobs: []blob{config, doc}}, nil
}

// writeTo adds the artifact's blobs and manifest to the layout and lists it
// in index.json.
func (a artifact) writeTo(lp layout.Path) error {
	for _, b := range append(a.blobs, blob{mediaType: types.OCIManifestSchema1, data: a.manifest}) {
		if err := lp.WriteBlob(b.descriptor().Digest, io.NopCloser(bytes.NewReader(b.data))); err != nil {
			return err
		}
	}
	return lp.AppendDescriptor(a.desc)
}

// pushAll pushes every image index as <prefix>/<image>:<tag>, then its SBOM
// artifact by digest (the registry, or go-containerregistry's referrers
// tag fallback, links it to the index). Credentials come from the Docker
// config (docker login, credential helpers).
func pushAll(ctx context.Context, prefix, tag string, res []built) error {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	for _, b := range res {
		ref, err := name.NewTag(strings.TrimSuffix(prefix, "/") + "/" + b.Name + ":" + tag)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		if err := remote.WriteIndex(ref, b.Index, opts...); err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		art, err := sbomArtifact(b)
		if err != nil {
			return err
		}
		for _, bl := range art.blobs {
			if err := remote.WriteLayer(ref.Repository, static.NewLayer(bl.data, bl.mediaType), opts...); err != nil {
				return fmt.Errorf("%s: SBOM blob: %w", ref, err)
			}
		}
		if err := remote.Put(ref.Digest(art.desc.Digest.String()), art, opts...); err != nil {
			return fmt.Errorf("%s: SBOM: %w", ref, err)
		}
	}
	return nil
}
