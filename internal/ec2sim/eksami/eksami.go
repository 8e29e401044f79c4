// Package eksami is the simulator's universe of EKS-optimized AMIs: a fixed,
// deterministic set of fake but realistically named images for the al2023,
// al2 and bottlerocket families, several dated releases each, and the public
// SSM parameters that point at them, laid out like the real ones:
//
//	/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/<arch>/<variant>/recommended/image_id
//	/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/<arch>/<variant>/amazon-eks-node-al2023-<arch>-<variant>-<k8s>-v<YYYYMMDD>/image_id
//	/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2{,-arm64,-gpu}/recommended/image_id
//	/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2{,-arm64,-gpu}/amazon-eks{,-arm64,-gpu}-node-<k8s>-v<YYYYMMDD>/image_id
//	/aws/service/bottlerocket/aws-k8s-<k8s>{,-nvidia}/<arch>/latest/image_id
//	/aws/service/bottlerocket/aws-k8s-<k8s>{,-nvidia}/<arch>/<X.Y.Z>/image_id
//
// so that an alias such as al2023@v20240807 resolves to exactly that release
// and al2023@latest ("recommended") to the newest. Image IDs are stable
// hashes of the image names; nothing here is a real AMI.
package eksami

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Image owners: the EKS AMI account and the Bottlerocket account in us-east-1.
const (
	OwnerEKS          = "602401143452"
	OwnerBottlerocket = "092701018921"
)

// Families.
const (
	FamilyAL2023       = "al2023"
	FamilyAL2          = "al2"
	FamilyBottlerocket = "bottlerocket"
)

// Architectures, as EC2 names them (Image.Architecture).
const (
	ArchX86_64 = "x86_64"
	ArchARM64  = "arm64"
)

// Variants.
const (
	VariantStandard = "standard"
	VariantNvidia   = "nvidia"
	// VariantNeuron is AL2023's image for AWS Inferentia and Trainium
	// (/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/x86_64/neuron/...).
	VariantNeuron = "neuron"
)

// LatestVersion is the alias version that selects the newest release.
const LatestVersion = "latest"

// DefaultK8sVersions are the Kubernetes versions Catalog and Parameters
// cover when given none.
var DefaultK8sVersions = []string{"1.29", "1.30", "1.31", "1.32"}

// Release is one dated release of a family. Version is written as an alias
// takes it: "v20240807" for the Amazon Linux families, "v1.20.5" for
// Bottlerocket (whose SSM paths drop the v).
type Release struct {
	Family  string
	Version string
	Date    time.Time
}

// day is a release date in 2024, when every release listed here was made.
func day(m time.Month, d int) time.Time { return time.Date(2024, m, d, 0, 0, 0, 0, time.UTC) }

// Releases lists every release in the universe, oldest first per family.
var Releases = []Release{
	{FamilyAL2023, "v20240807", day(time.August, 7)},
	{FamilyAL2023, "v20240903", day(time.September, 3)},
	{FamilyAL2023, "v20241011", day(time.October, 11)},
	{FamilyAL2, "v20240807", day(time.August, 7)},
	{FamilyAL2, "v20240903", day(time.September, 3)},
	{FamilyAL2, "v20241011", day(time.October, 11)},
	{FamilyBottlerocket, "v1.20.5", day(time.August, 6)},
	{FamilyBottlerocket, "v1.21.1", day(time.September, 4)},
	{FamilyBottlerocket, "v1.25.0", day(time.October, 10)},
}

// AMI is one image.
type AMI struct {
	ID          string
	Name        string
	Description string
	OwnerID     string
	Family      string // al2023, al2 or bottlerocket
	K8sVersion  string // e.g. 1.30
	Version     string // release, as in an alias: v20240807, v1.20.5
	Arch        string // x86_64 or arm64
	Variant     string // standard, nvidia or (al2023) neuron
	Created     time.Time
}

// flavours lists the (arch, variant) pairs a family publishes.
var flavours = map[string][][2]string{
	FamilyAL2023:       {{ArchX86_64, VariantStandard}, {ArchARM64, VariantStandard}, {ArchX86_64, VariantNvidia}, {ArchX86_64, VariantNeuron}},
	FamilyAL2:          {{ArchX86_64, VariantStandard}, {ArchARM64, VariantStandard}, {ArchX86_64, VariantNvidia}},
	FamilyBottlerocket: {{ArchX86_64, VariantStandard}, {ArchARM64, VariantStandard}, {ArchX86_64, VariantNvidia}, {ArchARM64, VariantNvidia}},
}

// Images returns the images of one release of family for one Kubernetes
// version, one per architecture and variant the family publishes, created
// on the release date (a few minutes apart, in a fixed order). Use it to
// publish a release newer than the built-in ones in a test.
func Images(family, k8sVersion, version string, created time.Time) []AMI {
	var out []AMI
	for i, f := range flavours[family] {
		a := AMI{
			Family:     family,
			K8sVersion: k8sVersion,
			Version:    normalizeVersion(family, version),
			Arch:       f[0],
			Variant:    f[1],
			Created:    created.Add(time.Duration(i+1)*7*time.Minute + minorOffset(k8sVersion)),
		}
		a.Name, a.OwnerID, a.Description = imageName(a), OwnerEKS, description(a)
		if family == FamilyBottlerocket {
			a.OwnerID = OwnerBottlerocket
		}
		a.ID = imageID(a.OwnerID, a.Name)
		out = append(out, a)
	}
	return out
}

// Catalog returns every image for DefaultK8sVersions.
func Catalog() []AMI { return CatalogFor() }

// CatalogFor returns every image of every release for the given Kubernetes
// versions (DefaultK8sVersions when none), sorted by family, Kubernetes
// version, creation time and name.
func CatalogFor(k8sVersions ...string) []AMI {
	if len(k8sVersions) == 0 {
		k8sVersions = DefaultK8sVersions
	}
	var out []AMI
	for _, k := range k8sVersions {
		for _, r := range Releases {
			out = append(out, Images(r.Family, k, r.Version, r.Date)...)
		}
	}
	sortAMIs(out)
	return out
}

// Parameters returns the SSM parameters (path → image ID) for the given
// Kubernetes versions (DefaultK8sVersions when none): a versioned
// parameter per image and a recommended/latest one per family, Kubernetes
// version, architecture and variant pointing at the newest release.
func Parameters(k8sVersions ...string) map[string]string {
	return ParametersOf(CatalogFor(k8sVersions...))
}

// ParametersOf returns the SSM parameters for a set of images: each image's
// versioned path, and the latest path of each (family, Kubernetes version,
// arch, variant) pointing at the newest (by Created, then Name) image.
func ParametersOf(amis []AMI) map[string]string {
	out := map[string]string{}
	newest := map[string]AMI{}
	for _, a := range amis {
		out[a.Path()] = a.ID
		key := a.LatestPath()
		if n, ok := newest[key]; !ok || a.Created.After(n.Created) || (a.Created.Equal(n.Created) && a.Name > n.Name) {
			newest[key] = a
		}
	}
	for p, a := range newest {
		out[p] = a.ID
	}
	return out
}

// Seed publishes the images and parameters for the given Kubernetes
// versions (DefaultK8sVersions when none): addImage is called for every
// image (in Catalog order), setParam for every parameter (sorted by path).
// Either may be nil.
func Seed(addImage func(AMI), setParam func(path, value string), k8sVersions ...string) {
	amis := CatalogFor(k8sVersions...)
	Publish(addImage, setParam, amis...)
}

// Publish adds images and sets their versioned parameters and, for each
// group, the latest parameter to the newest of the given images. Use it to
// publish a newer release: Publish(add, ssm.Set, Images("al2023", "1.30",
// "v20241121", t)...).
func Publish(addImage func(AMI), setParam func(path, value string), amis ...AMI) {
	if addImage != nil {
		for _, a := range amis {
			addImage(a)
		}
	}
	if setParam != nil {
		params := ParametersOf(amis)
		paths := make([]string, 0, len(params))
		for p := range params {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			setParam(p, params[p])
		}
	}
}

// Find returns the catalog image of a family, Kubernetes version, release
// (LatestVersion for the newest), arch and variant.
func Find(family, k8sVersion, version, arch, variant string) (AMI, bool) {
	var best AMI
	found := false
	version = normalizeVersion(family, version)
	for _, a := range CatalogFor(k8sVersion) {
		if a.Family != family || a.Arch != arch || a.Variant != variant {
			continue
		}
		if version == LatestVersion {
			if !found || a.Created.After(best.Created) {
				best, found = a, true
			}
		} else if a.Version == version {
			return a, true
		}
	}
	return best, found
}

// Path is the image's versioned SSM parameter.
func (a AMI) Path() string {
	p, _ := Path(a.Family, a.K8sVersion, a.Arch, a.Variant, a.Version)
	return p
}

// LatestPath is the recommended/latest SSM parameter of the image's group.
func (a AMI) LatestPath() string {
	p, _ := Path(a.Family, a.K8sVersion, a.Arch, a.Variant, LatestVersion)
	return p
}

// Path builds the SSM parameter name for an alias family@version:
// version LatestVersion gives the recommended/latest parameter, anything
// else the pinned one. It fails for an unknown family, arch or variant and
// for al2 arm64 nvidia, which AWS does not publish. (A valid path need not
// exist: this universe publishes no al2023 arm64 nvidia images.)
func Path(family, k8sVersion, arch, variant, version string) (string, error) {
	if arch != ArchX86_64 && arch != ArchARM64 {
		return "", fmt.Errorf("eksami: unknown architecture %q", arch)
	}
	if variant != VariantStandard && variant != VariantNvidia && variant != VariantNeuron {
		return "", fmt.Errorf("eksami: unknown variant %q", variant)
	}
	if variant == VariantNeuron && (family != FamilyAL2023 || arch != ArchX86_64) {
		return "", fmt.Errorf("eksami: only al2023 x86_64 has a neuron image (al2's gpu image and bottlerocket's standard one serve Neuron)")
	}
	latest := version == LatestVersion
	switch family {
	case FamilyAL2023:
		name := "recommended"
		if !latest {
			name = fmt.Sprintf("amazon-eks-node-al2023-%s-%s-%s-%s", arch, variant, k8sVersion, normalizeVersion(family, version))
		}
		return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/%s/%s/image_id", k8sVersion, arch, variant, name), nil
	case FamilyAL2:
		var dir, node string
		switch {
		case arch == ArchX86_64 && variant == VariantStandard:
			dir, node = "amazon-linux-2", "amazon-eks-node"
		case arch == ArchARM64 && variant == VariantStandard:
			dir, node = "amazon-linux-2-arm64", "amazon-eks-arm64-node"
		case arch == ArchX86_64 && variant == VariantNvidia:
			dir, node = "amazon-linux-2-gpu", "amazon-eks-gpu-node"
		default:
			return "", fmt.Errorf("eksami: al2 has no %s %s image", arch, variant)
		}
		name := "recommended"
		if !latest {
			name = fmt.Sprintf("%s-%s-%s", node, k8sVersion, normalizeVersion(family, version))
		}
		return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/%s/%s/image_id", k8sVersion, dir, name), nil
	case FamilyBottlerocket:
		flavour := "aws-k8s-" + k8sVersion
		if variant == VariantNvidia {
			flavour += "-nvidia"
		}
		v := "latest"
		if !latest {
			v = strings.TrimPrefix(normalizeVersion(family, version), "v")
		}
		return fmt.Sprintf("/aws/service/bottlerocket/%s/%s/%s/image_id", flavour, arch, v), nil
	}
	return "", fmt.Errorf("eksami: unknown family %q", family)
}

// normalizeVersion writes Bottlerocket versions with a leading v, as
// aliases (and GitHub) do; SSM paths drop it.
func normalizeVersion(family, version string) string {
	if family == FamilyBottlerocket && version != LatestVersion && !strings.HasPrefix(version, "v") {
		return "v" + version
	}
	return version
}

func imageName(a AMI) string {
	switch a.Family {
	case FamilyAL2023:
		return fmt.Sprintf("amazon-eks-node-al2023-%s-%s-%s-%s", a.Arch, a.Variant, a.K8sVersion, a.Version)
	case FamilyAL2:
		node := "amazon-eks-node"
		if a.Arch == ArchARM64 {
			node = "amazon-eks-arm64-node"
		} else if a.Variant == VariantNvidia {
			node = "amazon-eks-gpu-node"
		}
		return fmt.Sprintf("%s-%s-%s", node, a.K8sVersion, a.Version)
	default: // bottlerocket: aarch64 in names, arm64 in paths
		flavour := "aws-k8s-" + a.K8sVersion
		if a.Variant == VariantNvidia {
			flavour += "-nvidia"
		}
		arch := a.Arch
		if arch == ArchARM64 {
			arch = "aarch64"
		}
		sum := sha256.Sum256([]byte("bottlerocket-build|" + a.Version))
		return fmt.Sprintf("bottlerocket-%s-%s-%s-%s", flavour, arch, a.Version, hex.EncodeToString(sum[:4]))
	}
}

func description(a AMI) string {
	switch a.Family {
	case FamilyAL2023:
		return fmt.Sprintf("EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: %s, variant: %s, release: %s)", a.K8sVersion, a.Variant, a.Version)
	case FamilyAL2:
		return fmt.Sprintf("EKS Kubernetes Worker AMI with AmazonLinux2 image, (k8s: %s, variant: %s, release: %s)", a.K8sVersion, a.Variant, a.Version)
	}
	return fmt.Sprintf("Bottlerocket OS %s for Kubernetes %s (%s)", a.Version, a.K8sVersion, a.Variant)
}

// imageID is "ami-" and 17 hex digits, a stable hash of owner and name.
func imageID(owner, name string) string {
	sum := sha256.Sum256([]byte(owner + "/" + name))
	return "ami-" + hex.EncodeToString(sum[:])[:17]
}

// minorOffset staggers the creation times of different Kubernetes versions
// of the same release by a few seconds so that ordering is total.
func minorOffset(k8sVersion string) time.Duration {
	var n int
	for _, c := range k8sVersion {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
		}
	}
	return time.Duration(n%600) * time.Second
}

func sortAMIs(amis []AMI) {
	sort.Slice(amis, func(i, j int) bool {
		a, b := amis[i], amis[j]
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		if a.K8sVersion != b.K8sVersion {
			return a.K8sVersion < b.K8sVersion
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Name < b.Name
	})
}
