package userdata

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"sigs.k8s.io/yaml"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

func ptr[T any](v T) *T { return &v }

// input is a NodeClaim of a NodePool with a label and a taint, and an
// EC2NodeClass that sets most kubelet fields.
func input(f Family, custom string) Input {
	return Input{
		Family: f, Cluster: "prod", Endpoint: "https://ABC.gr7.us-east-1.eks.amazonaws.com", CABundle: "Y2VydA==", CIDR: "10.100.0.0/16",
		Labels: map[string]string{"team": "a", "karpenter.sh/nodepool": "general"},
		Taints: []*typesv1.Taint{{Key: "dedicated", Value: "a", Effect: "NoSchedule"}, {Key: "gpu", Effect: "NoExecute"}},
		Kubelet: &launcherv1.KubeletConfiguration{
			MaxPods: 110, PodsPerCore: ptr(int32(4)), ClusterDns: []string{"10.100.0.10"},
			KubeReserved: map[string]string{"cpu": "100m"}, EvictionHard: map[string]string{"memory.available": "5%"},
			EvictionSoft: map[string]string{"memory.available": "10%"}, EvictionSoftGracePeriod: map[string]string{"memory.available": "1m0s"},
			EvictionMaxPodGracePeriod: ptr(int32(60)), ImageGcHighThresholdPercent: ptr(int32(85)), ImageGcLowThresholdPercent: ptr(int32(80)),
			CpuCfsQuota: ptr(false),
		},
		Custom: custom,
	}
}

func build(t *testing.T, in Input) string {
	t.Helper()
	out, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contentTypes(ps []part) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.contentType)
	}
	return out
}

// The user's MIME parts stay parts, in order, and Flotilla's NodeConfig
// comes last (Karpenter: "Karpenter will merge ... its NodeConfig last").
func TestAL2023KeepsTheUsersPartsAndAddsTheNodeConfigLast(t *testing.T) {
	custom := `MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
echo "hello from the user"

--BOUNDARY
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    config:
      shutdownGracePeriod: 30s

--BOUNDARY--
`
	parts, err := parseMIME(build(t, input(AL2023, custom)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ContentTypeShellScript, ContentTypeNodeConfig, ContentTypeNodeConfig}
	if got := contentTypes(parts); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("parts %v, want %v", got, want)
	}
	if !strings.Contains(parts[0].content, `echo "hello from the user"`) || !strings.Contains(parts[1].content, "shutdownGracePeriod: 30s") {
		t.Errorf("the user's parts changed: %q / %q", parts[0].content, parts[1].content)
	}
	var config struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Cluster struct {
				Name, APIServerEndpoint, CertificateAuthority, CIDR string
			} `json:"cluster"`
			Kubelet struct {
				Config map[string]any `json:"config"`
				Flags  []string       `json:"flags"`
			} `json:"kubelet"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict([]byte(parts[2].content), &config); err != nil {
		t.Fatalf("Flotilla's NodeConfig: %v\n%s", err, parts[2].content)
	}
	c := config.Spec
	if config.APIVersion != "node.eks.aws/v1alpha1" || config.Kind != "NodeConfig" || c.Cluster.Name != "prod" || c.Cluster.CertificateAuthority != "Y2VydA==" || c.Cluster.CIDR != "10.100.0.0/16" {
		t.Errorf("cluster %+v", c.Cluster)
	}
	if len(c.Kubelet.Flags) != 1 || c.Kubelet.Flags[0] != "--node-labels=karpenter.sh/nodepool=general,team=a" {
		t.Errorf("flags %v", c.Kubelet.Flags)
	}
	for key, want := range map[string]string{
		"maxPods": "110", "podsPerCore": "4", "clusterDNS": `["10.100.0.10"]`, "cpuCFSQuota": "false", "evictionMaxPodGracePeriod": "60",
		"imageGCHighThresholdPercent": "85", "imageGCLowThresholdPercent": "80", "evictionSoftGracePeriod": `{"memory.available":"1m0s"}`,
		"registerWithTaints": `[{"effect":"NoSchedule","key":"dedicated","value":"a"},{"effect":"NoExecute","key":"gpu"}]`,
	} {
		if got := jsonOf(c.Kubelet.Config[key]); got != want {
			t.Errorf("kubelet config %s = %s, want %s", key, got, want)
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// User data that is not MIME becomes one part whose type follows its
// content: a YAML mapping is a NodeConfig, anything else a shell script.
func TestAL2023WrapsPlainUserData(t *testing.T) {
	for custom, want := range map[string]string{
		"#!/bin/bash\necho hi\n": ContentTypeShellScript,
		"apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      maxPods: 20\n": ContentTypeNodeConfig,
	} {
		parts, err := parseMIME(build(t, input(AL2023, custom)))
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 2 || parts[0].contentType != want || parts[0].content != custom {
			t.Errorf("%q became %v", custom, contentTypes(parts))
		}
	}
}

// AL2: the user's script runs first, then bootstrap.sh with the kubelet's
// flags; both are parts of one MIME archive.
func TestAL2RunsTheUsersScriptBeforeBootstrap(t *testing.T) {
	in := input(AL2, "#!/bin/bash\necho first\n")
	in.RAID0 = true
	parts, err := parseMIME(build(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].content != "#!/bin/bash\necho first\n" {
		t.Fatalf("parts %v", parts)
	}
	script := parts[1].content
	for _, want := range []string{
		"/etc/eks/bootstrap.sh 'prod'", "--apiserver-endpoint 'https://ABC.gr7.us-east-1.eks.amazonaws.com'", "--b64-cluster-ca 'Y2VydA=='",
		"--dns-cluster-ip '10.100.0.10'", "--use-max-pods false", "--local-disks raid0",
		`--node-labels="karpenter.sh/nodepool=general,team=a"`, `--register-with-taints="dedicated=a:NoSchedule,gpu:NoExecute"`,
		"--max-pods=110", "--pods-per-core=4", `--eviction-hard="memory.available<5%"`, `--eviction-soft-grace-period="memory.available=1m0s"`,
		"--eviction-max-pod-grace-period=60", "--image-gc-high-threshold=85", "--image-gc-low-threshold=80", "--cpu-cfs-quota=false",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("bootstrap script lacks %s:\n%s", want, script)
		}
	}
}

// Bottlerocket: one TOML document; the user's settings are kept and
// Flotilla's win on conflict, so there is never a second
// [settings.kubernetes] table.
func TestBottlerocketMergesSettings(t *testing.T) {
	custom := `
[settings.kubernetes]
cluster-name = "someone-else"
max-pods = 5
allowed-unsafe-sysctls = ["net.core.somaxconn"]

[settings.kubernetes.node-labels]
team = "overridden"
extra = "kept"

[settings.kubernetes.node-taints]
old = ["x:NoSchedule"]

[settings.host-containers.admin]
enabled = true
`
	in := input(Bottlerocket, custom)
	in.RAID0 = true
	out := build(t, in)
	var doc struct {
		Settings struct {
			Kubernetes struct {
				ClusterName         string              `toml:"cluster-name"`
				APIServer           string              `toml:"api-server"`
				Certificate         string              `toml:"cluster-certificate"`
				MaxPods             int                 `toml:"max-pods"`
				ClusterDNS          string              `toml:"cluster-dns-ip"`
				Sysctls             []string            `toml:"allowed-unsafe-sysctls"`
				Labels              map[string]string   `toml:"node-labels"`
				Taints              map[string][]string `toml:"node-taints"`
				ImageGCHigh         string              `toml:"image-gc-high-threshold-percent"`
				CFSQuota            *bool               `toml:"cpu-cfs-quota-enforced"`
				EvictionSoftGrace   map[string]string   `toml:"eviction-soft-grace-period"`
				EvictionMaxPodGrace int                 `toml:"eviction-max-pod-grace-period"`
				KubeReserved        map[string]string   `toml:"kube-reserved"`
			} `toml:"kubernetes"`
			HostContainers map[string]map[string]any `toml:"host-containers"`
			Bootstrap      map[string]struct {
				Commands  [][]string `toml:"commands"`
				Mode      string     `toml:"mode"`
				Essential bool       `toml:"essential"`
			} `toml:"bootstrap-commands"`
		} `toml:"settings"`
	}
	if err := toml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not TOML: %v\n%s", err, out)
	}
	k := doc.Settings.Kubernetes
	if k.ClusterName != "prod" || k.APIServer == "" || k.Certificate != "Y2VydA==" || k.MaxPods != 110 || k.ClusterDNS != "10.100.0.10" {
		t.Errorf("cluster settings %+v", k)
	}
	if k.Labels["team"] != "a" || k.Labels["extra"] != "kept" || k.Labels["karpenter.sh/nodepool"] != "general" {
		t.Errorf("labels %v", k.Labels)
	}
	if len(k.Taints) != 2 || k.Taints["dedicated"][0] != "a:NoSchedule" || k.Taints["gpu"][0] != ":NoExecute" {
		t.Errorf("taints %v: the NodeClaim's replace the class's", k.Taints)
	}
	if len(k.Sysctls) != 1 || doc.Settings.HostContainers["admin"]["enabled"] != true {
		t.Errorf("the user's other settings were dropped:\n%s", out)
	}
	if k.ImageGCHigh != "85" || k.CFSQuota == nil || *k.CFSQuota || k.EvictionMaxPodGrace != 60 || k.EvictionSoftGrace["memory.available"] != "1m0s" || k.KubeReserved["cpu"] != "100m" {
		t.Errorf("kubelet settings %+v", k)
	}
	raid := doc.Settings.Bootstrap["000-mount-instance-storage"]
	if len(raid.Commands) != 2 || raid.Mode != "always" || !raid.Essential {
		t.Errorf("RAID0 bootstrap command %+v", raid)
	}
	if n := strings.Count(out, "[settings.kubernetes]"); n != 1 {
		t.Errorf("%d [settings.kubernetes] tables", n)
	}
}

func TestWindowsRunsTheUsersCommandsInOneBlock(t *testing.T) {
	out := build(t, input(Windows2022, "<powershell>\nWrite-Host hello\n</powershell>"))
	if strings.Count(out, "<powershell>") != 1 || strings.Count(out, "</powershell>") != 1 {
		t.Fatalf("want one PowerShell block:\n%s", out)
	}
	hello, boot := strings.Index(out, "Write-Host hello"), strings.Index(out, "Start-EKSBootstrap.ps1")
	if hello < 0 || boot < hello {
		t.Errorf("the user's commands must run before the bootstrap:\n%s", out)
	}
	for _, want := range []string{"-EKSClusterName 'prod'", "-Base64ClusterCA 'Y2VydA=='", "-DNSClusterIP '10.100.0.10'", `--max-pods=110`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
}

func TestCustomIsPassedThrough(t *testing.T) {
	custom := "anything at all\r\n--//\n"
	if got := build(t, input(Custom, custom)); got != custom {
		t.Errorf("Custom user data changed: %q", got)
	}
}

func TestMalformedUserDataIsRefused(t *testing.T) {
	for _, c := range []struct {
		f      Family
		custom string
	}{
		{AL2023, "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\nno boundary"},
		{AL2023, "MIME-Version: 1.0\nContent-Type: text/plain\n\nnot multipart"},
		{AL2, "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nno content type\n--b--\n"},
		{Bottlerocket, "[settings.kubernetes\ncluster-name = 1"},
		{Bottlerocket, "settings = 3"},
		{Bottlerocket, "[settings]\nkubernetes = \"x\""},
	} {
		err := Check(c.f, c.custom)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%s, %q) = %v, want ErrMalformed", c.f, c.custom, err)
		}
		if _, err := Build(input(c.f, c.custom)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Build(%s, %q) = %v, want ErrMalformed", c.f, c.custom, err)
		}
	}
}

// A part holding the default boundary's delimiter gets a longer boundary,
// so the archive still splits into the same parts.
func TestBoundaryAvoidsTheContent(t *testing.T) {
	custom := "#!/bin/bash\necho '--//'\n"
	parts, err := parseMIME(build(t, input(AL2023, custom)))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].content != custom {
		t.Errorf("parts %v", parts)
	}
}

func TestParseFamily(t *testing.T) {
	for in, want := range map[string]Family{"": AL2023, "AL2": AL2, "Bottlerocket": Bottlerocket, "Windows2025": Windows2025, "custom": Custom} {
		if got, err := ParseFamily(in); err != nil || got != want {
			t.Errorf("ParseFamily(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFamily("Ubuntu"); err == nil {
		t.Error("Ubuntu accepted (Karpenter v1 removed it)")
	}
}

// FuzzBuild: whatever the class's user data, building never panics; user
// data that Check accepts builds, and the output parses in its family's
// format.
func FuzzBuild(f *testing.F) {
	f.Add(0, "#!/bin/bash\necho hi")
	f.Add(1, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/x-shellscript\n\necho\n--b--\n")
	f.Add(2, "[settings.kubernetes]\nmax-pods = 3\n")
	f.Add(2, "[settings]\nx = 1\n[settings.kubernetes.node-labels]\na = \"b\"\n")
	f.Fuzz(func(t *testing.T, fam int, custom string) {
		families := []Family{AL2023, AL2, Bottlerocket, Windows2019, Custom}
		if fam < 0 {
			fam = -fam
		}
		f := families[fam%len(families)]
		in := input(f, custom)
		out, err := Build(in)
		if Check(f, custom) != nil {
			return
		}
		if err != nil {
			t.Fatalf("Check accepted %q for %s but Build failed: %v", custom, f, err)
		}
		switch f {
		case AL2023, AL2:
			if _, err := parseMIME(out); err != nil {
				t.Fatalf("output is not MIME: %v\n%s", err, out)
			}
		case Bottlerocket:
			var doc map[string]any
			if err := toml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("output is not TOML: %v\n%s", err, out)
			}
		}
	})
}

// The launch template's name hashes its user data, so the same input must
// render byte for byte the same (map order must not leak in).
func TestBuildIsDeterministic(t *testing.T) {
	for _, f := range Families {
		in := input(f, "")
		first := build(t, in)
		for range 20 {
			if build(t, in) != first {
				t.Fatalf("%s user data varies between renders", f)
			}
		}
	}
}
