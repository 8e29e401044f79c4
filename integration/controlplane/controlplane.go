// Package controlplane runs a real, local Kubernetes control plane for tests:
// etcd, kube-apiserver and kube-scheduler, and on request
// kube-controller-manager and kwok, built from the Go module proxy by
// hack/controlplane.sh and started as child processes on loopback ports.
//
// There are no kubelets. Without kwok, tests create Node objects themselves
// and the real kube-scheduler binds pods to them. With kwok, Nodes annotated
// kwok.x-k8s.io/node=fake become Ready and keep sending heartbeats, and the
// pods bound to them run (and go away when deleted), as with real kubelets.
package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configure Start.
type Options struct {
	// BinDir holds the binaries hack/controlplane.sh builds: etcd,
	// kube-apiserver, kube-scheduler, kube-controller-manager, kwok and
	// kwok-stages.yaml.
	BinDir string
	// WorkDir receives data, certificates, kubeconfig and logs.
	WorkDir string
	// ControllerManager also runs kube-controller-manager with the
	// controllers a cluster of simulated nodes needs (ControllerNames), and
	// turns on the ServiceAccount and TaintNodesByCondition admission
	// plugins that expect it. Start then waits for the default
	// ServiceAccount of the default namespace.
	ControllerManager bool
	// Kwok also runs kwok for the Nodes annotated KwokNodeAnnotation.
	Kwok bool
}

// KwokNodeAnnotation is the annotation (key=value) that hands a Node to kwok.
const KwokNodeAnnotation = "kwok.x-k8s.io/node=fake"

// ControllerNames are the kube-controller-manager controllers Start runs
// when Options.ControllerManager is set.
var ControllerNames = []string{
	"deployment-controller", "replicaset-controller", "daemonset-controller",
	"node-lifecycle-controller", "taint-eviction-controller", "pod-garbage-collector-controller",
	"disruption-controller", "garbage-collector-controller", "namespace-controller",
	"serviceaccount-controller", "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
}

// ControlPlane is a running etcd, kube-apiserver and kube-scheduler, and
// kube-controller-manager and kwok when asked.
type ControlPlane struct {
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of an admin kubeconfig for Config.
	Kubeconfig string
	// WorkDir holds the logs (<process>.log, see Processes).
	WorkDir string

	procs []*process
}

// process is a child process; done closes when it exits.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

const adminToken = "flotilla-integration-admin-token"

// Start launches the processes and waits until the API server is ready
// (and, with a controller manager, until the default ServiceAccount
// exists). Call Stop when done, also after an error.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	cp := &ControlPlane{WorkDir: opts.WorkDir}
	if err := os.MkdirAll(opts.WorkDir, 0o750); err != nil {
		return cp, err
	}
	etcdClient, etcdPeer, apiPort, err := freePorts3()
	if err != nil {
		return cp, err
	}
	if err := cp.start(opts, "etcd",
		"--name=default",
		"--data-dir="+filepath.Join(opts.WorkDir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", etcdPeer),
		"--unsafe-no-fsync",
		"--log-level=error",
	); err != nil {
		return cp, err
	}
	if err := cp.startAPIServer(opts, etcdClient, apiPort); err != nil {
		return cp, err
	}
	kubeconfig, err := cp.writeKubeconfig(apiPort)
	if err != nil {
		return cp, err
	}
	if err := cp.waitReady(ctx); err != nil {
		return cp, fmt.Errorf("kube-apiserver not ready (see %s): %w", filepath.Join(opts.WorkDir, "kube-apiserver.log"), err)
	}
	if err := cp.start(opts, "kube-scheduler",
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return cp, err
	}
	if opts.ControllerManager {
		if err := cp.startControllerManager(opts, kubeconfig); err != nil {
			return cp, err
		}
	}
	if opts.Kwok {
		if err := cp.startKwok(opts, kubeconfig); err != nil {
			return cp, err
		}
	}
	if opts.ControllerManager {
		if err := cp.WaitServiceAccount(ctx, metav1.NamespaceDefault, "default"); err != nil {
			return cp, fmt.Errorf("no default ServiceAccount (see %s): %w", filepath.Join(opts.WorkDir, "kube-controller-manager.log"), err)
		}
	}
	return cp, nil
}

func (cp *ControlPlane) startControllerManager(opts Options, kubeconfig string) error {
	dir := opts.WorkDir
	return cp.start(opts, "kube-controller-manager",
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers="+strings.Join(ControllerNames, ","),
		"--service-account-private-key-file="+filepath.Join(dir, "sa.key"),
		// The API server's self-signed serving certificate, published in
		// every namespace as kube-root-ca.crt.
		"--root-ca-file="+filepath.Join(dir, "certs", "apiserver.crt"),
		"--use-service-account-credentials=false",
		// kwok's heartbeats come every 20 to 45 s; leave room so that a
		// busy machine does not make nodes flap to NotReady.
		"--node-monitor-grace-period=2m",
		"--concurrent-deployment-syncs=5",
		"--concurrent-replicaset-syncs=5",
		// The default 20 requests per second makes creating 1,000 pods
		// take 50 s, which would hide what the autoscaler takes.
		"--kube-api-qps=200",
		"--kube-api-burst=300",
		// Lift node.kubernetes.io/not-ready soon after kwok marks a node
		// Ready (the default check period is 5 s).
		"--node-monitor-period=1s",
	)
}

func (cp *ControlPlane) startKwok(opts Options, kubeconfig string) error {
	stages := filepath.Join(opts.BinDir, "kwok-stages.yaml")
	if _, err := os.Stat(stages); err != nil {
		return fmt.Errorf("kwok stages (rebuild with hack/controlplane.sh): %w", err)
	}
	return cp.startEnv(opts, []string{"KWOK_WORKDIR=" + filepath.Join(opts.WorkDir, "kwok")}, "kwok",
		"--kubeconfig="+kubeconfig,
		"--config="+stages,
		"--manage-nodes-with-annotation-selector="+KwokNodeAnnotation,
		// Pod IPs come from here; the default /24 runs out at 254 pods.
		"--cidr=10.64.0.0/10",
	)
}

// WaitServiceAccount waits until the ServiceAccount namespace/name exists
// (the controller manager creates "default" in every namespace).
func (cp *ControlPlane) WaitServiceAccount(ctx context.Context, namespace, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := cp.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if err := cp.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited reports a child process that has ended.
func (cp *ControlPlane) exited() error {
	for _, p := range cp.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.cmd.ProcessState)
		default:
		}
	}
	return nil
}

// Processes names the processes started, oldest first; each logs to
// <WorkDir>/<name>.log.
func (cp *ControlPlane) Processes() []string {
	names := make([]string, len(cp.procs))
	for i, p := range cp.procs {
		names[i] = p.name
	}
	return names
}

func (cp *ControlPlane) startAPIServer(opts Options, etcdPort, apiPort int) error {
	dir := opts.WorkDir
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	key, pub, err := writeServiceAccountKeys(dir)
	if err != nil {
		return err
	}
	args := []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// Loopback cannot be published in the kubernetes Service endpoints.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + pub,
		"--service-account-signing-key-file=" + key,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--enable-priority-and-fairness=false",
		"--allow-privileged=true",
	}
	if !opts.ControllerManager {
		// No controller-manager runs: no default ServiceAccount exists, and
		// no node lifecycle controller would lift the not-ready taint that
		// TaintNodesByCondition puts on new nodes.
		args = append(args, "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition")
	}
	return cp.start(opts, "kube-apiserver", args...)
}

func (cp *ControlPlane) start(opts Options, name string, args ...string) error {
	return cp.startEnv(opts, nil, name, args...)
}

// startEnv starts BinDir/name with args and env added to this process's
// environment, logging to WorkDir/name.log.
func (cp *ControlPlane) startEnv(opts Options, env []string, name string, args ...string) error {
	logFile, err := os.Create(filepath.Join(opts.WorkDir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(opts.BinDir, name), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	cp.procs = append(cp.procs, p)
	return nil
}

func (cp *ControlPlane) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var lastErr error
	for {
		body, err := cp.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		lastErr = err
		if err := cp.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// writeKubeconfig writes the admin kubeconfig and sets Config and Client.
func (cp *ControlPlane) writeKubeconfig(apiPort int) (string, error) {
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	cp.Config = &rest.Config{
		Host:            host,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             500,
		Burst:           1000,
	}
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return "", err
	}
	cp.Client = client
	path := filepath.Join(cp.WorkDir, "kubeconfig")
	cp.Kubeconfig = path
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %q}
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
`, host, adminToken)
	return path, os.WriteFile(path, []byte(kubeconfig), 0o600)
}

// LogTail returns the last n lines of a process's log, for failure reports.
func (cp *ControlPlane) LogTail(name string, n int) string {
	data, err := os.ReadFile(filepath.Join(cp.WorkDir, name+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop ends the processes, newest first.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = p.log.Close()
	}
	cp.procs = nil
}

func writeServiceAccountKeys(dir string) (keyPath, pubPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, os.WriteFile(pubPath, pubPEM, 0o600)
}

// freePorts3 asks the kernel for three free loopback ports.
func freePorts3() (a, b, c int, err error) {
	var ports [3]int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, 0, err
		}
		listeners = append(listeners, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], ports[2], nil
}
