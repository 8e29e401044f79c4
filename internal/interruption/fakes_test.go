package interruption

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flotilla-io/flotilla/internal/interruption/interruptiontest"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// fakes are the fake watcher and launcher served over loopback gRPC.
type fakes struct {
	watcher  *interruptiontest.Watcher
	launcher *interruptiontest.Launcher
	conn     *grpc.ClientConn
}

func startFakes(tb testing.TB, n int) *fakes {
	tb.Helper()
	s := interruptiontest.Start(tb, n)
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return &fakes{watcher: s.Watcher, launcher: s.Launcher, conn: conn}
}

func (f *fakes) actor() *Actor {
	return &Actor{
		Watcher: watcherv1.NewWatcherServiceClient(f.conn), Launcher: launcherv1.NewLauncherServiceClient(f.conn),
		ClusterName: interruptiontest.Cluster, CallTimeout: 5 * time.Second,
	}
}

// The account and region of the events the tests send, and of the consumers.
const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
)

func instanceID(i int) string { return interruptiontest.InstanceID(i) }

// eventJSON builds an EventBridge event body.
func eventJSON(id, source, detailType string, t time.Time, detail string) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":%q,"source":%q,"account":"123456789012","time":%q,"region":"us-east-1","resources":[],"detail":%s}`,
		id, detailType, source, t.UTC().Format(time.RFC3339), detail)
}

func spotEvent(id, instance string, t time.Time) string {
	return eventJSON(id, SourceEC2, DetailTypeSpotInterruption, t, fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, instance))
}
