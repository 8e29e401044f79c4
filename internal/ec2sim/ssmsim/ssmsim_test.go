package ssmsim_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	smithy "github.com/aws/smithy-go"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/ec2sim/ssmsim"
)

func client(t *testing.T, h http.Handler) *ssm.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return ssm.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       ec2sim.HTTPClient(), // no net/http body-probe race

	}, func(o *ssm.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

const rec = "/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/recommended/image_id"

func TestGetParameterWithSDK(t *testing.T) {
	params := eksami.Parameters("1.30")
	h := ssmsim.New(params)
	t0 := time.Date(2024, 11, 21, 12, 0, 0, 0, time.UTC)
	h.Now = func() time.Time { return t0 }
	c := client(t, h)
	ctx := context.Background()

	out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(rec)})
	if err != nil {
		t.Fatal(err)
	}
	p := out.Parameter
	if aws.ToString(p.Value) != params[rec] || aws.ToString(p.Name) != rec || p.Version != 1 || p.Type != types.ParameterTypeString ||
		aws.ToString(p.DataType) != "aws:ec2:image" || aws.ToString(p.ARN) != "arn:aws:ssm:us-east-1::parameter"+rec || p.LastModifiedDate == nil {
		t.Errorf("parameter = %+v", p)
	}

	// Publish a newer release: recommended moves, version bumps.
	newer := eksami.Images(eksami.FamilyAL2023, "1.30", "v20241121", t0)
	eksami.Publish(nil, h.Set, newer...)
	out, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(rec)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Parameter.Value) != newer[0].ID || out.Parameter.Version != 2 || !out.Parameter.LastModifiedDate.Equal(t0) {
		t.Errorf("after publish: %+v (LastModified %v)", out.Parameter, out.Parameter.LastModifiedDate)
	}
	// Version selector still returns the old value.
	out, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(rec + ":1")})
	if err != nil || aws.ToString(out.Parameter.Value) != params[rec] || aws.ToString(out.Parameter.Selector) != ":1" {
		t.Errorf("selector: %+v, %v", out, err)
	}

	_, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/eks/optimized-ami/1.30/nope/image_id")})
	var nf *types.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("want ParameterNotFound, got %T %v", err, err)
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ParameterNotFound" {
		t.Errorf("error code: %v", err)
	}
	_, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(rec + ":9")})
	var vnf *types.ParameterVersionNotFound
	if !errors.As(err, &vnf) {
		t.Errorf("want ParameterVersionNotFound, got %v", err)
	}
	if h.Calls("GetParameter") != 5 || h.Calls("") != 5 {
		t.Errorf("calls = %d / %d", h.Calls("GetParameter"), h.Calls(""))
	}
}

func TestGetParametersWithSDK(t *testing.T) {
	h := ssmsim.New(map[string]string{"/a/b": "ami-0123456789abcdef0", "/a/c": "hello"})
	c := client(t, h)
	out, err := c.GetParameters(context.Background(), &ssm.GetParametersInput{Names: []string{"/a/b", "/a/missing", "arn:aws:ssm:us-east-1:123456789012:parameter/a/c"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Parameters) != 2 || aws.ToString(out.Parameters[1].Value) != "hello" || aws.ToString(out.Parameters[1].DataType) != "text" {
		t.Errorf("parameters = %+v", out.Parameters)
	}
	if len(out.InvalidParameters) != 1 || out.InvalidParameters[0] != "/a/missing" {
		t.Errorf("invalid = %v", out.InvalidParameters)
	}
}

func TestGetParametersByPathWithSDK(t *testing.T) {
	params := eksami.Parameters("1.30", "1.31")
	h := ssmsim.New(params)
	c := client(t, h)
	ctx := context.Background()

	// Recursive, paginated (10 per page).
	got := map[string]string{}
	pages := 0
	pg := ssm.NewGetParametersByPathPaginator(c, &ssm.GetParametersByPathInput{Path: aws.String("/aws/service/eks/optimized-ami/1.30"), Recursive: aws.Bool(true)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range out.Parameters {
			got[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	want := 0
	for p, v := range params {
		if strings.HasPrefix(p, "/aws/service/eks/optimized-ami/1.30/") {
			want++
			if got[p] != v {
				t.Errorf("%s = %q, want %q", p, got[p], v)
			}
		}
	}
	if len(got) != want || pages != (want+9)/10 {
		t.Errorf("got %d parameters in %d pages, want %d", len(got), pages, want)
	}
	if h.Calls("GetParametersByPath") != pages {
		t.Errorf("calls = %d", h.Calls("GetParametersByPath"))
	}

	// Non-recursive: only direct children.
	out, err := c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Parameters) != 1 || aws.ToString(out.Parameters[0].Name) != "/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id" {
		t.Errorf("non-recursive = %+v", out.Parameters)
	}
	out, err = c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/aws/service/bottlerocket")})
	if err != nil || len(out.Parameters) != 0 {
		t.Errorf("non-recursive parent: %+v %v", out, err)
	}
	_, err = c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/x"), MaxResults: aws.Int32(50)})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Errorf("MaxResults 50: %v", err)
	}
}

func TestInjectedFailure(t *testing.T) {
	h := ssmsim.New(map[string]string{"/a": "b"})
	c := client(t, h)
	h.Fail("GetParameter", 400, "ThrottlingException", "Rate exceeded", 1)
	_, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/a")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ThrottlingException" {
		t.Errorf("want throttling, got %v", err)
	}
	if _, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/a")}); err != nil {
		t.Errorf("second call: %v", err)
	}
}

func TestRawProtocol(t *testing.T) {
	h := ssmsim.New(nil)
	rr := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"Name":"/nope"}`))
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	h.ServeHTTP(rr, req)
	if rr.Code != 400 || rr.Header().Get("Content-Type") != "application/x-amz-json-1.1" ||
		!strings.Contains(rr.Body.String(), `"__type":"ParameterNotFound"`) || !strings.Contains(rr.Body.String(), `"message":`) {
		t.Errorf("%d %v %s", rr.Code, rr.Header(), rr.Body)
	}
	rr = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", "AmazonSSM.PutParameter")
	h.ServeHTTP(rr, req)
	if rr.Code != 400 || !strings.Contains(rr.Body.String(), "UnknownOperationException") {
		t.Errorf("%d %s", rr.Code, rr.Body)
	}
}
