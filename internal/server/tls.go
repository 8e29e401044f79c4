package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"
)

// DefaultTrustDomain is the SPIFFE trust domain of Flotilla's identities
// when --trust-domain is not given: the watcher's certificate carries the
// URI SAN spiffe://flotilla/watcher.
const DefaultTrustDomain = "flotilla"

// reloadCheckInterval is how often, at most, a handshake looks at the
// certificate files' modification times.
const reloadCheckInterval = time.Second

// TLSFiles names the PEM files of a service's mutual TLS: its certificate
// chain, its private key, and the CA bundle that peers' certificates must
// chain to. cert-manager's Secrets hold them as tls.crt, tls.key and
// ca.crt.
type TLSFiles struct {
	Cert, Key, CA string
}

// set reports whether any file is named.
func (f TLSFiles) set() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// check reports a missing file name.
func (f TLSFiles) check() error {
	var errs []error
	if f.Cert == "" {
		errs = append(errs, errors.New("--tls-cert: must be set unless --insecure"))
	}
	if f.Key == "" {
		errs = append(errs, errors.New("--tls-key: must be set unless --insecure"))
	}
	if f.CA == "" {
		errs = append(errs, errors.New("--tls-ca: must be set unless --insecure"))
	}
	return errors.Join(errs...)
}

// certSource holds the key pair and CA pool loaded from TLSFiles and loads
// them again when a file's modification time or size changes, so a
// certificate rotated by cert-manager (a Secret volume swaps its files)
// is used from the next handshake on without a restart. A reload that
// fails keeps the last good pair and logs why.
type certSource struct {
	files TLSFiles
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	pool    *x509.CertPool
	stamp   string
	checked time.Time
}

func newCertSource(files TLSFiles, log *slog.Logger) (*certSource, error) {
	if err := files.check(); err != nil {
		return nil, err
	}
	s := &certSource{files: files, log: log, now: time.Now}
	stamp, err := s.fileStamp()
	if err != nil {
		return nil, err
	}
	if err := s.load(stamp); err != nil {
		return nil, err
	}
	return s, nil
}

// fileStamp summarizes the three files' modification times and sizes.
func (s *certSource) fileStamp() (string, error) {
	stamp := ""
	for _, name := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%s:%d:%d;", name, fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

// load reads the files; the caller holds mu or owns s.
func (s *certSource) load(stamp string) error {
	pair, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("tls: key pair %s, %s: %w", s.files.Cert, s.files.Key, err)
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("tls: CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("tls: CA bundle %s holds no PEM certificate", s.files.CA)
	}
	s.cert, s.pool, s.stamp = &pair, pool, stamp
	return nil
}

// current returns the key pair and CA pool, reloading them first when the
// files changed since the last look (at most once per reloadCheckInterval).
func (s *certSource) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.checked) >= reloadCheckInterval {
		s.checked = now
		stamp, err := s.fileStamp()
		switch {
		case err != nil:
			s.log.Warn("tls: cannot look at the certificate files; keeping the loaded ones", slog.Any("error", err))
		case stamp != s.stamp:
			if err := s.load(stamp); err != nil {
				s.log.Warn("tls: reload failed; keeping the loaded certificate", slog.Any("error", err))
			} else {
				s.log.Info("tls: certificate reloaded", slog.String("cert", s.files.Cert))
			}
		}
	}
	return s.cert, s.pool
}

// serverTLS is the server side of mutual TLS: every client must present a
// certificate that chains to the CA bundle, and the files are re-read when
// they change.
func serverTLS(src *certSource) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := src.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
				NextProtos:   []string{"h2"},
			}, nil
		},
	}
}

// clientTLS is the client side of mutual TLS: it presents the current
// certificate and verifies the server's chain against the current CA
// bundle. With serverIdentity set (a service dialing another) the server
// must carry that identity in trustDomain, which takes the place of the
// host name check; without it the host name is checked as usual.
func clientTLS(src *certSource, trustDomain, serverIdentity string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := src.current()
			return cert, nil
		},
		// The chain is verified below, against the CA pool as it is at
		// this handshake (it may have been reloaded).
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := src.current()
			return verifyServer(cs, pool, trustDomain, serverIdentity)
		},
	}
}

// verifyServer checks the server's chain against pool, then its identity
// or host name.
func verifyServer(cs tls.ConnectionState, pool *x509.CertPool, trustDomain, serverIdentity string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if serverIdentity == "" {
		opts.DNSName = cs.ServerName
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("tls: server certificate: %w", err)
	}
	if serverIdentity != "" {
		if got := IdentityOf(leaf, trustDomain); got != serverIdentity {
			return fmt.Errorf("tls: the server is %q, not the expected %q", got, serverIdentity)
		}
	}
	return nil
}

// IdentityOf is the Flotilla identity a certificate carries: name for a URI
// SAN spiffe://<trustDomain>/<name>; otherwise the whole first spiffe URI
// (an identity from another trust domain, which no policy names); and for a
// certificate without a spiffe URI SAN, its Subject common name.
func IdentityOf(cert *x509.Certificate, trustDomain string) string {
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if name, ok := spiffeName(u, trustDomain); ok {
			return name
		}
		return u.String()
	}
	return cert.Subject.CommonName
}

// spiffeName is the single path segment of spiffe://trustDomain/name.
func spiffeName(u *url.URL, trustDomain string) (string, bool) {
	if u.Host != trustDomain || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(u.Path) < 2 {
		return "", false
	}
	name := u.Path[1:]
	for _, r := range name {
		if r == '/' {
			return "", false
		}
	}
	return name, true
}
