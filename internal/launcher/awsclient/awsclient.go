// Package awsclient builds the launcher's aws-sdk-go-v2 clients (EC2, SSM,
// Pricing, IAM): credentials from the default chain (environment, shared config,
// IRSA web identity, IMDS), the standard retryer with exponential backoff and
// jitter (which retries throttling such as RequestLimitExceeded), optional
// endpoint overrides, and a middleware that counts every attempt in Prometheus.
package awsclient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"

	"github.com/flotilla-io/flotilla/internal/launcher/metrics"
)

// Config configures the clients.
type Config struct {
	// Region is the AWS region of EC2 and SSM.
	Region string
	// EC2Endpoint, SSMEndpoint, PricingEndpoint and IAMEndpoint override
	// the service endpoints when set (tests point them at a simulator).
	// The IAM client is built only when IAMEndpoint is set or EC2Endpoint
	// is not: a launcher pointed at EC2 VPC endpoints (or a simulator) is
	// assumed to have no route to IAM unless it is told an IAM endpoint.
	EC2Endpoint, SSMEndpoint, PricingEndpoint, IAMEndpoint string
	// IsolatedVPC skips the Pricing and IAM clients (neither API has a VPC
	// endpoint a private cluster can rely on): Clients.Pricing and
	// Clients.IAM stay nil.
	IsolatedVPC bool
	// MaxAttempts bounds attempts per call, retries included; 0 means 5.
	MaxAttempts int
	// MaxBackoff caps the jittered backoff between attempts; 0 means the
	// SDK default (20s).
	MaxBackoff time.Duration
	// Credentials replaces the default credential chain when set.
	Credentials aws.CredentialsProvider
	// HTTPClient replaces the SDK's HTTP client when set.
	HTTPClient *http.Client
	// Metrics receives a count and latency of every attempt; may be nil.
	Metrics *metrics.Metrics
}

// Clients are the AWS clients the launcher uses.
type Clients struct {
	EC2     *ec2.Client
	SSM     *ssm.Client
	Pricing *pricing.Client // nil in isolated-VPC mode
	// IAM is nil in isolated-VPC mode and when only EC2's endpoint is
	// overridden (see Config.IAMEndpoint).
	IAM *iam.Client
}

// New loads the AWS configuration and builds the clients.
func New(ctx context.Context, c Config) (*Clients, error) {
	if c.Region == "" {
		return nil, fmt.Errorf("awsclient: region is empty")
	}
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(c.Region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				if c.MaxBackoff > 0 {
					o.MaxBackoff = c.MaxBackoff
					o.Backoff = retry.NewExponentialJitterBackoff(c.MaxBackoff)
				}
			})
		}),
	}
	if c.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(c.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("awsclient: load AWS config: %w", err)
	}
	// Set after loading: LoadDefaultConfig refuses a plain *http.Client
	// when AWS_CA_BUNDLE is set.
	if c.HTTPClient != nil {
		cfg.HTTPClient = c.HTTPClient
	}
	instrument := countAttempts(c.Metrics)
	out := &Clients{
		EC2: ec2.NewFromConfig(cfg, func(o *ec2.Options) {
			setEndpoint(&o.BaseEndpoint, c.EC2Endpoint)
			o.APIOptions = append(o.APIOptions, instrument)
		}),
		SSM: ssm.NewFromConfig(cfg, func(o *ssm.Options) {
			setEndpoint(&o.BaseEndpoint, c.SSMEndpoint)
			o.APIOptions = append(o.APIOptions, instrument)
		}),
	}
	if !c.IsolatedVPC {
		out.Pricing = pricing.NewFromConfig(cfg, func(o *pricing.Options) {
			o.Region = PricingRegion(c.Region)
			setEndpoint(&o.BaseEndpoint, c.PricingEndpoint)
			o.APIOptions = append(o.APIOptions, instrument)
		})
	}
	if !c.IsolatedVPC && (c.IAMEndpoint != "" || c.EC2Endpoint == "") {
		out.IAM = iam.NewFromConfig(cfg, func(o *iam.Options) {
			setEndpoint(&o.BaseEndpoint, c.IAMEndpoint)
			o.APIOptions = append(o.APIOptions, instrument)
		})
	}
	return out, nil
}

func setEndpoint(dst **string, endpoint string) {
	if endpoint != "" {
		*dst = aws.String(endpoint)
	}
}

// PricingRegion is the Pricing API region that serves region: the API only
// runs in a few regions.
func PricingRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "ap-"):
		return "ap-south-1"
	case strings.HasPrefix(region, "eu-"):
		return "eu-central-1"
	case strings.HasPrefix(region, "cn-"):
		return "cn-northwest-1"
	default:
		return "us-east-1"
	}
}

// countAttempts adds a finalize-step middleware after the retry middleware,
// so it sees each attempt.
func countAttempts(m *metrics.Metrics) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		if m == nil {
			return nil
		}
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("FlotillaAttemptMetrics",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleFinalize(ctx, in)
				m.APICall(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), ErrorCode(err), time.Since(start).Seconds())
				return out, md, err
			}), middleware.After)
	}
}

// ErrorCode is the AWS error code of err ("" for nil, "unknown" for an error
// that carries none, such as a connection failure).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if ae, ok := errorAs(err); ok {
		return ae.ErrorCode()
	}
	return "unknown"
}
