package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// The SBOM is an SPDX 2.3 JSON document (spdx.github.io/spdx-spec/v2.3).
// It describes one package for the image, which CONTAINS its binaries (one
// per platform, with their SHA-256) and the CA bundle; each binary CONTAINS
// the Go modules its build info lists (the main module and every
// dependency, with the go.sum hash) and has the Go toolchain as
// BUILD_TOOL_OF.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
	Comment  string   `json:"comment,omitempty"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const (
	noAssertion = "NOASSERTION"
	docID       = "SPDXRef-DOCUMENT"
	imageID     = "SPDXRef-Image"
	caModule    = "golang.org/x/crypto/x509roots/fallback"
)

// spdxBuilder collects packages, each module once.
type spdxBuilder struct {
	doc     spdxDocument
	modules map[string]string // path@version -> SPDXID
}

// add adds p, numbering it unless it has an SPDXID, and returns its SPDXID.
func (s *spdxBuilder) add(p spdxPackage) string {
	if p.SPDXID == "" {
		p.SPDXID = fmt.Sprintf("SPDXRef-Package-%d", len(s.doc.Packages))
	}
	if p.DownloadLocation == "" {
		p.DownloadLocation = noAssertion
	}
	s.doc.Packages = append(s.doc.Packages, p)
	return p.SPDXID
}

func (s *spdxBuilder) relate(a, typ, b string) {
	s.doc.Relationships = append(s.doc.Relationships, spdxRelationship{Element: a, Type: typ, Related: b})
}

// module adds m once and returns its SPDXID.
func (s *spdxBuilder) module(m *debug.Module) (string, error) {
	if m.Replace != nil {
		m = m.Replace
	}
	key := m.Path + "@" + m.Version
	if id, ok := s.modules[key]; ok {
		return id, nil
	}
	p := spdxPackage{
		Name: m.Path, VersionInfo: m.Version,
		ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/" + m.Path + "@" + m.Version}},
	}
	if m.Sum != "" {
		sum, err := goSumSHA256(m.Sum)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		p.Checksums = []spdxChecksum{{Algorithm: "SHA256", Value: sum}}
	}
	id := s.add(p)
	s.modules[key] = id
	return id, nil
}

// buildSBOM is img's SBOM. Its timestamps are epoch, and its namespace
// is made of the module, image, version and revision, so the same build
// writes the same bytes.
func buildSBOM(img image, version string, epoch time.Time, bins []binary) ([]byte, error) {
	if len(bins) == 0 {
		return nil, fmt.Errorf("no binaries")
	}
	labels, err := imageLabels(img, version, bins[0].Info)
	if err != nil {
		return nil, err
	}
	s := &spdxBuilder{modules: map[string]string{}, doc: spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: docID,
		Name:              img.Name + "-" + version,
		DocumentNamespace: labels[keySource] + "/spdx/" + img.Name + "/" + version + "/" + labels[keyRevision],
		CreationInfo: spdxCreationInfo{
			Created:  epoch.Format(time.RFC3339),
			Creators: []string{"Tool: flotilla-imagebuild", "Organization: Flotilla"},
			Comment: "Go module checksums are the go.sum h1: hashes (SHA-256 of the module's file list, " +
				"golang.org/x/mod/sumdb/dirhash) in hex.",
		},
	}}
	image := s.add(spdxPackage{SPDXID: imageID, Name: img.Name, VersionInfo: version, PrimaryPackagePurpose: "CONTAINER",
		DownloadLocation: labels[keySource], Comment: "revision " + labels[keyRevision]})
	s.relate(docID, "DESCRIBES", image)
	ca, err := caPackage(s)
	if err != nil {
		return nil, err
	}
	s.relate(image, "CONTAINS", ca)
	for _, bin := range bins {
		id, err := s.binary(img, version, bin)
		if err != nil {
			return nil, err
		}
		s.relate(image, "CONTAINS", id)
	}
	out, err := json.MarshalIndent(s.doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// binary adds bin, its modules and toolchain.
func (s *spdxBuilder) binary(img image, version string, bin binary) (string, error) {
	sum, err := fileSHA256(bin.Path)
	if err != nil {
		return "", err
	}
	id := s.add(spdxPackage{
		Name: "/" + img.Binary, VersionInfo: version, PrimaryPackagePurpose: "APPLICATION",
		Checksums: []spdxChecksum{{Algorithm: "SHA256", Value: sum}},
		Comment:   bin.Platform.String() + " binary of " + bin.Info.Path,
	})
	main := bin.Info.Main
	mainID, err := s.module(&main)
	if err != nil {
		return "", err
	}
	s.relate(id, "CONTAINS", mainID)
	for _, dep := range bin.Info.Deps {
		depID, err := s.module(dep)
		if err != nil {
			return "", err
		}
		s.relate(id, "CONTAINS", depID)
	}
	goVersion := strings.TrimPrefix(bin.Info.GoVersion, "go")
	key := "stdlib@" + goVersion
	tool, ok := s.modules[key]
	if !ok {
		tool = s.add(spdxPackage{Name: "go", VersionInfo: bin.Info.GoVersion, Comment: "the Go toolchain and standard library",
			ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/stdlib@" + goVersion}}})
		s.modules[key] = tool
	}
	s.relate(tool, "BUILD_TOOL_OF", id)
	s.relate(id, "CONTAINS", tool)
	return id, nil
}

// caPackage adds the module the CA bundle comes from, as imagebuild's own
// build info pins it.
func caPackage(s *spdxBuilder) (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", fmt.Errorf("imagebuild has no build info")
	}
	for _, dep := range info.Deps {
		if dep.Path == caModule {
			id, err := s.module(dep)
			if err != nil {
				return "", err
			}
			s.doc.Packages[len(s.doc.Packages)-1].Comment = "the Mozilla roots of /" + caFile
			return id, nil
		}
	}
	return "", fmt.Errorf("imagebuild's build info lists no %s", caModule)
}

// goSumSHA256 turns a go.sum hash "h1:<base64>" into hex.
func goSumSHA256(sum string) (string, error) {
	b64, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", fmt.Errorf("go.sum hash %q does not start with h1", sum)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != sha256.Size {
		return "", fmt.Errorf("go.sum hash %q is not a base64 SHA-256", sum)
	}
	return hex.EncodeToString(raw), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: a binary compile wrote
	if err != nil {
		return "", err
	}
	defer f.Close() //nolint:errcheck // read only
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
