package launcher_test

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"sigs.k8s.io/yaml"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// launchedUserData launches one m5.large with the class and returns the
// user data of the launch template EC2 got, decoded.
func launchedUserData(t *testing.T, e *env, class string) string {
	t.Helper()
	svc := e.service(t)
	req := launchRequest("ud-"+class, "m5.large")
	req.NodeClassName = class
	req.Taints = append(req.Taints, &typesv1.Taint{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"})
	if _, err := svc.Launch(ctx, req); err != nil {
		t.Fatal(err)
	}
	for _, lt := range e.sim.LaunchTemplates() {
		if lt.Data["ImageId"] != "" || lt.ImageID != "" {
			data, err := base64.StdEncoding.DecodeString(lt.UserData)
			if err != nil {
				t.Fatalf("launch template user data is not base64: %v", err)
			}
			return string(data)
		}
	}
	t.Fatal("no launch template")
	return ""
}

// mimeParts parses a MIME multi-part document with the standard library.
func mimeParts(t *testing.T, doc string) (types, bodies []string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("not MIME: %v\n%s", err, doc)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			return types, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		types, bodies = append(types, p.Header.Get("Content-Type")), append(bodies, string(b))
	}
}

// Each AMI family's EC2NodeClass with its own user data, launched through
// the SDK against ec2sim: the launch template's user data is in the
// family's format, with the class's part kept.
func TestUserDataPerFamilyReachesLaunchTemplate(t *testing.T) {
	t.Run("AL2023 MIME", func(t *testing.T) {
		e := newEnv(t)
		class := e.classWith(t, "al2023", func(nc *awsv1.EC2NodeClass) {
			nc.Spec.UserData = ptr("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"X\"\n\n--X\nContent-Type: text/x-shellscript\n\necho mine\n--X--\n")
			nc.Spec.Kubelet = &awsv1.KubeletConfiguration{MaxPods: ptr(int32(58)), CPUCFSQuota: ptr(false)}
		})
		types, bodies := mimeParts(t, launchedUserData(t, e, class))
		if len(types) != 2 || types[0] != "text/x-shellscript" || strings.TrimSpace(bodies[0]) != "echo mine" || types[1] != "application/node.eks.aws" {
			t.Fatalf("parts %v %q", types, bodies)
		}
		var nc struct {
			Spec struct {
				Cluster struct{ Name string } `json:"cluster"`
				Kubelet struct {
					Config map[string]any `json:"config"`
				} `json:"kubelet"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(bodies[1]), &nc); err != nil {
			t.Fatal(err)
		}
		if nc.Spec.Cluster.Name != cluster || nc.Spec.Kubelet.Config["maxPods"] != float64(58) || nc.Spec.Kubelet.Config["cpuCFSQuota"] != false {
			t.Errorf("NodeConfig %+v", nc.Spec)
		}
	})
	t.Run("AL2 script", func(t *testing.T) {
		e := newEnv(t)
		class := e.classWith(t, "al2", func(nc *awsv1.EC2NodeClass) {
			nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: "al2@latest"}}
			nc.Spec.UserData = ptr("#!/bin/bash\necho mine\n")
		})
		types, bodies := mimeParts(t, launchedUserData(t, e, class))
		if len(types) != 2 || bodies[0] != "#!/bin/bash\necho mine\n" || !strings.Contains(bodies[1], "/etc/eks/bootstrap.sh '"+cluster+"'") ||
			!strings.Contains(bodies[1], `--register-with-taints="dedicated=gpu:NoSchedule"`) {
			t.Fatalf("parts %v %q", types, bodies)
		}
	})
	t.Run("Bottlerocket TOML", func(t *testing.T) {
		e := newEnv(t)
		class := e.classWith(t, "br", func(nc *awsv1.EC2NodeClass) {
			nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: "bottlerocket@latest"}}
			nc.Spec.UserData = ptr("[settings.kubernetes]\ncluster-name = \"wrong\"\n[settings.host-containers.admin]\nenabled = true\n")
		})
		var doc map[string]any
		if err := toml.Unmarshal([]byte(launchedUserData(t, e, class)), &doc); err != nil {
			t.Fatal(err)
		}
		settings := doc["settings"].(map[string]any)
		k8s := settings["kubernetes"].(map[string]any)
		if k8s["cluster-name"] != cluster || settings["host-containers"] == nil {
			t.Errorf("settings %v", settings)
		}
	})
	for _, c := range []struct{ family, want string }{{"Custom", "my own bootstrap\n"}, {"Windows2022", "<powershell>"}} {
		t.Run(c.family+" by id", func(t *testing.T) {
			e := newEnv(t)
			e.sim.AddImage(ec2sim.Image{ID: "ami-0123456789abcdef0", Name: "mine", OwnerID: ec2sim.AccountID, Architecture: "x86_64", CreationDate: time.Now().Add(-time.Hour)})
			class := e.classWith(t, strings.ToLower(c.family), func(nc *awsv1.EC2NodeClass) {
				nc.Spec.AMIFamily = ptr(c.family)
				nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{ID: "ami-0123456789abcdef0"}}
				nc.Spec.UserData = ptr("my own bootstrap\n")
			})
			got := launchedUserData(t, e, class)
			if c.family == "Custom" && got != c.want || !strings.HasPrefix(got, c.want) {
				t.Errorf("user data %q", got)
			}
		})
	}
}

// User data its family cannot read makes the class unusable with
// InvalidArgument naming the field, before anything is launched.
func TestMalformedUserDataIsInvalidArgument(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	class := e.classWith(t, "bad-toml", func(nc *awsv1.EC2NodeClass) {
		nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: "bottlerocket@latest"}}
		nc.Spec.UserData = ptr("[settings.kubernetes\n")
	})
	req := launchRequest("bad-1", "m5.large")
	req.NodeClassName = class
	_, err := svc.Launch(ctx, req)
	if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "node_class.user_data") {
		t.Fatalf("Launch = %v, want InvalidArgument naming node_class.user_data", err)
	}
	if n := len(e.sim.Instances()); n != 0 {
		t.Errorf("%d instances launched", n)
	}
}

func ptr[T any](v T) *T { return &v }
