package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEC2SimCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEC2SimContext(ctx, []string{"--listen", "127.0.0.1:0", "--k8s-versions", "1.32", "--vcpu-quota", "G=0,spot:P=8"}, &stdout, &stderr)
	}()
	addrRE := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		url = addrRE.FindString(stdout.String())
		select {
		case code := <-done:
			t.Fatalf("exited %d: %s", code, stderr.String())
		default:
		}
	}
	if url == "" {
		t.Fatalf("no address printed: %q", stdout.String())
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKID", "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = ec2sim.HTTPClient()
	ec := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(url) })
	it, err := ec.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large"}})
	if err != nil || len(it.InstanceTypes) != 1 {
		t.Fatalf("DescribeInstanceTypes: %v %v", it, err)
	}
	sm := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(url) })
	p, err := sm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/eks/optimized-ami/1.32/amazon-linux-2023/x86_64/standard/recommended/image_id")})
	if err != nil {
		t.Fatalf("GetParameter: %v", err)
	}
	im, err := ec.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{*p.Parameter.Value}})
	if err != nil || len(im.Images) != 1 || !strings.Contains(*im.Images[0].Name, "al2023") {
		t.Fatalf("DescribeImages %s: %v %v", *p.Parameter.Value, im, err)
	}
	ic := iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(url) })
	if _, err := ic.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("nodes")}); err != nil {
		t.Fatalf("CreateInstanceProfile: %v", err)
	}
	if _, err := ic.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
		InstanceProfileName: aws.String("nodes"), RoleName: aws.String("KarpenterNodeRole"),
	}); err != nil {
		t.Fatalf("AddRoleToInstanceProfile with the default role: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}

func TestEC2SimBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"ec2sim", "--catalog", "/nonexistent.csv"}, &out, &errb); code != exitBadInput {
		t.Errorf("missing catalog: exit %d", code)
	}
	if code := run([]string{"ec2sim", "-h"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "test") ||
		!strings.Contains(out.String(), "--vcpu-quota") {
		t.Errorf("help: exit %d", code)
	}
	for _, q := range []string{"Q=1", "G", "G=-1", "reserved:G=0"} {
		errb.Reset()
		if code := run([]string{"ec2sim", "--listen", "127.0.0.1:0", "--vcpu-quota", q}, &out, &errb); code != exitBadInput ||
			!strings.Contains(errb.String(), "--vcpu-quota") {
			t.Errorf("--vcpu-quota %s: exit %d, stderr %q", q, code, errb.String())
		}
	}
}

func TestEC2SimNodeBridgeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"ec2sim", "--listen", "127.0.0.1:0", "--cluster-name", "c"},
		{"ec2sim", "--listen", "127.0.0.1:0", "--kubeconfig", "/nonexistent/kubeconfig"},
		{"ec2sim", "--listen", "127.0.0.1:0", "--kubeconfig", "/nonexistent/kubeconfig", "--node-sync-interval", "0s"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitBadInput {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitBadInput, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"ec2sim", "-h"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "--kubeconfig") {
		t.Errorf("help does not document --kubeconfig: exit %d", code)
	}
}
