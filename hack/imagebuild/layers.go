package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// nonroot is the user every image runs as, as in distroless images.
const (
	nonrootID   = 65532
	nonrootUser = "65532:65532"
)

// The base layer's files. No account has a shell: /sbin/nologin names the
// convention, and no shell (nor /sbin/nologin) is in the image.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nonroot:x:65532:\n"
	caFile = "etc/ssl/certs/ca-certificates.crt"
)

// entry is one file or directory of a layer.
type entry struct {
	Name     string // relative, a directory's ending in "/"
	Mode     int64
	UID, GID int
	Data     []byte
}

// baseEntries is the base layer: the accounts, the CA certificates the
// services' AWS calls verify TLS with, a home for nonroot and /tmp.
func baseEntries() []entry {
	return []entry{
		{Name: "etc/", Mode: 0o755},
		{Name: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Name: "etc/ssl/", Mode: 0o755},
		{Name: "etc/ssl/certs/", Mode: 0o755},
		{Name: caFile, Mode: 0o644, Data: caBundle()},
		{Name: "home/", Mode: 0o755},
		{Name: "home/nonroot/", Mode: 0o700, UID: nonrootID, GID: nonrootID},
		{Name: "tmp/", Mode: 0o1777},
	}
}

// caBundle is the PEM bundle of the Mozilla (NSS) roots that Go's
// golang.org/x/crypto/x509roots/fallback module carries, pinned by go.sum,
// so the image does not depend on the build machine's certificates. Roots
// with a constraint a PEM file cannot carry (distrust after a date) are
// left out.
func caBundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}) // writes to memory
	}
	return b.Bytes()
}

// binaryEntries is a binary's layer: /<name>, executable by everyone.
func binaryEntries(name, path string) ([]entry, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the binary compile wrote
	if err != nil {
		return nil, err
	}
	return []entry{{Name: name, Mode: 0o755, Data: data}}, nil
}

// tarLayer writes entries as a tar sorted by name, every header fixed (the
// given owner and mode, modification time epoch, no user or group names),
// and returns it as a gzip-compressed OCI layer.
func tarLayer(entries []entry, epoch time.Time) (v1.Layer, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: epoch, Format: tar.FormatPAX}
		if strings.HasSuffix(e.Name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.Name, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
