package kubeversion

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/version"
)

type fakeServer struct {
	info  *version.Info
	err   error
	calls int
}

func (f *fakeServer) ServerVersion() (*version.Info, error) {
	f.calls++
	return f.info, f.err
}

func TestMinor(t *testing.T) {
	for _, c := range []struct {
		major, minor, want string
	}{{"1", "31", "1.31"}, {"1", "32+", "1.32"}} {
		if got, err := Minor(&version.Info{Major: c.major, Minor: c.minor}); err != nil || got != c.want {
			t.Errorf("Minor(%s, %s) = %q, %v", c.major, c.minor, got, err)
		}
	}
	if _, err := Minor(&version.Info{Major: "1", Minor: "", GitVersion: "v1.31.0"}); err == nil {
		t.Error("an empty minor was accepted")
	}
}

// The version follows the API server: cached for the refresh period, then
// read again, so an upgrade of the control plane reaches the aliases; a
// failed read keeps the last version.
func TestDiscoverFollowsUpgrades(t *testing.T) {
	now := time.Unix(0, 0)
	srv := &fakeServer{info: &version.Info{Major: "1", Minor: "31"}}
	s := Discover(srv, time.Minute, func() time.Time { return now }, nil)
	get := func() string {
		t.Helper()
		v, err := s.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get(); v != "1.31" {
		t.Fatalf("version %s", v)
	}
	srv.info = &version.Info{Major: "1", Minor: "32+"}
	if v := get(); v != "1.31" || srv.calls != 1 {
		t.Fatalf("within the refresh period: %s after %d calls", v, srv.calls)
	}
	now = now.Add(time.Minute)
	if v := get(); v != "1.32" {
		t.Fatalf("after the upgrade: %s", v)
	}
	srv.err = errors.New("connection refused")
	now = now.Add(time.Minute)
	if v := get(); v != "1.32" {
		t.Fatalf("after a failed read: %s", v)
	}
}

func TestDiscoverFailsWithoutAnyVersion(t *testing.T) {
	s := Discover(&fakeServer{err: errors.New("forbidden")}, 0, nil, nil)
	if _, err := s.Get(context.Background()); err == nil {
		t.Fatal("no error with no version known")
	}
	if v, _ := Fixed("1.30").Get(context.Background()); v != "1.30" {
		t.Fatalf("fixed version %s", v)
	}
}
