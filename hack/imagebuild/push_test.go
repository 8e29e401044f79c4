package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPush pushes the built images to go-containerregistry's in-process
// registry on loopback and reads them back: each tag names the locked
// index digest, and the index's referrers hold its SBOM.
func TestPush(t *testing.T) {
	out := builtOut(t)
	reg := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	prefix := strings.TrimPrefix(reg.URL, "http://") + "/flotilla-io"

	var res []built
	for _, e := range readLock(t, out) {
		idx, desc := layoutIndex(t, out, e.name)
		sbom, err := os.ReadFile(filepath.Join(out, sbomDir, e.name+".spdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, built{Name: e.name, Index: idx, Digest: desc.Digest, SBOM: sbom})
	}
	if err := pushAll(context.Background(), prefix, testVersion, res); err != nil {
		t.Fatal(err)
	}
	for _, b := range res {
		ref, err := name.NewTag(prefix + "/" + b.Name + ":" + testVersion)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != b.Digest {
			t.Errorf("%s is %s, want the locked %s", ref, desc.Digest, b.Digest)
		}
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			if _, err := idx.Image(d.Digest); err != nil {
				t.Errorf("%s: %s image: %v", ref, d.Platform, err)
			}
		}
		referrers, err := remote.Referrers(ref.Context().Digest(b.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := referrers.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		// go-containerregistry's registry reports the config's media type
		// as a referrer's artifactType, not the manifest's artifactType,
		// which is checked below.
		if len(m.Manifests) != 1 {
			t.Fatalf("%s: referrers %+v, want one SPDX artifact", ref, m.Manifests)
		}
		artDesc, err := remote.Get(ref.Context().Digest(m.Manifests[0].Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		var art v1.Manifest
		if err := json.Unmarshal(artDesc.Manifest, &art); err != nil || art.ArtifactType != string(spdxMediaType) || len(art.Layers) != 1 {
			t.Fatalf("%s: SBOM artifact %s: %v", ref, artDesc.Manifest, err)
		}
		layer, err := remote.Layer(ref.Context().Digest(art.Layers[0].Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b.SBOM) {
			t.Errorf("%s: the pushed SBOM differs from %s.spdx.json", ref, b.Name)
		}
	}
}
