// Package kubeversion tells the launcher which Kubernetes minor version
// its nodes run, so AMI aliases (al2023@latest) resolve to images of the
// cluster's version and follow control-plane upgrades. Like Karpenter, it
// reads the API server's /version (major.minor, a trailing "+" dropped)
// unless the operator pins a version.
package kubeversion

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/version"
)

// DefaultRefresh is how long a discovered version is reused.
const DefaultRefresh = 5 * time.Minute

// ServerVersion is the part of a discovery client the source uses.
type ServerVersion interface {
	ServerVersion() (*version.Info, error)
}

// Source is the nodes' Kubernetes version.
type Source struct {
	fixed   string
	server  ServerVersion
	refresh time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	current string
	at      time.Time
}

// Fixed is a source that always answers v (an operator's pin).
func Fixed(v string) *Source { return &Source{fixed: v} }

// Discover is a source that asks the API server, at most once per
// refresh (DefaultRefresh when not positive).
func Discover(server ServerVersion, refresh time.Duration, now func() time.Time, log *slog.Logger) *Source {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Source{server: server, refresh: refresh, now: now, log: log}
}

// Get returns the version, such as "1.31". When the API server cannot be
// asked, the last version it gave is kept (and the failure logged); with
// none yet, Get fails.
func (s *Source) Get(context.Context) (string, error) {
	if s.fixed != "" {
		return s.fixed, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != "" && s.now().Sub(s.at) < s.refresh {
		return s.current, nil
	}
	info, err := s.server.ServerVersion()
	if err == nil {
		var v string
		if v, err = Minor(info); err == nil {
			if v != s.current {
				s.log.Info("discovered the cluster's Kubernetes version", "version", v, "previous", s.current)
			}
			s.current, s.at = v, s.now()
			return v, nil
		}
	}
	if s.current != "" {
		s.log.Warn("cannot read the cluster's Kubernetes version; keeping the last one", "version", s.current, "error", err)
		s.at = s.now()
		return s.current, nil
	}
	return "", fmt.Errorf("kubernetes version of the cluster: %w", err)
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// Minor is major.minor of an API server's version ("1" and "31+" give
// "1.31": managed control planes such as EKS add the "+").
func Minor(info *version.Info) (string, error) {
	major, minor := info.Major, strings.TrimSuffix(info.Minor, "+")
	if !digits.MatchString(major) || !digits.MatchString(minor) {
		return "", fmt.Errorf("server version %q.%q (%s) is not numeric", info.Major, info.Minor, info.GitVersion)
	}
	return major + "." + minor, nil
}
