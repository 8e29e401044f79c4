package launcher_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/ec2sim/iamsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/pricingsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/ssmsim"
	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/classes"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

const cluster = ec2sim.DefaultCluster

var testTypes = []string{"c5.large", "c5.xlarge", "c6g.large", "g4dn.xlarge", "inf1.2xlarge", "m5.large", "m5.xlarge", "m6g.large", "m6i.large", "r5.large", "t3.medium", "t4g.medium"}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a simulated region (EC2, SSM, Pricing, IAM) on a loopback HTTP
// server, and the cluster's EC2NodeClasses in a fake API client read
// through classes.Reader, as the service reads its informer.
type env struct {
	kube    client.Client
	sim     *ec2sim.Sim
	ssm     *ssmsim.Handler
	pricing *pricingsim.Handler
	iam     *iamsim.Handler
	url     string
	clock   *fakeClock
	fleets  *recorder
}

func newEnv(t testing.TB) *env {
	var specs []ec2catalog.Spec
	for _, n := range testTypes {
		s, ok := ec2catalog.Lookup(n)
		if !ok {
			t.Fatalf("%s not in embedded catalog", n)
		}
		specs = append(specs, s)
	}
	e := &env{
		sim:     ec2sim.New(ec2sim.Options{Catalog: specs}),
		ssm:     ssmsim.New(nil),
		pricing: pricingsim.New(specs, "us-east-1"),
		iam:     iamsim.New(ec2sim.AccountID, nil),
		clock:   &fakeClock{t: time.Now()},
		fleets:  &recorder{},
		kube:    fake.NewClientBuilder().WithScheme(classes.Scheme()).Build(),
	}
	e.sim.JSONHandlers["AmazonSSM"] = e.ssm
	e.sim.JSONHandlers[pricingsim.TargetPrefix] = e.pricing
	e.sim.QueryHandlers[iamsim.APIVersion] = e.iam
	e.iam.AddRole("KarpenterNodeRole")
	eksami.Seed(e.addImage, e.ssm.Set, "1.31")
	srv := httptest.NewServer(e.sim)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.putClass(t, ec2NodeClass("default", "al2023@latest"))
	return e
}

func (e *env) addImage(a eksami.AMI) {
	e.sim.AddImage(ec2sim.Image{ID: a.ID, Name: a.Name, OwnerID: a.OwnerID, Architecture: a.Arch, CreationDate: a.Created})
}

func (e *env) awsConfig() awsclient.Config {
	return awsclient.Config{
		Region: "us-east-1", EC2Endpoint: e.url, SSMEndpoint: e.url, PricingEndpoint: e.url, IAMEndpoint: e.url,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		MaxBackoff:  20 * time.Millisecond,
		HTTPClient:  &http.Client{Transport: e.fleets},
	}
}

// service starts a launcher against the simulator; each call is a fresh
// process as far as the launcher knows.
func (e *env) service(t testing.TB, mods ...func(*launcher.Config)) *launcher.Service {
	cfg := launcher.Config{AWS: e.awsConfig(), Classes: classes.Reader{Client: e.kube}, ClusterName: cluster, KubernetesVersion: "1.31", Now: e.clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	svc, err := launcher.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// ec2NodeClass is an EC2NodeClass of the simulated region's subnets,
// security groups and node role.
func ec2NodeClass(name, alias string) *awsv1.EC2NodeClass {
	return &awsv1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: awsv1.EC2NodeClassSpec{
			SubnetSelectorTerms:        []awsv1.SubnetSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: cluster}}},
			SecurityGroupSelectorTerms: []awsv1.SecurityGroupSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: cluster}}},
			AMISelectorTerms:           []awsv1.AMISelectorTerm{{Alias: alias}},
			Role:                       "KarpenterNodeRole",
			Tags:                       map[string]string{"team": "infra"},
		},
	}
}

// putClass creates or replaces an EC2NodeClass, counting generations as
// the API server does, and returns its name.
func (e *env) putClass(t testing.TB, nc *awsv1.EC2NodeClass) string {
	t.Helper()
	nc = nc.DeepCopy()
	cur := &awsv1.EC2NodeClass{}
	err := e.kube.Get(context.Background(), client.ObjectKey{Name: nc.Name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		nc.Generation = 1
		err = e.kube.Create(context.Background(), nc)
	case err == nil:
		nc.ResourceVersion, nc.Generation = cur.ResourceVersion, cur.Generation+1
		err = e.kube.Update(context.Background(), nc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return nc.Name
}

// classWith puts a class called name: the default class changed by mutate.
func (e *env) classWith(t testing.TB, name string, mutate func(*awsv1.EC2NodeClass)) string {
	t.Helper()
	nc := ec2NodeClass(name, "al2023@latest")
	mutate(nc)
	return e.putClass(t, nc)
}

// nodeClass is ec2NodeClass("default", alias) in the launcher's message,
// for ListInstanceTypes with an inline class.
func nodeClass(alias string) *launcherv1.NodeClass {
	return &launcherv1.NodeClass{
		Name:                       "default",
		SubnetSelectorTerms:        []*launcherv1.SelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: cluster}}},
		SecurityGroupSelectorTerms: []*launcherv1.SelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: cluster}}},
		AmiSelectorTerms:           []*launcherv1.SelectorTerm{{Alias: alias}},
		Role:                       "KarpenterNodeRole",
		Tags:                       map[string]string{"team": "infra"},
	}
}

func launchRequest(claim string, options ...string) *launcherv1.LaunchRequest {
	return &launcherv1.LaunchRequest{
		NodeClaim: claim, NodePool: "default", NodeClassName: "default",
		InstanceTypeOptions: options,
		Labels:              map[string]string{"karpenter.sh/nodepool": "default"},
	}
}

var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}()

// recorder is an HTTP transport that keeps the bodies of CreateFleet
// requests, to check what overrides the launcher asked for.
type recorder struct {
	mu     sync.Mutex
	fleets []url.Values
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Header.Get("X-Amz-Target") == "" {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") == "CreateFleet" {
			r.mu.Lock()
			r.fleets = append(r.fleets, v)
			r.mu.Unlock()
		}
	}
	return transport.RoundTrip(req)
}

// overrideTypes lists the instance types of every recorded CreateFleet.
func (r *recorder) overrideTypes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, v := range r.fleets {
		for k, vs := range v {
			if len(k) > 0 && bytes.HasSuffix([]byte(k), []byte(".InstanceType")) {
				out = append(out, vs...)
			}
		}
	}
	return out
}

func totalCalls(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
