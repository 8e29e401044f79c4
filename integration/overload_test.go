package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	"github.com/flotilla-io/flotilla/internal/catalog"
	"github.com/flotilla-io/flotilla/internal/localca"
	"github.com/flotilla-io/flotilla/internal/server"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// The chart's solver container: its memory limit (values.yaml
// solver.resources.limits.memory) and the GOMEMLIMIT it derives from it.
const (
	chartSolverMemoryLimit = 2 << 30
	chartSolverGoMemLimit  = chartSolverMemoryLimit / 10 * 9
)

// TestSolverUnderAbuse runs the solver binary as the chart does (mutual
// TLS, default limits, GOMEMLIMIT from its memory limit) and abuses it over
// loopback: oversized requests, a flood of concurrent solves, and solves
// abandoned by their callers. It must refuse what it cannot afford before
// doing the work, keep answering health checks, and stop abandoned work.
func TestSolverUnderAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and abuses the solver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startSolverProcess(ctx, t)
	conn, err := server.DialWith(s.addr, server.DialOptions{TLS: s.client, ServerIdentity: server.IdentitySolver, MaxMessageBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := solverv1.NewSolverServiceClient(conn)
	types := exampleTypes(t)

	t.Run("oversized requests are refused before they are read", func(t *testing.T) {
		huge := mixedRequest(1_000_000, types, 1)
		var wg sync.WaitGroup
		codesSeen := make([]codes.Code, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, ccancel := context.WithTimeout(ctx, 2*time.Minute)
				defer ccancel()
				_, err := client.Solve(cctx, huge)
				codesSeen[i] = status.Code(err)
			}()
		}
		wg.Wait()
		for i, c := range codesSeen {
			if c != codes.ResourceExhausted {
				t.Errorf("1,000,000-pod request %d: %s, want ResourceExhausted", i, c)
			}
		}
		peak := s.peakRSS(t)
		t.Logf("4 concurrent 1,000,000-pod requests: all %v; solver peak RSS %.0f MiB", codesSeen, float64(peak)/(1<<20))
		if peak > 1<<30 {
			t.Errorf("peak RSS %d MiB, want under 1 GiB", peak>>20)
		}
	})

	t.Run("a flood of solves is limited and health keeps answering", func(t *testing.T) {
		mid := mixedRequest(20_000, types, 2)
		mid.Options = &solverv1.SolveOptions{ImproveRounds: 3}
		stop := make(chan struct{})
		var slowest atomic.Int64
		var healthErr atomic.Value
		// The prober has a connection of its own, as the kubelet would:
		// on the flood's connection a health check queues behind 50
		// requests' bytes in the client.
		probe, err := server.DialWith(s.addr, server.DialOptions{TLS: s.client, ServerIdentity: server.IdentitySolver})
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		var hwg sync.WaitGroup
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			hc := healthpb.NewHealthClient(probe)
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				begin := time.Now()
				hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := hc.Check(hctx, &healthpb.HealthCheckRequest{})
				hcancel()
				if err != nil {
					healthErr.Store(err)
				}
				if d := time.Since(begin); int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
			}
		}()
		// Encoded once: the flood should load the solver, not this
		// process's marshalling.
		encoded, err := proto.Marshal(mid)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var ok, exhausted, other atomic.Int32
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, ccancel := context.WithTimeout(ctx, 4*time.Minute)
				defer ccancel()
				err := conn.Invoke(cctx, solverv1.SolverService_Solve_FullMethodName, preEncoded(encoded), &solverv1.SolveResponse{}, grpc.ForceCodecV2(passThrough{}))
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.ResourceExhausted:
					exhausted.Add(1)
				default:
					other.Add(1)
					t.Errorf("mid-size solve: %v", err)
				}
			}()
		}
		wg.Wait()
		close(stop)
		hwg.Wait()
		peak := s.peakRSS(t)
		t.Logf("50 concurrent 20,000-pod solves: %d served, %d ResourceExhausted, %d other; slowest health answer %s; solver peak RSS %.0f MiB",
			ok.Load(), exhausted.Load(), other.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), float64(peak)/(1<<20))
		if exhausted.Load() == 0 || ok.Load() == 0 {
			t.Errorf("%d served and %d refused: want some of each", ok.Load(), exhausted.Load())
		}
		if err, _ := healthErr.Load().(error); err != nil {
			t.Errorf("health check failed under load: %v", err)
		}
		if d := time.Duration(slowest.Load()); d > time.Second {
			t.Errorf("slowest health answer %s, want within 1s", d)
		}
		if peak > chartSolverMemoryLimit {
			t.Errorf("peak RSS %d MiB over the chart's limit %d MiB", peak>>20, chartSolverMemoryLimit>>20)
		}
	})

	t.Run("abandoned solves stop", func(t *testing.T) {
		long := mixedRequest(20_000, types, 3)
		long.Options = &solverv1.SolveOptions{ImproveRounds: 10_000} // minutes of work if nobody stops it
		var total time.Duration
		for i := range 5 {
			cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
			_, err := client.Solve(cctx, long)
			ccancel()
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("solve %d cancelled after 500ms: %v, want DeadlineExceeded", i, err)
			}
			before := s.cpu(t)
			after := s.cpuWhenIdle(t)
			t.Logf("solve %d: %s of CPU after its caller gave up", i, (after - before).Round(time.Millisecond))
			total += after - before
		}
		t.Logf("5 abandoned solves: %s of CPU burned after their callers gave up", total.Round(time.Millisecond))
		if total > 2*time.Second {
			t.Errorf("%s of CPU after cancellation, want under 2s in all", total)
		}
	})
}

// preEncoded is a request message already in wire form.
type preEncoded []byte

// passThrough sends preEncoded messages as they are and decodes responses
// as protobuf.
type passThrough struct{}

func (passThrough) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("passThrough: cannot send %T", v)
}

func (passThrough) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("passThrough: cannot decode into %T", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

func (passThrough) Name() string { return "proto" }

// solverProcess is a solver binary running on loopback with mutual TLS.
type solverProcess struct {
	cmd    *exec.Cmd
	addr   string
	client server.TLSFiles
}

func startSolverProcess(ctx context.Context, t *testing.T) *solverProcess {
	t.Helper()
	root, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "solver")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/solver")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the solver: %v\n%s", err, out)
	}
	ca, err := localca.New("")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(dir, server.IdentitySolver, localca.LocalHosts...)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.WriteFiles(dir, "abuser")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--grpc-addr=" + addr, "--metrics-addr=", "--drain-period=0s", "--log-level=warn"}, localca.Args(files)...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%d", chartSolverGoMemLimit))
	logFile, err := os.Create(filepath.Join(dir, "solver.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("solver log:\n%s", b)
			}
		}
	})
	s := &solverProcess{cmd: cmd, addr: addr, client: client}
	conn, err := server.DialWith(addr, server.DialOptions{TLS: client, ServerIdentity: server.IdentitySolver})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{})
		hcancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("solver not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// peakRSS is the process's high-water resident set size (VmHWM), in bytes.
func (s *solverProcess) peakRSS(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// cpu is the process's user plus system CPU time so far.
func (s *solverProcess) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var ticks uint64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// cpuWhenIdle waits until the process burns no more CPU (two idle quarter
// seconds in a row, or 30s) and returns its CPU time then.
func (s *solverProcess) cpuWhenIdle(t *testing.T) time.Duration {
	t.Helper()
	last, idle := s.cpu(t), 0
	for deadline := time.Now().Add(30 * time.Second); idle < 2 && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		now := s.cpu(t)
		if now-last <= 10*time.Millisecond {
			idle++
		} else {
			idle = 0
		}
		last = now
	}
	return last
}

// exampleTypes are the instance types of examples/catalog.csv in three
// zones, with spot offerings.
func exampleTypes(t *testing.T) []*typesv1.InstanceType {
	t.Helper()
	root, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "examples", "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types, err := catalog.Load("catalog.csv", f, catalog.Options{Zones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}, SpotPriceFactor: 0.35})
	if err != nil {
		t.Fatal(err)
	}
	return types
}

// mixedRequest is n pending pods of assorted sizes for one NodePool.
func mixedRequest(n int, types []*typesv1.InstanceType, seed uint64) *solverv1.SolveRequest {
	rng := rand.New(rand.NewPCG(seed, 1))
	cpus := []string{"100m", "250m", "500m", "1", "1500m", "2", "3", "4"}
	mems := []string{"128Mi", "256Mi", "512Mi", "1Gi", "2Gi", "3Gi", "4Gi", "6Gi"}
	pods := make([]*typesv1.Pod, n)
	for i := range pods {
		pods[i] = &typesv1.Pod{
			Namespace: "default", Name: fmt.Sprintf("p-%d", i), Owner: fmt.Sprintf("ReplicaSet/app-%d", i%40),
			Containers: []*typesv1.Container{{Name: "app", Requests: map[string]string{
				"cpu": cpus[rng.IntN(len(cpus))], "memory": mems[rng.IntN(len(mems))],
			}}},
		}
	}
	return &solverv1.SolveRequest{Pods: pods, NodePools: []*typesv1.NodePool{{Name: "default"}}, InstanceTypes: types}
}
