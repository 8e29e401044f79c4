// Package sqstest starts a third-party SQS emulator for tests: the npm
// package local-aws-sqs, which speaks the JSON protocol (x-amz-json-1.0,
// X-Amz-Target AmazonSQS.*) that aws-sdk-go-v2's SQS client uses by
// default. The package is installed once into a cache outside the
// repository ($FLOTILLA_NPM_CACHE, default ~/.cache/flotilla/npm) with npm;
// tests skip, saying why, when node or npm is not installed.
package sqstest

import (
	"bufio"
	"context"
	_ "embed" // server.js
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Package is the emulator's npm package and pinned version.
const Package = "local-aws-sqs@2.0.2"

// Region is the region the clients use.
const Region = "us-east-1"

//go:embed server.js
var serverJS []byte

// Server is a running emulator.
type Server struct {
	// Endpoint is the emulator's base URL, such as http://127.0.0.1:41234.
	Endpoint string
	// Client is an SQS client on Endpoint with dummy credentials.
	Client *sqs.Client
}

// CacheDir is where the npm package is installed.
func CacheDir() (string, error) {
	if d := os.Getenv("FLOTILLA_NPM_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(home, "flotilla", "npm"), nil
}

// Install installs the emulator package into CacheDir unless it is there
// already, and returns the package's directory. Concurrent installs (test
// binaries of several packages) are serialised with a file lock.
func Install() (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	pkgDir := filepath.Join(dir, "node_modules", "local-aws-sqs")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("npm cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("npm cache lock: %w", err)
	}
	defer lock.Close() //nolint:errcheck // closing releases the lock

	fd := int(lock.Fd()) //nolint:gosec // a file descriptor fits an int
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("npm cache lock: %w", err)
	}
	if _, err := os.Stat(filepath.Join(pkgDir, "dist", "index.js")); err == nil {
		return pkgDir, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir, Package) //nolint:gosec // our cache dir and pinned package
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install %s: %w: %s", Package, err, strings.TrimSpace(string(out)))
	}
	return pkgDir, nil
}

// Start installs and starts the emulator for the test, skipping it when
// node or npm is missing, and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if err := Available(); err != nil {
		tb.Skipf("sqstest: %v", err)
	}
	s, stop, err := Run()
	if err != nil {
		tb.Fatalf("sqstest: %v", err)
	}
	tb.Cleanup(stop)
	return s
}

// Available says why the emulator cannot run here (node or npm missing),
// or returns nil when it can.
func Available() error {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed; the SQS emulator (npm %s) needs Node.js", tool, Package)
		}
	}
	return nil
}

// Run installs and starts the emulator outside a test (the local cluster
// and the demo use it) and returns it with the function that stops it.
func Run() (*Server, func(), error) {
	pkgDir, err := Install()
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "sqstest")
	if err != nil {
		return nil, nil, fmt.Errorf("temp dir: %w", err)
	}
	script := filepath.Join(tmp, "server.js")
	if err := os.WriteFile(script, serverJS, 0o600); err != nil {
		return nil, nil, fmt.Errorf("write server.js: %w", err)
	}
	cmd := exec.Command("node", script, pkgDir) //nolint:gosec,noctx // our own script and package path; stopped through stdin
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stdout: %w", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start node: %w", err)
	}
	stop := func() {
		_ = stdin.Close() // the script exits when stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(tmp)
	}
	port, err := readPort(stdout)
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("emulator did not start: %w (stderr: %s)", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	endpoint := "http://127.0.0.1:" + port
	return &Server{Endpoint: endpoint, Client: NewClient(endpoint)}, stop, nil
}

func readPort(r io.Reader) (string, error) {
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		port, found := strings.CutPrefix(line, "listening ")
		if !ok || !found {
			return "", fmt.Errorf("unexpected first line %q", line)
		}
		return port, nil
	case <-time.After(30 * time.Second):
		return "", errors.New("no port within 30s")
	}
}

// NewClient returns an SQS client on endpoint with dummy credentials and
// the SDK's default (JSON) protocol.
func NewClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// CreateQueue creates a queue with the given visibility timeout and returns its URL.
func (s *Server) CreateQueue(tb testing.TB, name string, visibility time.Duration) string {
	tb.Helper()
	url, err := s.NewQueue(context.Background(), name, visibility)
	if err != nil {
		tb.Fatalf("sqstest: %v", err)
	}
	return url
}

// NewQueue creates a queue with the given visibility timeout and the
// interruption queue's 300 s retention, and returns its URL.
func (s *Server) NewQueue(ctx context.Context, name string, visibility time.Duration) (string, error) {
	out, err := s.Client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: map[string]string{"VisibilityTimeout": fmt.Sprint(int(visibility / time.Second)), "MessageRetentionPeriod": "300"},
	})
	if err != nil {
		return "", fmt.Errorf("CreateQueue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}
