package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The tests build every image once for linux/amd64 and linux/arm64 with
// the real go command (about a minute with a warm build cache), then look
// inside the layout: configs, files, SBOMs, and the amd64 binaries run
// (--version, and each service serving gRPC health). TestReproducible
// builds a second time and compares digests.

const testVersion = "0.0.0-imagetest"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildLog  bytes.Buffer
	testTmp   string
)

func TestMain(m *testing.M) {
	var err error
	testTmp, err = os.MkdirTemp("", "imagebuild-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(testTmp)
	os.Exit(code)
}

// buildArgs builds every image into out.
func buildArgs(out string) []string {
	return []string{"-root", "../..", "-out", out, "-version", testVersion, "-platforms", "linux/amd64,linux/arm64"}
}

// builtOut builds the images once for all tests and returns the output
// directory.
func builtOut(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir = filepath.Join(testTmp, "a")
		start := time.Now()
		buildErr = run(context.Background(), buildArgs(buildDir), &buildLog)
		t.Logf("first build: %s", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, buildLog.String())
	}
	return buildDir
}

// lockEntry is one line of images.lock.
type lockEntry struct{ name, tag, digest string }

func readLock(t *testing.T, out string) []lockEntry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	var entries []lockEntry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("images.lock line %q: want name tag digest", line)
		}
		entries = append(entries, lockEntry{f[0], f[1], f[2]})
	}
	return entries
}

// layoutIndex is the index of image name in the layout at out.
func layoutIndex(t *testing.T, out, name string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	lp, err := layout.FromPath(filepath.Join(out, layoutDir))
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Annotations[keyRefName] == name+":"+testVersion {
			idx, err := top.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return idx, d
		}
	}
	t.Fatalf("no %s:%s in the layout", name, testVersion)
	return nil, v1.Descriptor{}
}

// platformImageOf is the image of arch in idx.
func platformImageOf(t *testing.T, idx v1.ImageIndex, arch string) v1.Image {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no linux/%s image", arch)
	return nil
}

func headRevision(t *testing.T) string {
	t.Helper()
	rev, err := git(context.Background(), "../..", "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestLockAndLayout(t *testing.T) {
	out := builtOut(t)
	entries := readLock(t, out)
	if len(entries) != len(images) {
		t.Fatalf("images.lock has %d images, want %d", len(entries), len(images))
	}
	for i, e := range entries {
		if e.name != images[i].Name || e.tag != testVersion {
			t.Errorf("images.lock line %d = %v, want %s %s", i, e, images[i].Name, testVersion)
		}
		idx, desc := layoutIndex(t, out, e.name)
		if desc.Digest.String() != e.digest || desc.MediaType != types.OCIImageIndex {
			t.Errorf("%s: layout has %s %s, lock %s", e.name, desc.MediaType, desc.Digest, e.digest)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var archs []string
		for _, d := range m.Manifests {
			archs = append(archs, d.Platform.OS+"/"+d.Platform.Architecture)
		}
		if !slices.Equal(archs, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s: platforms %v", e.name, archs)
		}
		if m.Annotations[keyTitle] != e.name || m.Annotations[keyVersion] != testVersion {
			t.Errorf("%s: index annotations %v", e.name, m.Annotations)
		}
	}
}

func TestConfig(t *testing.T) {
	out := builtOut(t)
	rev := headRevision(t)
	for _, img := range images {
		idx, _ := layoutIndex(t, out, img.Name)
		for _, arch := range []string{"amd64", "arm64"} {
			cfg, err := platformImageOf(t, idx, arch).ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Config
			if cfg.OS != "linux" || cfg.Architecture != arch {
				t.Errorf("%s/%s: config platform %s/%s", img.Name, arch, cfg.OS, cfg.Architecture)
			}
			if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/" + img.Binary}) || c.WorkingDir != "/" || len(c.Cmd) != 0 {
				t.Errorf("%s/%s: user %q entrypoint %q cmd %q workdir %q", img.Name, arch, c.User, c.Entrypoint, c.Cmd, c.WorkingDir)
			}
			want := map[string]string{keySource: "https://github.com/flotilla-io/flotilla", keyRevision: rev, keyVersion: testVersion, keyTitle: img.Name}
			for k, v := range want {
				if c.Labels[k] != v {
					t.Errorf("%s/%s: label %s = %q, want %q", img.Name, arch, k, c.Labels[k], v)
				}
			}
			if len(cfg.RootFS.DiffIDs) != 2 || len(cfg.History) != 2 {
				t.Errorf("%s/%s: %d layers, %d history entries; want 2 and 2", img.Name, arch, len(cfg.RootFS.DiffIDs), len(cfg.History))
			}
		}
	}
}

// fsEntry is a file of an image's flattened filesystem.
type fsEntry struct {
	header *tar.Header
	data   []byte
}

func flatten(t *testing.T, img v1.Image) map[string]fsEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close() //nolint:errcheck // read only
	files := map[string]fsEntry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = fsEntry{header: h, data: data}
	}
	return files
}

func TestFilesystem(t *testing.T) {
	out := builtOut(t)
	for _, img := range images {
		idx, _ := layoutIndex(t, out, img.Name)
		image := platformImageOf(t, idx, "amd64")
		cfg, err := image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		files := flatten(t, image)
		var names []string
		for name, f := range files {
			names = append(names, name)
			if !f.header.ModTime.Equal(cfg.Created.Time) {
				t.Errorf("%s: %s mtime %s, want the config's created %s", img.Name, name, f.header.ModTime, cfg.Created.Time)
			}
			if base := filepath.Base(name); slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox", "nologin"}, base) {
				t.Errorf("%s: has a shell %s", img.Name, name)
			}
		}
		slices.Sort(names)
		want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
			"home", "home/nonroot", "tmp", img.Binary}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("%s: files %q, want %q", img.Name, names, want)
		}
		if h := files[img.Binary].header; h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: /%s mode %o owner %d:%d", img.Name, img.Binary, h.Mode, h.Uid, h.Gid)
		}
		if h := files["home/nonroot"].header; h.Uid != nonrootID || h.Gid != nonrootID {
			t.Errorf("%s: /home/nonroot owner %d:%d", img.Name, h.Uid, h.Gid)
		}
		if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") ||
			!strings.Contains(string(files["etc/group"].data), "nonroot:x:65532:\n") {
			t.Errorf("%s: passwd %q group %q", img.Name, files["etc/passwd"].data, files["etc/group"].data)
		}
		checkCABundle(t, files["etc/ssl/certs/ca-certificates.crt"].data)
	}
}

func checkCABundle(t *testing.T, data []byte) {
	t.Helper()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("CA bundle: %v", err)
		}
		n++
	}
	if n < 100 {
		t.Errorf("CA bundle has %d certificates, want the Mozilla roots (over 100)", n)
	}
}

// extractBinary writes img's amd64 binary to a file and returns its path.
func extractBinary(t *testing.T, out string, img image) string {
	t.Helper()
	idx, _ := layoutIndex(t, out, img.Name)
	f, ok := flatten(t, platformImageOf(t, idx, "amd64"))[img.Binary]
	if !ok {
		t.Fatalf("%s: no /%s", img.Name, img.Binary)
	}
	path := filepath.Join(t.TempDir(), img.Binary)
	if err := os.WriteFile(path, f.data, 0o700); err != nil { //nolint:gosec // G306: an executable
		t.Fatal(err)
	}
	return path
}

func TestVersionFlag(t *testing.T) {
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skip("runs the linux/amd64 binaries")
	}
	out := builtOut(t)
	rev := headRevision(t)
	for _, img := range images {
		bin := extractBinary(t, out, img)
		got, err := exec.Command(bin, "--version").CombinedOutput() //nolint:gosec // G204: the image's binary
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", img.Binary, err, got)
		}
		// The line version.Line prints: program, version, commit, Go, platform.
		want := regexp.MustCompile(`^` + img.Binary + ` ` + regexp.QuoteMeta(testVersion) + ` commit ` + rev + ` go1\.[0-9.]+ linux/amd64\n$`)
		if !want.Match(got) {
			t.Errorf("%s --version printed %q, want %s", img.Binary, got, want)
		}
	}
}

func TestSBOM(t *testing.T) {
	out := builtOut(t)
	for _, img := range images {
		data, err := os.ReadFile(filepath.Join(out, sbomDir, img.Name+".spdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc spdxDocument
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != docID || doc.DocumentNamespace == "" {
			t.Errorf("%s: document header %+v", img.Name, doc)
		}
		byName := map[string]spdxPackage{}
		for _, p := range doc.Packages {
			byName[p.Name+" "+p.Comment] = p
			if p.Name == "google.golang.org/grpc" && (len(p.Checksums) != 1 || len(p.Checksums[0].Value) != 64) {
				t.Errorf("%s: grpc package %+v has no go.sum checksum", img.Name, p)
			}
			byName[p.Name] = p
		}
		for _, name := range []string{img.Name, "github.com/flotilla-io/flotilla", "google.golang.org/grpc", "go", caModule} {
			if _, ok := byName[name]; !ok {
				t.Errorf("%s: SBOM has no package %s", img.Name, name)
			}
		}
		// The binaries' checksums are those of the files in the image.
		idx, desc := layoutIndex(t, out, img.Name)
		for _, arch := range []string{"amd64", "arm64"} {
			f := flatten(t, platformImageOf(t, idx, arch))[img.Binary]
			sum := sha256.Sum256(f.data)
			p, ok := byName["/"+img.Binary+" linux/"+arch+" binary of github.com/flotilla-io/flotilla/"+strings.TrimPrefix(img.Package, "./")]
			if !ok || len(p.Checksums) != 1 || p.Checksums[0].Value != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: binary linux/%s: package %+v, want checksum %x", img.Name, arch, p, sum)
			}
		}
		checkSBOMArtifact(t, out, desc, data)
	}
}

// checkSBOMArtifact finds the layout's artifact whose subject is the index
// desc and checks that its layer is the SBOM.
func checkSBOMArtifact(t *testing.T, out string, desc v1.Descriptor, sbom []byte) {
	t.Helper()
	lp, err := layout.FromPath(filepath.Join(out, layoutDir))
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.ArtifactType != string(spdxMediaType) {
			continue
		}
		raw, err := lp.Bytes(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		var am v1.Manifest
		if err := json.Unmarshal(raw, &am); err != nil {
			t.Fatal(err)
		}
		if am.Subject == nil || am.Subject.Digest != desc.Digest {
			continue
		}
		blob, err := lp.Bytes(am.Layers[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(blob, sbom) || am.Layers[0].MediaType != spdxMediaType {
			t.Errorf("SBOM artifact of %s: layer %s is not the SBOM file", desc.Digest, am.Layers[0].MediaType)
		}
		return
	}
	t.Errorf("no SBOM artifact with subject %s in the layout", desc.Digest)
}

func TestReproducible(t *testing.T) {
	first := builtOut(t)
	second := filepath.Join(testTmp, "b")
	start := time.Now()
	var log bytes.Buffer
	if err := run(context.Background(), buildArgs(second), &log); err != nil {
		t.Fatalf("second build: %v\n%s", err, log.String())
	}
	t.Logf("second build: %s", time.Since(start).Round(time.Millisecond))
	for _, f := range []string{lockFile, filepath.Join(layoutDir, "index.json")} {
		a, errA := os.ReadFile(filepath.Join(first, f))
		b, errB := os.ReadFile(filepath.Join(second, f))
		if err := errors.Join(errA, errB); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds:\n%s\n%s", f, a, b)
		}
	}
	for _, e := range readLock(t, first) {
		t.Logf("%s:%s %s", e.name, e.tag, e.digest)
	}
}
