// Package cluster runs Flotilla end to end on a real local control plane
// for tests: etcd, kube-apiserver, kube-scheduler, kube-controller-manager
// and kwok (integration/controlplane), the EC2 simulator with its node
// bridge (`flotilla ec2sim --kubeconfig`, which registers a Node for every
// running simulated instance), and the Flotilla services as real processes
// built from this checkout, each on free loopback ports.
//
// Every process logs to a file under LogDir; a failing test prints
// LogTails. Nothing here is for production.
package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"google.golang.org/grpc"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flotilla-io/flotilla/integration/controlplane"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/interruption/sqstest"
	"github.com/flotilla-io/flotilla/internal/localca"
	"github.com/flotilla-io/flotilla/internal/server"
)

// Cluster is a running control plane with Flotilla on it.
type Cluster interface {
	// Kube is an admin clientset.
	Kube() kubernetes.Interface
	// RESTConfig reaches the API server as cluster admin.
	RESTConfig() *rest.Config
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig() string
	// ControlPlane is the control plane the cluster runs on.
	ControlPlane() *controlplane.ControlPlane
	// Name is the cluster name the services and ec2sim use.
	Name() string
	// Region is the simulated AWS region.
	Region() string
	// EC2Endpoint is ec2sim's URL (EC2, SSM and Pricing APIs).
	EC2Endpoint() string
	// EC2 is a real SDK client for ec2sim.
	EC2() *ec2.Client
	// SQSEndpoint is the SQS emulator's URL, or "" when the interruption
	// service is not running (InterruptionSkipped says why).
	SQSEndpoint() string
	// InterruptionQueueURL is the queue ec2sim puts EventBridge events on
	// and the interruption service polls, or "".
	InterruptionQueueURL() string
	// InterruptionSkipped says why the interruption service was not
	// started (Node.js missing for the SQS emulator), or "".
	InterruptionSkipped() string
	// Services lists the Flotilla services running.
	Services() []string
	// Addr is a running service's gRPC address, or "".
	Addr(service string) string
	// MetricsAddr is a running service's /metrics and /healthz address, or "".
	MetricsAddr(service string) string
	// ClientTLS issues a client certificate for identity (such as
	// "operator", or "interruption" to act as that service) from the
	// cluster's throwaway CA and returns its files.
	ClientTLS(identity string) (server.TLSFiles, error)
	// DialAs connects to a running service over mutual TLS with a client
	// certificate for identity; the services authorize calls by it.
	DialAs(service, identity string) (*grpc.ClientConn, error)
	// LogDir holds one <process>.log per Flotilla process (the control
	// plane's logs are in ControlPlane().WorkDir).
	LogDir() string
	// Logs copies every log into dir.
	Logs(dir string) error
	// LogTails returns the last n lines of every log, for failure reports.
	LogTails(n int) string
	// Pid is the OS process id of a running Flotilla process (a service or
	// "ec2sim"), or 0.
	Pid(name string) int
	// Kill ends a Flotilla process with SIGKILL (no graceful drain) and
	// waits for it to exit.
	Kill(name string) error
	// Restart starts a Flotilla process again (after Kill, or stopping it
	// first if it runs) with the same binary, flags, environment and
	// addresses, appending to its log, and waits until it is ready.
	Restart(ctx context.Context, name string) error
	// StartTimes says how long each phase of Start took: build-controlplane,
	// build-flotilla, controlplane, sqs, ec2sim and services.
	StartTimes() map[string]time.Duration
	// Stop ends every process, newest first, and removes a work directory
	// Start created. It is safe to call more than once.
	Stop()
}

// Options configure Start. The zero value works from anywhere in the
// checkout.
type Options struct {
	// RepoRoot is the Flotilla checkout; default FindRepoRoot().
	RepoRoot string
	// WorkDir receives data and logs; default a temporary directory that
	// Stop removes.
	WorkDir string
	// Name is the cluster name; default ec2sim.DefaultCluster, the name the
	// simulator's subnets and security group are tagged for.
	Name string
	// ControlPlaneBinDir skips hack/controlplane.sh when set.
	ControlPlaneBinDir string
	// FlotillaBinDir skips building Flotilla when set; it must hold the
	// flotilla binary and those of the services to run.
	FlotillaBinDir string
	// Services limits the services started (default: every one built:
	// solver, launcher, watcher and interruption; the interruption service
	// also needs Node.js for the SQS emulator and is skipped without it).
	Services []string
	// ExtraArgs adds flags per process name (a service or "ec2sim").
	ExtraArgs map[string][]string
	// NodeSyncInterval is the node bridge's polling period (default 300ms).
	NodeSyncInterval time.Duration
	// Timeout bounds each readiness wait (default 2 minutes).
	Timeout time.Duration
}

// startable are the services Start knows the flags of.
var startable = []string{Solver, Launcher, Watcher, Interruption}

const region = "us-east-1"

// NodeKubernetesVersion is the Kubernetes version of the nodes: the one
// the launcher resolves AMI aliases for and ec2sim publishes images of.
const NodeKubernetesVersion = "1.31"

// InterruptionQueue is the name of the local interruption queue.
const InterruptionQueue = "flotilla-interruption"

type cluster struct {
	opts        Options
	cp          *controlplane.ControlPlane
	workDir     string
	ownsWorkDir bool
	logDir      string
	binDir      string
	ec2URL      string
	ec2         *ec2.Client
	addrs       map[string]string
	metrics     map[string]string
	mu          sync.Mutex
	procs       []*process
	times       map[string]time.Duration
	stopOnce    sync.Once
	sqs         *sqstest.Server
	sqsStop     func()
	queueURL    string
	sqsSkipped  string
	// ca issues every service's certificate (mutual TLS, as in a real
	// deployment) into tlsDir.
	ca      *localca.CA
	tlsDir  string
	clients map[string]server.TLSFiles // issued client certificates, by identity
}

// Start builds what is missing, starts the control plane, ec2sim and the
// services, and waits until each is ready. On error the returned Cluster
// is non-nil (for LogTails) and must still be stopped.
func Start(ctx context.Context, opts Options) (Cluster, error) {
	c := &cluster{opts: opts, addrs: map[string]string{}, metrics: map[string]string{}, times: map[string]time.Duration{}}
	if err := c.setup(); err != nil {
		return c, err
	}
	var built []string
	steps := []struct {
		name string
		run  func() error
	}{
		{"build-controlplane", func() error { return c.buildControlPlane(ctx) }},
		{"build-flotilla", func() (err error) { built, err = c.buildFlotilla(ctx); return err }},
		{"controlplane", func() error { return c.startControlPlane(ctx) }},
		{"sqs", func() error { return c.startSQS(ctx, built) }},
		{"ec2sim", func() error { return c.startEC2Sim(ctx) }},
		{"services", func() error { return c.startServices(ctx, built) }},
	}
	for _, step := range steps {
		start := time.Now()
		err := step.run()
		c.times[step.name] = time.Since(start)
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *cluster) setup() error {
	if c.opts.Name == "" {
		c.opts.Name = ec2sim.DefaultCluster
	}
	if c.opts.Timeout == 0 {
		c.opts.Timeout = 2 * time.Minute
	}
	if c.opts.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return err
		}
		c.opts.RepoRoot = root
	}
	c.workDir = c.opts.WorkDir
	if c.workDir == "" {
		dir, err := os.MkdirTemp("", "flotilla-cluster-")
		if err != nil {
			return err
		}
		c.workDir, c.ownsWorkDir = dir, true
	}
	c.logDir = filepath.Join(c.workDir, "logs")
	c.tlsDir = filepath.Join(c.workDir, "tls")
	ca, err := localca.New("")
	if err != nil {
		return err
	}
	c.ca = ca
	return os.MkdirAll(c.logDir, 0o750)
}

// OperatorIdentity is the client identity of the person at the keyboard:
// it may call every read-only method, and nothing that changes anything.
const OperatorIdentity = "operator"

// ClientTLS issues each identity's certificate once: rewriting the files
// would make every connection using them reload them.
func (c *cluster) ClientTLS(identity string) (server.TLSFiles, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if files, ok := c.clients[identity]; ok {
		return files, nil
	}
	files, err := c.ca.WriteFiles(filepath.Join(c.tlsDir, "clients"), identity)
	if err != nil {
		return server.TLSFiles{}, err
	}
	if c.clients == nil {
		c.clients = map[string]server.TLSFiles{}
	}
	c.clients[identity] = files
	return files, nil
}

func (c *cluster) DialAs(service, identity string) (*grpc.ClientConn, error) {
	files, err := c.ClientTLS(identity)
	if err != nil {
		return nil, err
	}
	return server.DialWith(c.Addr(service), server.DialOptions{TLS: files, ServerIdentity: service, MaxMessageBytes: 64 << 20})
}

func (c *cluster) buildControlPlane(ctx context.Context) error {
	if c.opts.ControlPlaneBinDir != "" {
		return nil
	}
	dir, err := BuildControlPlane(ctx, c.opts.RepoRoot)
	if err != nil {
		return err
	}
	c.opts.ControlPlaneBinDir = dir
	return nil
}

// buildFlotilla returns the services available to start.
func (c *cluster) buildFlotilla(ctx context.Context) ([]string, error) {
	if c.opts.FlotillaBinDir != "" {
		c.binDir = c.opts.FlotillaBinDir
		var built []string
		for _, s := range services {
			if fileExists(filepath.Join(c.binDir, s)) {
				built = append(built, s)
			}
		}
		return built, nil
	}
	dir, built, err := BuildFlotilla(ctx, c.opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	c.binDir = dir
	return built, nil
}

func (c *cluster) startControlPlane(ctx context.Context) error {
	cp, err := controlplane.Start(ctx, controlplane.Options{
		BinDir:            c.opts.ControlPlaneBinDir,
		WorkDir:           filepath.Join(c.workDir, "controlplane"),
		ControllerManager: true,
		Kwok:              true,
	})
	c.cp = cp
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	crds := filepath.Join(c.opts.RepoRoot, "deploy", "crds")
	if !fileExists(crds) {
		return nil
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	if _, err := installCRDs(ctx, dyn, crds); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	return nil
}

func (c *cluster) startEC2Sim(ctx context.Context) error {
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	c.ec2URL = "http://" + addrs[0]
	c.ec2 = ec2.New(ec2.Options{
		Region:           region,
		BaseEndpoint:     aws.String(c.ec2URL),
		Credentials:      credentials.NewStaticCredentialsProvider(fakeAccessKeyID, fakeSecretAccessKey, ""),
		HTTPClient:       ec2sim.HTTPClient(),
		RetryMaxAttempts: 3,
	})
	args := []string{"ec2sim", "--listen", addrs[0], "--region", region,
		"--kubeconfig", c.cp.Kubeconfig, "--cluster-name", c.opts.Name}
	if c.opts.NodeSyncInterval > 0 {
		args = append(args, "--node-sync-interval", c.opts.NodeSyncInterval.String())
	}
	if c.queueURL != "" {
		args = append(args, "--events-queue", c.queueURL, "--sqs-endpoint", c.sqs.Endpoint)
	}
	args = append(args, c.opts.ExtraArgs[EC2Sim]...)
	p, err := startProcess(spec{name: EC2Sim, bin: filepath.Join(c.binDir, Flotilla), logDir: c.logDir, args: args}, false)
	if err != nil {
		return err
	}
	c.addProc(p)
	return c.waitEC2Sim(ctx, p)
}

// startSQS starts the SQS emulator and creates the interruption queue when
// the interruption service is to run and Node.js is installed.
func (c *cluster) startSQS(ctx context.Context, built []string) error {
	if !slices.Contains(built, Interruption) || (c.opts.Services != nil && !slices.Contains(c.opts.Services, Interruption)) {
		c.sqsSkipped = "the interruption service was not asked for"
		return nil
	}
	if err := sqstest.Available(); err != nil {
		c.sqsSkipped = err.Error()
		return nil
	}
	srv, stop, err := sqstest.Run()
	if err != nil {
		return fmt.Errorf("SQS emulator: %w", err)
	}
	c.sqs, c.sqsStop = srv, stop
	// A short visibility timeout: a message whose action failed comes back
	// within seconds.
	url, err := srv.NewQueue(ctx, InterruptionQueue, 10*time.Second)
	if err != nil {
		return fmt.Errorf("SQS emulator: %w", err)
	}
	c.queueURL = url
	return nil
}

// waitEC2Sim waits until ec2sim answers a real SDK call.
func (c *cluster) waitEC2Sim(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	for {
		_, err := c.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
		if err == nil {
			return nil
		}
		if exitErr := p.exited(); exitErr != nil {
			return exitErr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ec2sim not answering: %w", errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startServices starts solver and launcher, then the watcher that needs
// both, each after the previous ones report healthy.
func (c *cluster) startServices(ctx context.Context, built []string) error {
	want := c.opts.Services
	if want == nil {
		want = startable
	}
	for _, wave := range [][]string{{Solver, Launcher}, {Watcher}, {Interruption}} {
		var started []*process
		for _, s := range wave {
			if !slices.Contains(want, s) || !slices.Contains(built, s) {
				continue
			}
			if s == Interruption && c.queueURL == "" {
				continue
			}
			p, err := c.startService(s)
			if err != nil {
				return err
			}
			started = append(started, p)
		}
		for _, p := range started {
			if err := c.waitReady(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cluster) startService(name string) (*process, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	files, err := c.ca.WriteFiles(c.tlsDir, name, localca.LocalHosts...)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--grpc-addr=" + addrs[0], "--metrics-addr=" + addrs[1], "--drain-period=0s", "--reflection"}, localca.Args(files)...)
	switch name {
	case Launcher:
		ca, err := os.ReadFile(filepath.Join(c.cp.WorkDir, "certs", "apiserver.crt"))
		if err != nil {
			return nil, fmt.Errorf("API server CA for the launcher: %w", err)
		}
		args = append(args, "--kubeconfig="+c.cp.Kubeconfig, "--cluster-name="+c.opts.Name, "--region="+region,
			"--ec2-endpoint="+c.ec2URL, "--ssm-endpoint="+c.ec2URL, "--pricing-endpoint="+c.ec2URL,
			"--cluster-endpoint="+c.cp.Config.Host, "--cluster-ca-bundle="+base64.StdEncoding.EncodeToString(ca),
			"--cluster-cidr=10.0.0.0/24",
			// ec2sim publishes the EKS AMI parameters of 1.31; the local
			// API server's own version is newer.
			"--kubernetes-version="+NodeKubernetesVersion)
	case Watcher:
		args = append(args, "--kubeconfig="+c.cp.Kubeconfig, "--cluster-name="+c.opts.Name,
			"--solver-addr="+c.addrs[Solver], "--launcher-addr="+c.addrs[Launcher], "--leader-elect=false")
	case Interruption:
		args = append(args, "--interruption-queue="+c.queueURL, "--sqs-endpoint="+c.sqs.Endpoint,
			"--region="+region, "--cluster-name="+c.opts.Name, "--account-id="+ec2sim.AccountID,
			"--watcher-addr="+c.addrs[Watcher], "--launcher-addr="+c.addrs[Launcher], "--wait-time=1s")
	}
	args = append(args, c.opts.ExtraArgs[name]...)
	env := []string{"AWS_REGION=" + region}
	p, err := startProcess(spec{name: name, bin: filepath.Join(c.binDir, name), logDir: c.logDir, env: env, args: args}, false)
	if err != nil {
		return nil, err
	}
	c.addProc(p)
	c.addrs[name], c.metrics[name] = addrs[0], addrs[1]
	return p, nil
}

// waitReady waits until a service answers gRPC health SERVING, or ec2sim
// an EC2 call.
func (c *cluster) waitReady(ctx context.Context, p *process) error {
	if p.name == EC2Sim {
		return c.waitEC2Sim(ctx, p)
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	conn, err := c.DialAs(p.name, OperatorIdentity)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := waitHealthy(wctx, p, conn); err != nil {
		return fmt.Errorf("%s not healthy (see %s): %w", p.name, filepath.Join(c.logDir, p.name+".log"), err)
	}
	return nil
}

func (c *cluster) addProc(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs = append(c.procs, p)
}

// proc is the newest process named name, or nil.
func (c *cluster) proc(name string) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.procs[i].name == name {
			return c.procs[i]
		}
	}
	return nil
}

func (c *cluster) Pid(name string) int {
	p := c.proc(name)
	if p == nil || !p.running() {
		return 0
	}
	return p.cmd.Process.Pid
}

func (c *cluster) Kill(name string) error {
	p := c.proc(name)
	if p == nil {
		return fmt.Errorf("no process %q", name)
	}
	p.kill()
	return nil
}

func (c *cluster) Restart(ctx context.Context, name string) error {
	old := c.proc(name)
	if old == nil {
		return fmt.Errorf("no process %q", name)
	}
	if old.running() {
		old.stop(10 * time.Second)
	}
	p, err := startProcess(old.spec, true)
	if err != nil {
		return err
	}
	c.mu.Lock()
	for i, q := range c.procs {
		if q == old {
			c.procs[i] = p
		}
	}
	c.mu.Unlock()
	return c.waitReady(ctx, p)
}

func (c *cluster) Kube() kubernetes.Interface               { return c.cp.Client }
func (c *cluster) RESTConfig() *rest.Config                 { return rest.CopyConfig(c.cp.Config) }
func (c *cluster) Kubeconfig() string                       { return c.cp.Kubeconfig }
func (c *cluster) ControlPlane() *controlplane.ControlPlane { return c.cp }
func (c *cluster) Name() string                             { return c.opts.Name }
func (c *cluster) Region() string                           { return region }
func (c *cluster) EC2Endpoint() string                      { return c.ec2URL }
func (c *cluster) EC2() *ec2.Client                         { return c.ec2 }
func (c *cluster) Addr(service string) string               { return c.addrs[service] }
func (c *cluster) MetricsAddr(service string) string        { return c.metrics[service] }
func (c *cluster) LogDir() string                           { return c.logDir }
func (c *cluster) InterruptionQueueURL() string             { return c.queueURL }
func (c *cluster) InterruptionSkipped() string              { return c.sqsSkipped }

func (c *cluster) SQSEndpoint() string {
	if c.sqs == nil {
		return ""
	}
	return c.sqs.Endpoint
}

func (c *cluster) StartTimes() map[string]time.Duration {
	out := make(map[string]time.Duration, len(c.times))
	for k, v := range c.times {
		out[k] = v
	}
	return out
}

func (c *cluster) Services() []string {
	var out []string
	for _, s := range services {
		if c.addrs[s] != "" {
			out = append(out, s)
		}
	}
	return out
}

// logFiles are the control plane's logs, then the Flotilla processes'.
func (c *cluster) logFiles() []string {
	var files []string
	if c.cp != nil {
		cpLogs, _ := filepath.Glob(filepath.Join(c.cp.WorkDir, "*.log"))
		files = append(files, cpLogs...)
	}
	own, _ := filepath.Glob(filepath.Join(c.logDir, "*.log"))
	return append(files, own...)
}

func (c *cluster) Logs(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	var errs []error
	for _, f := range c.logFiles() {
		errs = append(errs, copyFile(f, filepath.Join(dir, filepath.Base(f))))
	}
	return errors.Join(errs...)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func (c *cluster) LogTails(n int) string {
	var b strings.Builder
	for _, f := range c.logFiles() {
		fmt.Fprintf(&b, "--- last %d lines of %s:\n%s\n", n, filepath.Base(f), tail(f, n))
	}
	return b.String()
}

func (c *cluster) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		procs := c.procs
		c.procs = nil
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			if procs[i].running() {
				procs[i].stop(10 * time.Second)
			} else {
				_ = procs[i].log.Close() // already closed after Kill; harmless
			}
		}
		if c.sqsStop != nil {
			c.sqsStop()
		}
		if c.cp != nil {
			c.cp.Stop()
		}
		if c.ownsWorkDir {
			_ = os.RemoveAll(c.workDir)
		}
	})
}
