package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParsePlatforms(t *testing.T) {
	got, err := parsePlatforms("linux/amd64, linux/arm64")
	if err != nil || len(got) != 2 || got[0] != (platform{"linux", "amd64"}) || got[1] != (platform{"linux", "arm64"}) {
		t.Fatalf("parsePlatforms = %v, %v", got, err)
	}
	for _, bad := range []string{"", "linux", "linux/386", "windows/amd64", "linux/amd64,linux/amd64"} {
		if _, err := parsePlatforms(bad); err == nil {
			t.Errorf("parsePlatforms(%q) accepted", bad)
		}
	}
}

func TestSelectImages(t *testing.T) {
	got, err := selectImages("flotilla-solver,flotilla")
	if err != nil || len(got) != 2 || got[0].Binary != "solver" || got[1].Package != "./cmd/flotilla" {
		t.Fatalf("selectImages = %v, %v", got, err)
	}
	for _, bad := range []string{"", "solver", "flotilla,flotilla"} {
		if _, err := selectImages(bad); err == nil {
			t.Errorf("selectImages(%q) accepted", bad)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if n, err := sourceDateEpoch(context.Background(), "../.."); err != nil || n != 1700000000 {
		t.Errorf("sourceDateEpoch = %d, %v", n, err)
	}
	for _, bad := range []string{"", "-1", "yesterday"} {
		t.Setenv("SOURCE_DATE_EPOCH", bad)
		if _, err := sourceDateEpoch(context.Background(), "../.."); err == nil {
			t.Errorf("SOURCE_DATE_EPOCH=%q accepted", bad)
		}
	}
}

func TestResolveOptionsRefusesBadVersion(t *testing.T) {
	_, err := resolveOptions(context.Background(), "../..", t.TempDir(), "1.0/evil", "linux/amd64", "flotilla")
	if err == nil || !strings.Contains(err.Error(), "cannot be an image tag") {
		t.Errorf("resolveOptions with version 1.0/evil: %v", err)
	}
}

func TestGoSumSHA256(t *testing.T) {
	got, err := goSumSHA256("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	if err != nil || got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("goSumSHA256 = %q, %v", got, err)
	}
	for _, bad := range []string{"h2:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "h1:not base64!", "h1:AAAA"} {
		if _, err := goSumSHA256(bad); err == nil {
			t.Errorf("goSumSHA256(%q) accepted", bad)
		}
	}
}

// TestTarLayer checks that a layer does not depend on the order of its
// entries and that every header is fixed.
func TestTarLayer(t *testing.T) {
	epoch := time.Unix(1700000000, 0).UTC()
	entries := []entry{{Name: "b", Mode: 0o644, Data: []byte("b")}, {Name: "a/", Mode: 0o755}, {Name: "a/x", Mode: 0o600, UID: 7, GID: 8, Data: []byte("x")}}
	l1, err := tarLayer(entries, epoch)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := tarLayer([]entry{entries[2], entries[0], entries[1]}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	d1, err1 := l1.Digest()
	d2, err2 := l2.Digest()
	if err := errors.Join(err1, err2); err != nil || d1 != d2 {
		t.Fatalf("digests %s and %s (%v)", d1, d2, err)
	}
	rc, err := l1.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close() //nolint:errcheck // read only
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(epoch) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %s, owner names %q %q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		if h.Name == "a/x" && (h.Uid != 7 || h.Gid != 8 || h.Mode != 0o600) {
			t.Errorf("a/x: %d:%d %o", h.Uid, h.Gid, h.Mode)
		}
	}
	if strings.Join(names, " ") != "a/ a/x b" {
		t.Errorf("entries %q, want sorted", names)
	}
	if !bytes.Contains(caBundle(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Error("the CA bundle is empty")
	}
}
